"""How the reports are computed: heating-cost billing, monthly consumption information, smoke
detector inspection. Internal: only :class:`minolcore.access.AccessLayer` calls these functions,
with a view of the store already narrowed to what its reader may see; the result types and
:func:`render` are public in :mod:`minolcore.reports`.

Each report reads store rows (through a :class:`ReportStore`), places them with the
:class:`~minolcore.site.SiteRegistry`, and carries a ``rules`` field naming every rule it
applied, so a reader can check the figures against the regulation. The reports never invent
a rule: where data is missing a figure is ``None`` with a ``reason``.

Common rules (all reports):

* Devices are joined to installations through the store's device table (wireless M-Bus
  manufacturer + meter ID, LoRaWAN DevEUI/DevAddr as ``meter_id``); a device uid missing from
  that table is matched when the installation's meter ID, DevEUI or DevAddr is one of the
  uid's alphanumeric tokens (``"wmbus:ZRI:40000001"``). A reading belongs to an installation
  when its time lies in the installation's span.
* Reading times are taken as local times of the site (meters keep the local calendar that due
  dates and month ends use).
* A value "at" a day is the day's historic value (storage 1 or higher, the state at the end of
  that day), else the day's last current value.
* A cumulative counter never falls; a fall is reported as a missing figure, except for heat
  cost allocators whose history shows a restart after a due date (value on the due date
  followed by a lower one): their counter is taken to restart at 0 after every due date.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Protocol, TypeAlias
from zoneinfo import ZoneInfo

import msgspec

from minolcore._model import Record, replace
from minolcore.errors import ConfigError
from minolcore.site import (
    BillingSettings,
    DeviceKind,
    Installation,
    LoRaWANAddress,
    RestBasis,
    SiteRegistry,
    Unit,
    WMBusAddress,
    check_calendar_day,
)
from minolcore.store.base import DeviceRow, ReadingRow, StatusEventRow

__all__ = [
    "BillingReport",
    "DeviceBilling",
    "MonthlyReport",
    "MonthlyRow",
    "ReportStore",
    "SmokeDetectorState",
    "SmokeFault",
    "SmokeReport",
    "TenantShare",
    "UnitBilling",
    "billing_report",
    "monthly_report",
    "render",
    "smoke_report",
]

Cell: TypeAlias = str | int | float | bool | None
Row: TypeAlias = dict[str, Cell]


class ReportStore(Protocol):
    """What the reports read from a store: the access layer's filtered view of it."""

    def readings(
        self,
        *,
        device_uid: str | None = None,
        building_id: str | None = None,
        unit_id: str | None = None,
        quantity: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[ReadingRow]:
        """Readings matching every given filter, ordered by device and time."""

    def devices(self) -> list[DeviceRow]:
        """Every device seen."""

    def status_events(self, device_uid: str | None = None) -> list[StatusEventRow]:
        """Status events, optionally of one device, ordered by device and time."""


# --- rule texts ----------------------------------------------------------------------------------

RULE_JOIN = (
    "Devices are joined to installations by manufacturer and meter ID (or DevEUI/DevAddr); "
    "a reading counts for an installation when its time (site-local) lies in the installation's span."
)
RULE_VALUE_AT = (
    "The value at a day is that day's historic value (storage >= 1, e.g. the due-date or month-end value), "
    "else the last current value of that day."
)
RULE_COUNTER = (
    "Consumption = end value - start value of a cumulative counter; a counter that falls gives no figure. "
    "A heat cost allocator whose history shows a lower value right after a due-date value restarts at 0 "
    "after every due date, so its due-date value is the consumption of the year ending on that due date."
)
RULE_SWAP = (
    "Devices swapped within the period: the old device counts from its start value to its last value "
    "before removal, the new one from its first value after installation; a unit's consumption is the sum."
)
RULE_RATED = "Rated HCA consumption = HCA units x rating factor (KQ x KC, or the combined factor)."
RULE_SHARE = "A unit's share = its rated HCA consumption / the building's rated HCA consumption."
RULE_SPLIT = (
    "HeizkostenV § 7 (1): {percent:g} % of the heating costs by rated consumption, "
    "{rest:g} % by {basis} (unit {basis} / building {basis})."
)
RULE_TENANT = (
    "HeizkostenV § 9b: on a tenant change the unit's consumption part is split by the interim reading "
    "(values on the last day of the outgoing tenancy) where every heat cost allocator of the unit has one, "
    "else by days (time share); the part by {basis} is split by days. Days without a tenant are vacancy."
)
RULE_HOT_WATER = (
    "Hot water costs (§ 8) and the split of combined systems (§ 9) are not computed here; "
    "water and heat meter consumption is reported."
)
RULE_MONTH_END = (
    "Month-end value: the value at the last day of the month (a month-end or due-date record, or the "
    "last current value of that day); without one, the last value within the month (marked as such)."
)
RULE_MONTHLY = (
    "HeizkostenV § 6a / EED 2023/1791: each month's consumption (month-end value minus the previous "
    "month-end value), compared with the previous month and the same month of the previous year."
)
RULE_SMOKE = (
    "DIN 14676-1 remote inspection: per detector, smoke chamber free, surroundings free of obstacles, "
    "battery sufficient, not removed, alarm signal working; every fault set and not cleared by `at` is "
    "listed with the time it was first seen. An event '<name>_cleared' (or detail 'cleared') clears it, "
    "as does an event 'cleared' whose detail names it (a detector's telegram lists its clear faults so)."
)

_HEATING_KINDS = frozenset((DeviceKind.HEAT_COST_ALLOCATOR, DeviceKind.HEAT_METER))
_WATER_KINDS = frozenset((DeviceKind.COLD_WATER_METER, DeviceKind.WARM_WATER_METER, DeviceKind.WATER_METER))
_QUANTITY = {
    DeviceKind.HEAT_COST_ALLOCATOR: "hca_units",
    DeviceKind.HEAT_METER: "energy",
    DeviceKind.COLD_WATER_METER: "volume",
    DeviceKind.WARM_WATER_METER: "volume",
    DeviceKind.WATER_METER: "volume",
}
_MEASURE = {
    DeviceKind.HEAT_COST_ALLOCATOR: "HCA",
    DeviceKind.HEAT_METER: "kWh",
    DeviceKind.COLD_WATER_METER: "m3",
    DeviceKind.WARM_WATER_METER: "m3",
    DeviceKind.WATER_METER: "m3",
}
# Factors to the report's units (kWh for energy, m3 for volume); other units are not guessed.
_TO_REPORT_UNIT = {
    "HCA": 1.0,
    "": 1.0,
    "Wh": 1e-3,
    "kWh": 1.0,
    "MWh": 1e3,
    "J": 1 / 3.6e6,
    "kJ": 1 / 3.6e3,
    "MJ": 1 / 3.6,
    "GJ": 1e3 / 3.6,
    "m3": 1.0,
    "l": 1e-3,
    "L": 1e-3,
}
_TOKEN = re.compile(r"[A-Za-z0-9]+")


# --- shared machinery ------------------------------------------------------------------------------


class _Point:
    """One value of one device, in the report's unit, placed in site-local time."""

    __slots__ = ("day", "historic", "stamp", "value")

    def __init__(self, stamp: dt.datetime, value: float, historic: bool) -> None:
        self.stamp = stamp
        self.day = stamp.date()
        self.value = value
        self.historic = historic

    @property
    def key(self) -> tuple[dt.date, bool, dt.datetime]:
        # A historic value is the state at the end of its day, so it sorts after that day's current values.
        return (self.day, self.historic, self.stamp)


def _parse_time(text: str) -> dt.datetime | None:
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp.replace(tzinfo=None)


def _points(rows: Iterable[ReadingRow], quantity: str) -> list[_Point]:
    """The device's valid values of ``quantity`` (tariff 0, subunit 0), one per (day, historic) slot."""
    chosen: dict[tuple[dt.date, bool, dt.datetime], tuple[int, _Point]] = {}
    for row in rows:
        if row.quantity != quantity or row.tariff or row.subunit or not row.valid or row.value is None:
            continue
        if row.function not in {"instantaneous", "history"}:
            continue
        factor = _TO_REPORT_UNIT.get(row.unit)
        stamp = _parse_time(row.reading_time)
        if factor is None or stamp is None:
            continue
        historic = row.storage >= 1
        point = _Point(
            dt.datetime.combine(stamp.date(), dt.time(0)) if historic else stamp, row.value * factor, historic
        )
        key = point.key
        # Several historic storages can describe the same day (due date = month end); keep the lowest.
        if key not in chosen or row.storage < chosen[key][0]:
            chosen[key] = (row.storage, point)
    return sorted((p for _, p in chosen.values()), key=lambda p: p.key)


class _Context:
    """Site-local view of the registry plus the store's device table, built once per report."""

    def __init__(self, store: ReportStore, site: SiteRegistry) -> None:
        self.store = store
        self.site = site
        self.tz: dt.tzinfo = dt.UTC if site.timezone == "UTC" else ZoneInfo(site.timezone)
        self.devices = store.devices()
        self._rows: dict[str, list[ReadingRow]] = {}

    def local(self, instant: dt.datetime | None) -> dt.datetime | None:
        return None if instant is None else instant.astimezone(self.tz).replace(tzinfo=None)

    def uid_of(self, installation: Installation, candidates: Iterable[str]) -> str | None:
        """The store's device uid of ``installation``, or None when it has sent nothing."""
        address = installation.address
        for device in self.devices:
            if _device_matches(device, address):
                return device.device_uid
        wanted = _address_tokens(address)
        for uid in sorted(set(candidates)):
            if wanted & {token.upper() for token in _TOKEN.findall(uid)}:
                return uid
        return None

    def rows(self, uid: str) -> list[ReadingRow]:
        if uid not in self._rows:
            self._rows[uid] = self.store.readings(device_uid=uid)
        return self._rows[uid]

    def in_span(self, installation: Installation, points: list[_Point]) -> list[_Point]:
        start = self.local(installation.start)
        end = self.local(installation.end)
        assert start is not None
        return [p for p in points if p.stamp >= start and (end is None or p.stamp < end)]


def _device_matches(device: DeviceRow, address: WMBusAddress | LoRaWANAddress) -> bool:
    if isinstance(address, WMBusAddress):
        return (
            device.manufacturer.upper() == address.manufacturer
            and device.meter_id.upper() == address.id
            and (address.version is None or address.version == device.version)
            and (address.device_type is None or address.device_type == device.device_type)
        )
    return device.meter_id.upper() in {address.dev_eui, address.dev_addr}


def _address_tokens(address: WMBusAddress | LoRaWANAddress) -> set[str]:
    if isinstance(address, WMBusAddress):
        return {address.id}
    return {token for token in (address.dev_eui, address.dev_addr) if token is not None}


def _candidate_uids(store: ReportStore, building: str) -> set[str]:
    return {row.device_uid for row in store.readings(building_id=building)}


def _is_due_day(day: dt.date, billing: BillingSettings | None) -> bool:
    return billing is not None and (day.month, day.day) == (billing.due_month, billing.due_day)


def _restarts(points: Sequence[_Point], billing: BillingSettings | None) -> bool:
    """Whether the history shows a restart after a due date (a due-date value, then a lower one)."""
    return any(
        _is_due_day(a.day, billing) and b.day > a.day and b.value < a.value
        for a, b in itertools.pairwise(points)
    )


def _value_at(
    points: Sequence[_Point], day: dt.date, fallback_from: dt.date | None
) -> tuple[_Point | None, str]:
    on_day = [p for p in points if p.day == day]
    if on_day:
        return on_day[-1], "historic value" if on_day[-1].historic else "last current value of the day"
    if fallback_from is not None:
        within = [p for p in points if fallback_from <= p.day <= day]
        if within:
            return within[-1], "last value within the month"
    return None, f"no value on {day.isoformat()}"


class _Window(Record):
    start: float | None
    start_date: str | None
    end: float | None
    end_date: str | None
    consumption: float | None
    method: str
    reason: str | None


def _window(
    points: Sequence[_Point],
    installation_local: tuple[dt.datetime, dt.datetime | None],
    first_day: dt.date,
    last_day: dt.date,
    *,
    fallback: bool,
    restarts: bool,
    billing: BillingSettings | None,
) -> _Window:
    """A device's consumption from the value at ``first_day`` to the value at ``last_day``."""
    inst_start, inst_end = installation_local
    methods: list[str] = []
    start: _Point | None
    end: _Point | None
    if inst_start <= dt.datetime.combine(first_day, dt.time(0)):
        start, how = _value_at(points, first_day, first_day.replace(day=1) if fallback else None)
    else:
        after = [p for p in points if p.day >= first_day]
        start, how = (
            (after[0], "first value after installation") if after else (None, "no value after installation")
        )
    methods.append(f"start: {how}")
    if inst_end is None or inst_end >= dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0)):
        end, how = _value_at(points, last_day, last_day.replace(day=1) if fallback else None)
    else:
        before = [p for p in points if p.day <= last_day]
        end, how = (before[-1], "last value before removal") if before else (None, "no value before removal")
    methods.append(f"end: {how}")
    method = "; ".join(methods)
    if restarts:
        method += "; counter restarts after each due date"
    start_value = None if start is None else start.value
    end_value = None if end is None else end.value
    start_date = None if start is None else start.day.isoformat()
    end_date = None if end is None else end.day.isoformat()
    if start is None or end is None or end.key < start.key:
        reason = methods[0] if start is None else methods[1] if end is None else "no value inside the period"
        return _Window(
            start=start_value,
            start_date=start_date,
            end=end_value,
            end_date=end_date,
            consumption=None,
            method=method,
            reason=reason,
        )
    chain = [start, *(p for p in points if start.key < p.key < end.key), end]
    total = 0.0
    for a, b in itertools.pairwise(chain):
        if restarts and _is_due_day(a.day, billing) and b.day > a.day:
            total += b.value
        elif b.value < a.value:
            reason = f"counter fell from {a.value:g} ({a.day}) to {b.value:g} ({b.day})"
            return _Window(
                start=start_value,
                start_date=start_date,
                end=end_value,
                end_date=end_date,
                consumption=None,
                method=method,
                reason=reason,
            )
        else:
            total += b.value - a.value
    return _Window(
        start=start_value,
        start_date=start_date,
        end=end_value,
        end_date=end_date,
        consumption=total,
        method=method,
        reason=None,
    )


