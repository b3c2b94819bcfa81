"""A traffic simulator: one building's meters over a chosen period, as genuine radio traffic.

:func:`simulate` builds a site (one building ``B1`` with apartments ``B1-01``...), a key store
with a random AES-128 key per device, and the receptions that gateways would deliver: OMS
telegrams encrypted in mode 5 (short and long TPL header) and mode 7 (AFL with CMAC and an
increasing message counter), in format A, format B and CRC-free shapes, and one LoRaWAN ABP
pulse module whose FRMPayload carries EN 13757-3 records. Every number a telegram carries comes
from the simulation's own state, which :class:`GroundTruth` keeps next to the traffic, together
with the faults injected on purpose (corrupted copies, an unregistered meter, replayed mode-7
frames, an unknown gateway) and the late uploads of a collector gateway.

Times: ``received_at`` and ``sent_at`` are Unix seconds (event time); the date-time records
inside the telegrams are local times of the site's time zone (Europe/Berlin), as meters keep
them. The simulation is deterministic for a given seed.
"""

from __future__ import annotations

import base64
import calendar
import collections
import datetime as dt
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from minolcore.errors import InputError
from minolcore.keys import KeyStore
from minolcore.lorawan import AesKey, build_data_frame
from minolcore.reception import Radio, Reception
from minolcore.site import (
    BillingSettings,
    DeviceKind,
    LoRaWANAddress,
    RatingFactors,
    SiteRegistry,
    WMBusAddress,
)
from minolcore.wmbus.builder import FrameShapeName, add_crcs
from minolcore.wmbus.headers import Address, AFLHeader, TPLHeader, TPLKind
from minolcore.wmbus.link import encode_id, encode_manufacturer
from minolcore.wmbus.security import OMSKey, seal_frame

__all__ = [
    "BUILDING",
    "TIMEZONE",
    "UNKNOWN_GATEWAY",
    "ExpectedUplink",
    "GroundTruth",
    "ReceptionTruth",
    "SimulatedDevice",
    "Simulation",
    "simulate",
    "write_collector_log",
    "write_packet_forwarder_log",
]

BUILDING: Final = "B1"
TIMEZONE: Final = "Europe/Berlin"
UNKNOWN_GATEWAY: Final = "GW-X"
"""A gateway that is not registered: the copies it forwards must be refused."""
MIN_DAYS: Final = 7
MAX_DAYS: Final = 3_653  # ten years: the simulation holds every reception in memory

_TZ: Final = ZoneInfo(TIMEZONE)
_COLLECTOR_UPLOAD_S: Final = 6 * 3600  # the collector uploads every six hours...
_COLLECTOR_MIN_DELAY_S: Final = 2 * 3600  # ...what it heard at least two hours before
_SHAPES: Final[tuple[FrameShapeName, ...]] = ("A", "B", "none")
_FCL_MODE7: Final = 0x2C00  # MCL, MCR and MAC present
_MCL_CMAC8: Final = 0x25  # CMAC truncated to 8 bytes
_CF_EXT_OMS_KDF: Final = 0x10
_C_SND_NR: Final = 0x44
_EIE_SURROUNDINGS_CHECKED: Final = 0x00010000
_EIE_OBSTACLE: Final = 0x01000000
_EIE_LOW_BATTERY: Final = 0x00001000
_EIE_SOILED_LEVEL: Final = 28


# --- record encoding (EN 13757-3) ------------------------------------------------------------


def _dib(coding: int, storage: int = 0, tariff: int = 0, subunit: int = 0) -> bytes:
    """DIF and the DIFEs the storage number, tariff and subunit need."""
    dif = coding | ((storage & 1) << 6)
    storage >>= 1
    difes: list[int] = []
    while storage or tariff or subunit:
        difes.append((storage & 0x0F) | ((tariff & 0x03) << 4) | ((subunit & 0x01) << 6))
        storage >>= 4
        tariff >>= 2
        subunit >>= 1
    if not difes:
        return bytes((dif,))
    return bytes((dif | 0x80, *(d | 0x80 for d in difes[:-1]), difes[-1]))


