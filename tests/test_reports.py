"""The report computations over a store filled by hand: every expected figure is worked out from
the inserted numbers. They are internal (:mod:`minolcore._reports`); embedding code gets reports
from the access layer, whose tests check who may see which report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from minolcore._reports import (
    BillingReport,
    UnitBilling,
    billing_report,
    monthly_report,
    render,
    smoke_report,
)
from minolcore.errors import ConfigError
from minolcore.site import BillingSettings, RatingFactors, SiteRegistry, WMBusAddress
from minolcore.store import SQLiteStore
from minolcore.store._reader import StoreReader
from minolcore.store.base import DeviceRow, ReadingRow, StatusEventRow, StoreBatch

PERIOD = (dt.date(2023, 12, 31), dt.date(2024, 12, 31))


def _addr(man: str, meter_id: str) -> WMBusAddress:
    return WMBusAddress.of(man, meter_id)


def make_site() -> SiteRegistry:
    site = SiteRegistry("Europe/Berlin")
    billing = BillingSettings(
        due_month=12, due_day=31, heating_consumption_percent=70.0, hot_water_consumption_percent=50.0
    )
    site.add_building("B1", "Lindenstrasse 5", billing=billing)
    site.add_building("B2", "Ahornweg 2", billing=billing)
    site.add_unit("U1", "B1", "ground floor", 80.0)
    site.add_unit("U2", "B1", "first floor", 40.0)
    site.add_unit("U3", "B2", "attic", 50.0)
    d2020 = dt.date(2020, 1, 1)
    site.install(
        _addr("QDS", "00000001"),
        d2020,
        kind="heat_cost_allocator",
        unit="U1",
        rating=RatingFactors(combined=1.2),
        installation_id="U1-hca",
    )
    site.install(
        _addr("QDS", "00000002"),
        d2020,
        kind="heat_cost_allocator",
        unit="U2",
        rating=RatingFactors(kq=1.0, kc=0.9),
        installation_id="U2-hca",
    )
    site.install(
        _addr("QDS", "00000003"),
        d2020,
        kind="heat_cost_allocator",
        unit="U3",
        rating=RatingFactors(combined=2.0),
        installation_id="U3-hca",
    )
    # Cold-water meter swapped: the old one's last day in service is 2024-06-30.
    site.install(
        _addr("ZRI", "40000001"), d2020, kind="cold_water_meter", unit="U1", installation_id="U1-cw-old"
    )
    site.remove(_addr("ZRI", "40000001"), dt.date(2024, 6, 30))
    site.install(
        _addr("ZRI", "40000002"),
        dt.date(2024, 7, 1),
        kind="cold_water_meter",
        unit="U1",
        installation_id="U1-cw-new",
    )
    site.install(_addr("ZRI", "50000001"), d2020, kind="warm_water_meter", unit="U2", installation_id="U2-ww")
    for meter_id, unit, name in (
        ("60000001", "U1", "U1-smoke"),
        ("60000002", "U2", "U2-smoke"),
        ("60000003", "U2", "U2-smoke-hall"),
    ):
        site.install(_addr("EIE", meter_id), d2020, kind="smoke_detector", unit=unit, installation_id=name)
    site.add_tenancy("U2", "T-A", dt.date(2020, 1, 1), dt.date(2024, 4, 30))
    site.add_tenancy("U2", "T-B", dt.date(2024, 5, 1))
    return site


def _r(
    uid: str, when: str, quantity: str, value: float, unit: str, storage: int, where: tuple[str, str]
) -> ReadingRow:
    return ReadingRow(
        device_uid=uid,
        reading_time=when,
        quantity=quantity,
        storage=storage,
        tariff=0,
        subunit=0,
        function="instantaneous",
        value=value,
        unit=unit,
        valid=True,
        building_id=where[0],
        unit_id=where[1],
        uplink_key=f"{uid}-{when}-{storage}",
    )


U1, U2, U3 = ("B1", "U1"), ("B1", "U2"), ("B2", "U3")
HCA_A, HCA_B, HCA_C = "wmbus:QDS:00000001", "wmbus:QDS:00000002", "wmbus:QDS:00000003"
CW_OLD, CW_NEW, WW = "wmbus:ZRI:40000001", "wmbus:ZRI:40000002", "wmbus:ZRI:50000001"


def fill(store: SQLiteStore) -> None:
    rows = [
        # HCA A (U1, factor 1.2) restarts after the due date: 400 on 2023-12-31, then 10 on 2024-01-15.
        _r(HCA_A, "2023-12-31T00:00", "hca_units", 400, "HCA", 1, U1),
        _r(HCA_A, "2024-01-15T09:00", "hca_units", 10, "HCA", 0, U1),
        _r(HCA_A, "2024-12-31T00:00", "hca_units", 500, "HCA", 1, U1),
        # HCA B (U2, factor 0.9) never restarts: cumulative. Interim value on the tenant change day.
        _r(HCA_B, "2023-12-31T00:00", "hca_units", 300, "HCA", 1, U2),
        _r(HCA_B, "2024-04-30T12:00", "hca_units", 380, "HCA", 0, U2),
        _r(HCA_B, "2024-06-30T00:00", "hca_units", 450, "HCA", 2, U2),
        _r(HCA_B, "2024-12-31T00:00", "hca_units", 700, "HCA", 1, U2),
        # HCA C (U3, factor 2.0): month-end values for the monthly information.
        _r(HCA_C, "2023-02-28T00:00", "hca_units", 100, "HCA", 2, U3),
        _r(HCA_C, "2023-03-31T00:00", "hca_units", 130, "HCA", 2, U3),
        _r(HCA_C, "2024-01-31T00:00", "hca_units", 470, "HCA", 2, U3),
        _r(HCA_C, "2024-02-29T00:00", "hca_units", 500, "HCA", 2, U3),
        _r(HCA_C, "2024-03-31T00:00", "hca_units", 520, "HCA", 2, U3),
        _r(HCA_C, "2024-04-20T08:00", "hca_units", 535, "HCA", 0, U3),
        # Cold water, old meter (liters in the store): 100 m3 at the due date, 125 at May's end, 130 last.
        _r(CW_OLD, "2023-12-31T00:00", "volume", 100_000, "l", 1, U1),
        _r(CW_OLD, "2024-05-31T00:00", "volume", 125_000, "l", 2, U1),
        _r(CW_OLD, "2024-06-30T10:00", "volume", 130_000, "l", 0, U1),
        # New meter from 2024-07-01: first value 0.5 m3, 3.5 at July's end, 20.5 at the due date.
        _r(CW_NEW, "2024-07-01T09:00", "volume", 0.5, "m3", 0, U1),
        _r(CW_NEW, "2024-07-31T00:00", "volume", 3.5, "m3", 2, U1),
        _r(CW_NEW, "2024-12-31T00:00", "volume", 20.5, "m3", 1, U1),
        # Warm water in U2: 10 -> 25 m3.
        _r(WW, "2023-12-31T00:00", "volume", 10, "m3", 1, U2),
        _r(WW, "2024-12-31T00:00", "volume", 25, "m3", 1, U2),
        _r("wmbus:EIE:60000001", "2024-06-02T08:00", "voltage", 3.05, "V", 0, U1),
    ]
    events = [
        StatusEventRow(device_uid="wmbus:EIE:60000001", event_time="2024-02-01T03:00", event="alarm"),
        StatusEventRow(
            device_uid="wmbus:EIE:60000001", event_time="2024-03-01T10:00", event="eie.cleaning_recommended"
        ),
        StatusEventRow(device_uid="wmbus:EIE:60000001", event_time="2024-05-01T10:00", event="battery_low"),
        StatusEventRow(
            device_uid="wmbus:EIE:60000001", event_time="2024-05-20T10:00", event="battery_low_cleared"
        ),
        StatusEventRow(
            device_uid="wmbus:EIE:60000001", event_time="2024-06-01T10:00", event="eie.obstacle_detected"
        ),
        StatusEventRow(
            device_uid="wmbus:EIE:60000001", event_time="2024-06-05T10:00", event="eie.obstacle_detected"
        ),
        StatusEventRow(device_uid="wmbus:EIE:60000002", event_time="2024-04-02T08:00", event="removed"),
    ]
    # One device known to the device table under an unrelated uid: the join must use the table.
    devices = [
        DeviceRow(
            device_uid=HCA_B,
            radio="wmbus",
            manufacturer="QDS",
            meter_id="00000002",
            version=1,
            device_type=8,
            kind="heat_cost_allocator",
        )
    ]
    store.write(StoreBatch(devices=devices, readings=rows, status_events=events))


@pytest.fixture
def site() -> SiteRegistry:
    return make_site()


@pytest.fixture
def store() -> StoreReader:
    db = SQLiteStore(":memory:")
    fill(db)
    return StoreReader(db)


def _unit(report: BillingReport, unit_id: str) -> UnitBilling:
    return next(u for u in report.units if u.unit == unit_id)


# --- billing --------------------------------------------------------------------------------------------


def test_billing_consumption_rating_and_swap(store: StoreReader, site: SiteRegistry) -> None:
    report = billing_report(store, site, building="B1", period=PERIOD)
    u1, u2 = _unit(report, "U1"), _unit(report, "U2")
    # HCA A restarts after each due date, so its due-date value 500 is the year's consumption.
    assert u1.hca_units == pytest.approx(500)
    assert u1.rated_hca == pytest.approx(500 * 1.2)
    # HCA B is cumulative: 700 - 300 units, factor 1.0 x 0.9.
    assert u2.hca_units == pytest.approx(400)
    assert u2.rated_hca == pytest.approx(400 * 0.9)
    assert report.total_rated_hca == pytest.approx(600 + 360)
    assert u1.share == pytest.approx(600 / 960)
    assert u2.share == pytest.approx(360 / 960)
    # Swap: old meter 100 -> 130 m3 (liters converted), new meter 0.5 -> 20.5 m3.
    assert u1.cold_water_m3 == pytest.approx(30 + 20)
    old = next(d for d in u1.devices if d.installation == "U1-cw-old")
    new = next(d for d in u1.devices if d.installation == "U1-cw-new")
    assert (old.start_value, old.end_value, old.consumption) == pytest.approx((100, 130, 30))
    assert (new.start_value, new.end_value, new.consumption) == pytest.approx((0.5, 20.5, 20))
    assert "last value before removal" in old.method
    assert "first value after installation" in new.method
    assert u2.warm_water_m3 == pytest.approx(15)
    assert u1.reason is None and u2.reason is None
    assert any("§ 7" not in r and "restart" in r for r in report.rules)
    # No costs given: no split, and the rules do not claim one.
    assert u1.total_cost is None
    assert not any("§ 7 (1)" in r for r in report.rules)


def test_billing_cost_split_and_tenant_change(store: StoreReader, site: SiteRegistry) -> None:
    report = billing_report(store, site, building="B1", period=PERIOD, heating_costs=10_000.0)
    u1, u2 = _unit(report, "U1"), _unit(report, "U2")
    # 70 % by rated consumption (600 : 360), 30 % by area (80 : 40 m2).
    assert u1.consumption_cost == pytest.approx(7000 * 600 / 960)  # 4375
    assert u2.consumption_cost == pytest.approx(7000 * 360 / 960)  # 2625
    assert u1.rest_cost == pytest.approx(3000 * 80 / 120)  # 2000
    assert u2.rest_cost == pytest.approx(3000 * 40 / 120)  # 1000
    assert u1.total_cost == pytest.approx(6375)
    assert u2.total_cost == pytest.approx(3625)
    assert any("70 %" in r and "§ 7" in r for r in report.rules)
    # Tenant change in U2 on 2024-04-30: interim value 380 -> T-A (380-300) x 0.9, T-B (700-380) x 0.9.
    t_a, t_b = u2.tenants
    assert (t_a.tenant, t_a.first_day, t_a.last_day, t_a.days) == ("T-A", "2024-01-01", "2024-04-30", 121)
    assert (t_b.tenant, t_b.days) == ("T-B", 245)
    assert t_a.method == "interim reading"
    assert t_a.rated == pytest.approx(72) and t_b.rated == pytest.approx(288)
    assert t_a.consumption_cost == pytest.approx(2625 * 72 / 360)
    assert t_b.consumption_cost == pytest.approx(2625 * 288 / 360)
    assert t_a.rest_cost == pytest.approx(1000 * 121 / 366)
    assert t_b.rest_cost == pytest.approx(1000 * 245 / 366)
    assert u1.tenants == ()


def test_billing_consumption_share_override_and_limits(store: StoreReader, site: SiteRegistry) -> None:
    report = billing_report(
        store, site, building="B1", period=PERIOD, heating_costs=1000.0, consumption_share=50
    )
    assert _unit(report, "U1").consumption_cost == pytest.approx(500 * 600 / 960)
    assert _unit(report, "U1").rest_cost == pytest.approx(500 * 80 / 120)
    with pytest.raises(ConfigError):
        billing_report(store, site, building="B1", period=PERIOD, heating_costs=1000.0, consumption_share=80)


def test_billing_missing_values_give_none_with_reason(store: StoreReader, site: SiteRegistry) -> None:
    report = billing_report(
        store,
        site,
        building="B1",
        period=(dt.date(2022, 12, 31), dt.date(2023, 12, 31)),
        heating_costs=1000.0,
    )
    u1 = _unit(report, "U1")
    hca = next(d for d in u1.devices if d.installation == "U1-hca")
    assert hca.consumption is None and hca.reason == "start: no value on 2022-12-31"
    assert u1.rated_hca is None and u1.share is None and u1.consumption_cost is None
    assert u1.reason is not None and "U1-hca" in u1.reason
    # The part by area does not depend on readings.
    assert u1.rest_cost == pytest.approx(300 * 80 / 120)


def test_billing_bad_input(store: StoreReader, site: SiteRegistry) -> None:
    with pytest.raises(ConfigError, match="unknown building"):
        billing_report(store, site, building="NOPE", period=PERIOD)
    with pytest.raises(ConfigError, match="period"):
        billing_report(store, site, building="B1", period=(PERIOD[1], PERIOD[0]))


def test_empty_store_gives_empty_figures(site: SiteRegistry) -> None:
    empty = StoreReader(SQLiteStore(":memory:"))
    report = billing_report(empty, site, building="B1", period=PERIOD, heating_costs=100.0)
    assert [u.unit for u in report.units] == ["U1", "U2"]
    assert all(u.rated_hca is None and u.reason for u in report.units)
    assert all(d.reason == "no data from this device" for u in report.units for d in u.devices)
    monthly = monthly_report(empty, site, building="B2", months=(dt.date(2024, 1, 1), dt.date(2024, 2, 1)))
    assert [r.consumption for r in monthly.rows] == [None, None]
    smoke = smoke_report(empty, site, building="B1", at=dt.datetime(2024, 7, 1))
    assert all(len(d.faults) == 1 and "no data" in d.faults[0].fault for d in smoke.detectors)
    for fmt in ("table", "csv", "json"):
        assert render(report, fmt)


# --- monthly --------------------------------------------------------------------------------------------


def test_monthly_heating_with_comparisons(store: StoreReader, site: SiteRegistry) -> None:
    report = monthly_report(store, site, unit="U3", months=(dt.date(2024, 3, 1), dt.date(2024, 4, 1)))
    march, april = report.rows
    # March 2024: (520 - 500) x 2.0; February: (500 - 470) x 2.0; March 2023: (130 - 100) x 2.0.
    assert (march.month, march.kind, march.measure) == ("2024-03", "heating", "rated HCA")
    assert march.consumption == pytest.approx(40)
    assert march.previous_month == pytest.approx(60)
    assert march.same_month_last_year == pytest.approx(60)
    # April has no month-end record: the last value of the month (535) is used and marked.
    assert april.consumption == pytest.approx((535 - 520) * 2.0)
    assert april.previous_month == pytest.approx(40)
    assert april.same_month_last_year is None
    assert "last value within the month" in april.method
    assert any("§ 6a" in r for r in report.rules)


def test_monthly_swap_and_restart(store: StoreReader, site: SiteRegistry) -> None:
    report = monthly_report(
        store, site, building="B1", unit="U1", months=(dt.date(2024, 1, 1), dt.date(2024, 7, 1))
    )
    by = {(r.kind, r.month): r for r in report.rows}
    # HCA A restarts after 2023-12-31 (400): January = 10 units x 1.2.
    assert by["heating", "2024-01"].consumption == pytest.approx(12)
    # June: old meter 125 -> 130 m3 (last value before removal); July: new meter 0.5 -> 3.5 m3.
    assert by["cold_water", "2024-06"].consumption == pytest.approx(5)
    assert by["cold_water", "2024-07"].consumption == pytest.approx(3)
    assert by["cold_water", "2024-07"].previous_month == pytest.approx(5)
    # February: no value in January's end nor in February at all.
    feb = by["cold_water", "2024-02"]
    assert feb.consumption is None and feb.reason is not None


def test_monthly_bad_input(store: StoreReader, site: SiteRegistry) -> None:
    months = (dt.date(2024, 1, 1), dt.date(2024, 2, 1))
    with pytest.raises(ConfigError, match="unknown unit"):
        monthly_report(store, site, unit="NOPE", months=months)
    with pytest.raises(ConfigError, match="unknown building"):
        monthly_report(store, site, building="NOPE", months=months)
    with pytest.raises(ConfigError, match="belongs to building"):
        monthly_report(store, site, building="B1", unit="U3", months=months)
    with pytest.raises(ConfigError):
        monthly_report(store, site, months=months)
    with pytest.raises(ConfigError, match="months"):
        monthly_report(store, site, unit="U1", months=(months[1], months[0]))


# --- smoke detectors ----------------------------------------------------------------------------------------


def test_smoke_report_lists_every_fault(store: StoreReader, site: SiteRegistry) -> None:
    report = smoke_report(store, site, building="B1", at=dt.datetime(2024, 7, 1))
    by = {d.installation: d for d in report.detectors}
    assert set(by) == {"U1-smoke", "U2-smoke", "U2-smoke-hall"}
    s1 = by["U1-smoke"]
    assert s1.unit == "U1"
    assert [(f.fault, f.first_seen) for f in s1.faults] == [
        ("smoke chamber soiled", "2024-03-01T10:00"),
        ("obstacle in the surroundings", "2024-06-01T10:00"),
    ]
    assert s1.chamber_soiled is True and s1.obstacle is True and s1.battery_low is False
    assert s1.battery_voltage_v == pytest.approx(3.05)
    assert s1.alarm_count == 1 and s1.test_count == 0
    assert by["U2-smoke"].unit == "U2"
    assert [(f.fault, f.first_seen) for f in by["U2-smoke"].faults] == [
        ("removed from its mounting", "2024-04-02T08:00")
    ]
    assert by["U2-smoke"].removed is True
    assert "no data" in by["U2-smoke-hall"].faults[0].fault
    # Before the faults were raised, only the alarm is known.
    early = smoke_report(store, site, building="B1", at=dt.datetime(2024, 2, 15))
    assert {d.installation: d.faults for d in early.detectors}["U1-smoke"] == ()
    with pytest.raises(ConfigError, match="unknown building"):
        smoke_report(store, site, building="NOPE")


def test_a_cleared_event_clears_every_fault_it_names(site: SiteRegistry) -> None:
    db = SQLiteStore(":memory:")
    fill(db)
    clear = StatusEventRow(
        device_uid="wmbus:EIE:60000002",
        event_time="2024-05-01T10:00",
        event="cleared",
        detail="battery_low removed smoke_chamber_soiled",
    )
    db.write(StoreBatch(status_events=[clear]))
    report = smoke_report(StoreReader(db), site, building="B1", at=dt.datetime(2024, 7, 1))
    detector = {d.installation: d for d in report.detectors}["U2-smoke"]
    assert detector.faults == ()
    assert detector.removed is False and detector.battery_low is False and detector.chamber_soiled is False
    assert detector.obstacle is None  # not named: not known


# --- rendering --------------------------------------------------------------------------------------------


def test_render_formats(store: StoreReader, site: SiteRegistry) -> None:
    report = billing_report(store, site, building="B1", period=PERIOD, heating_costs=10_000.0)
    table = render(report, "table")
    for number in ("6375.00", "3625.00", "600.00", "360.00", "0.62"):
        assert number in table
    assert "Rule:" in table
    rows = report.to_rows()
    parsed = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    expected = [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
    assert parsed == expected
    assert float(next(r for r in parsed if r["row"] == "unit" and r["unit"] == "U1")["total_cost"]) == 6375
    data = json.loads(render(report, "json"))
    assert data["total_rated_hca"] == pytest.approx(960)
    assert data["units"][0]["unit"] == "U1"
    smoke = smoke_report(store, site, building="B1", at=dt.datetime(2024, 7, 1))
    assert "smoke chamber soiled" in render(smoke, "table")
    assert len(list(csv.DictReader(io.StringIO(render(smoke, "csv"))))) == len(smoke.to_rows()) == 4
    monthly = monthly_report(store, site, unit="U3", months=(dt.date(2024, 3, 1), dt.date(2024, 3, 1)))
    assert "40.00" in render(monthly, "table")
    assert json.loads(render(monthly, "json"))["rows"][0]["consumption"] == pytest.approx(40)
