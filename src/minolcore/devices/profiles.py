"""Device profiles: how the decoded records of a telegram map onto a device model.

A :class:`DeviceProfile` turns a device identity, its data records and the TPL status
byte into one of the models of :mod:`minolcore.devices.models`. A
:class:`ProfileRegistry` picks the profile by device type (and manufacturer where a
manufacturer's bits matter); an unknown device becomes a
:class:`~minolcore.devices.models.GenericDevice` that keeps all its records.

Mapping rules (EN 13757-3 conventions), shared by the built-in profiles:

- Only records of the main unit (subunit 0, tariff 0), function "instantaneous", without
  a modifier that changes their meaning (backward flow, limits, durations, future values,
  manufacturer VIFEs, ...) count as the device's values; the first such record wins.
- Storage 0 is the current value. The due date (Stichtag) is storage 1 when the telegram
  has storage 1; otherwise the lowest storage number that carries a date record (some
  water meters put the due date at storage 8). Its date is the date record of that
  storage, its value the record of the model's quantity there (``None`` when invalid).
- Every other storage number above 0 holding the model's quantity is a history value,
  dated by the date record of the same storage when there is one (else ``None``); the
  series of a compact profile (``DataRecord.series``) follows as further history values.
- Units are converted into the model's unit (Wh, J, cal -> kWh; W, J/h -> kW; ft3, US gal
  -> m3; m3/min, m3/s, gal/min, gal/h -> m3/h; degF -> degC). A record in a unit without a
  conversion is not used; nothing is estimated.
- Status comes from the standard: TPL STS bits (application status, power low,
  permanent and temporary error) and the raw 0xFD 0x17 error flags. Manufacturer bits are
  read only by the profiles named after their manufacturer ("zri.water",
  "eie.smoke_detector"), and the conditions they add carry that prefix.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, Protocol, runtime_checkable

from minolcore.devices.models import (
    DeviceIdentity,
    DeviceReading,
    DeviceStatus,
    GenericDevice,
    HeatCostAllocator,
    HeatMeter,
    HistoryValue,
    PulseChannel,
    PulseCounter,
    ReadingTimeSource,
    SmokeDetector,
    WaterMedium,
    WaterMeter,
    WaterStatus,
)
from minolcore.errors import ConfigError, DecodeError, InputError
from minolcore.readings import reading_stamp
from minolcore.wmbus.link import device_type_name
from minolcore.wmbus.records import DataRecord
from minolcore.wmbus.telegram import Telegram

__all__ = [
    "FAILED_SECURITY",
    "DeviceError",
    "DeviceProfile",
    "EiSmokeDetectorProfile",
    "GenericProfile",
    "HeatCostAllocatorProfile",
    "HeatMeterProfile",
    "ProfileBase",
    "ProfileRegistry",
    "PulseCounterProfile",
    "SmokeDetectorProfile",
    "WaterMeterProfile",
    "ZennerWaterProfile",
    "default_registry",
    "identity_of",
    "model_from_records",
    "normalise_received_at",
    "pulse_channels",
    "standard_status",
    "to_model",
]

FAILED_SECURITY: Final = frozenset(("no_key", "wrong_key", "mac_mismatch", "unsupported"))
"""Security statuses whose telegram never yields a reading."""

HCA_TYPES: Final = (0x08,)
HEAT_TYPES: Final = (0x04, 0x0C, 0x0D)
WATER_TYPES: Final = (0x06, 0x07, 0x15, 0x16)
SMOKE_TYPES: Final = (0x1A,)
PULSE_TYPES: Final = (0x00, 0x01, 0x02, 0x03)

_WATER_MEDIUM: Final[dict[int, WaterMedium]] = {
    0x06: "warm_water",
    0x15: "warm_water",
    0x16: "cold_water",
    0x07: "water",
}
# Device types that name the medium a pulse input counts.
_PULSE_MEDIUM: Final = {
    0x01: "oil",
    0x02: "electricity",
    0x03: "gas",
    0x06: "water",
    0x07: "water",
    0x15: "water",
    0x16: "water",
}

# Modifiers that leave a record's meaning as "the value of this quantity".
_NEUTRAL_MODIFIERS: Final = frozenset(
    ("standard_conform_data_content", "forward_flow", "value_at_base_conditions")
)
_PULSE_WEIGHT_MODIFIERS: Final = frozenset(("increment_per_input_pulse_0", "increment_per_input_pulse_1"))

# (multiplier, divisor) into the target unit; divide last to keep decimal values exact.
_CONVERSIONS: Final[dict[str, dict[str, tuple[float, float]]]] = {
    "kWh": {"Wh": (1, 1000), "J": (1, 3_600_000), "cal": (4.1868, 3_600_000)},
    "kW": {"W": (1, 1000), "J/h": (1, 3_600_000)},
    "m3": {"m3": (1, 1), "ft3": (0.028316846592, 1), "gal": (0.003785411784, 1)},
    "m3/h": {
        "m3/h": (1, 1),
        "m3/min": (60, 1),
        "m3/s": (3600, 1),
        "gal/min": (0.003785411784 * 60, 1),
        "gal/h": (0.003785411784, 1),
    },
    "degC": {"degC": (1, 1)},
    "kg": {"kg": (1, 1)},
    "HCA": {"HCA": (1, 1)},
    "V": {"V": (1, 1)},
    "min": {"s": (1, 60), "min": (1, 1), "h": (60, 1), "d": (1440, 1)},
}
# What a pulse input's value is converted into, by quantity.
_CUMULATIVE: Final = {"volume": "m3", "energy": "kWh", "mass": "kg"}
_APPLICATION_STATUS: Final = ("ok", "busy", "error", "alarm")


class DeviceError(DecodeError):
    """A telegram that cannot become a device reading (no address, failed security)."""


# --- the profile protocol and the registry -------------------------------------------------------


@runtime_checkable
class DeviceProfile(Protocol):
    """Maps records onto a device model.

    ``name`` identifies the profile in every reading it builds (``reading.profile``);
    ``accepts`` says whether the profile applies to these records (a registry tries the
    next candidate when it does not); ``build`` makes the reading. ``sts`` is the TPL
    status byte (``None`` without a TPL header); ``received_at`` the reception time as
    an ISO string (see :func:`normalise_received_at`).
    """

    @property
    def name(self) -> str:
        """The profile's name, e.g. "oms.water_meter" or "zri.water"."""
        ...

    def accepts(self, identity: DeviceIdentity, records: Sequence[DataRecord]) -> bool:
        """True when this profile can map these records."""
        ...

    def build(
        self,
        identity: DeviceIdentity,
        records: Sequence[DataRecord],
        *,
        sts: int | None,
        received_at: str,
    ) -> DeviceReading:
        """The device reading of these records."""
        ...