def _sum(values: Iterable[float | None]) -> float | None:
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _check_unit_in(site: SiteRegistry, unit_id: str, building: str) -> Unit:
    unit = site.unit(unit_id)
    if unit.building != building:
        raise ConfigError(f"unit {unit_id!r} belongs to building {unit.building!r}, not {building!r}", "unit")
    return unit


# --- billing -----------------------------------------------------------------------------------------


class DeviceBilling(Record):
    """One installation's figures for the billing period.

    Values and consumption in ``measure`` (HCA units, kWh or m3); ``rated`` in rated HCA units
    (units x ``rating_factor``), None for other devices.
    """

    unit: str
    installation: str
    device_uid: str | None
    kind: str
    room: str | None
    measure: str
    start_value: float | None
    start_date: str | None
    end_value: float | None
    end_date: str | None
    consumption: float | None
    rating_factor: float | None
    rated: float | None
    method: str
    reason: str | None = None


class TenantShare(Record):
    """A tenant's (or vacancy's, ``tenant`` None) part of a unit: days, rated HCA units and
    costs in the cost currency."""

    unit: str
    tenant: str | None
    first_day: str
    last_day: str
    days: int
    rated: float | None
    consumption_cost: float | None
    rest_cost: float | None
    total_cost: float | None
    method: str


