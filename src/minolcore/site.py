"""The site registry: buildings, units, the devices installed in them over time, tenancies.

A reading belongs to the unit where its device was installed *at the time of the reading*:
a meter swap ends one installation and starts another, a device moved to another flat gets a
second installation. :meth:`SiteRegistry.assign` answers "whose reading is this?" with a dict
lookup by meter address followed by a binary search over that device's installations.

Times. Every instant is kept as an aware UTC datetime. Dates and naive datetimes (in the site
file and in the API) are local times of the site's time zone (``timezone``, default
``Europe/Berlin``), because that is the calendar installers and due dates use. An installation
covers the half-open span ``[start, end)``: an ``installed`` *date* starts at the beginning of
that day, a ``removed`` *date* is the last day in service and ends at the end of that day, so
the old meter of a swap still owns the readings it sends on the swap day. Give datetimes where
one device moves between units on a single day.

Site file (TOML; lists are arrays of tables, indices in error messages count from 0)::

    timezone = "Europe/Berlin"
    gateways = ["GW-1", "GW-2"]   # the gateways whose traffic is admitted (optional)
    gateway_crc = { "GW-2" = "present" }   # how a gateway hands over wM-Bus frames (optional):
                                           # "present" (with CRCs), "absent" or "auto" (default)

    [[buildings]]
    id = "B1"
    name = "Lindenstrasse 5"
    address = "Lindenstrasse 5, 10115 Berlin"      # optional
    billing = { due_date = "12-31", heating_consumption_percent = 70,
                hot_water_consumption_percent = 50, rest_by = "area" }   # optional

    [[units]]
    id = "B1-01"
    building = "B1"
    name = "ground floor left"
    area = 72.5              # m2
    heated_volume = 180.0    # m3, optional

    [[installations]]
    id = "B1-01-hca-1"       # optional, derived from address and start when missing
    unit = "B1-01"           # or building = "B1" for a building-level meter
    room = "living room"     # optional
    kind = "heat_cost_allocator"
    manufacturer = "ZRI"     # wireless M-Bus: manufacturer + meter_id [+ version, device_type]
    meter_id = "12345678"    #   or LoRaWAN: dev_eui = "70B3D57ED00000DC" or dev_addr = "26011BDA"
    installed = 2020-01-01
    removed = 2024-03-15     # optional
    kq = 1.25                # HCA rating factors: kq and kc, or one combined factor = ...
    kc = 0.95

    [[tenancies]]
    unit = "B1-01"
    tenant = "T-1001"
    start = 2021-05-01
    end = 2024-04-30         # optional, last day of the tenancy

A wrong file raises :class:`~minolcore.errors.ConfigError` whose ``where`` names the entry
(``units[3].area``), never ``KeyError`` or ``TypeError``. The registry is built once and then
read; reads from several threads are safe, mutations while others read are not.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeAlias, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from minolcore._model import Record
from minolcore.errors import ConfigError
from minolcore.wmbus.frame import CRC_MODE_NAMES, CRCModeName
from minolcore.wmbus.link import decode_manufacturer

__all__ = [
    "FIRST_DAY",
    "LAST_DAY",
    "Address",
    "Assignment",
    "BillingSettings",
    "Building",
    "DeviceKind",
    "Installation",
    "LoRaWANAddress",
    "RatingFactors",
    "RestBasis",
    "SiteRegistry",
    "Tenancy",
    "Unit",
    "WMBusAddress",
    "check_calendar_day",
]

DEFAULT_TIMEZONE: Final = "Europe/Berlin"
MIN_CONSUMPTION_PERCENT: Final = 50.0
MAX_CONSUMPTION_PERCENT: Final = 70.0
_UTC: Final = dt.UTC
_HEX: Final = frozenset("0123456789ABCDEF")
# The dates a site can name (installations, tenancies, report periods): far from the ends
# of datetime's range.
FIRST_DAY: Final = dt.date(1900, 1, 1)
LAST_DAY: Final = dt.date(9998, 12, 31)
# A year without 29 February: a due date must exist every year.
_COMMON_YEAR: Final = 2001

When: TypeAlias = dt.date | dt.datetime
"""A date (local day of the site) or a datetime (naive = local time of the site, or aware)."""


class DeviceKind(StrEnum):
    """What an installed device measures."""

    HEAT_COST_ALLOCATOR = "heat_cost_allocator"
    HEAT_METER = "heat_meter"
    COLD_WATER_METER = "cold_water_meter"
    WARM_WATER_METER = "warm_water_meter"
    WATER_METER = "water_meter"
    SMOKE_DETECTOR = "smoke_detector"
    PULSE_MODULE = "pulse_module"
    OTHER = "other"


class RestBasis(StrEnum):
    """What the costs not distributed by consumption are distributed by (HeizkostenV § 7, § 8)."""

    AREA = "area"
    HEATED_VOLUME = "heated_volume"


# --- value types -------------------------------------------------------------------------------


class WMBusAddress(Record):
    """A wireless M-Bus meter address: 3-letter manufacturer, 8-digit ID, optional version and type.

    Leave ``version``/``device_type`` as None to match any value in telegrams.
    """

    manufacturer: str
    id: str
    version: int | None = None
    device_type: int | None = None

    @classmethod
    def of(
        cls,
        manufacturer: str | int,
        meter_id: str,
        version: int | None = None,
        device_type: int | None = None,
    ) -> WMBusAddress:
        """A validated address; ``manufacturer`` as letters or as the 16-bit M-field value.

        Raises :class:`ConfigError` for a bad code, an ID that is not 8 hex digits, or a
        version/device type outside 0..255.
        """
        return _wmbus_address(manufacturer, meter_id, version, device_type, "address")

    def __str__(self) -> str:
        text = f"{self.manufacturer}-{self.id}"
        if self.version is not None:
            text += f" v{self.version}"
        if self.device_type is not None:
            text += f" t{self.device_type:02X}"
        return text


class LoRaWANAddress(Record):
    """A LoRaWAN device: its DevEUI (16 hex digits, OTAA) or its DevAddr (8 hex digits, ABP)."""

    dev_eui: str | None = None
    dev_addr: str | None = None

    @classmethod
    def of(cls, *, dev_eui: str | None = None, dev_addr: str | None = None) -> LoRaWANAddress:
        """A validated address with exactly one of ``dev_eui`` and ``dev_addr``."""
        return _lorawan_address(dev_eui, dev_addr, "address")

    def __str__(self) -> str:
        return f"DevEUI {self.dev_eui}" if self.dev_eui is not None else f"DevAddr {self.dev_addr}"


Address: TypeAlias = WMBusAddress | LoRaWANAddress


class BillingSettings(Record):
    """Billing settings of a building.

    ``due_month``/``due_day``: the due date (Stichtag) on which the billing year ends.
    ``*_consumption_percent``: share of the costs distributed by recorded consumption, 50-70 %
    (HeizkostenV § 7 heating, § 8 hot water); the rest is distributed by ``rest_by``.
    """

    due_month: int
    due_day: int
    heating_consumption_percent: float
    hot_water_consumption_percent: float
    rest_by: RestBasis = RestBasis.AREA

    def due_date(self, year: int) -> dt.date:
        """The due date in ``year``."""
        return dt.date(year, self.due_month, self.due_day)

    def period_days(self, year: int) -> tuple[dt.date, dt.date]:
        """First and last day (both inclusive) of the billing year that ends on the due date in ``year``."""
        return self.due_date(year - 1) + dt.timedelta(days=1), self.due_date(year)


class Building(Record):
    """A building: ``id``, display ``name``, optional postal ``address`` and billing settings."""

    id: str
    name: str
    address: str | None = None
    billing: BillingSettings | None = None


class Unit(Record):
    """An apartment or other billed unit: ``area_m2`` (m2), optional ``heated_volume_m3`` (m3)."""

    id: str
    building: str
    name: str
    area_m2: float
    heated_volume_m3: float | None = None


class RatingFactors(Record):
    """Rating factors of a heat cost allocator: KQ (radiator output) and KC (coupling), or one
    combined factor. Rated consumption = units x :attr:`factor` (dimensionless)."""

    kq: float | None = None
    kc: float | None = None
    combined: float | None = None

    @property
    def factor(self) -> float:
        """The combined factor KQ x KC (dimensionless)."""
        if self.combined is not None:
            return self.combined
        if self.kq is None or self.kc is None:
            raise ConfigError("rating factors need kq and kc, or one combined factor", "rating")
        return self.kq * self.kc


class Installation(Record):
    """One device in one place for one span of time ``[start, end)`` (aware UTC datetimes;
    ``end`` None while installed). ``unit`` is None for building-level meters."""

    id: str
    address: WMBusAddress | LoRaWANAddress
    kind: DeviceKind
    building: str
    unit: str | None
    room: str | None
    start: dt.datetime
    end: dt.datetime | None = None
    rating: RatingFactors | None = None

    def active_at(self, at: dt.datetime) -> bool:
        """Whether the device was installed here at ``at`` (an aware datetime)."""
        return self.start <= at and (self.end is None or at < self.end)

    def overlaps(self, start: dt.datetime, end: dt.datetime | None) -> bool:
        """Whether ``[start, end)`` (aware; ``end`` None = open) shares any instant with this installation."""
        return (end is None or self.start < end) and (self.end is None or start < self.end)


class Tenancy(Record):
    """A tenant's occupation of a unit from ``start`` to ``end`` (local days, both inclusive;
    ``end`` None while it lasts)."""

    unit: str
    tenant: str
    start: dt.date
    end: dt.date | None = None

    def covers(self, day: dt.date) -> bool:
        """Whether the tenancy includes local day ``day``."""
        return self.start <= day and (self.end is None or day <= self.end)


class Assignment(Record):
    """Where a reading belongs: the building, unit (None for building-level meters) and installation."""

    building: Building
    unit: Unit | None
    installation: Installation

    @property
    def room(self) -> str | None:
        """The room of the installation, if recorded."""
        return self.installation.room

    @property
    def rating_factor(self) -> float | None:
        """The combined HCA rating factor (dimensionless), None when none is recorded."""
        rating = self.installation.rating
        return None if rating is None else rating.factor


# --- field checks ------------------------------------------------------------------------------

_MISSING: Final = object()


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("must be a non-empty string", where)
    return value


def _opt_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _number(value: object, where: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"must be a number ({unit})", where)
    return float(value)


def _positive(value: object, where: str, unit: str) -> float:
    number = _number(value, where, unit)
    if number <= 0:
        raise ConfigError(f"must be a positive number ({unit})", where)
    return number


def _byte(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ConfigError("must be an integer 0..255", where)
    return value


def _manufacturer(value: object, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0x7FFF:
            raise ConfigError("an M-field value must be 0..0x7FFF", where)
        value = decode_manufacturer(value)
    if not isinstance(value, str):
        raise ConfigError('must be a three-letter manufacturer code such as "ZRI"', where)
    letters = value.strip().upper()
    if len(letters) != 3 or not all("A" <= ch <= "Z" for ch in letters):
        raise ConfigError(f"manufacturer code must be three letters A-Z, got {value!r}", where)
    return letters


def _hex_id(value: object, digits: int, what: str, where: str) -> str:
    if not isinstance(value, str):
        # A TOML integer would lose leading zeros, so insist on a string.
        raise ConfigError(f"{what} must be a string of {digits} hex digits (quote it)", where)
    compact = value.strip().replace("-", "").replace(":", "").upper()
    if len(compact) != digits or not set(compact) <= _HEX:
        raise ConfigError(f"{what} must be {digits} hex digits, got {value!r}", where)
    return compact


def _wmbus_address(
    manufacturer: object, meter_id: object, version: object, device_type: object, where: str
) -> WMBusAddress:
    return WMBusAddress(
        manufacturer=_manufacturer(manufacturer, f"{where}.manufacturer"),
        id=_hex_id(meter_id, 8, "a meter ID", f"{where}.meter_id"),
        version=_byte(version, f"{where}.version"),
        device_type=_byte(device_type, f"{where}.device_type"),
    )


def _lorawan_address(dev_eui: object, dev_addr: object, where: str) -> LoRaWANAddress:
    if (dev_eui is None) == (dev_addr is None):
        raise ConfigError("give exactly one of dev_eui and dev_addr", where)
    if dev_eui is not None:
        return LoRaWANAddress(dev_eui=_hex_id(dev_eui, 16, "a DevEUI", f"{where}.dev_eui"))
    return LoRaWANAddress(dev_addr=_hex_id(dev_addr, 8, "a DevAddr", f"{where}.dev_addr"))


def _check_address(address: object, where: str) -> Address:
    """Re-validate an address built directly (Records do not validate on construction)."""
    if isinstance(address, WMBusAddress):
        return _wmbus_address(address.manufacturer, address.id, address.version, address.device_type, where)
    if isinstance(address, LoRaWANAddress):
        return _lorawan_address(address.dev_eui, address.dev_addr, where)
    raise ConfigError("must be a WMBusAddress or LoRaWANAddress", where)


def _track_key(address: Address) -> tuple[str, str, str]:
    if isinstance(address, WMBusAddress):
        return ("wmbus", address.manufacturer, address.id)
    if address.dev_eui is not None:
        return ("eui", address.dev_eui, "")
    return ("addr", address.dev_addr or "", "")


def _compatible(a: Address, b: Address) -> bool:
    """Whether one telegram could match both address specs (same track key assumed): a field
    left None matches any value. Used both for overlap checks and to match a query."""
    if isinstance(a, WMBusAddress) and isinstance(b, WMBusAddress):
        return (a.version is None or b.version is None or a.version == b.version) and (
            a.device_type is None or b.device_type is None or a.device_type == b.device_type
        )
    return True


_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], value: object, where: str) -> _E:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    choices = ", ".join(member.value for member in kind)
    raise ConfigError(f"must be one of {choices}", where)


class _Table:
    """A TOML table read with field names checked, so typos are errors instead of silent defaults."""

    def __init__(self, data: object, where: str, fields: Iterable[str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError("must be a table", where)
        allowed = frozenset(fields)
        for key in data:
            if key not in allowed:
                raise ConfigError(
                    f"unknown field {key!r} (expected one of {', '.join(sorted(allowed))})", where
                )
        self.data: Mapping[str, object] = data
        self.where = where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}"

    def get(self, key: str) -> object:
        return self.data.get(key)

    def need(self, key: str) -> object:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            raise ConfigError("is missing", self.at(key))
        return value


def _table_list(data: Mapping[str, object], key: str) -> list[object]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError("must be an array of tables ([[" + key + "]])", key)
    return value


# --- the registry ------------------------------------------------------------------------------


class _Track:
    """The installations of one exact address spec, sorted by start, never overlapping."""

    __slots__ = ("address", "installations", "starts")

    def __init__(self, address: Address) -> None:
        self.address = address
        self.starts: list[dt.datetime] = []
        self.installations: list[Installation] = []

    def find(self, at: dt.datetime) -> Installation | None:
        index = bisect.bisect_right(self.starts, at) - 1
        if index < 0:
            return None
        found = self.installations[index]
        return found if found.end is None or at < found.end else None

    def insert(self, installation: Installation) -> None:
        index = bisect.bisect_right(self.starts, installation.start)
        self.starts.insert(index, installation.start)
        self.installations.insert(index, installation)

    def replace(self, old: Installation, new: Installation) -> None:
        index = self.installations.index(old)
        self.installations[index] = new


class SiteRegistry:
    """Buildings, units, installations over time and tenancies, with validated building and lookups."""

    def __init__(self, timezone: str = DEFAULT_TIMEZONE) -> None:
        """An empty registry whose dates and naive datetimes are local times of ``timezone`` (IANA name)."""
        self._tz_name = timezone
        self._tz = _zone(timezone, "timezone")
        self._buildings: dict[str, Building] = {}
        self._units: dict[str, Unit] = {}
        self._units_by_building: dict[str, list[str]] = {}
        self._installations: dict[str, Installation] = {}
        self._by_unit: dict[str, list[str]] = {}
        self._by_building: dict[str, list[str]] = {}
        self._tracks: dict[tuple[str, str, str], list[_Track]] = {}
        self._tenancies: dict[str, list[Tenancy]] = {}
        self._assignments: dict[str, Assignment] = {}
        self._gateways: list[str] = []
        self._revision = 0
        self._gateway_crc: dict[str, CRCModeName] = {}

    @property
    def timezone(self) -> str:
        """The IANA name of the site's time zone."""
        return self._tz_name

    def __repr__(self) -> str:
        return (
            f"SiteRegistry({len(self._buildings)} buildings, {len(self._units)} units, "
            f"{len(self._installations)} installations, "
            f"{sum(len(t) for t in self._tenancies.values())} tenancies)"
        )

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | Path) -> SiteRegistry:
        """Load and validate a site file (format in the module docstring)."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the site file: {exc.strerror}", str(path)) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("the site file is not UTF-8", str(path)) from None
        return cls.from_toml_text(text, source=str(path))

    @classmethod
    def from_toml_text(cls, text: str, source: str = "<site>") -> SiteRegistry:
        """Load and validate site TOML given as text; ``source`` names it in syntax errors."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", source) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SiteRegistry:
        """Build a registry from the parsed TOML structure (the same shape as the site file)."""
        top = _Table(
            data,
            "site",
            ("timezone", "gateways", "gateway_crc", "buildings", "units", "installations", "tenancies"),
        )
        timezone = top.get("timezone")
        registry = cls(DEFAULT_TIMEZONE if timezone is None else _text(timezone, "timezone"))
        gateways = top.get("gateways")
        if gateways is not None:
            if not isinstance(gateways, list):
                raise ConfigError("must be a list of gateway ids", "gateways")
            for index, gateway in enumerate(gateways):
                registry.add_gateway(_text(gateway, f"gateways[{index}]"))
        declared = top.get("gateway_crc")
        if declared is not None:
            if not isinstance(declared, Mapping):
                raise ConfigError("must be a table of gateway id = crc mode", "gateway_crc")
            for gateway, mode in declared.items():
                if gateway not in registry._gateways:
                    raise ConfigError(f"{gateway!r} is not in gateways", "gateway_crc")
                registry.add_gateway(gateway, crc=mode)
        for index, item in enumerate(_table_list(data, "buildings")):
            registry._load_building(item, f"buildings[{index}]")
        for index, item in enumerate(_table_list(data, "units")):
            registry._load_unit(item, f"units[{index}]")
        for index, item in enumerate(_table_list(data, "installations")):
            registry._load_installation(item, f"installations[{index}]")
        for index, item in enumerate(_table_list(data, "tenancies")):
            registry._load_tenancy(item, f"tenancies[{index}]")
        registry._check_heated_volumes()
        return registry

    def _load_building(self, item: object, where: str) -> None:
        table = _Table(item, where, ("id", "name", "address", "billing"))
        billing = table.get("billing")
        self._add_building(
            table.need("id"),
            table.need("name"),
            table.get("address"),
            None if billing is None else _load_billing(billing, table.at("billing")),
            where,
        )

    def _load_unit(self, item: object, where: str) -> None:
        table = _Table(item, where, ("id", "building", "name", "area", "heated_volume"))
        self._add_unit(
            table.need("id"),
            table.need("building"),
            table.need("name"),
            table.need("area"),
            table.get("heated_volume"),
            where,
            field_names=("area", "heated_volume"),
        )

    def _load_installation(self, item: object, where: str) -> None:
        table = _Table(
            item,
            where,
            (
                "id", "unit", "building", "room", "kind", "manufacturer", "meter_id", "version",
                "device_type", "dev_eui", "dev_addr", "installed", "removed", "kq", "kc", "factor",
            ),
        )  # fmt: skip
        wmbus = any(table.get(k) is not None for k in ("manufacturer", "meter_id", "version", "device_type"))
        lora = any(table.get(k) is not None for k in ("dev_eui", "dev_addr"))
        if wmbus and lora:
            raise ConfigError(
                "give either manufacturer/meter_id (wireless M-Bus) or dev_eui/dev_addr (LoRaWAN)", where
            )
        address: Address
        if lora:
            address = _lorawan_address(table.get("dev_eui"), table.get("dev_addr"), where)
        else:
            address = _wmbus_address(
                table.need("manufacturer"), table.need("meter_id"), table.get("version"),
                table.get("device_type"), where,
            )  # fmt: skip
        rating = None
        if any(table.get(k) is not None for k in ("kq", "kc", "factor")):
            rating = _rating(table.get("kq"), table.get("kc"), table.get("factor"), where)
        self._install(
            address,
            table.need("installed"),
            kind=table.need("kind"),
            unit=table.get("unit"),
            building=table.get("building"),
            room=table.get("room"),
            rating=rating,
            removed=table.get("removed"),
            installation_id=table.get("id"),
            where=where,
        )

    def _load_tenancy(self, item: object, where: str) -> None:
        table = _Table(item, where, ("unit", "tenant", "start", "end"))
        self._add_tenancy(
            table.need("unit"), table.need("tenant"), table.need("start"), table.get("end"), where
        )

    # --- building through the API ----------------------------------------------------------------

    def add_gateway(self, gateway_id: str, *, crc: CRCModeName | None = None) -> None:
        """Register a gateway (its id as the gateway reports it); a repeat changes only ``crc``.

        ``crc`` is how it hands over wireless M-Bus frames: ``"present"`` (as received, with
        their CRCs), ``"absent"`` (CRCs removed) or ``"auto"`` (detected per frame, the
        default); None keeps what was declared before."""
        if not isinstance(gateway_id, str) or not gateway_id.strip():
            raise ConfigError("a gateway id must be a non-empty string", "gateways")
        if crc is not None and crc not in CRC_MODE_NAMES:
            raise ConfigError(
                f"must be one of {', '.join(CRC_MODE_NAMES)}, got {crc!r}", f"gateway_crc.{gateway_id}"
            )
        if gateway_id not in self._gateways:
            self._gateways.append(gateway_id)
        if crc == "auto":
            self._gateway_crc.pop(gateway_id, None)
        elif crc is not None:
            self._gateway_crc[gateway_id] = crc

    @property
    def gateway_crc(self) -> dict[str, CRCModeName]:
        """The gateways declared ``"present"`` or ``"absent"`` and their mode (the others: ``"auto"``)."""
        return {
            gateway: self._gateway_crc[gateway] for gateway in self._gateways if gateway in self._gateway_crc
        }

    @property
    def gateways(self) -> tuple[str, ...]:
        """The registered gateway ids, in the order they were added."""
        return tuple(self._gateways)

    def add_building(
        self,
        building_id: str,
        name: str,
        *,
        address: str | None = None,
        billing: BillingSettings | None = None,
    ) -> Building:
        """Add a building; ``billing`` carries its due date and consumption shares (50-70 %)."""
        where = f"building {building_id!r}"
        if billing is not None:
            billing = _check_billing(billing, f"{where}.billing")
        return self._add_building(building_id, name, address, billing, where)

    def _add_building(
        self, building_id: object, name: object, address: object, billing: BillingSettings | None, where: str
    ) -> Building:
        key = _text(building_id, f"{where}.id")
        if key in self._buildings:
            raise ConfigError(f"duplicate building id {key!r}", f"{where}.id")
        building = Building(
            id=key,
            name=_text(name, f"{where}.name"),
            address=_opt_text(address, f"{where}.address"),
            billing=billing,
        )
        self._buildings[key] = building
        self._units_by_building[key] = []
        self._by_building[key] = []
        return building

    def add_unit(
        self, unit_id: str, building: str, name: str, area_m2: float, *, heated_volume_m3: float | None = None
    ) -> Unit:
        """Add a unit of ``building`` with its area (m2) and optional heated volume (m3)."""
        unit = self._add_unit(
            unit_id, building, name, area_m2, heated_volume_m3, f"unit {unit_id!r}",
            field_names=("area_m2", "heated_volume_m3"),
        )  # fmt: skip
        self._check_heated_volumes()
        return unit

    def _add_unit(
        self,
        unit_id: object,
        building: object,
        name: object,
        area: object,
        heated_volume: object,
        where: str,
        *,
        field_names: tuple[str, str],
    ) -> Unit:
        key = _text(unit_id, f"{where}.id")
        if key in self._units:
            raise ConfigError(f"duplicate unit id {key!r}", f"{where}.id")
        building_id = self._known_building(building, f"{where}.building")
        unit = Unit(
            id=key,
            building=building_id,
            name=_text(name, f"{where}.name"),
            area_m2=_positive(area, f"{where}.{field_names[0]}", "m2"),
            heated_volume_m3=(
                None if heated_volume is None else _positive(heated_volume, f"{where}.{field_names[1]}", "m3")
            ),
        )
        self._units[key] = unit
        self._units_by_building[building_id].append(key)
        self._by_unit[key] = []
        self._tenancies[key] = []
        return unit

    def install(
        self,
        address: Address,
        at: When,
        *,
        kind: DeviceKind | str,
        unit: str | None = None,
        building: str | None = None,
        room: str | None = None,
        rating: RatingFactors | None = None,
        installation_id: str | None = None,
    ) -> Installation:
        """Record that the device ``address`` was installed at ``at`` in ``unit`` (or, for a
        building-level meter, in ``building``). A date means the start of that local day.

        Raises :class:`ConfigError` when the device is already installed somewhere at an
        overlapping time, the unit or building is unknown, or the id is taken.
        """
        where = f"install({address})"
        return self._install(
            _check_address(address, f"{where}.address"),
            at,
            kind=kind,
            unit=unit,
            building=building,
            room=room,
            rating=None if rating is None else _check_rating(rating, f"{where}.rating"),
            removed=None,
            installation_id=installation_id,
            where=where,
        )

    def _install(
        self,
        address: Address,
        installed: object,
        *,
        kind: object,
        unit: object,
        building: object,
        room: object,
        rating: RatingFactors | None,
        removed: object,
        installation_id: object,
        where: str,
    ) -> Installation:
        device_kind = _enum(DeviceKind, kind, f"{where}.kind")
        if rating is not None and device_kind is not DeviceKind.HEAT_COST_ALLOCATOR:
            raise ConfigError("rating factors (kq, kc, factor) apply only to heat cost allocators", where)
        unit_id: str | None = None
        if unit is not None:
            unit_id = self._known_unit(unit, f"{where}.unit")
            building_id = self._units[unit_id].building
            if building is not None and building != building_id:
                raise ConfigError(
                    f"unit {unit_id!r} belongs to building {building_id!r}", f"{where}.building"
                )
        elif building is not None:
            building_id = self._known_building(building, f"{where}.building")
        else:
            raise ConfigError("needs a unit (or a building for a building-level meter)", where)
        start = self._instant(installed, f"{where}.installed", end=False)
        end = None if removed is None else self._instant(removed, f"{where}.removed", end=True)
        if end is not None and end <= start:
            raise ConfigError("removal before installation", f"{where}.removed")
        for track in self._tracks.get(_track_key(address), ()):
            if not _compatible(track.address, address):
                continue
            for other in track.installations:
                if other.overlaps(start, end):
                    raise ConfigError(
                        f"{address} overlaps installation {other.id!r} ({self._span_text(other)}); "
                        "a device can be installed in one place at a time",
                        where,
                    )
        if installation_id is None:
            key = f"{str(address).replace(' ', '-')}@{self._local_text(start)}"
        else:
            key = _text(installation_id, f"{where}.id")
        if key in self._installations:
            raise ConfigError(
                f"duplicate installation id {key!r}", f"{where}.id" if installation_id else where
            )
        installation = Installation(
            id=key,
            address=address,
            kind=device_kind,
            building=building_id,
            unit=unit_id,
            room=_opt_text(room, f"{where}.room"),
            start=start,
            end=end,
            rating=rating,
        )
        self._track_for(address).insert(installation)
        self._revision += 1
        self._installations[key] = installation
        self._by_building[building_id].append(key)
        if unit_id is not None:
            self._by_unit[unit_id].append(key)
        return installation

    def remove(self, device: Address | str, at: When) -> Installation:
        """End the current installation of ``device`` (an address, or an installation id) at ``at``.

        A date is the last local day in service. Returns the updated installation. Raises
        :class:`ConfigError` when nothing is installed or ``at`` is before the installation.
        """
        where = f"remove({device})"
        if isinstance(device, str):
            current = self._installations.get(device)
            if current is None:
                raise ConfigError(f"unknown installation id {device!r}", where)
            if current.end is not None:
                raise ConfigError(f"installation {device!r} was already removed", where)
        else:
            address = _check_address(device, f"{where}.address")
            open_ones = [
                i
                for track in self._tracks.get(_track_key(address), ())
                if _compatible(track.address, address)
                for i in track.installations
                if i.end is None
            ]
            if not open_ones:
                raise ConfigError(f"{address} is not installed", where)
            if len(open_ones) > 1:
                raise ConfigError(
                    f"{address} matches installations {open_ones[0].id!r} and {open_ones[1].id!r}; "
                    "give the version and device type, or the installation id",
                    where,
                )
            current = open_ones[0]
        end = self._instant(at, f"{where}.at", end=True)
        if end <= current.start:
            raise ConfigError(
                f"removal before installation (installed {self._local_text(current.start)})", f"{where}.at"
            )
        # Open installations are the latest of their track (no overlaps), so ending one
        # cannot collide with another: only the stored copies need replacing.
        updated = Installation(
            id=current.id, address=current.address, kind=current.kind, building=current.building,
            unit=current.unit, room=current.room, start=current.start, end=end, rating=current.rating,
        )  # fmt: skip
        self._track_for(current.address).replace(current, updated)
        self._revision += 1
        self._installations[current.id] = updated
        self._assignments.pop(current.id, None)
        return updated

    def add_tenancy(self, unit: str, tenant: str, start: dt.date, end: dt.date | None = None) -> Tenancy:
        """Record that ``tenant`` occupies ``unit`` from local day ``start`` to ``end``
        (both inclusive; None = open)."""
        return self._add_tenancy(unit, tenant, start, end, f"tenancy({unit!r}, {tenant!r})")

    def _add_tenancy(self, unit: object, tenant: object, start: object, end: object, where: str) -> Tenancy:
        unit_id = self._known_unit(unit, f"{where}.unit")
        first = _day(start, f"{where}.start")
        last = None if end is None else _day(end, f"{where}.end")
        if last is not None and last < first:
            raise ConfigError("the tenancy ends before it starts", f"{where}.end")
        tenancy = Tenancy(unit=unit_id, tenant=_text(tenant, f"{where}.tenant"), start=first, end=last)
        existing = self._tenancies[unit_id]
        for other in existing:
            if (other.end is None or first <= other.end) and (last is None or other.start <= last):
                raise ConfigError(
                    f"overlaps the tenancy of {other.tenant!r} from {other.start}; "
                    "one tenancy per unit at a time (co-tenants share one tenant id)",
                    where,
                )
        existing.append(tenancy)
        existing.sort(key=lambda t: t.start)
        return tenancy

    # --- lookups -------------------------------------------------------------------------------

    def assign(self, address: Address, at: dt.datetime) -> Assignment | None:
        """The building, unit and installation of the device ``address`` at time ``at``
        (naive = local site time), or None when it was not installed anywhere then.

        A query address with version/device type left None matches installations of any
        version/type; if that leaves several candidates, :class:`ConfigError` asks for them.
        """
        tracks = self._tracks.get(_track_key(address))
        if not tracks:
            return None
        when = self._query_instant(at)
        found: Installation | None = None
        for track in tracks:
            if not _compatible(track.address, address):
                continue
            candidate = track.find(when)
            if candidate is not None:
                if found is not None:
                    raise ConfigError(
                        f"{address} matches installations {found.id!r} and {candidate.id!r}; "
                        "give the version and device type",
                        "assign",
                    )
                found = candidate
        if found is None:
            return None
        cached = self._assignments.get(found.id)
        if cached is None or cached.installation is not found:
            cached = Assignment(
                building=self._buildings[found.building],
                unit=None if found.unit is None else self._units[found.unit],
                installation=found,
            )
            self._assignments[found.id] = cached
        return cached

    @property
    def revision(self) -> int:
        """A number that changes whenever an installation is added or ends (for caches)."""
        return self._revision

    def assign_span(self, address: Address, at: dt.datetime) -> tuple[float, float]:
        """The Unix times in s [start, end) around ``at`` over which :meth:`assign` of
        ``address`` gives the same answer as at ``at`` (infinite where unbounded), while
        :attr:`revision` stays the same."""
        when = self._query_instant(at)
        start, end = -math.inf, math.inf
        for track in self._tracks.get(_track_key(address), ()):
            if not _compatible(track.address, address):
                continue
            index = bisect.bisect_right(track.starts, when) - 1
            if index >= 0:
                found = track.installations[index]
                start = max(start, found.start.timestamp())
                if found.end is not None:
                    if when < found.end:
                        end = min(end, found.end.timestamp())
                    else:
                        start = max(start, found.end.timestamp())
            if index + 1 < len(track.starts):
                end = min(end, track.starts[index + 1].timestamp())
        return start, end

    def building(self, building_id: str) -> Building:
        """The building ``building_id``; :class:`ConfigError` if unknown."""
        return self._buildings[self._known_building(building_id, "building")]

    def unit(self, unit_id: str) -> Unit:
        """The unit ``unit_id``; :class:`ConfigError` if unknown."""
        return self._units[self._known_unit(unit_id, "unit")]

    def buildings(self) -> list[Building]:
        """All buildings in the order they were added."""
        return list(self._buildings.values())

    def units(self, building: str | None = None) -> list[Unit]:
        """The units of ``building`` (all units when None) in the order they were added."""
        if building is None:
            return list(self._units.values())
        return [self._units[u] for u in self._units_by_building[self._known_building(building, "building")]]

    def installations(
        self,
        *,
        building: str | None = None,
        unit: str | None = None,
        address: Address | None = None,
        active_at: dt.datetime | None = None,
    ) -> list[Installation]:
        """Installations filtered by building, unit, exact address and time, sorted by start."""
        if unit is not None:
            chosen: Iterable[Installation] = (
                self._installations[i] for i in self._by_unit[self._known_unit(unit, "unit")]
            )
        elif building is not None:
            chosen = (
                self._installations[i] for i in self._by_building[self._known_building(building, "building")]
            )
        else:
            chosen = self._installations.values()
        result = [i for i in chosen if building is None or i.building == building]
        if address is not None:
            result = [i for i in result if i.address == address]
        if active_at is not None:
            when = self._query_instant(active_at)
            result = [i for i in result if i.active_at(when)]
        return sorted(result, key=lambda i: (i.start, i.id))

    def devices_in_unit(self, unit: str, period: tuple[When, When]) -> list[Installation]:
        """Installations in ``unit`` during any part of ``period`` = (first, last): dates are
        local days (both inclusive), datetimes are instants (last exclusive). Sorted by start."""
        unit_id = self._known_unit(unit, "unit")
        first = self._instant(period[0], "period[0]", end=False)
        last = self._instant(period[1], "period[1]", end=True)
        if last < first:
            raise ConfigError("the period ends before it starts", "period")
        found = [self._installations[i] for i in self._by_unit[unit_id]]
        return sorted((i for i in found if i.overlaps(first, last)), key=lambda i: (i.start, i.id))

    def billing_period(self, building: str, year: int) -> tuple[dt.datetime, dt.datetime]:
        """The billing year of ``building`` ending on its due date in ``year`` as aware instants
        ``[start, end)``: from the day after the previous due date to the end of the due date."""
        settings = self.building(building).billing
        if settings is None:
            raise ConfigError("has no billing settings", f"building {building!r}")
        first, last = settings.period_days(year)
        return self._instant(first, "period", end=False), self._instant(last, "period", end=True)

    def tenancies(self, unit: str) -> list[Tenancy]:
        """The tenancies of ``unit`` sorted by start."""
        return list(self._tenancies[self._known_unit(unit, "unit")])

    def tenancy_at(self, unit: str, day: dt.date) -> Tenancy | None:
        """The tenancy of ``unit`` that includes local day ``day``, or None (vacant or unknown)."""
        for tenancy in self._tenancies[self._known_unit(unit, "unit")]:
            if tenancy.covers(day):
                return tenancy
        return None

    def units_of_tenant(self, tenant: str, day: dt.date) -> list[Unit]:
        """The units ``tenant`` occupies on local day ``day``."""
        return [
            self._units[unit_id]
            for unit_id, items in self._tenancies.items()
            if any(t.tenant == tenant and t.covers(day) for t in items)
        ]

    # --- export --------------------------------------------------------------------------------

    def to_toml(self) -> str:
        """The registry as a site file that :meth:`from_toml_text` reads back to the same registry."""
        lines = [f"timezone = {_toml_str(self._tz_name)}"]
        if self._gateways:
            lines.append(f"gateways = [{', '.join(_toml_str(g) for g in self._gateways)}]")
        if self._gateway_crc:
            modes = ", ".join(f"{_toml_str(g)} = {_toml_str(m)}" for g, m in self.gateway_crc.items())
            lines.append(f"gateway_crc = {{ {modes} }}")
        for b in self._buildings.values():
            lines += ["", "[[buildings]]", f"id = {_toml_str(b.id)}", f"name = {_toml_str(b.name)}"]
            if b.address is not None:
                lines.append(f"address = {_toml_str(b.address)}")
            if b.billing is not None:
                s = b.billing
                lines.append(
                    f'billing = {{ due_date = "{s.due_month:02d}-{s.due_day:02d}", '
                    f"heating_consumption_percent = {s.heating_consumption_percent!r}, "
                    f"hot_water_consumption_percent = {s.hot_water_consumption_percent!r}, "
                    f"rest_by = {_toml_str(s.rest_by.value)} }}"
                )
        for u in self._units.values():
            lines += [
                "", "[[units]]", f"id = {_toml_str(u.id)}", f"building = {_toml_str(u.building)}",
                f"name = {_toml_str(u.name)}", f"area = {u.area_m2!r}",
            ]  # fmt: skip
            if u.heated_volume_m3 is not None:
                lines.append(f"heated_volume = {u.heated_volume_m3!r}")
        for i in sorted(self._installations.values(), key=lambda i: (i.start, i.id)):
            lines += ["", "[[installations]]", f"id = {_toml_str(i.id)}"]
            if i.unit is not None:
                lines.append(f"unit = {_toml_str(i.unit)}")
            else:
                lines.append(f"building = {_toml_str(i.building)}")
            if i.room is not None:
                lines.append(f"room = {_toml_str(i.room)}")
            lines.append(f"kind = {_toml_str(i.kind.value)}")
            a = i.address
            if isinstance(a, WMBusAddress):
                lines += [f"manufacturer = {_toml_str(a.manufacturer)}", f"meter_id = {_toml_str(a.id)}"]
                if a.version is not None:
                    lines.append(f"version = {a.version}")
                if a.device_type is not None:
                    lines.append(f"device_type = {a.device_type}")
            elif a.dev_eui is not None:
                lines.append(f"dev_eui = {_toml_str(a.dev_eui)}")
            else:
                lines.append(f"dev_addr = {_toml_str(a.dev_addr or '')}")
            lines.append(f"installed = {self._toml_when(i.start, end=False)}")
            if i.end is not None:
                lines.append(f"removed = {self._toml_when(i.end, end=True)}")
            if i.rating is not None:
                for name, value in (("kq", i.rating.kq), ("kc", i.rating.kc), ("factor", i.rating.combined)):
                    if value is not None:
                        lines.append(f"{name} = {value!r}")
        for unit_id, items in self._tenancies.items():
            for t in items:
                lines += [
                    "", "[[tenancies]]", f"unit = {_toml_str(unit_id)}", f"tenant = {_toml_str(t.tenant)}",
                    f"start = {t.start.isoformat()}",
                ]  # fmt: skip
                if t.end is not None:
                    lines.append(f"end = {t.end.isoformat()}")
        return "\n".join(lines) + "\n"

    # --- helpers -------------------------------------------------------------------------------

    def _known_building(self, value: object, where: str) -> str:
        key = _text(value, where)
        if key not in self._buildings:
            raise ConfigError(f"unknown building {key!r}", where)
        return key

    def _known_unit(self, value: object, where: str) -> str:
        key = _text(value, where)
        if key not in self._units:
            raise ConfigError(f"unknown unit {key!r}", where)
        return key

    def _track_for(self, address: Address) -> _Track:
        tracks = self._tracks.setdefault(_track_key(address), [])
        for track in tracks:
            if track.address == address:
                return track
        track = _Track(address)
        tracks.append(track)
        return track

    def _instant(self, value: object, where: str, *, end: bool) -> dt.datetime:
        """An aware UTC instant from a date (start of the local day, or the end of it when
        ``end``), a naive local datetime, an aware datetime, or an ISO 8601 string of these."""
        if isinstance(value, str):
            value = _parse_iso(value, where)
        if not isinstance(value, dt.date):
            raise ConfigError("must be a date (2024-03-15) or a date-time (2024-03-15T08:30:00)", where)
        # Time zones and the day after an end date need room on both sides of a date.
        check_calendar_day(value.date() if isinstance(value, dt.datetime) else value, where)
        if isinstance(value, dt.datetime):
            local = value if value.tzinfo is not None else value.replace(tzinfo=self._tz)
            return local.astimezone(_UTC)
        day = value + dt.timedelta(days=1) if end else value
        return dt.datetime.combine(day, dt.time(0), self._tz).astimezone(_UTC)

    def _query_instant(self, at: object) -> dt.datetime:
        if isinstance(at, dt.datetime):
            # Aware datetimes compare correctly across zones, so only naive ones need a zone.
            return at if at.tzinfo is not None else at.replace(tzinfo=self._tz)
        raise ConfigError("a reading time must be a datetime", "at")

    def _local_text(self, instant: dt.datetime) -> str:
        local = instant.astimezone(self._tz)
        if local.time() == dt.time(0):
            return local.date().isoformat()
        return local.replace(tzinfo=None).isoformat()

    def _span_text(self, installation: Installation) -> str:
        start = self._local_text(installation.start)
        if installation.end is None:
            return f"from {start}, still installed"
        return f"{start} to before {self._local_text(installation.end)}"

    def _toml_when(self, instant: dt.datetime, *, end: bool) -> str:
        local = instant.astimezone(self._tz)
        if local.time() == dt.time(0):
            # Local midnights are written as dates so the file reads as installers wrote it;
            # an end at midnight is the last day in service, the day before.
            day = local.date() - dt.timedelta(days=1) if end else local.date()
            if self._instant(day, "", end=end) == instant:
                return day.isoformat()
        return instant.isoformat().replace("+00:00", "Z")

    def _check_heated_volumes(self) -> None:
        for building in self._buildings.values():
            if building.billing is None or building.billing.rest_by is not RestBasis.HEATED_VOLUME:
                continue
            for unit_id in self._units_by_building[building.id]:
                if self._units[unit_id].heated_volume_m3 is None:
                    raise ConfigError(
                        f"building {building.id!r} distributes by heated volume, "
                        "so every unit needs one (m3)",
                        f"unit {unit_id!r}.heated_volume",
                    )