class ProfileRegistry:
    """Chooses the profile of a device by device type and manufacturer.

    Lookup order: profiles registered by the user for (device type, manufacturer), then
    for the device type with any manufacturer (most recent registration first), then the
    built-in profiles in the same order, then :class:`GenericProfile`. The first
    candidate whose ``accepts`` is true builds the reading. ``builtins=False`` starts
    with no built-in profiles (every device is generic until profiles are registered).
    """

    def __init__(self, *, builtins: bool = True) -> None:
        self._user: dict[tuple[int, str | None], list[DeviceProfile]] = {}
        self._builtin: dict[tuple[int, str | None], list[DeviceProfile]] = {}
        self._fallback: DeviceProfile = GenericProfile()
        if builtins:
            self._install_builtins()

    def register(
        self,
        profile: DeviceProfile,
        *,
        device_type: int | Iterable[int],
        manufacturer: str | None = None,
    ) -> None:
        """Register ``profile`` for one device type byte (0-255) or several, optionally
        only for one 3-letter manufacturer code. It takes precedence over every built-in
        profile and over earlier registrations for the same key. Raises
        :class:`~minolcore.errors.ConfigError` for a malformed argument."""
        self._add(self._user, profile, device_type, manufacturer)

    def _add(
        self,
        table: dict[tuple[int, str | None], list[DeviceProfile]],
        profile: DeviceProfile,
        device_type: int | Iterable[int],
        manufacturer: str | None,
    ) -> None:
        if not isinstance(profile, DeviceProfile):
            raise ConfigError("a profile needs name, accepts() and build()", where=repr(profile))
        try:
            types = (device_type,) if isinstance(device_type, int) else tuple(device_type)
        except TypeError:
            raise ConfigError(
                f"device type must be a byte or bytes, got {device_type!r}", where=profile.name
            ) from None
        for value in types:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise ConfigError(f"device type must be a byte (0-255), got {value!r}", where=profile.name)
        if not types:
            raise ConfigError("no device type given", where=profile.name)
        maker = _manufacturer_key(manufacturer, profile.name)
        for value in types:
            table.setdefault((value, maker), []).insert(0, profile)

    def _install_builtins(self) -> None:
        table = self._builtin
        self._add(table, HeatCostAllocatorProfile(), HCA_TYPES, None)
        self._add(table, HeatMeterProfile(), HEAT_TYPES, None)
        self._add(table, WaterMeterProfile(), WATER_TYPES, None)
        self._add(table, ZennerWaterProfile(), WATER_TYPES, "ZRI")
        self._add(table, SmokeDetectorProfile(), SMOKE_TYPES, None)
        self._add(table, EiSmokeDetectorProfile(), SMOKE_TYPES, "EIE")
        self._add(table, PulseCounterProfile(), PULSE_TYPES, None)

    def candidates(self, identity: DeviceIdentity) -> list[DeviceProfile]:
        """The profiles tried for ``identity``, in order (the generic fallback last)."""
        out: list[DeviceProfile] = []
        maker = identity.manufacturer.upper()
        for table in (self._user, self._builtin):
            out += table.get((identity.device_type, maker), [])
            out += table.get((identity.device_type, None), [])
        out.append(self._fallback)
        return out

    def profile_for(self, identity: DeviceIdentity, records: Sequence[DataRecord]) -> DeviceProfile:
        """The first candidate profile that accepts these records."""
        for profile in self.candidates(identity):
            if profile.accepts(identity, records):
                return profile
        return self._fallback

    def model_from_records(
        self,
        identity: DeviceIdentity,
        records: Sequence[DataRecord],
        sts: int | None,
        received_at: datetime | str,
    ) -> DeviceReading:
        """The device reading of ``records`` (values in each model field's unit).
        ``sts``: the TPL status byte or ``None``; ``received_at``: reception time."""
        when = normalise_received_at(received_at)
        if sts is not None and (isinstance(sts, bool) or not isinstance(sts, int) or not 0 <= sts <= 0xFF):
            raise InputError(f"sts must be a byte (0-255) or None, got {sts!r}")
        rows = tuple(records)
        for rec in rows:
            if not isinstance(rec, DataRecord):
                raise InputError(f"records must be DataRecord values, got {type(rec).__name__}")
        return self.profile_for(identity, rows).build(identity, rows, sts=sts, received_at=when)

    def to_model(self, telegram: Telegram, *, received_at: datetime | str) -> DeviceReading:
        """The device reading of a decoded telegram. Raises :class:`DeviceError` when the
        telegram has no address or its security check failed (it then carries no values)."""
        return self.model_from_records(
            identity_of(telegram), telegram.records, telegram.tpl_status, received_at
        )


