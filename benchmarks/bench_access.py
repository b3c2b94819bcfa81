"""The cost of the access layer: one unit's monthly values for a year, read straight from the
store and through :class:`~minolcore.access.AccessLayer` (grant check, purpose filter, audit append).

Run: ``python -m pytest benchmarks/bench_access.py --benchmark-only``; the ratio of the two
medians is stored in the guarded benchmark's extra info (goal: under 1.2).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from minolcore.access import AccessLayer, LegalBasis, Principal, Purpose, Role
from minolcore.site import SiteRegistry, WMBusAddress
from minolcore.store import SQLiteStore
from minolcore.store._reader import StoreReader
from minolcore.store.base import DeviceRow, ReadingRow, StoreBatch

UNITS = 20
DEVICES_PER_UNIT = 8  # 6 heat cost allocators, cold and warm water
YEAR = ("2024-01-01", "2024-12-31T23:59")
ADMIN = Principal(id="staff-admin", role=Role.OPERATOR, staff_role="admin")
TENANT = Principal(id="tenant-7", role=Role.TENANT)
_medians: dict[str, float] = {}


def _uid(unit: int, device: int) -> tuple[str, str, str]:
    meter = f"{unit:04d}{device:04d}"
    kind = "heat_cost_allocator" if device < 6 else "water_meter"
    return f"wmbus:QDS:{meter}", meter, kind


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[SQLiteStore, AccessLayer]:
    """A building of 20 units with two years of daily current values and month-end history."""
    path: Path = tmp_path_factory.mktemp("bench-access") / "data.db"
    store = SQLiteStore(path)
    site = SiteRegistry("Europe/Berlin")
    site.add_building("B1", "bench")
    rows: list[ReadingRow] = []
    devices: list[DeviceRow] = []
    for unit in range(UNITS):
        unit_id = f"U{unit}"
        site.add_unit(unit_id, "B1", unit_id, 60.0)
        for device in range(DEVICES_PER_UNIT):
            uid, meter, kind = _uid(unit, device)
            site_kind = "heat_cost_allocator" if device < 6 else "cold_water_meter"
            site.install(WMBusAddress.of("QDS", meter), dt.date(2020, 1, 1), kind=site_kind, unit=unit_id)
            devices.append(
                DeviceRow(
                    device_uid=uid,
                    radio="wmbus",
                    manufacturer="QDS",
                    meter_id=meter,
                    version=1,
                    device_type=8,
                    kind=kind,
                )
            )
            day = dt.date(2023, 1, 1)
            while day <= dt.date(2024, 12, 31):
                storage = 2 if (day + dt.timedelta(days=1)).day == 1 else 0
                rows.append(
                    ReadingRow(
                        device_uid=uid,
                        reading_time=f"{day.isoformat()}T23:59",
                        quantity="hca_units",
                        storage=storage,
                        tariff=0,
                        subunit=0,
                        function="instantaneous",
                        value=float(day.toordinal() % 997),
                        unit="",
                        valid=True,
                        building_id="B1",
                        unit_id=unit_id,
                        uplink_key=f"{uid}-{day}",
                    )
                )
                day += dt.timedelta(days=1)
    site.add_tenancy("U7", "tenant-7", dt.date(2022, 1, 1))
    store.write(StoreBatch(devices=devices, readings=rows))
    layer = AccessLayer(store, site, audit_key=b"b" * 32)
    layer.grants.grant(
        ADMIN,
        principal_id="tenant-7",
        building="B1",
        unit="U7",
        purpose=Purpose.CONSUMPTION_INFO,
        basis=LegalBasis.LEGAL_OBLIGATION,
    )
    return store, layer


def _record(benchmark: Any, name: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[name] = stats.stats.median


def test_monthly_year_direct(benchmark: Any, setup: tuple[SQLiteStore, AccessLayer]) -> None:
    store, _ = setup

    def read() -> list[ReadingRow]:
        # What a caller without the layer does: the unit's year, then its month-end values.
        return [
            r
            for r in StoreReader(store).readings(unit_id="U7", since=YEAR[0], until=YEAR[1])
            if r.storage >= 1
        ]

    result = benchmark(read)
    assert len(result) == 12 * DEVICES_PER_UNIT
    _record(benchmark, "direct")


def test_monthly_year_guarded(benchmark: Any, setup: tuple[SQLiteStore, AccessLayer]) -> None:
    _, layer = setup

    def read() -> int:
        return len(
            layer.readings(
                TENANT, Purpose.CONSUMPTION_INFO, building="B1", unit="U7", since=YEAR[0], until=YEAR[1]
            )
        )

    assert benchmark(read) == 12 * DEVICES_PER_UNIT
    _record(benchmark, "guarded")
    if "direct" in _medians and "guarded" in _medians:
        benchmark.extra_info["ratio_to_direct"] = round(_medians["guarded"] / _medians["direct"], 3)