class UnitBilling(Record):
    """A unit's billing: consumption per kind (HCA units, rated HCA units, kWh, m3), its share of the
    building's rated HCA consumption (fraction 0..1) and, with costs given, the costs (cost currency)."""

    unit: str
    name: str
    area_m2: float
    rest_basis: float | None
    hca_units: float | None
    rated_hca: float | None
    heat_kwh: float | None
    cold_water_m3: float | None
    warm_water_m3: float | None
    water_m3: float | None
    share: float | None
    consumption_cost: float | None
    rest_cost: float | None
    total_cost: float | None
    devices: tuple[DeviceBilling, ...] = ()
    tenants: tuple[TenantShare, ...] = ()
    reason: str | None = None


class BillingReport(Record):
    """Heating-cost billing of one building for one period (see :func:`billing_report`)."""

    building: str
    period_start: str
    period_end: str
    heating_costs: float | None
    consumption_percent: float | None
    rest_by: str
    total_rated_hca: float | None
    total_rest_basis: float
    units: tuple[UnitBilling, ...]
    rules: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def to_rows(self) -> list[Row]:
        """One row per device, per tenant part and per unit total (``row`` names which), same keys in each."""
        rows: list[Row] = []
        for unit in self.units:
            for device in unit.devices:
                rows.append(
                    _billing_row(
                        "device",
                        unit.unit,
                        device.installation,
                        device.kind,
                        device.measure,
                        device.start_value,
                        device.end_value,
                        device.consumption,
                        device.rated,
                        None,
                        None,
                        None,
                        None,
                        device.reason or device.method,
                    )
                )
            for tenant in unit.tenants:
                rows.append(
                    _billing_row(
                        "tenant",
                        unit.unit,
                        tenant.tenant or "(vacant)",
                        "",
                        "rated HCA",
                        None,
                        None,
                        None,
                        tenant.rated,
                        None,
                        tenant.consumption_cost,
                        tenant.rest_cost,
                        tenant.total_cost,
                        f"{tenant.first_day}..{tenant.last_day} ({tenant.days} d); {tenant.method}",
                    )
                )
            rows.append(
                _billing_row(
                    "unit",
                    unit.unit,
                    "",
                    "heating",
                    "rated HCA",
                    None,
                    None,
                    unit.hca_units,
                    unit.rated_hca,
                    unit.share,
                    unit.consumption_cost,
                    unit.rest_cost,
                    unit.total_cost,
                    unit.reason or "",
                )
            )
        return rows