def _manufacturer_key(manufacturer: str | None, where: str) -> str | None:
    if manufacturer is None:
        return None
    if not isinstance(manufacturer, str) or len(manufacturer) != 3 or not manufacturer.isalpha():
        raise ConfigError(f"manufacturer must be a 3-letter code, got {manufacturer!r}", where=where)
    return manufacturer.upper()


@functools.cache
def default_registry() -> ProfileRegistry:
    """The shared registry with the built-in profiles, used when no registry is given.
    Registering on it changes the mapping for every caller in the process; a separate
    ``ProfileRegistry()`` keeps custom profiles local."""
    return ProfileRegistry()


def identity_of(telegram: Telegram) -> DeviceIdentity:
    """The real meter's identity of a telegram (the long TPL header's address behind a
    radio converter, else the link layer's). Raises :class:`DeviceError` when the
    telegram has no address or failed its security check."""
    link = telegram.link
    if link is None:
        raise DeviceError("telegram has no address (it did not decode)")
    if telegram.security is not None and telegram.security.status in FAILED_SECURITY:
        raise DeviceError(f"telegram of meter {link.meter_id} failed security ({telegram.security.status})")
    address = link.meter if link.meter is not None else link
    return DeviceIdentity(
        manufacturer=address.manufacturer,
        id=address.id,
        version=address.version,
        device_type=address.device_type,
    )


def to_model(
    telegram: Telegram, *, received_at: datetime | str, registry: ProfileRegistry | None = None
) -> DeviceReading:
    """The device reading of a decoded telegram (see :meth:`ProfileRegistry.to_model`);
    ``received_at`` is the reception time (datetime or ISO string)."""
    return (registry or default_registry()).to_model(telegram, received_at=received_at)