def _zone(name: str, where: str) -> dt.tzinfo:
    if name == "UTC":
        return _UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a directory of the zone database ("Europe") or too long a path.
        raise ConfigError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)", where) from None


def _parse_iso(text: str, where: str) -> dt.date | dt.datetime:
    try:
        if len(text.strip()) == 10:
            return dt.date.fromisoformat(text.strip())
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"not a valid date or date-time: {text!r}", where) from None


def check_calendar_day(day: dt.date, where: str) -> None:
    """:class:`ConfigError` unless ``day`` lies from :data:`FIRST_DAY` to :data:`LAST_DAY`."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ConfigError(f"must lie between {FIRST_DAY} and {LAST_DAY}", where)


def _day(value: object, where: str) -> dt.date:
    if isinstance(value, str):
        value = _parse_iso(value, where)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        check_calendar_day(value, where)
        return value
    raise ConfigError("must be a date such as 2024-03-15", where)


def _load_billing(data: object, where: str) -> BillingSettings:
    table = _Table(
        data, where, ("due_date", "heating_consumption_percent", "hot_water_consumption_percent", "rest_by")
    )
    raw_due = table.need("due_date")
    due = raw_due.strip() if isinstance(raw_due, str) else ""
    if len(due) != 5 or due[2] != "-":
        raise ConfigError('must be "MM-DD", e.g. "12-31"', table.at("due_date"))
    try:
        month, day = int(due[:2]), int(due[3:])
    except ValueError:
        raise ConfigError('must be "MM-DD", e.g. "12-31"', table.at("due_date")) from None
    heating = table.need("heating_consumption_percent")
    hot_water = table.get("hot_water_consumption_percent")
    rest_by = table.get("rest_by")
    return _billing(
        month,
        day,
        heating,
        heating if hot_water is None else hot_water,
        RestBasis.AREA if rest_by is None else rest_by,
        where,
        due_field="due_date",
    )


def _check_billing(billing: object, where: str) -> BillingSettings:
    if not isinstance(billing, BillingSettings):
        raise ConfigError("must be BillingSettings", where)
    return _billing(
        billing.due_month, billing.due_day, billing.heating_consumption_percent,
        billing.hot_water_consumption_percent, billing.rest_by, where, due_field="due_month",
    )  # fmt: skip


def _billing(
    month: object,
    day: object,
    heating: object,
    hot_water: object,
    rest_by: object,
    where: str,
    *,
    due_field: str,
) -> BillingSettings:
    if (
        isinstance(month, bool)
        or not isinstance(month, int)
        or isinstance(day, bool)
        or not isinstance(day, int)
    ):
        raise ConfigError("the due date needs an integer month and day", f"{where}.{due_field}")
    try:
        dt.date(_COMMON_YEAR, month, day)
    except ValueError:
        raise ConfigError(
            f"{month:02d}-{day:02d} is not a day of every year", f"{where}.{due_field}"
        ) from None
    shares = []
    for name, value in (
        ("heating_consumption_percent", heating),
        ("hot_water_consumption_percent", hot_water),
    ):
        percent = _number(value, f"{where}.{name}", "%")
        if not MIN_CONSUMPTION_PERCENT <= percent <= MAX_CONSUMPTION_PERCENT:
            raise ConfigError("must be between 50 and 70 % (HeizkostenV § 7, § 8)", f"{where}.{name}")
        shares.append(percent)
    return BillingSettings(
        due_month=month,
        due_day=day,
        heating_consumption_percent=shares[0],
        hot_water_consumption_percent=shares[1],
        rest_by=_enum(RestBasis, rest_by, f"{where}.rest_by"),
    )


def _rating(kq: object, kc: object, combined: object, where: str) -> RatingFactors:
    if combined is not None:
        if kq is not None or kc is not None:
            raise ConfigError("give kq and kc, or one combined factor, not both", where)
        return RatingFactors(combined=_positive(combined, f"{where}.factor", "dimensionless"))
    if kq is None or kc is None:
        raise ConfigError("give both kq and kc (or one combined factor)", where)
    return RatingFactors(
        kq=_positive(kq, f"{where}.kq", "dimensionless"), kc=_positive(kc, f"{where}.kc", "dimensionless")
    )


def _check_rating(rating: object, where: str) -> RatingFactors:
    if not isinstance(rating, RatingFactors):
        raise ConfigError("must be RatingFactors", where)
    return _rating(rating.kq, rating.kc, rating.combined, where)


def _toml_str(text: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