def _billing_row(
    kind: str,
    unit: str,
    item: str,
    device_kind: str,
    measure: str,
    start: float | None,
    end: float | None,
    consumption: float | None,
    rated: float | None,
    share: float | None,
    consumption_cost: float | None,
    rest_cost: float | None,
    total_cost: float | None,
    note: str,
) -> Row:
    return {
        "row": kind,
        "unit": unit,
        "item": item,
        "kind": device_kind,
        "measure": measure,
        "start": start,
        "end": end,
        "consumption": consumption,
        "rated": rated,
        "share": share,
        "consumption_cost": consumption_cost,
        "rest_cost": rest_cost,
        "total_cost": total_cost,
        "note": note,
    }


def billing_report(
    store: ReportStore,
    site: SiteRegistry,
    *,
    building: str,
    period: tuple[dt.date, dt.date],
    heating_costs: float | None = None,
    consumption_share: float | None = None,
) -> BillingReport:
    """Heating-cost billing of ``building`` for ``period`` = (previous due date, due date).

    Start values are taken at ``period[0]``, end values at ``period[1]`` (local days). Values
    and consumption are in HCA units, kWh (heat meters) and m3 (water); rated consumption in
    rated HCA units; shares as fractions 0..1; ``heating_costs`` and the cost figures in one
    currency; ``consumption_share`` in percent (50-70, default from the building's billing
    settings). Raises :class:`ConfigError` for an unknown building, a reversed period or a
    consumption share outside 50-70 %.
    """
    info = site.building(building)
    first, last = period
    if last <= first:
        raise ConfigError("the period must end after it starts (previous due date, due date)", "period")
    settings = info.billing
    percent = consumption_share
    if percent is None and settings is not None:
        percent = settings.heating_consumption_percent
    if heating_costs is not None:
        if percent is None:
            raise ConfigError(
                "give consumption_share or billing settings for the building (HeizkostenV § 7)",
                "consumption_share",
            )
        if not 50.0 <= percent <= 70.0:
            raise ConfigError("must be between 50 and 70 % (HeizkostenV § 7)", "consumption_share")
    rest_by = RestBasis.AREA if settings is None else settings.rest_by
    basis_name = "area" if rest_by is RestBasis.AREA else "heated volume"
    ctx = _Context(store, site)
    candidates = _candidate_uids(store, building)
    units = site.units(building)
    notes: list[str] = []
    built: list[UnitBilling] = []
    for unit in units:
        devices = [
            _device_billing(ctx, inst, candidates, first, last, settings)
            for inst in site.devices_in_unit(unit.id, (first + dt.timedelta(days=1), last))
            if inst.kind in _HEATING_KINDS or inst.kind in _WATER_KINDS
        ]
        built.append(_unit_billing(unit, devices, rest_by))
    total_rated = _sum(u.rated_hca for u in built)
    if any(u.hca_units is None for u in built):
        notes.append(
            "a unit's rated HCA consumption is missing, so no unit has a share of the building total"
        )
    if all(not any(d.kind == DeviceKind.HEAT_COST_ALLOCATOR for d in u.devices) for u in built):
        total_rated = None
    total_basis = sum(u.rest_basis or 0.0 for u in built)
    rules = [RULE_JOIN, RULE_VALUE_AT, RULE_COUNTER, RULE_SWAP, RULE_RATED, RULE_SHARE]
    if heating_costs is not None and percent is not None:
        rules.append(RULE_SPLIT.format(percent=percent, rest=100.0 - percent, basis=basis_name))
        rules.append(RULE_TENANT.format(basis=basis_name))
    rules.append(RULE_HOT_WATER)
    final: list[UnitBilling] = []
    for unit_billing in built:
        share = (
            None
            if total_rated is None or unit_billing.rated_hca is None or total_rated == 0
            else unit_billing.rated_hca / total_rated
        )
        cons_cost = rest_cost = total_cost = None
        tenants: tuple[TenantShare, ...] = ()
        if heating_costs is not None and percent is not None:
            if share is not None:
                cons_cost = heating_costs * percent / 100.0 * share
            if unit_billing.rest_basis is not None and total_basis > 0:
                rest_cost = heating_costs * (100.0 - percent) / 100.0 * unit_billing.rest_basis / total_basis
            total_cost = None if cons_cost is None or rest_cost is None else cons_cost + rest_cost
            tenants = _tenant_shares(ctx, unit_billing, first, last, cons_cost, rest_cost, settings)
        reason = unit_billing.reason
        if share is None and reason is None and total_rated is None:
            reason = "building rated HCA total unknown"
        final.append(
            replace(
                unit_billing,
                share=share,
                consumption_cost=cons_cost,
                rest_cost=rest_cost,
                total_cost=total_cost,
                tenants=tenants,
                reason=reason,
            )
        )
    if not units:
        notes.append("the building has no units")
    return BillingReport(
        building=building,
        period_start=first.isoformat(),
        period_end=last.isoformat(),
        heating_costs=heating_costs,
        consumption_percent=percent,
        rest_by=rest_by.value,
        total_rated_hca=total_rated,
        total_rest_basis=total_basis,
        units=tuple(final),
        rules=tuple(rules),
        notes=tuple(notes),
    )