def model_from_records(
    identity: DeviceIdentity,
    records: Sequence[DataRecord],
    sts: int | None,
    received_at: datetime | str,
    *,
    registry: ProfileRegistry | None = None,
) -> DeviceReading:
    """The device reading of decoded records (see :meth:`ProfileRegistry.model_from_records`)."""
    return (registry or default_registry()).model_from_records(identity, records, sts, received_at)


def normalise_received_at(received_at: datetime | str) -> str:
    """The reception time as an ISO 8601 string: a datetime as ``isoformat()``, a string
    parsed and written back the same way (so "2024-01-01T00:00:00Z" becomes
    "2024-01-01T00:00:00+00:00"). Raises :class:`~minolcore.errors.InputError` otherwise."""
    if isinstance(received_at, datetime):
        return received_at.isoformat()
    if isinstance(received_at, str):
        try:
            return datetime.fromisoformat(received_at).isoformat()
        except ValueError:
            raise InputError(f"received_at is not an ISO 8601 time: {received_at!r}") from None
    raise InputError(f"received_at must be a datetime or an ISO string, not {type(received_at).__name__}")


# --- record helpers ------------------------------------------------------------------------------


def _is_plain(rec: DataRecord) -> bool:
    return (
        rec.series is None
        and rec.function == "instantaneous"
        and all(name in _NEUTRAL_MODIFIERS for name in rec.modifiers)
    )


def _find(
    records: Sequence[DataRecord],
    quantities: str | tuple[str, ...],
    *,
    storage: int = 0,
    tariff: int = 0,
    subunit: int = 0,
) -> DataRecord | None:
    wanted = (quantities,) if isinstance(quantities, str) else quantities
    for rec in records:
        if (
            rec.quantity in wanted
            and rec.storage == storage
            and rec.tariff == tariff
            and rec.subunit == subunit
            and _is_plain(rec)
        ):
            return rec
    return None