def _int(value: int, width: int) -> bytes:
    return (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")


def _bcd(value: int, digits: int) -> bytes:
    return bytes.fromhex(str(value).rjust(digits, "0"))[::-1]


def _date_g(day: dt.date) -> bytes:
    y = day.year - 2000
    return bytes((day.day | ((y & 0x07) << 5), day.month | ((y & 0x78) << 1)))


def _datetime_f(when: dt.datetime) -> bytes:
    # Hundred-year bits 5-6 of the hour byte = 1: years 2000-2099.
    return bytes((when.minute, when.hour | (1 << 5))) + _date_g(when.date())


# Record heads (DIB + VIB) used below; the data bytes follow them.
_H_DATETIME: Final = _dib(0x4) + b"\x6d"
_H_DATE1: Final = _dib(0x2, storage=1) + b"\x6c"
_H_DATE2: Final = _dib(0x2, storage=2) + b"\x6c"
_H_ERRORS: Final = _dib(0x2) + b"\xfd\x17"
_VIF_HCA: Final = b"\x6e"
_VIF_KWH: Final = b"\x06"
_VIF_LITRE: Final = b"\x13"
_VIF_WH: Final = b"\x03"
_VIF_WATT: Final = b"\x2b"
_VIF_FLOW_C: Final = b"\x5a"  # 0.1 degC
_VIF_RETURN_C: Final = b"\x5e"  # 0.1 degC
_VIF_DEVICE_TYPE: Final = b"\xfd\x09"
_VIF_COUNTER: Final = b"\xfd\x61"


# --- the model ----------------------------------------------------------------------------


class ExpectedUplink(msgspec.Struct, frozen=True, kw_only=True):
    """One genuine transmission: what the pipeline must store exactly once.

    ``device`` is the installation id, ``address`` the network server's device string
    ("MMM-IIIIIIII-VV-TT" for wireless M-Bus, the DevAddr in hex for LoRaWAN), ``unit`` the
    unit it belongs to (None for building-level meters), ``sent_at`` the transmission's event
    time (Unix seconds), ``reading_time`` the meter's local date-time record
    ("YYYY-MM-DDTHH:MM"), ``counter`` the mode-7 MCR or the LoRaWAN FCnt. ``values`` hold the
    encoded numbers in the device model's units (HCA units, kWh, m3, kW, degC, V; flags as
    booleans); ``due_date``/``month_end_date`` the ISO dates of storages 1 and 2, if sent.
    """

    device: str
    address: str
    radio: str
    kind: str
    unit: str | None
    sent_at: float
    reading_time: str
    counter: int | None
    values: dict[str, float | int | bool]
    due_date: str | None = None
    month_end_date: str | None = None


class ReceptionTruth(msgspec.Struct, frozen=True, kw_only=True):
    """What happens to one reception (same position as in ``Simulation.receptions``).

    ``uplink`` indexes ``GroundTruth.uplinks`` (-1 when the reception belongs to none);
    ``verdict`` is "copy" (a live copy of a genuine transmission), "late" (a collector copy
    delivered hours later, to be merged) or the rejection reason the pipeline must give.
    """

    uplink: int
    verdict: str


@dataclass(frozen=True)
class GroundTruth:
    """What a correct pipeline must make of the simulated traffic.

    ``rejections``: reason -> number of receptions refused for it. ``duplicates``: genuine
    copies beyond the first of each uplink (late ones included); ``late_copies`` how many of
    them the collector delivered late; ``max_late_s`` the largest delay between a late copy's
    event time and its arrival (s; a dedupe table must remember uplinks that long).
    ``monthly_consumption``: unit id (or the building id for building-level meters) -> month
    "YYYY-MM" -> quantity -> consumption, for the months whose start and end values both
    were sent as month-end values (storage 2) during the period; quantities: "hca_units",
    "hca_rated_units" (units x rating factor), "cold_water_m3", "warm_water_m3",
    "heat_kwh", "electricity_kwh", "gas_m3". ``due_date_values``: installation id -> ISO
    due date -> value (HCA units, kWh or m3) as the device sent it.
    """

    uplinks: tuple[ExpectedUplink, ...]
    receptions: tuple[ReceptionTruth, ...]
    rejections: collections.Counter[str]
    duplicates: int
    late_copies: int
    max_late_s: float
    monthly_consumption: dict[str, dict[str, dict[str, float]]]
    due_date_values: dict[str, dict[str, float]]


class SimulatedDevice(msgspec.Struct, frozen=True, kw_only=True):
    """A simulated device (never its key): installation id, kind, address, where and when.

    ``mode`` is the OMS security mode (5 or 7; 0 for LoRaWAN); ``first_day``/``last_day``
    the local days it transmits (inclusive).
    """

    uid: str
    kind: str
    radio: str
    address: str
    unit: str | None
    mode: int
    first_day: dt.date
    last_day: dt.date


@dataclass(frozen=True)
class Simulation:
    """A simulated building: its site, keys, traffic (in arrival order) and ground truth."""

    site: SiteRegistry
    keys: KeyStore
    receptions: list[Reception]
    gateways: tuple[str, ...]
    truth: GroundTruth
    devices: tuple[SimulatedDevice, ...]
    start: dt.date
    days: int

    def __repr__(self) -> str:
        return (
            f"<Simulation {self.start.isoformat()} +{self.days} d: {len(self.devices)} devices, "
            f"{len(self.truth.uplinks)} transmissions, {len(self.receptions)} receptions>"
        )

    def write_site_toml(self, path: str | Path) -> None:
        """Write the site file (``SiteRegistry.from_toml`` reads it back)."""
        Path(path).write_text(self.site.to_toml() + "\n", encoding="utf-8")

    def write_keys_toml(self, path: str | Path) -> None:
        """Write the simulated keys as a plain key file (``KeyStore.import_plain`` reads it).

        The one place simulated keys leave memory as text; never do this with real keys.
        """
        lines = ["# Simulated keys (random, for the simulator's devices only)."]
        for device in self.devices:
            lines.append("")
            lines.append("[[devices]]")
            if device.radio == Radio.LORAWAN.value:
                sessions = self.keys.lorawan_session_keys(device.address)
                if sessions is None:
                    raise InputError(f"no session keys for {device.uid}")
                lines.append(f'dev_addr = "{device.address}"')
                lines.append(f'nwk_s_key = "{sessions.nwk_s_key.reveal().hex().upper()}"')
                lines.append(f'app_s_key = "{sessions.app_s_key.reveal().hex().upper()}"')
                continue
            manufacturer, meter_id, version, device_type = device.address.split("-")
            key = self.keys.oms_key(manufacturer, meter_id, int(version, 16), int(device_type, 16))
            if key is None:
                raise InputError(f"no key for {device.uid}")
            lines.append(f'manufacturer = "{manufacturer}"')
            lines.append(f'meter_id = "{meter_id}"')
            lines.append(f"version = {int(version, 16)}")
            lines.append(f"device_type = {int(device_type, 16)}")
            lines.append(f'key = "{key.reveal().hex().upper()}"')
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


class _CollectorLine(msgspec.Struct, omit_defaults=True):
    gateway: str
    received_at: float
    frame: str
    rssi: float | None = None
    mode: str | None = None


class _RxpkLine(msgspec.Struct, omit_defaults=True):
    data: str
    size: int
    tmst: int
    freq: float
    stat: int
    modu: str
    datr: str
    rssi: float | None = None
    lsnr: float | None = None


class _PacketForwarderLine(msgspec.Struct):
    gateway: str
    received_at: float
    rxpk: list[_RxpkLine]


def write_packet_forwarder_log(path: str | Path, receptions: Iterable[Reception]) -> int:
    """Write the LoRaWAN receptions as packet-forwarder log lines (the JSON body of a Semtech
    PUSH_DATA with one rxpk, the gateway's id, the receive time in Unix seconds); returns the
    number of lines written. Wireless M-Bus receptions are left out."""

    def line(reception: Reception) -> _PacketForwarderLine:
        packet = _RxpkLine(
            data=base64.b64encode(reception.payload).decode(),
            size=len(reception.payload),
            # The concentrator's microsecond counter (32 bits); the server time stands for
            # the packet's time, which these lines leave out.
            tmst=round(reception.received_at * 1e6) % (1 << 32),
            freq=reception.frequency if reception.frequency is not None else 868.1,
            stat=1,
            modu="LORA",
            datr=reception.mode or "SF7BW125",
            rssi=reception.rssi,
            lsnr=reception.snr,
        )
        return _PacketForwarderLine(
            gateway=reception.gateway_id, received_at=reception.received_at, rxpk=[packet]
        )

    return _write_lines(path, receptions, Radio.LORAWAN, line)


def write_collector_log(path: str | Path, receptions: Iterable[Reception]) -> int:
    """Write the wireless M-Bus receptions as collector JSON lines (gateway, received_at in
    Unix seconds, rssi in dBm, mode, frame hex); returns the number of lines written.

    LoRaWAN receptions are left out: the collector format carries wireless M-Bus frames only.
    """

    def line(reception: Reception) -> _CollectorLine:
        return _CollectorLine(
            gateway=reception.gateway_id,
            received_at=reception.received_at,
            frame=reception.payload.hex().upper(),
            rssi=reception.rssi,
            mode=reception.mode or None,
        )

    return _write_lines(path, receptions, Radio.WMBUS, line)


def _write_lines(
    path: str | Path,
    receptions: Iterable[Reception],
    radio: Radio,
    line: Callable[[Reception], msgspec.Struct],
) -> int:
    encoder = msgspec.json.Encoder()
    written = 0
    with open(path, "wb") as handle:
        for reception in receptions:
            if reception.radio is radio:
                handle.write(encoder.encode(line(reception)) + b"\n")
                written += 1
    return written


# --- internal state -----------------------------------------------------------------------


@dataclass(eq=False)
class _Device:
    uid: str
    kind: DeviceKind
    unit: str | None
    room: str
    manufacturer: str = ""
    meter_id: str = ""
    version: int = 0
    device_type: int = 0
    dev_addr: str = ""
    mode: int = 5
    long_tpl: bool = False
    radio_mode: str = "T1"
    rating: RatingFactors | None = None
    first: int = 0  # day index (from the model origin) of the first transmission
    last: int = 0  # day index of the last transmission (inclusive)
    send_s: int = 0  # seconds after local midnight of the daily transmission
    coverage: tuple[str, ...] = ()
    rssi: dict[str, float] = field(default_factory=dict)
    # Cumulative register (raw integer units) at the end of each model day; index -1 = before.
    ends: list[int] = field(default_factory=list)
    initial: int = 0
    ends2: list[int] = field(default_factory=list)  # pulse module: second channel (gas)
    initial2: int = 0
    oms_key: OMSKey | None = field(default=None, repr=False)
    nwk: AesKey | None = field(default=None, repr=False)
    app: AesKey | None = field(default=None, repr=False)
    counter: int = 0
    access: int = 0
    dust: float = 0.0
    dust_rate: float = 0.0
    address_obj: Address | None = None
    fresh: bool = False  # installed during the period: no billing values from before
    final_full: bool = False  # the last reading shows the whole register (a meter swapped that day)

    def value_end(self, index: int) -> int:
        return self.initial if index < 0 else self.ends[index]

    @property
    def network_address(self) -> str:
        if self.dev_addr:
            return self.dev_addr
        return f"{self.manufacturer}-{self.meter_id}-{self.version:02X}-{self.device_type:02X}"


@dataclass
class _Tx:
    device: _Device
    sent_at: float
    frame: bytes  # canonical CRC-free frame or PHYPayload
    uplink: int  # index into the truth's uplinks, -1 for fault transmissions
    radio: Radio


def _local_day_start(day: dt.date) -> float:
    """Unix seconds of local noon minus 12 h: right for every send time after the 2-3 am DST switch."""
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=_TZ)
    return noon.timestamp() - 12 * 3600