def _device_billing(
    ctx: _Context,
    inst: Installation,
    candidates: Iterable[str],
    first: dt.date,
    last: dt.date,
    settings: BillingSettings | None,
) -> DeviceBilling:
    kind = DeviceKind(inst.kind)
    factor = None if inst.rating is None else inst.rating.factor
    uid = ctx.uid_of(inst, candidates)
    base: dict[str, Any] = {
        "unit": inst.unit or "",
        "installation": inst.id,
        "device_uid": uid,
        "kind": kind.value,
        "room": inst.room,
        "measure": _MEASURE[kind],
        "rating_factor": factor,
    }
    if uid is None:
        return DeviceBilling(
            **base,
            start_value=None,
            start_date=None,
            end_value=None,
            end_date=None,
            consumption=None,
            rated=None,
            method="",
            reason="no data from this device",
        )
    every = _points(ctx.rows(uid), _QUANTITY[kind])
    restarts = kind is DeviceKind.HEAT_COST_ALLOCATOR and _restarts(every, settings)
    span_start = ctx.local(inst.start)
    assert span_start is not None
    window = _window(
        ctx.in_span(inst, every),
        (span_start, ctx.local(inst.end)),
        first,
        last,
        fallback=False,
        restarts=restarts,
        billing=settings,
    )
    rated = None
    reason = window.reason
    if kind is DeviceKind.HEAT_COST_ALLOCATOR and window.consumption is not None:
        if factor is None:
            reason = "no rating factor recorded for this heat cost allocator"
        else:
            rated = window.consumption * factor
    return DeviceBilling(
        **base,
        start_value=window.start,
        start_date=window.start_date,
        end_value=window.end,
        end_date=window.end_date,
        consumption=window.consumption,
        rated=rated,
        method=window.method,
        reason=reason,
    )


def _unit_billing(unit: Unit, devices: list[DeviceBilling], rest_by: RestBasis) -> UnitBilling:
    def total(kind: DeviceKind, field: Callable[[DeviceBilling], float | None]) -> float | None:
        chosen = [d for d in devices if d.kind == kind.value]
        return _sum(field(d) for d in chosen) if chosen else None

    hcas = [d for d in devices if d.kind == DeviceKind.HEAT_COST_ALLOCATOR.value]
    missing = [d for d in devices if d.consumption is None or (d in hcas and d.rated is None)]
    reason = None
    if missing:
        reason = "; ".join(f"{d.installation}: {d.reason}" for d in missing)
    basis = unit.area_m2 if rest_by is RestBasis.AREA else unit.heated_volume_m3
    return UnitBilling(
        unit=unit.id,
        name=unit.name,
        area_m2=unit.area_m2,
        rest_basis=basis,
        hca_units=_sum(d.consumption for d in hcas) if hcas else 0.0,
        rated_hca=_sum(d.rated for d in hcas) if hcas else 0.0,
        heat_kwh=total(DeviceKind.HEAT_METER, lambda d: d.consumption),
        cold_water_m3=total(DeviceKind.COLD_WATER_METER, lambda d: d.consumption),
        warm_water_m3=total(DeviceKind.WARM_WATER_METER, lambda d: d.consumption),
        water_m3=total(DeviceKind.WATER_METER, lambda d: d.consumption),
        share=None,
        consumption_cost=None,
        rest_cost=None,
        total_cost=None,
        devices=tuple(devices),
        reason=reason,
    )


def _tenant_shares(
    ctx: _Context,
    unit: UnitBilling,
    first: dt.date,
    last: dt.date,
    consumption_cost: float | None,
    rest_cost: float | None,
    settings: BillingSettings | None,
) -> tuple[TenantShare, ...]:
    """Split the unit's costs between the tenancies of the period (first day after ``first`` to ``last``)."""
    begin = first + dt.timedelta(days=1)
    spans: list[tuple[str | None, dt.date, dt.date]] = []
    day = begin
    for tenancy in ctx.site.tenancies(unit.unit):
        t_end = last if tenancy.end is None else min(tenancy.end, last)
        t_start = max(tenancy.start, begin)
        if t_end < t_start or t_end < day:
            continue
        if t_start > day:
            spans.append((None, day, t_start - dt.timedelta(days=1)))
        spans.append((tenancy.tenant, max(t_start, day), t_end))
        day = t_end + dt.timedelta(days=1)
    if day <= last:
        spans.append((None, day, last))
    if len(spans) <= 1:
        return ()
    period_days = (last - first).days
    rated = _interim_rated(ctx, unit, spans, first, last, settings)
    method = "interim reading" if rated is not None else "time share"
    shares: list[TenantShare] = []
    for index, (tenant, start, end) in enumerate(spans):
        days = (end - start).days + 1
        part = days / period_days
        tenant_rated = None if rated is None else rated[index]
        cons_fraction = rated[index] / unit.rated_hca if rated is not None and unit.rated_hca else part
        cons = None if consumption_cost is None else consumption_cost * cons_fraction
        rest = None if rest_cost is None else rest_cost * part
        shares.append(
            TenantShare(
                unit=unit.unit,
                tenant=tenant,
                first_day=start.isoformat(),
                last_day=end.isoformat(),
                days=days,
                rated=tenant_rated
                if tenant_rated is not None
                else (None if unit.rated_hca is None else unit.rated_hca * part),
                consumption_cost=cons,
                rest_cost=rest,
                total_cost=None if cons is None or rest is None else cons + rest,
                method=method,
            )
        )
    return tuple(shares)