def _convert(value: object, unit: str, target: str) -> float | None:
    """``value`` in ``unit`` expressed in ``target``, or None when not a finite number or
    when there is no conversion."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    factor = (1.0, 1.0) if target == "degC" and unit == "degF" else _CONVERSIONS.get(target, {}).get(unit)
    if factor is None:
        return None
    multiplier, divisor = factor
    try:
        # Always a float, so a field's JSON type does not depend on how the meter coded it.
        number = float(value) if multiplier == 1 and divisor == 1 else value * multiplier / divisor
    except OverflowError:
        return None  # a BCD or LVAR integer beyond the float range is no usable reading
    if target == "degC" and unit == "degF":
        number = (number - 32) * 5 / 9
    return number if math.isfinite(number) else None


def _value(
    records: Sequence[DataRecord],
    quantity: str,
    target: str,
    *,
    storage: int = 0,
    tariff: int = 0,
    subunit: int = 0,
) -> float | None:
    rec = _find(records, quantity, storage=storage, tariff=tariff, subunit=subunit)
    return None if rec is None else _convert(rec.value, rec.unit, target)


def _count(records: Sequence[DataRecord], quantity: str, *, tariff: int, subunit: int) -> int | None:
    rec = _find(records, quantity, tariff=tariff, subunit=subunit)
    if rec is None or isinstance(rec.value, bool) or not isinstance(rec.value, int):
        return None
    return rec.value


def _date(
    records: Sequence[DataRecord], *, storage: int = 0, tariff: int = 0, subunit: int = 0
) -> str | None:
    """The date of a storage: its date record, else the date part of its date-time."""
    for quantity in ("date", "datetime"):
        rec = _find(records, quantity, storage=storage, tariff=tariff, subunit=subunit)
        if rec is not None:
            return rec.value[:10] if isinstance(rec.value, str) else None
    return None


def _reading_time(records: Sequence[DataRecord], received_at: str) -> tuple[str, ReadingTimeSource]:
    # A time of day alone (type J) names no day: the next source is taken.
    rec = _find(records, "datetime")
    if rec is not None and isinstance(rec.value, str) and reading_stamp(rec.value) is not None:
        return rec.value, "meter_datetime"
    rec = _find(records, "date")
    if rec is not None and isinstance(rec.value, str) and reading_stamp(rec.value) is not None:
        return rec.value, "meter_date"
    return received_at, "received"


def _storages(records: Sequence[DataRecord], quantity: str) -> tuple[set[int], set[int]]:
    """(storages > 0 holding ``quantity``, storages > 0 holding a date) of the main unit."""
    values: set[int] = set()
    dated: set[int] = set()
    for rec in records:
        if rec.storage == 0 or rec.tariff or rec.subunit or not _is_plain(rec):
            continue
        if rec.quantity == quantity:
            values.add(rec.storage)
        elif rec.quantity in ("date", "datetime"):
            dated.add(rec.storage)
    return values, dated


def _due_storage(values: set[int], dated: set[int]) -> int | None:
    if 1 in values or 1 in dated:
        return 1
    return min(dated) if dated else None


def _billing_values(
    records: Sequence[DataRecord], quantity: str, target: str
) -> tuple[str | None, float | None, tuple[HistoryValue, ...]]:
    """(due date, due-date value, history) of ``quantity`` in ``target`` units."""
    values, dated = _storages(records, quantity)
    due = _due_storage(values, dated)
    due_date = None if due is None else _date(records, storage=due)
    due_value = None if due is None else _value(records, quantity, target, storage=due)
    history = [
        HistoryValue(
            date=_date(records, storage=storage),
            value=_value(records, quantity, target, storage=storage),
            storage=storage,
        )
        for storage in sorted(values)
        if storage != due
    ]
    for rec in records:
        if (
            rec.series is None
            or rec.quantity != quantity
            or rec.tariff
            or rec.subunit
            or rec.function != "instantaneous"
        ):
            continue
        for when, number in rec.series:
            history.append(HistoryValue(date=when, value=_convert(number, rec.unit, target)))
    return due_date, due_value, tuple(history)


def standard_status(records: Sequence[DataRecord], sts: int | None) -> DeviceStatus:
    """The status the standard defines: TPL STS bits 0-4 and the raw 0xFD 0x17 error
    flags (storage 0, main unit). Fields the telegram does not carry stay ``None``."""
    flags_rec = _find(records, "error_flags")
    flags = None
    if flags_rec is not None and isinstance(flags_rec.value, int) and not isinstance(flags_rec.value, bool):
        flags = flags_rec.value
    if sts is None:
        return DeviceStatus(error_flags=flags)
    application = _APPLICATION_STATUS[sts & 0x03]
    battery_low = bool(sts & 0x04)
    permanent = bool(sts & 0x08)
    temporary = bool(sts & 0x10)
    conditions = [f"application_{application}"] if application != "ok" else []
    conditions += [
        name
        for name, is_set in (
            ("battery_low", battery_low),
            ("permanent_error", permanent),
            ("temporary_error", temporary),
        )
        if is_set
    ]
    return DeviceStatus(
        application_status=application,
        battery_low=battery_low,
        permanent_error=permanent,
        temporary_error=temporary,
        error_flags=flags,
        conditions=tuple(conditions),
    )


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _merge_flag(current: bool | None, extra: bool) -> bool:
    return bool(current) or extra


def pulse_channels(
    records: Sequence[DataRecord], *, default_medium: str | None = None, min_subunit: int = 0
) -> tuple[PulseChannel, ...]:
    """The pulse inputs of ``records``: one channel per (subunit, tariff) of storage 0 with
    a volume (m3), energy (kWh) or mass (kg) value, a dimensionless pulse count, or a pulse
    weight (a record with the "increment per input pulse" VIFE, in unit per pulse). The
    medium is the channel's own device-type record (0xFD 0x09) when sent, else
    ``default_medium``. A count with a weight and no value gives value = count x weight.
    """
    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for rec in records:
        if rec.storage or rec.subunit < min_subunit or rec.series is not None:
            continue
        if rec.function != "instantaneous":
            continue
        cell = cells.setdefault((rec.subunit, rec.tariff), {})
        modifiers = set(rec.modifiers)
        if modifiers & _PULSE_WEIGHT_MODIFIERS and rec.quantity in _CUMULATIVE:
            if modifiers - _PULSE_WEIGHT_MODIFIERS - _NEUTRAL_MODIFIERS or not rec.unit.endswith("/pulse"):
                continue
            target = _CUMULATIVE[rec.quantity]
            per_pulse = _convert(rec.value, rec.unit.removesuffix("/pulse"), target)
            if per_pulse is not None and "weight" not in cell and cell.get("unit", target) == target:
                cell["weight"] = per_pulse
                cell["unit"] = target
            continue
        if not _is_plain(rec):
            continue
        if rec.quantity in _CUMULATIVE:
            target = _CUMULATIVE[rec.quantity]
            number = _convert(rec.value, rec.unit, target)
            if number is not None and "value" not in cell and cell.get("unit", target) == target:
                cell["value"] = number
                cell["unit"] = target
        elif rec.quantity == "dimensionless" and _as_int(rec.value) is not None:
            cell.setdefault("count", rec.value)
        elif rec.quantity == "device_type":
            code = _as_int(rec.value)
            if code is not None and 0 <= code <= 0xFF:
                cell.setdefault("medium", device_type_name(code))
    channels = []
    for (subunit, tariff), cell in sorted(cells.items()):
        if not {"value", "count", "weight"} & cell.keys():
            continue
        value: float | None = cell.get("value")
        weight: float | None = cell.get("weight")
        count: int | None = cell.get("count")
        if value is None and weight is not None and count is not None:
            value = count * weight
        channels.append(
            PulseChannel(
                channel=subunit,
                tariff=tariff,
                medium=cell.get("medium", default_medium),
                pulse_weight=weight,
                count=count,
                value=value,
                unit=cell.get("unit"),
            )
        )
    return tuple(channels)


# --- built-in profiles ----------------------------------------------------------------------------


class ProfileBase(ABC):
    """Common ground of the built-in profiles: accepts everything; subclasses build."""

    name: str = "base"

    def accepts(self, identity: DeviceIdentity, records: Sequence[DataRecord]) -> bool:
        """True: a built-in profile maps whatever its device type sends."""
        return True

    @abstractmethod
    def build(
        self,
        identity: DeviceIdentity,
        records: Sequence[DataRecord],
        *,
        sts: int | None,
        received_at: str,
    ) -> DeviceReading:
        """The device reading of these records."""

    def _base(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], received_at: str
    ) -> dict[str, Any]:
        reading_time, source = _reading_time(records, received_at)
        return {
            "identity": identity,
            "profile": self.name,
            "reading_time": reading_time,
            "reading_time_source": source,
            "received_at": received_at,
        }


class GenericProfile(ProfileBase):
    """Any device: a :class:`GenericDevice` with every record and the standard status."""

    name = "generic"

    def build(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], *, sts: int | None, received_at: str
    ) -> GenericDevice:
        """A generic reading keeping all records (values in each record's unit)."""
        return GenericDevice(
            **self._base(identity, records, received_at),
            status=standard_status(records, sts),
            records=tuple(records),
        )


class HeatCostAllocatorProfile(ProfileBase):
    """EN 13757-3 heat cost allocator: HCA units (VIF 0x6E) at storage 0, due date and
    value, and the history of further storages and compact profiles."""

    name = "oms.heat_cost_allocator"

    def build(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], *, sts: int | None, received_at: str
    ) -> HeatCostAllocator:
        """The HCA reading (values in consumption units)."""
        due_date, due_value, history = _billing_values(records, "hca_units", "HCA")
        return HeatCostAllocator(
            **self._base(identity, records, received_at),
            status=standard_status(records, sts),
            current_units=_value(records, "hca_units", "HCA"),
            due_date=due_date,
            due_date_units=due_value,
            history=history,
        )