def _month_end_before(day: dt.date) -> dt.date:
    return day.replace(day=1) - dt.timedelta(days=1)


def _add_months(year: int, month: int, step: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + step
    return index // 12, index % 12 + 1


class _Builder:
    def __init__(self, start: dt.date, days: int, seed: int, units: int, gateways: int) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.days = days
        self.units = units
        # The model runs from December of the year before, so that the due date (Dec 31) and
        # the month-end before the first day have values.
        self.origin = dt.date(start.year - 1, 12, 1)
        self.first = (start - self.origin).days
        self.end = self.first + days - 1
        self.total = self.end + 1
        self.gateways = tuple(f"GW-{i}" for i in range(1, gateways + 1))
        self.collector = self.gateways[-1] if gateways >= 2 else None
        self.live = tuple(g for g in self.gateways if g != self.collector)
        self.shape = {g: _SHAPES[i % 2] for i, g in enumerate(self.live)}
        if self.collector is not None:
            self.shape[self.collector] = "none"
        self.shape[UNKNOWN_GATEWAY] = "A"
        self.site = SiteRegistry(TIMEZONE)
        self.keys = KeyStore()
        self.devices: list[_Device] = []
        self.heating = self._heating_demand()
        self.installed = dt.date(start.year - 3, 1, 1)
        self.mid = start + dt.timedelta(days=days // 2)

    # -- climate ------------------------------------------------------------------------------

    def _heating_demand(self) -> list[float]:
        """Heating degree-days (K d) per model day, base 15 degC, from a seasonal temperature."""
        out = []
        for index in range(self.total):
            day = self.origin + dt.timedelta(days=index)
            doy = day.timetuple().tm_yday
            temperature = 9.0 - 9.5 * math.cos(2 * math.pi * (doy - 20) / 365.25) + self.rng.gauss(0, 2.5)
            out.append(max(0.0, 15.0 - temperature))
        return out

    # -- devices ------------------------------------------------------------------------------

    def _coverage(self, device: _Device) -> None:
        rng = self.rng
        live = [g for g in self.live if rng.random() < 0.6] or [rng.choice(self.live)]
        if self.collector is not None and rng.random() < 0.7:
            live.append(self.collector)
        device.coverage = tuple(live)
        device.rssi = {g: rng.uniform(-105.0, -65.0) for g in device.coverage}

    def _wmbus(
        self,
        uid: str,
        kind: DeviceKind,
        unit: str | None,
        room: str,
        manufacturer: str,
        meter_id: str,
        version: int,
        device_type: int,
        *,
        mode: int,
        long_tpl: bool = False,
        rating: RatingFactors | None = None,
        first_day: dt.date | None = None,
        last_day: dt.date | None = None,
        register: bool = True,
    ) -> _Device:
        rng = self.rng
        device = _Device(
            uid=uid,
            kind=kind,
            unit=unit,
            room=room,
            manufacturer=manufacturer,
            meter_id=meter_id,
            version=version,
            device_type=device_type,
            mode=mode,
            long_tpl=long_tpl,
            radio_mode=rng.choice(("T1", "T1", "C1")),
            rating=rating,
            oms_key=OMSKey(rng.randbytes(16)),
            access=rng.randrange(256),
            counter=rng.randrange(1, 5000) if mode == 7 else 0,
            send_s=rng.randrange(5 * 3600, 22 * 3600),
            address_obj=Address(
                manufacturer_code=encode_manufacturer(manufacturer),
                id_value=encode_id(meter_id),
                version=version,
                device_type=device_type,
            ),
        )
        device.first = self.first if first_day is None else (first_day - self.origin).days
        device.last = self.end if last_day is None else (last_day - self.origin).days
        self._coverage(device)
        if register:
            address = WMBusAddress.of(manufacturer, meter_id, version, device_type)
            self.site.install(
                address,
                self.installed if first_day is None else first_day,
                kind=kind,
                unit=unit,
                building=None if unit else BUILDING,
                room=room,
                rating=rating,
                installation_id=uid,
            )
            if last_day is not None:
                self.site.remove(address, last_day)
            assert device.oms_key is not None
            self.keys.add_oms_key(
                manufacturer, meter_id, device.oms_key, version=version, device_type=device_type
            )
            self.devices.append(device)
        return device

    def build_site(self) -> None:
        rng = self.rng
        self.site.add_building(
            BUILDING,
            "Lindenstrasse 5",
            address="Lindenstrasse 5, 10115 Berlin",
            billing=BillingSettings(
                due_month=12, due_day=31, heating_consumption_percent=70, hot_water_consumption_percent=50
            ),
        )
        for gateway in self.gateways:
            # Live gateways forward frames as received (format A or B, with CRCs); the
            # collector uploads them with the CRCs removed.
            self.site.add_gateway(gateway, crc="absent" if self.shape[gateway] == "none" else "present")
        swap_unit = f"{BUILDING}-02" if self.units >= 2 else f"{BUILDING}-01"
        tenant_unit = f"{BUILDING}-03" if self.units >= 3 else f"{BUILDING}-01"
        self.swap_day = self.mid + dt.timedelta(days=min(5, self.days // 4))
        serial = 0
        for number in range(1, self.units + 1):
            unit = f"{BUILDING}-{number:02d}"
            floor = (number - 1) // 2
            self.site.add_unit(
                unit, BUILDING, f"floor {floor} {'left' if number % 2 else 'right'}", rng.randrange(45, 96)
            )
            tenant = f"T-{1000 + number}"
            if unit == tenant_unit:
                self.site.add_tenancy(unit, tenant, self.installed, self.mid - dt.timedelta(days=1))
                self.site.add_tenancy(unit, f"T-{2000 + number}", self.mid)
            else:
                self.site.add_tenancy(unit, tenant, self.installed)
            for index, room in enumerate(("living room", "bedroom", "kitchen")[: rng.choice((2, 3))], 1):
                rating = RatingFactors(kq=round(rng.uniform(0.6, 1.9), 3), kc=round(rng.uniform(0.9, 1.0), 2))
                serial += 1
                self._wmbus(
                    f"{unit}-hca-{index}",
                    DeviceKind.HEAT_COST_ALLOCATOR,
                    unit,
                    room,
                    "QDS",
                    f"7100{number:02d}{index:02d}",
                    0x35,
                    0x08,
                    mode=5,
                    rating=rating,
                )
            cold_last = self.swap_day if unit == swap_unit else None
            self._wmbus(
                f"{unit}-cold-water",
                DeviceKind.COLD_WATER_METER,
                unit,
                "bathroom",
                "ZRI",
                f"4000{number:02d}01",
                0x01,
                0x16,
                mode=5,
                long_tpl=True,
                last_day=cold_last,
            )
            if unit == swap_unit:
                fresh = self._wmbus(
                    f"{unit}-cold-water-2",
                    DeviceKind.COLD_WATER_METER,
                    unit,
                    "bathroom",
                    "ZRI",
                    f"4000{number:02d}02",
                    0x01,
                    0x16,
                    mode=5,
                    long_tpl=True,
                    first_day=self.swap_day,
                )
                fresh.fresh = True
            self._wmbus(
                f"{unit}-warm-water",
                DeviceKind.WARM_WATER_METER,
                unit,
                "bathroom",
                "ZRI",
                f"4100{number:02d}01",
                0x01,
                0x06,
                mode=7,
            )
            smoke = self._wmbus(
                f"{unit}-smoke", DeviceKind.SMOKE_DETECTOR, unit, "hallway", "EIE", f"5200{number:02d}01",
                0x0C, 0x1A, mode=5,
            )  # fmt: skip
            smoke.dust = rng.uniform(2.0, 12.0)
            smoke.dust_rate = rng.uniform(0.0, 0.01)
        self._wmbus(
            f"{BUILDING}-heat",
            DeviceKind.HEAT_METER,
            None,
            "boiler room",
            "SEN",
            "60000001",
            0x1B,
            0x04,
            mode=7,
        )
        pulse = _Device(
            uid=f"{BUILDING}-pulse",
            kind=DeviceKind.PULSE_MODULE,
            unit=None,
            room="basement",
            dev_addr="260B1001",
            mode=0,
            nwk=AesKey(rng.randbytes(16)),
            app=AesKey(rng.randbytes(16)),
            send_s=rng.randrange(5 * 3600, 22 * 3600),
            first=self.first,
            last=self.end,
        )
        pulse.coverage = tuple(g for g in self.live if rng.random() < 0.8) or self.live[:1]
        pulse.rssi = {g: rng.uniform(-115.0, -80.0) for g in pulse.coverage}
        self.site.install(
            LoRaWANAddress.of(dev_addr=pulse.dev_addr),
            self.installed,
            kind=DeviceKind.PULSE_MODULE,
            building=BUILDING,
            room=pulse.room,
            installation_id=pulse.uid,
        )
        assert pulse.nwk is not None and pulse.app is not None
        self.keys.add_session_keys(pulse.dev_addr, pulse.nwk, pulse.app)
        self.devices.append(pulse)
        # One detector's chamber soils during the period, one is taken down for a few days.
        soiled = self.devices_of(DeviceKind.SMOKE_DETECTOR)[0]
        soiled.dust_rate = (_EIE_SOILED_LEVEL + 1 - soiled.dust) / max(1.0, self.days * 0.6)
        self.removed_detector = self.devices_of(DeviceKind.SMOKE_DETECTOR)[-1].uid
        self.removal_first = self.start + dt.timedelta(days=(2 * self.days) // 3)
        self.removal_last = self.removal_first + dt.timedelta(days=3)
        # A neighbour's meter the gateways hear too; it is in neither the site nor the key store.
        self.stranger = self._wmbus(
            "neighbour-water", DeviceKind.COLD_WATER_METER, None, "next door", "ZRI", "49999999", 0x01, 0x16,
            mode=5, long_tpl=True, register=False,
        )  # fmt: skip
        self.stranger.coverage = self.live[:1]
        self.stranger.rssi = {self.live[0]: -108.0}

    def devices_of(self, kind: DeviceKind) -> list[_Device]:
        return [d for d in self.devices if d.kind is kind]

    # -- consumption ------------------------------------------------------------------------

    def _increments(self, device: _Device) -> tuple[list[int], list[int]]:
        """Raw daily increments (HCA units, kWh, litres, Wh; second list: gas litres)."""
        rng = self.rng
        kind = device.kind
        out: list[int] = []
        second: list[int] = []
        persons = rng.uniform(1.0, 3.5)
        scale = rng.uniform(0.4, 1.2)
        for index in range(self.total):
            demand = self.heating[index]
            noise = rng.uniform(0.8, 1.2)
            if kind is DeviceKind.HEAT_COST_ALLOCATOR:
                out.append(round(demand * scale * noise))
            elif kind is DeviceKind.HEAT_METER:
                heat = demand * 4.0 * self.units * noise + 8.0 * self.units
                out.append(round(heat))
            elif kind is DeviceKind.COLD_WATER_METER:
                out.append(round(persons * rng.uniform(50.0, 110.0)))
            elif kind is DeviceKind.WARM_WATER_METER:
                out.append(round(persons * rng.uniform(20.0, 45.0)))
            elif kind is DeviceKind.PULSE_MODULE:
                out.append(round(self.units * 2500 * noise))
                heat = demand * 4.0 * self.units + 8.0 * self.units
                second.append(round(heat * 111 * noise))  # 10 kWh per m3 of gas, 90 % efficiency
            else:
                out.append(0)
        return out, second

    def run_consumption(self) -> None:
        rng = self.rng
        initial = {
            DeviceKind.HEAT_COST_ALLOCATOR: (500, 4000),
            DeviceKind.HEAT_METER: (50_000, 400_000),
            DeviceKind.COLD_WATER_METER: (20_000, 400_000),
            DeviceKind.WARM_WATER_METER: (10_000, 150_000),
            DeviceKind.PULSE_MODULE: (10_000_000, 90_000_000),
            DeviceKind.SMOKE_DETECTOR: (0, 0),
        }
        swapped_old = next(d for d in self.devices if d.uid.endswith("-cold-water") and d.last < self.end)
        swapped_new = next(d for d in self.devices if d.fresh)
        for device in [*self.devices, self.stranger]:
            low, high = initial[device.kind]
            device.initial = rng.randrange(low, high + 1) if high else 0
            increments, gas = self._increments(device)
            if device is swapped_new:
                device.initial = 0
                # The new meter counts from 0 and only what flows after the old one's last reading.
                for index in range(device.first):
                    increments[index] = 0
            value = device.initial
            ends = []
            for index, step in enumerate(increments):
                if device is swapped_old and index > device.last:
                    step = 0
                value += step
                ends.append(value)
            device.ends = ends
            if gas:
                device.initial2 = rng.randrange(20_000_000, 80_000_000)
                value = device.initial2
                device.ends2 = []
                for step in gas:
                    value += step
                    device.ends2.append(value)
        # Swap day: the old meter reads at its send time and goes; the rest of the day's
        # water flows through the new one, which is installed and reads later that day.
        day = swapped_old.last
        flow = swapped_old.ends[day] - swapped_old.value_end(day - 1)
        swapped_old.send_s = min(swapped_old.send_s, 12 * 3600)
        before = math.floor(flow * swapped_old.send_s / 86400)
        after = flow - before
        swapped_old.ends[day:] = [swapped_old.value_end(day - 1) + before] * (len(swapped_old.ends) - day)
        swapped_new.send_s = max(swapped_new.send_s, 13 * 3600)
        shifted = [0] * len(swapped_new.ends)
        total = 0
        for index in range(swapped_new.first, len(shifted)):
            previous = swapped_new.value_end(index - 1) if index > swapped_new.first else 0
            step = after if index == swapped_new.first else swapped_new.ends[index] - previous
            total += step
            shifted[index] = total
        swapped_new.ends = shifted
        swapped_old.final_full = True

    # -- telegrams -----------------------------------------------------------------------

    def _partial(self, device: _Device, index: int, ends: list[int], initial: int, frac: float) -> int:
        before = initial if index == 0 else ends[index - 1]
        return before + math.floor((ends[index] - before) * frac)

    def _billing_records(
        self, device: _Device, day: dt.date, coding: int, vif: bytes
    ) -> tuple[bytes, str | None, str | None, int | None, int | None]:
        """Storage 1 (due date Dec 31) and storage 2 (previous month end) records, if installed then."""
        parts = bytearray()
        due = dt.date(day.year - 1, 12, 31)
        month_end = _month_end_before(day)
        due_index = (due - self.origin).days
        month_index = (month_end - self.origin).days
        installed_from = device.first if device.fresh else -1
        due_value = month_value = None
        due_text = month_text = None
        if due_index >= installed_from:
            due_value = device.value_end(due_index)
            parts += _H_DATE1 + _date_g(due)
            parts += _dib(coding, storage=1) + vif + _enc(coding, due_value)
            due_text = due.isoformat()
        if month_index >= installed_from:
            month_value = device.value_end(month_index)
            parts += _H_DATE2 + _date_g(month_end)
            parts += _dib(coding, storage=2) + vif + _enc(coding, month_value)
            month_text = month_end.isoformat()
        return bytes(parts), due_text, month_text, due_value, month_value

    def telegram(self, device: _Device, index: int) -> tuple[bytes, ExpectedUplink, float]:
        day = self.origin + dt.timedelta(days=index)
        send_s = device.send_s + self.rng.randrange(-300, 300)
        sent_at = _local_day_start(day) + send_s
        local = dt.datetime.fromtimestamp(sent_at, _TZ)
        reading_time = local.strftime("%Y-%m-%dT%H:%M")
        frac = (local.hour * 3600 + local.minute * 60 + local.second) / 86400
        body = bytearray(_H_DATETIME + _datetime_f(local))
        values: dict[str, float | int | bool] = {}
        due_date = month_end = None
        sts = 0
        errors = 0
        kind = device.kind
        current = self._partial(device, index, device.ends, device.initial, frac)
        if device.final_full and index == device.last:
            current = device.ends[index]
        if kind is DeviceKind.HEAT_COST_ALLOCATOR:
            body += _dib(0xB) + _VIF_HCA + _bcd(current, 6)
            extra, due_date, month_end, due_v, month_v = self._billing_records(device, day, 0xB, _VIF_HCA)
            body += extra
            values["hca_units"] = current
            if due_v is not None:
                values["due_date_units"] = due_v
            if month_v is not None:
                values["month_end_units"] = month_v
        elif kind is DeviceKind.HEAT_METER:
            demand = self.heating[index]
            flow_c = round(45.0 + 1.5 * demand, 1)
            return_c = round(flow_c - 8.0 - 0.4 * demand, 1)
            power_w = round(device.ends[index] - device.value_end(index - 1)) * 1000 // 24
            # Volume at a nominal 10 K spread, so that the register only ever grows.
            litres = round(current * 1000 / (1.163 * 10.0))
            body += _dib(0x4) + _VIF_KWH + _int(current, 4)
            body += _dib(0x4) + _VIF_LITRE + _int(litres, 4)
            body += _dib(0x3) + _VIF_WATT + _int(power_w, 3)
            body += _dib(0x2) + _VIF_FLOW_C + _int(round(flow_c * 10), 2)
            body += _dib(0x2) + _VIF_RETURN_C + _int(round(return_c * 10), 2)
            extra, due_date, month_end, due_v, month_v = self._billing_records(device, day, 0x4, _VIF_KWH)
            body += extra
            values.update(
                energy_kwh=float(current),
                volume_m3=litres / 1000,
                power_kw=power_w / 1000,
                flow_temperature_c=flow_c,
                return_temperature_c=return_c,
            )
            if due_v is not None:
                values["due_date_energy_kwh"] = float(due_v)
            if month_v is not None:
                values["month_end_energy_kwh"] = float(month_v)
        elif kind in (DeviceKind.COLD_WATER_METER, DeviceKind.WARM_WATER_METER):
            body += _dib(0x4) + _VIF_LITRE + _int(current, 4)
            extra, due_date, month_end, due_v, month_v = self._billing_records(device, day, 0x4, _VIF_LITRE)
            body += extra
            values["volume_m3"] = current / 1000
            if due_v is not None:
                values["due_date_volume_m3"] = due_v / 1000
            if month_v is not None:
                values["month_end_volume_m3"] = month_v / 1000
        elif kind is DeviceKind.SMOKE_DETECTOR:
            dust = min(31, int(device.dust + device.dust_rate * (index - self.first)))
            voltage_step = 15 if index - self.first < 300 else 14
            removed = device.uid == self.removed_detector and self.removal_first <= day <= self.removal_last
            removals = int(device.uid == self.removed_detector and day >= self.removal_first)
            head = dust | (voltage_step << 8) | _EIE_SURROUNDINGS_CHECKED
            body += _dib(0x4, subunit=1) + b"\xff\x2c" + _int(head, 4)
            body += _dib(0x2, tariff=1, subunit=1) + _VIF_COUNTER + _int(0, 2)
            body += _dib(0x2, tariff=2, subunit=1) + _VIF_COUNTER + _int(removals, 2)
            if removals:
                body += _dib(0x2, tariff=2, subunit=1) + b"\x6c" + _date_g(self.removal_first)
            body += _dib(0x2, tariff=2) + b"\x6c" + _date_g(self.installed)
            values.update(
                dust_level=dust,
                smoke_chamber_soiled=dust >= _EIE_SOILED_LEVEL,
                battery_voltage_v=round(2.25 + 0.05 * voltage_step, 2),
                battery_sufficient=not head & _EIE_LOW_BATTERY,
                obstacle_detected=bool(head & _EIE_OBSTACLE),
                removed=removed,
                removal_count=removals,
                alarm_count=0,
            )
        elif kind is DeviceKind.PULSE_MODULE:
            gas = self._partial(device, index, device.ends2, device.initial2, frac)
            body += _dib(0x1, subunit=1) + _VIF_DEVICE_TYPE + b"\x02"
            body += _dib(0x4, subunit=1) + _VIF_WH + _int(current, 4)
            body += _dib(0x1, subunit=2) + _VIF_DEVICE_TYPE + b"\x03"
            body += _dib(0x4, subunit=2) + _VIF_LITRE + _int(gas, 4)
            values.update(electricity_kwh=current / 1000, gas_m3=gas / 1000)
        if kind is not DeviceKind.PULSE_MODULE:
            body += _H_ERRORS + _int(errors, 2)
            values["error_flags"] = errors
        counter: int | None = None
        if kind is DeviceKind.PULSE_MODULE:
            counter = device.counter
            assert device.nwk is not None
            frame = build_data_frame(
                dev_addr=device.dev_addr,
                fcnt=device.counter,
                nwk_s_key=device.nwk,
                app_s_key=device.app,
                fport=1,
                payload=bytes(body),
            )
        else:
            frame, counter = self._seal(device, bytes(body), sts)
        device.counter += 1
        device.access = (device.access + 1) & 0xFF
        expected = ExpectedUplink(
            device=device.uid,
            address=device.network_address,
            radio=(Radio.LORAWAN if kind is DeviceKind.PULSE_MODULE else Radio.WMBUS).value,
            kind=kind.value,
            unit=device.unit,
            sent_at=sent_at,
            reading_time=reading_time,
            counter=counter,
            values=values,
            due_date=due_date,
            month_end_date=month_end,
        )
        return frame, expected, sent_at

    def _seal(self, device: _Device, payload: bytes, sts: int) -> tuple[bytes, int | None]:
        assert device.oms_key is not None
        afl = None
        counter = None
        if device.mode == 7:
            counter = device.counter
            tpl = TPLHeader(
                ci=0x7A, kind=TPLKind.SHORT, acc=device.access, sts=sts, cf=0x0700, cf_ext=_CF_EXT_OMS_KDF
            )
            afl = AFLHeader(afll=0, fcl=_FCL_MODE7, mcl=_MCL_CMAC8, mcr=counter, mac=bytes(8))
        elif device.long_tpl:
            tpl = TPLHeader(
                ci=0x72, kind=TPLKind.LONG, acc=device.access, sts=sts, cf=0x0500, address=device.address_obj
            )
        else:
            tpl = TPLHeader(ci=0x7A, kind=TPLKind.SHORT, acc=device.access, sts=sts, cf=0x0500)
        frame = seal_frame(
            device.oms_key,
            manufacturer=device.manufacturer,
            id=device.meter_id,
            version=device.version,
            device_type=device.device_type,
            tpl=tpl,
            afl=afl,
            payload=payload,
            c_field=_C_SND_NR,
            shape="none",
        )
        return frame, counter


_BCD_DIGITS: Final = {0x9: 2, 0xA: 4, 0xB: 6, 0xC: 8, 0xE: 12}
_INT_BYTES: Final = {0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6, 0x7: 8}


def _enc(coding: int, value: int) -> bytes:
    """The data field of an integer or BCD coding (DIF bits 3-0)."""
    digits = _BCD_DIGITS.get(coding)
    return _bcd(value, digits) if digits is not None else _int(value, _INT_BYTES[coding])


# --- traffic -------------------------------------------------------------------------------


@dataclass
class _Copy:
    arrival: float
    reception: Reception
    truth: ReceptionTruth


def _flip_bit(frame: bytes, rng: random.Random) -> bytes:
    # A data byte of the last block (never L or a CRC byte): the CRC check must catch it.
    position = len(frame) - 3 - rng.randrange(4)
    out = bytearray(frame)
    out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def simulate(*, start: dt.date, days: int, seed: int = 0, units: int = 6, gateways: int = 3) -> Simulation:
    """Simulate building ``B1`` with ``units`` apartments (1-99) heard by ``gateways`` gateways
    (1-9) for ``days`` days (at least 7) from local day ``start``; same seed, same traffic.

    Every device transmits once a day; receptions come in arrival order (the last gateway is a
    collector whose copies arrive 2-8 h late but keep their event times). Values are in the
    units documented on :class:`ExpectedUplink`.
    """
    if not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise InputError(f"days must be an integer {MIN_DAYS}..{MAX_DAYS}")
    if not isinstance(units, int) or not 1 <= units <= 99:
        raise InputError("units must be an integer 1..99")
    if not isinstance(gateways, int) or not 1 <= gateways <= 9:
        raise InputError("gateways must be an integer 1..9")
    if not isinstance(start, dt.date) or isinstance(start, dt.datetime) or not 2001 <= start.year <= 2090:
        raise InputError("start must be a date in 2001..2090")
    builder = _Builder(start, days, seed, units, gateways)
    builder.build_site()
    builder.run_consumption()
    rng = builder.rng

    uplinks: list[ExpectedUplink] = []
    transmissions: list[_Tx] = []
    stranger_txs: list[_Tx] = []
    for index in range(builder.first, builder.end + 1):
        for device in builder.devices:
            if device.first <= index <= device.last:
                frame, expected, sent_at = builder.telegram(device, index)
                radio = Radio.LORAWAN if device.kind is DeviceKind.PULSE_MODULE else Radio.WMBUS
                transmissions.append(_Tx(device, sent_at, frame, len(uplinks), radio))
                uplinks.append(expected)
        if rng.random() < 0.3:
            frame, _, sent_at = builder.telegram(builder.stranger, index)
            stranger_txs.append(_Tx(builder.stranger, sent_at, frame, -1, Radio.WMBUS))

    copies: list[_Copy] = []
    rejections: collections.Counter[str] = collections.Counter()
    duplicates = late = 0
    max_late = 0.0
    heat = next(tx.device for tx in transmissions if tx.device.kind is DeviceKind.HEAT_METER)

    def reception(tx: _Tx, gateway: str, at: float, payload: bytes) -> Reception:
        rssi = round(tx.device.rssi.get(gateway, -100.0) + rng.gauss(0, 3), 1)
        if tx.radio is Radio.LORAWAN:
            return Reception(
                gateway_id=gateway,
                received_at=at,
                payload=payload,
                radio=Radio.LORAWAN,
                rssi=rssi,
                snr=round(rng.uniform(-8.0, 9.0), 1),
                frequency=rng.choice((868.1, 868.3, 868.5)),
                mode="SF9BW125",
            )
        return Reception(
            gateway_id=gateway, received_at=at, payload=payload, rssi=rssi, mode=tx.device.radio_mode
        )

    def live_copy(tx: _Tx, gateway: str, payload: bytes, verdict: str) -> _Copy:
        at = round(tx.sent_at + rng.uniform(0.0, 0.8), 3)
        copy = _Copy(at + rng.uniform(0.05, 2.0), reception(tx, gateway, at, payload), ReceptionTruth(
            uplink=tx.uplink, verdict=verdict))  # fmt: skip
        copies.append(copy)
        return copy

    for tx in transmissions:
        heard = [g for g in tx.device.coverage if rng.random() < 0.85]
        if not any(g != builder.collector for g in heard):
            heard.append(next(g for g in tx.device.coverage if g != builder.collector))
        live_copies: list[_Copy] = []
        for gateway in heard:
            shape = builder.shape[gateway] if tx.radio is Radio.WMBUS else "none"
            payload = add_crcs(tx.frame, shape) if tx.radio is Radio.WMBUS else tx.frame
            if gateway != builder.collector:
                live_copies.append(live_copy(tx, gateway, payload, "copy"))
                continue
            at = round(tx.sent_at + rng.uniform(0.0, 0.8), 3)
            upload = math.ceil((at + _COLLECTOR_MIN_DELAY_S) / _COLLECTOR_UPLOAD_S) * _COLLECTOR_UPLOAD_S
            arrival = upload + rng.uniform(0.0, 60.0)
            max_late = max(max_late, arrival - at)
            copies.append(_Copy(arrival, reception(tx, gateway, at, payload), ReceptionTruth(
                uplink=tx.uplink, verdict="late")))  # fmt: skip
            late += 1
        duplicates += len(heard) - 1
        # A flipped bit in one live copy, when another live copy carries the uplink
        # (so that late collector copies always merge into an uplink opened before them).
        if tx.radio is Radio.WMBUS and len(live_copies) >= 2 and rng.random() < 0.02:
            # Any shape: the site declares that live gateways forward their CRCs, so a
            # format-B frame with a bad CRC is not taken for a CRC-free frame.
            victim = rng.choice(live_copies)
            original = victim.reception
            victim.reception = Reception(
                gateway_id=original.gateway_id,
                received_at=original.received_at,
                payload=_flip_bit(original.payload, rng),
                rssi=original.rssi,
                mode=original.mode,
            )
            victim.truth = ReceptionTruth(uplink=tx.uplink, verdict="bad_crc")
            rejections["bad_crc"] += 1
            duplicates -= 1
        if tx.radio is Radio.WMBUS and rng.random() < 0.01:
            live_copy(tx, UNKNOWN_GATEWAY, add_crcs(tx.frame, "A"), "unknown_gateway")
            rejections["unknown_gateway"] += 1

    for tx in stranger_txs:
        gateway = builder.live[0]
        live_copy(tx, gateway, add_crcs(tx.frame, builder.shape[gateway]), "unknown_device")
        rejections["unknown_device"] += 1

    # Replays: a recorded mode-7 frame of the heat meter sent again days later, counter and all.
    heat_txs = [tx for tx in transmissions if tx.device is heat]
    for fraction in (0.25, 0.5, 0.75):
        recorded = heat_txs[max(0, int(len(heat_txs) * fraction) - 3)]
        later = recorded.sent_at + 3 * 86400 + rng.uniform(600.0, 3000.0)
        gateway = builder.live[0]
        live_copy(_Tx(recorded.device, later, recorded.frame, -1, Radio.WMBUS), gateway,
                  add_crcs(recorded.frame, builder.shape[gateway]), "replay")  # fmt: skip
        rejections["replay"] += 1

    copies.sort(key=lambda c: c.arrival)
    truth = GroundTruth(
        uplinks=tuple(uplinks),
        receptions=tuple(c.truth for c in copies),
        rejections=rejections,
        duplicates=duplicates,
        late_copies=late,
        max_late_s=round(max_late, 3),
        monthly_consumption=_monthly(builder),
        due_date_values=_due_values(uplinks),
    )
    simulated = tuple(
        SimulatedDevice(
            uid=d.uid,
            kind=d.kind.value,
            radio=(Radio.LORAWAN if d.dev_addr else Radio.WMBUS).value,
            address=d.network_address,
            unit=d.unit,
            mode=d.mode,
            first_day=builder.origin + dt.timedelta(days=d.first),
            last_day=builder.origin + dt.timedelta(days=d.last),
        )
        for d in builder.devices
    )
    return Simulation(
        site=builder.site,
        keys=builder.keys,
        receptions=[c.reception for c in copies],
        gateways=builder.gateways,
        truth=truth,
        devices=simulated,
        start=start,
        days=days,
    )


_MONTHLY_QUANTITY: Final = {
    DeviceKind.HEAT_COST_ALLOCATOR: ("hca_units", 1.0),
    DeviceKind.COLD_WATER_METER: ("cold_water_m3", 0.001),
    DeviceKind.WARM_WATER_METER: ("warm_water_m3", 0.001),
    DeviceKind.HEAT_METER: ("heat_kwh", 1.0),
    DeviceKind.PULSE_MODULE: ("electricity_kwh", 0.001),
}


def _monthly(builder: _Builder) -> dict[str, dict[str, dict[str, float]]]:
    """Consumption per unit and month from the model's month-end registers (not from frames)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    last_day = builder.origin + dt.timedelta(days=builder.end)
    year, month = builder.start.year, builder.start.month
    while (year, month) < (last_day.year, last_day.month):
        end = dt.date(year, month, calendar.monthrange(year, month)[1])
        index_end = (end - builder.origin).days
        index_before = (dt.date(year, month, 1) - builder.origin).days - 1
        key = f"{year:04d}-{month:02d}"
        for device in builder.devices:
            if device.kind not in _MONTHLY_QUANTITY:
                continue
            owner = device.unit or BUILDING
            cell = out.setdefault(owner, {}).setdefault(key, {})
            quantity, scale = _MONTHLY_QUANTITY[device.kind]
            used = device.value_end(index_end) - device.value_end(index_before)
            cell[quantity] = round(cell.get(quantity, 0.0) + used * scale, 6)
            if device.rating is not None:
                rated = cell.get("hca_rated_units", 0.0) + used * device.rating.factor
                cell["hca_rated_units"] = round(rated, 6)
            if device.ends2:
                gas = device.ends2[index_end] - (
                    device.initial2 if index_before < 0 else device.ends2[index_before]
                )
                cell["gas_m3"] = round(cell.get("gas_m3", 0.0) + gas / 1000, 6)
        year, month = _add_months(year, month, 1)
    return out


_DUE_KEYS: Final = ("due_date_units", "due_date_energy_kwh", "due_date_volume_m3")


def _due_values(uplinks: list[ExpectedUplink]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for uplink in uplinks:
        if uplink.due_date is None:
            continue
        for key in _DUE_KEYS:
            if key in uplink.values:
                out.setdefault(uplink.device, {})[uplink.due_date] = float(uplink.values[key])
    return out