def _interim_rated(
    ctx: _Context,
    unit: UnitBilling,
    spans: list[tuple[str | None, dt.date, dt.date]],
    first: dt.date,
    last: dt.date,
    settings: BillingSettings | None,
) -> list[float] | None:
    """Rated HCA units per span from values on each span's last day, or None when any is missing."""
    hcas = [d for d in unit.devices if d.kind == DeviceKind.HEAT_COST_ALLOCATOR.value]
    if not hcas or any(d.device_uid is None or d.rating_factor is None or d.rated is None for d in hcas):
        return None
    by_id = {i.id: i for i in ctx.site.installations(unit=unit.unit)}
    parts = [0.0] * len(spans)
    for device in hcas:
        inst = by_id[device.installation]
        assert device.device_uid is not None and device.rating_factor is not None
        every = _points(ctx.rows(device.device_uid), "hca_units")
        restarts = _restarts(every, settings)
        points = ctx.in_span(inst, every)
        span_start = ctx.local(inst.start)
        assert span_start is not None
        local = (span_start, ctx.local(inst.end))
        previous = first
        for index, (_, _, end) in enumerate(spans):
            window = _window(
                points, local, previous, end, fallback=False, restarts=restarts, billing=settings
            )
            if window.consumption is None:
                if (
                    window.start is None
                    and window.end is None
                    and (span_start.date() > end or (local[1] is not None and local[1].date() <= previous))
                ):
                    previous = end
                    continue  # the device was not installed during this span
                return None
            parts[index] += window.consumption * device.rating_factor
            previous = end
    return parts


# --- monthly consumption information -------------------------------------------------------------------


class MonthlyRow(Record):
    """One unit's consumption of one kind in one month (``measure``: rated HCA units, kWh or m3),
    with the previous month and the same month of the previous year (None where unknown)."""

    unit: str
    month: str
    kind: str
    measure: str
    consumption: float | None
    previous_month: float | None
    same_month_last_year: float | None
    method: str
    reason: str | None = None


class MonthlyReport(Record):
    """Monthly consumption information (HeizkostenV § 6a) for ``scope`` (see :func:`monthly_report`)."""

    scope: str
    first_month: str
    last_month: str
    rows: tuple[MonthlyRow, ...]
    rules: tuple[str, ...]

    def to_rows(self) -> list[Row]:
        """One row per unit, month and kind."""
        return [
            {
                "unit": r.unit,
                "month": r.month,
                "kind": r.kind,
                "measure": r.measure,
                "consumption": r.consumption,
                "previous_month": r.previous_month,
                "same_month_last_year": r.same_month_last_year,
                "note": r.reason or r.method,
            }
            for r in self.rows
        ]


_MONTHLY_KIND = {
    DeviceKind.HEAT_COST_ALLOCATOR: ("heating", "rated HCA"),
    DeviceKind.HEAT_METER: ("heating", "kWh"),
    DeviceKind.COLD_WATER_METER: ("cold_water", "m3"),
    DeviceKind.WARM_WATER_METER: ("warm_water", "m3"),
    DeviceKind.WATER_METER: ("water", "m3"),
}


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_end(month: dt.date) -> dt.date:
    return _add_months(month, 1) - dt.timedelta(days=1)


def monthly_report(
    store: ReportStore,
    site: SiteRegistry,
    *,
    unit: str | None = None,
    building: str | None = None,
    months: tuple[dt.date, dt.date],
) -> MonthlyReport:
    """Monthly consumption per unit, month and kind, from the month of ``months[0]`` to that of ``months[1]``.

    Heating in rated HCA units (units x rating factor) or kWh, water in m3. Give ``unit`` or
    ``building`` (or both, when the unit must belong to the building). Raises
    :class:`ConfigError` for an unknown unit or building, neither given, or reversed months.
    """
    if unit is None and building is None:
        raise ConfigError("give a unit or a building", "unit")
    if building is not None:
        site.building(building)
    if unit is not None:
        chosen = [_check_unit_in(site, unit, building) if building is not None else site.unit(unit)]
    else:
        assert building is not None
        chosen = site.units(building)
    for index, day in enumerate(months):
        check_calendar_day(day, f"months[{index}]")
    first, last = _month_start(months[0]), _month_start(months[1])
    if last < first:
        raise ConfigError("the last month is before the first", "months")
    ctx = _Context(store, site)
    rows: list[MonthlyRow] = []
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    for unit_info in chosen:
        settings = site.building(unit_info.building).billing
        candidates = _candidate_uids(store, unit_info.building)
        series = _unit_months(ctx, unit_info, _add_months(first, -12), last, candidates, settings)
        for (kind, measure), per_month in sorted(series.items()):
            for offset in range(count):
                month = _add_months(first, offset)
                value, method, reason = per_month[month]
                previous = per_month[_add_months(month, -1)][0]
                year_ago = per_month[_add_months(month, -12)][0]
                rows.append(
                    MonthlyRow(
                        unit=unit_info.id,
                        month=month.strftime("%Y-%m"),
                        kind=kind,
                        measure=measure,
                        consumption=value,
                        previous_month=previous,
                        same_month_last_year=year_ago,
                        method=method,
                        reason=reason,
                    )
                )
    rows.sort(key=lambda r: (r.unit, r.kind, r.measure, r.month))
    scope = unit if unit is not None else f"building {building}"
    return MonthlyReport(
        scope=scope,
        first_month=first.strftime("%Y-%m"),
        last_month=last.strftime("%Y-%m"),
        rows=tuple(rows),
        rules=(RULE_MONTHLY, RULE_JOIN, RULE_MONTH_END, RULE_VALUE_AT, RULE_COUNTER, RULE_SWAP, RULE_RATED),
    )


_DeviceSeries: TypeAlias = tuple[Installation, list[_Point], tuple[dt.datetime, dt.datetime | None], bool]