class HeatMeterProfile(ProfileBase):
    """EN 13757-3 heat meter: energy (kWh), volume (m3), power (kW), flow (m3/h), flow and
    return temperature (degC), due-date energy and the energy history. Subunits from 1
    up that carry volume, counts or pulse weights but no energy are pulse inputs; a
    subunit with energy is a second register of the meter itself (e.g. cooling)."""

    name = "oms.heat_meter"

    def build(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], *, sts: int | None, received_at: str
    ) -> HeatMeter:
        """The heat meter reading (kWh, m3, kW, m3/h, degC)."""
        due_date, due_value, history = _billing_values(records, "energy", "kWh")
        energy_subunits = {r.subunit for r in records if r.quantity == "energy" and r.subunit}
        inputs = tuple(
            channel
            for channel in pulse_channels(records, min_subunit=1)
            if channel.channel not in energy_subunits
        )
        return HeatMeter(
            **self._base(identity, records, received_at),
            status=standard_status(records, sts),
            energy_kwh=_value(records, "energy", "kWh"),
            volume_m3=_value(records, "volume", "m3"),
            power_kw=_value(records, "power", "kW"),
            flow_m3h=_value(records, "volume_flow", "m3/h"),
            flow_temperature_c=_value(records, "flow_temperature", "degC"),
            return_temperature_c=_value(records, "return_temperature", "degC"),
            due_date=due_date,
            due_date_energy_kwh=due_value,
            history=history,
            pulse_inputs=inputs,
        )


