"""Typed device models: what a decoded telegram means for one kind of device.

Every model is a frozen :class:`~minolcore._model.Record` that carries only the fields its
purpose needs (billing, monthly consumption information, smoke detector inspection): no
raw telegram, no key material, no link-layer details beyond the device identity. A field
the telegram does not carry is ``None``; nothing is guessed or carried over.

Units are fixed per field and named in the field: ``_kwh``, ``_m3``, ``_kw``, ``_m3h``,
``_c`` (degrees Celsius), ``_v`` (volts); heat cost allocator values are in the
device's unit-less consumption units. Dates are ISO strings ("2024-01-31"); date-times
from a meter are ISO strings without a zone ("2024-01-31T23:50"), because meters send
local time without saying which zone.

Reading time: ``reading_time`` is the meter's own date-time record (storage 0) when the
telegram carries one (``reading_time_source == "meter_datetime"``), else the meter's
current-date record (``"meter_date"``, an ISO date), else the reception time given by the
caller (``"received"``). ``received_at`` always holds the reception time as given, in ISO
form, so readings stay orderable even when a meter clock is wrong.

Every model has a class attribute ``kind`` and serialises with ``kind`` as its first key
(:meth:`to_dict`); :data:`DeviceReading` is the union of all models. The dict of every
model but :class:`GenericDevice` converts back with ``msgspec.convert(data, type(model))``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

import msgspec

from minolcore._model import Record
from minolcore.wmbus.link import device_type_name
from minolcore.wmbus.records import DataRecord

__all__ = [
    "KINDS",
    "DeviceIdentity",
    "DeviceReading",
    "DeviceStatus",
    "GenericDevice",
    "HeatCostAllocator",
    "HeatMeter",
    "HistoryValue",
    "PulseChannel",
    "PulseCounter",
    "ReadingTimeSource",
    "SmokeDetector",
    "WaterMedium",
    "WaterMeter",
    "WaterStatus",
]

ReadingTimeSource = Literal["meter_datetime", "meter_date", "received"]
WaterMedium = Literal["water", "cold_water", "warm_water"]


class DeviceIdentity(Record):
    """Who the reading belongs to: 3-letter manufacturer code, 8-character meter ID,
    version byte and EN 13757-3 device type byte (the real meter's, behind a radio
    converter or a long TPL header)."""

    manufacturer: str
    id: str
    version: int
    device_type: int

    @property
    def device_type_name(self) -> str:
        """The name of the device type byte ("heat_cost_allocator", "water", ...)."""
        return device_type_name(self.device_type)


class DeviceStatus(Record):
    """Device status from the standard bits, plus what a named profile adds.

    From the TPL status byte (EN 13757-7 STS; all ``None`` when the telegram has no TPL
    header): ``application_status`` ("ok", "busy", "error", "alarm" from bits 0-1),
    ``battery_low`` (bit 2, power low), ``permanent_error`` (bit 3), ``temporary_error``
    (bit 4). ``error_flags`` is the raw value of the 0xFD 0x17 error-flags record; its bits
    are device specific, so only a manufacturer profile interprets them. ``tamper`` and
    ``removed`` are set only by a profile that knows the device's bits. ``conditions``
    names every condition that is set, standard ones plainly ("battery_low") and
    manufacturer ones with the profile's prefix ("zri.was_leaking").
    """

    application_status: str | None = None
    battery_low: bool | None = None
    permanent_error: bool | None = None
    temporary_error: bool | None = None
    error_flags: int | None = None
    tamper: bool | None = None
    removed: bool | None = None
    conditions: tuple[str, ...] = ()


class WaterStatus(DeviceStatus):
    """:class:`DeviceStatus` plus the water meter alarms a manufacturer profile decodes:
    ``leak``, ``backflow``, ``burst`` (``None`` when no profile knows the device's bits)."""

    leak: bool | None = None
    backflow: bool | None = None
    burst: bool | None = None


class HistoryValue(Record):
    """One historic value: ``date`` (ISO date, ``None`` when the telegram gives none),
    ``value`` in the unit of the model field it belongs to (``None`` when not yet
    recorded or invalid), and the EN 13757-3 ``storage`` number it came from (``None``
    for a value expanded from a compact profile)."""

    date: str | None
    value: float | None
    storage: int | None = None


class PulseChannel(Record):
    """One pulse input: ``channel`` is the subunit number of its records, ``tariff`` their
    tariff; ``medium`` ("water", "electricity", "gas", "oil", ...) when the telegram says
    it; ``pulse_weight`` in ``unit`` per pulse; ``count`` the raw pulse count; ``value``
    the converted reading in ``unit`` (m3 for volume, kWh for energy, kg for mass)."""

    channel: int
    tariff: int = 0
    medium: str | None = None
    pulse_weight: float | None = None
    count: int | None = None
    value: float | None = None
    unit: str | None = None


class _Reading(Record):
    """Fields every device model shares."""

    kind: ClassVar[str]

    identity: DeviceIdentity
    profile: str
    reading_time: str
    reading_time_source: ReadingTimeSource
    received_at: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``kind`` first (numbers in each field's unit)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class HeatCostAllocator(_Reading, tag="heat_cost_allocator", tag_field="kind"):
    """A heat cost allocator reading, in consumption units (unit-less).

    ``current_units``: the value accumulated in the running billing period;
    ``due_date`` / ``due_date_units``: the annual due-date (Stichtag) date and value;
    ``history``: the mid-month or month-end values with their dates, as sent.
    """

    kind: ClassVar[str] = "heat_cost_allocator"

    status: DeviceStatus
    current_units: float | None = None
    due_date: str | None = None
    due_date_units: float | None = None
    history: tuple[HistoryValue, ...] = ()


class HeatMeter(_Reading, tag="heat_meter", tag_field="kind"):
    """A heat meter reading: energy in kWh, volume in m3, power in kW, flow in m3/h,
    temperatures in degC; ``history`` holds energies in kWh; ``pulse_inputs`` the meter's
    extra pulse inputs (subunits 1 and up, e.g. connected water meters)."""

    kind: ClassVar[str] = "heat_meter"

    status: DeviceStatus
    energy_kwh: float | None = None
    volume_m3: float | None = None
    power_kw: float | None = None
    flow_m3h: float | None = None
    flow_temperature_c: float | None = None
    return_temperature_c: float | None = None
    due_date: str | None = None
    due_date_energy_kwh: float | None = None
    history: tuple[HistoryValue, ...] = ()
    pulse_inputs: tuple[PulseChannel, ...] = ()


class WaterMeter(_Reading, tag="water_meter", tag_field="kind"):
    """A cold or warm water meter reading: volumes in m3, ``history`` in m3."""

    kind: ClassVar[str] = "water_meter"

    medium: WaterMedium
    status: WaterStatus
    volume_m3: float | None = None
    due_date: str | None = None
    due_date_volume_m3: float | None = None
    history: tuple[HistoryValue, ...] = ()


class SmokeDetector(_Reading, tag="smoke_detector", tag_field="kind"):
    """A smoke detector state for the DIN 14676-1 remote inspection.

    ``smoke_chamber_soiled``, ``battery_sufficient`` (with ``battery_voltage_v`` in volts
    where sent), ``mounted`` and ``obstacle_detected`` (objects within the surroundings
    the detector watches) are ``None`` unless the telegram carries them; counters are
    event counts, ``*_date`` the ISO date of the last event; ``removal_duration_min`` is
    the time spent removed, in minutes.
    """

    kind: ClassVar[str] = "smoke_detector"

    status: DeviceStatus
    smoke_chamber_soiled: bool | None = None
    battery_sufficient: bool | None = None
    battery_voltage_v: float | None = None
    mounted: bool | None = None
    obstacle_detected: bool | None = None
    alarm_count: int | None = None
    last_alarm_date: str | None = None
    test_count: int | None = None
    last_test_date: str | None = None
    removal_count: int | None = None
    last_removal_date: str | None = None
    removal_duration_min: float | None = None
    installation_date: str | None = None
    last_self_test_date: str | None = None


class PulseCounter(_Reading, tag="pulse_counter", tag_field="kind"):
    """A pulse module reading building meters: one :class:`PulseChannel` per input."""

    kind: ClassVar[str] = "pulse_counter"

    status: DeviceStatus
    channels: tuple[PulseChannel, ...] = ()


class GenericDevice(_Reading, tag="generic", tag_field="kind"):
    """A device no profile knows: the decoded records as they are (values in the unit each
    record names)."""

    kind: ClassVar[str] = "generic"

    status: DeviceStatus
    records: tuple[DataRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``kind`` first; records in their own JSON contract
        (bytes as upper-case hex)."""
        out = super().to_dict()
        out["records"] = [record.to_dict() for record in self.records]
        return out


DeviceReading: TypeAlias = (
    HeatCostAllocator | HeatMeter | WaterMeter | SmokeDetector | PulseCounter | GenericDevice
)
"""The union of all device models (tagged by ``kind``)."""

KINDS: tuple[str, ...] = (
    HeatCostAllocator.kind,
    HeatMeter.kind,
    WaterMeter.kind,
    SmokeDetector.kind,
    PulseCounter.kind,
    GenericDevice.kind,
)