def _unit_months(
    ctx: _Context,
    unit: Unit,
    first: dt.date,
    last: dt.date,
    candidates: Iterable[str],
    settings: BillingSettings | None,
) -> dict[tuple[str, str], dict[dt.date, tuple[float | None, str, str | None]]]:
    """Per (kind, measure) and month from ``first - 1 month`` to ``last``: (consumption, method, reason)."""
    result: dict[tuple[str, str], dict[dt.date, tuple[float | None, str, str | None]]] = {}
    installs = [
        i
        for i in ctx.site.devices_in_unit(unit.id, (first, _month_end(last)))
        if DeviceKind(i.kind) in _MONTHLY_KIND
    ]
    if not installs:
        return result
    count = (last.year - first.year) * 12 + last.month - first.month + 2
    for kind_key in {_MONTHLY_KIND[DeviceKind(i.kind)] for i in installs}:
        result[kind_key] = {}
        for offset in range(count):
            month = _add_months(first, offset - 1)
            result[kind_key][month] = (None, "", "no device of this kind installed")
    per_device: dict[tuple[str, str], list[_DeviceSeries]] = {}
    for inst in installs:
        kind = DeviceKind(inst.kind)
        uid = ctx.uid_of(inst, candidates)
        every = [] if uid is None else _points(ctx.rows(uid), _QUANTITY[kind])
        span_start = ctx.local(inst.start)
        assert span_start is not None
        restarts = kind is DeviceKind.HEAT_COST_ALLOCATOR and _restarts(every, settings)
        per_device.setdefault(_MONTHLY_KIND[kind], []).append(
            (inst, ctx.in_span(inst, every), (span_start, ctx.local(inst.end)), restarts)
        )
    for kind_key, devices in per_device.items():
        for month in result[kind_key]:
            begin = _month_start(month) - dt.timedelta(days=1)  # the previous month's end
            end = _month_end(month)
            values: list[float] = []
            methods: list[str] = []
            reasons: list[str] = []
            for inst, points, local, restarts in devices:
                if local[0].date() > end or (
                    local[1] is not None
                    and local[1] <= dt.datetime.combine(begin + dt.timedelta(days=1), dt.time(0))
                ):
                    continue
                window = _window(
                    points, local, begin, end, fallback=True, restarts=restarts, billing=settings
                )
                methods.append(f"{inst.id}: {window.method}")
                if window.consumption is None:
                    reasons.append(f"{inst.id}: {window.reason}")
                    continue
                factor = 1.0
                if inst.kind == DeviceKind.HEAT_COST_ALLOCATOR:
                    if inst.rating is None:
                        reasons.append(f"{inst.id}: no rating factor")
                        continue
                    factor = inst.rating.factor
                values.append(window.consumption * factor)
            if not methods:
                continue
            value = None if reasons else sum(values)
            result[kind_key][month] = (value, " | ".join(methods), "; ".join(reasons) or None)
    return result


# --- smoke detector inspection -----------------------------------------------------------------------------


class SmokeFault(Record):
    """A fault to act on: its name, the event that raised it and when it was first seen (ISO time)."""

    fault: str
    event: str
    first_seen: str