class WaterMeterProfile(ProfileBase):
    """EN 13757-3 water meter: volume (m3), due-date volume and date, volume history; the
    medium from the device type (0x16 cold, 0x06/0x15 warm, else "water")."""

    name = "oms.water_meter"

    def build(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], *, sts: int | None, received_at: str
    ) -> WaterMeter:
        """The water meter reading (m3)."""
        due_date, due_value, history = _billing_values(records, "volume", "m3")
        return WaterMeter(
            **self._base(identity, records, received_at),
            medium=_WATER_MEDIUM.get(identity.device_type, "water"),
            status=self._status(records, sts),
            volume_m3=_value(records, "volume", "m3"),
            due_date=due_date,
            due_date_volume_m3=due_value,
            history=history,
        )

    def _status(self, records: Sequence[DataRecord], sts: int | None) -> WaterStatus:
        base = standard_status(records, sts)
        return WaterStatus(
            application_status=base.application_status,
            battery_low=base.battery_low,
            permanent_error=base.permanent_error,
            temporary_error=base.temporary_error,
            error_flags=base.error_flags,
            conditions=base.conditions,
        )


# Zenner water meters (e.g. Minomess): meaning of the 0xFD 0x17 error-flag bits.
_ZRI_WATER_BITS: Final = (
    (0x8000, "was_removed"),
    (0x4000, "was_tampered"),
    (0x2000, "was_leaking"),
    (0x1000, "temporary_error"),
    (0x0800, "permanent_error"),
    (0x0400, "battery_end_of_life"),
    (0x0200, "abnormal_error"),
    (0x0080, "burst"),
    (0x0040, "removed"),
    (0x0020, "leak"),
    (0x0010, "was_backflowing"),
    (0x0008, "backflow"),
    (0x0004, "was_blocked"),
    (0x0002, "undersized"),
    (0x0001, "oversized"),
)


class ZennerWaterProfile(WaterMeterProfile):
    """Zenner (ZRI) water meters, such as the Minol-branded Minomess: the standard
    mapping plus the manufacturer's error-flag bits (leak, backflow, burst, removal,
    tamper, battery end of life); conditions carry the prefix "zri."."""

    name = "zri.water"

    def _status(self, records: Sequence[DataRecord], sts: int | None) -> WaterStatus:
        base = super()._status(records, sts)
        flags = base.error_flags
        if flags is None:
            return base
        conditions = base.conditions + tuple(f"zri.{name}" for bit, name in _ZRI_WATER_BITS if flags & bit)
        return WaterStatus(
            application_status=base.application_status,
            battery_low=_merge_flag(base.battery_low, bool(flags & 0x0400)),
            permanent_error=_merge_flag(base.permanent_error, bool(flags & 0x0800)),
            temporary_error=_merge_flag(base.temporary_error, bool(flags & 0x1000)),
            error_flags=flags,
            tamper=bool(flags & 0x4000),
            removed=bool(flags & 0x0040),
            conditions=conditions,
            leak=bool(flags & 0x0020),
            backflow=bool(flags & 0x0008),
            burst=bool(flags & 0x0080),
        )


class SmokeDetectorProfile(ProfileBase):
    """Smoke detector with the standard records only: reading time and status. Chamber,
    battery, mounting, obstacles and event counters are manufacturer specific, so they
    stay ``None`` here (see :class:`EiSmokeDetectorProfile`)."""

    name = "oms.smoke_detector"

    def build(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], *, sts: int | None, received_at: str
    ) -> SmokeDetector:
        """The smoke detector state (standard fields only)."""
        return SmokeDetector(
            **self._base(identity, records, received_at),
            status=standard_status(records, sts),
        )


# EI Electronics head status (manufacturer record 0xFF 0x2C of subunit 1): bit meanings.
_EIE_HEAD_BITS: Final = (
    (0x00000020, "sounder_fault"),
    (0x00000040, "tamper_while_removed"),
    (0x00000080, "end_of_life_reached"),
    (0x00001000, "low_battery"),
    (0x00002000, "alarm_sensor_fault"),
    (0x00004000, "obstacle_detector_fault"),
    (0x00008000, "end_of_life_within_12_months"),
    (0x00020000, "environment_changed_since_installation"),
    (0x00040000, "head_communication_fault"),
    (0x00080000, "interference_prevents_obstacle_detection"),
    (0x01000000, "obstacle_detected"),
    (0x02000000, "fully_covered"),
)
_EIE_SOILED_DUST_LEVEL: Final = 28  # the level from which the device recommends cleaning
_EIE_SURROUNDINGS_CHECKED: Final = 0x00010000


class EiSmokeDetectorProfile(SmokeDetectorProfile):
    """EI Electronics (EIE) smoke detectors (e.g. EI6500-OMS).

    Subunit 1 holds the events by tariff: 1 alarms, 2 removals (with the time removed),
    3 test-button presses, each a cumulation counter (0xFD 0x61) and the date of the last
    one; the date of tariff 2 in subunit 0 is the installation date; the date of storage
    1 the last self test of the sounder. The manufacturer record 0xFF 0x2C of subunit 1
    carries the dust level (bits 0-4; cleaning recommended from 28), the battery voltage
    (bits 8-11: 2.25 V + 0.05 V per step), fault bits and the obstacle detection (valid
    once the surroundings check has run, bit 16). Conditions carry the prefix "eie.".
    """

    name = "eie.smoke_detector"

    def build(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], *, sts: int | None, received_at: str
    ) -> SmokeDetector:
        """The smoke detector state (voltage in V, removal time in minutes)."""
        status = standard_status(records, sts)
        head = self._head(records)
        soiled = battery_ok = obstacle = None
        voltage = None
        if head is not None:
            soiled = (head & 0x1F) >= _EIE_SOILED_DUST_LEVEL
            voltage = round(2.25 + 0.05 * ((head >> 8) & 0x0F), 2)
            battery_ok = not head & 0x00001000
            if head & _EIE_SURROUNDINGS_CHECKED:
                obstacle = bool(head & 0x03000000) or ((head >> 20) & 0x07) >= 2
            names = tuple(f"eie.{name}" for bit, name in _EIE_HEAD_BITS if head & bit)
            if soiled:
                names += ("eie.cleaning_recommended",)
            status = DeviceStatus(
                application_status=status.application_status,
                battery_low=_merge_flag(status.battery_low, not battery_ok),
                permanent_error=status.permanent_error,
                temporary_error=status.temporary_error,
                error_flags=status.error_flags,
                tamper=bool(head & 0x40),
                conditions=status.conditions + names,
            )
        duration = _find(records, "tariff_duration", tariff=2, subunit=1)
        return SmokeDetector(
            **self._base(identity, records, received_at),
            status=status,
            smoke_chamber_soiled=soiled,
            battery_sufficient=battery_ok,
            battery_voltage_v=voltage,
            obstacle_detected=obstacle,
            alarm_count=_count(records, "cumulation_counter", tariff=1, subunit=1),
            last_alarm_date=_date(records, tariff=1, subunit=1),
            removal_count=_count(records, "cumulation_counter", tariff=2, subunit=1),
            last_removal_date=_date(records, tariff=2, subunit=1),
            removal_duration_min=None if duration is None else _convert(duration.value, duration.unit, "min"),
            test_count=_count(records, "cumulation_counter", tariff=3, subunit=1),
            last_test_date=_date(records, tariff=3, subunit=1),
            installation_date=_date(records, tariff=2),
            last_self_test_date=_date(records, storage=1),
        )

    @staticmethod
    def _head(records: Sequence[DataRecord]) -> int | None:
        for rec in records:
            if (
                rec.quantity == "manufacturer_specific"
                and rec.vif == "FF2C"
                and rec.subunit == 1
                and rec.storage == 0
                and isinstance(rec.value, int)
                and not isinstance(rec.value, bool)
            ):
                return rec.value
        return None


class PulseCounterProfile(ProfileBase):
    """Pulse modules: accepted when the records show pulse inputs (a channel at subunit 1
    or higher, or a pulse weight); each channel's medium from its own device-type record,
    else from the telegram's device type when that names a medium."""

    name = "oms.pulse_counter"

    def accepts(self, identity: DeviceIdentity, records: Sequence[DataRecord]) -> bool:
        """True when the records carry pulse channels beyond the main unit or pulse weights."""
        return any(
            channel.channel > 0 or channel.pulse_weight is not None for channel in pulse_channels(records)
        )

    def build(
        self, identity: DeviceIdentity, records: Sequence[DataRecord], *, sts: int | None, received_at: str
    ) -> PulseCounter:
        """The pulse counter reading (values in m3, kWh or kg per channel)."""
        return PulseCounter(
            **self._base(identity, records, received_at),
            status=standard_status(records, sts),
            channels=pulse_channels(records, default_medium=_PULSE_MEDIUM.get(identity.device_type)),
        )