class SmokeDetectorState(Record):
    """One detector's latest state at the report time; ``None`` where the device never told.

    ``battery_voltage_v`` in V; counters are numbers of events received; ``last_seen`` ISO time.
    """

    unit: str | None
    installation: str
    device_uid: str | None
    room: str | None
    last_seen: str | None
    chamber_soiled: bool | None
    battery_low: bool | None
    battery_voltage_v: float | None
    removed: bool | None
    obstacle: bool | None
    alarm_count: int
    test_count: int
    faults: tuple[SmokeFault, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing is to be acted on."""
        return not self.faults


class SmokeReport(Record):
    """DIN 14676-1 remote inspection of one building at ``at`` (ISO time, site-local)."""

    building: str
    at: str
    detectors: tuple[SmokeDetectorState, ...]
    rules: tuple[str, ...]

    def to_rows(self) -> list[Row]:
        """One row per fault, and one row per detector without faults."""
        rows: list[Row] = []
        for d in self.detectors:
            base: Row = {
                "unit": d.unit,
                "installation": d.installation,
                "room": d.room,
                "last_seen": d.last_seen,
                "chamber_soiled": d.chamber_soiled,
                "battery_low": d.battery_low,
                "battery_voltage_v": d.battery_voltage_v,
                "removed": d.removed,
                "obstacle": d.obstacle,
                "alarms": d.alarm_count,
                "tests": d.test_count,
            }
            if not d.faults:
                rows.append({**base, "fault": "", "first_seen": ""})
            for fault in d.faults:
                rows.append({**base, "fault": fault.fault, "first_seen": fault.first_seen})
        return rows


# Event names (after any manufacturer prefix such as "eie.") and the state field and fault they set.
_SMOKE_EVENTS: dict[str, tuple[str | None, str]] = {
    "smoke_chamber_soiled": ("chamber_soiled", "smoke chamber soiled"),
    "chamber_soiled": ("chamber_soiled", "smoke chamber soiled"),
    "soiled": ("chamber_soiled", "smoke chamber soiled"),
    "cleaning_recommended": ("chamber_soiled", "smoke chamber soiled"),
    "battery_low": ("battery_low", "battery low"),
    "low_battery": ("battery_low", "battery low"),
    "removed": ("removed", "removed from its mounting"),
    "removal": ("removed", "removed from its mounting"),
    "not_mounted": ("removed", "removed from its mounting"),
    "tamper_while_removed": ("removed", "removed from its mounting"),
    "tamper": (None, "tampering"),
    "obstacle_detected": ("obstacle", "obstacle in the surroundings"),
    "obstacle": ("obstacle", "obstacle in the surroundings"),
    "fully_covered": ("obstacle", "detector covered"),
    "sounder_fault": (None, "alarm sounder fault"),
    "alarm_sensor_fault": (None, "smoke sensor fault"),
    "obstacle_detector_fault": (None, "obstacle detector fault"),
    "head_communication_fault": (None, "detector head communication fault"),
    "interference_prevents_obstacle_detection": (None, "surroundings cannot be checked"),
    "end_of_life_reached": (None, "end of life reached"),
    "end_of_life_within_12_months": (None, "end of life within 12 months"),
    "environment_changed_since_installation": (None, "surroundings changed since installation"),
    "permanent_error": (None, "permanent error"),
    "temporary_error": (None, "temporary error"),
}
_ALARM_EVENTS = frozenset(("alarm", "smoke_alarm"))
_TEST_EVENTS = frozenset(("test", "test_alarm", "test_button"))
_CLEARED = "_cleared"
_CLEARED_LIST = "cleared"  # detail: the names of the faults that are clear, space-separated


def smoke_report(
    store: ReportStore, site: SiteRegistry, *, building: str, at: dt.datetime | None = None
) -> SmokeReport:
    """The remote inspection of every smoke detector installed in ``building`` at ``at`` (naive =
    site-local; default now): its latest state and every fault to act on with the time first seen.
    Raises :class:`ConfigError` for an unknown building."""
    site.building(building)
    ctx = _Context(store, site)
    moment = dt.datetime.now(ctx.tz) if at is None else at
    local_at = moment.astimezone(ctx.tz).replace(tzinfo=None) if moment.tzinfo is not None else moment
    limit = local_at.isoformat(timespec="minutes")
    # A detector with no faults may send no readings at all, so its status events name it too.
    candidates = _candidate_uids(store, building) | {event.device_uid for event in store.status_events()}
    states = [
        _smoke_state(ctx, inst, candidates, limit)
        for inst in site.installations(building=building, active_at=moment)
        if inst.kind == DeviceKind.SMOKE_DETECTOR
    ]
    states.sort(key=lambda s: (s.unit or "", s.installation))
    return SmokeReport(building=building, at=limit, detectors=tuple(states), rules=(RULE_SMOKE, RULE_JOIN))


def _smoke_state(
    ctx: _Context, inst: Installation, candidates: Iterable[str], limit: str
) -> SmokeDetectorState:
    uid = ctx.uid_of(inst, candidates)
    start = ctx.local(inst.start)
    assert start is not None
    since = start.isoformat(timespec="minutes")
    flags: dict[str, bool | None] = {
        "chamber_soiled": None,
        "battery_low": None,
        "removed": None,
        "obstacle": None,
    }
    active: dict[str, SmokeFault] = {}
    alarms = tests = 0
    last_seen: str | None = None
    voltage: float | None = None
    if uid is not None:
        for event in ctx.store.status_events(uid):
            if not since <= event.event_time[:16] <= limit:
                continue
            last_seen = max(last_seen or "", event.event_time)
            name = event.event.rsplit(".", 1)[-1].lower()
            if name == _CLEARED_LIST:
                named = [(cleared_name.lower(), True) for cleared_name in event.detail.split()]
            else:
                cleared = name.endswith(_CLEARED) or event.detail.strip().lower() == "cleared"
                named = [(name.removesuffix(_CLEARED), cleared)]
            for name, cleared in named:
                if name in _ALARM_EVENTS and not cleared:
                    alarms += 1
                elif name in _TEST_EVENTS and not cleared:
                    tests += 1
                elif name in _SMOKE_EVENTS:
                    field, fault = _SMOKE_EVENTS[name]
                    if field is not None:
                        flags[field] = not cleared
                    if cleared:
                        active.pop(name, None)
                    elif name not in active:
                        active[name] = SmokeFault(fault=fault, event=event.event, first_seen=event.event_time)
        for row in ctx.rows(uid):
            if not since <= row.reading_time <= limit:
                continue
            last_seen = max(last_seen or "", row.reading_time)
            if row.quantity == "voltage" and row.valid and row.value is not None and row.storage == 0:
                voltage = row.value * (1e-3 if row.unit == "mV" else 1.0)
    faults = list(active.values())
    if last_seen is None:
        faults.append(
            SmokeFault(
                fault="no data received: the remote inspection cannot verify this detector",
                event="",
                first_seen="",
            )
        )
    faults.sort(key=lambda f: (f.first_seen, f.fault))
    return SmokeDetectorState(
        unit=inst.unit,
        installation=inst.id,
        device_uid=uid,
        room=inst.room,
        last_seen=last_seen,
        chamber_soiled=flags["chamber_soiled"],
        battery_low=flags["battery_low"],
        battery_voltage_v=voltage,
        removed=flags["removed"],
        obstacle=flags["obstacle"],
        alarm_count=alarms,
        test_count=tests,
        faults=tuple(faults),
    )


# --- rendering --------------------------------------------------------------------------------------------

Report: TypeAlias = BillingReport | MonthlyReport | SmokeReport


def _cell(value: Cell, *, table: bool) -> str:
    if value is None:
        return "-" if table else ""
    if isinstance(value, bool):
        return ("yes" if value else "no") if table else str(value)
    if isinstance(value, float):
        return f"{value:.2f}" if table else repr(value)
    return str(value)


def render(report: Report, fmt: Literal["table", "csv", "json"]) -> str:
    """The report as an aligned text table (numbers to 2 decimals), CSV (full precision, header row)
    or JSON (the whole report including its rules)."""
    if fmt == "json":
        return msgspec.json.encode(report).decode()
    rows = report.to_rows()
    header = list(rows[0]) if rows else _empty_header(report)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(row[key], table=False) for key in header])
        return out.getvalue()
    if fmt != "table":
        raise ConfigError(f"unknown format {fmt!r} (table, csv or json)", "fmt")
    cells = [header, *([_cell(row[key], table=True) for key in header] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    numeric = [
        all(_is_number_text(line[i]) for line in cells[1:]) and len(cells) > 1 for i in range(len(header))
    ]
    lines = []
    for line in cells:
        parts = [
            text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]) for i, text in enumerate(line)
        ]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.extend(["", *(f"Rule: {rule}" for rule in report.rules)])
    return "\n".join(lines) + "\n"


def _is_number_text(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _empty_header(report: Report) -> list[str]:
    if isinstance(report, BillingReport):
        return list(_billing_row("", "", "", "", "", None, None, None, None, None, None, None, None, ""))
    if isinstance(report, MonthlyReport):
        return [
            "unit",
            "month",
            "kind",
            "measure",
            "consumption",
            "previous_month",
            "same_month_last_year",
            "note",
        ]
    return [
        "unit",
        "installation",
        "room",
        "last_seen",
        "chamber_soiled",
        "battery_low",
        "battery_voltage_v",
        "removed",
        "obstacle",
        "alarms",
        "tests",
        "fault",
        "first_seen",
    ]
