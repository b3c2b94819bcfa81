"""The simulated building through the whole pipeline: every reading it should produce is
stored exactly once, under the right unit, and every injected fault is rejected for its reason."""

from __future__ import annotations

import collections
import datetime as dt
import io
from pathlib import Path

import pytest

from minolcore.access import AuditLog, audit_key_for
from minolcore.access.db import connect
from minolcore.cli import main
from minolcore.pipeline import Pipeline
from minolcore.simulator import Simulation, simulate
from minolcore.store import SQLiteStore
from minolcore.store._reader import StoreReader

# The quantity and storage-0 value each simulated kind sends, as stored (energy in Wh).
MAIN_VALUE = {
    "heat_cost_allocator": ("hca_units", "hca_units", 1.0),
    "cold_water_meter": ("volume", "volume_m3", 1.0),
    "warm_water_meter": ("volume", "volume_m3", 1.0),
    "heat_meter": ("energy", "energy_kwh", 1000.0),
}


@pytest.fixture(scope="module")
def simulation() -> Simulation:
    return simulate(start=dt.date(2025, 1, 1), days=45, seed=5, units=3)


@pytest.fixture(scope="module")
def stored(simulation: Simulation) -> tuple[SQLiteStore, Pipeline]:
    store = SQLiteStore(":memory:")
    pipeline = Pipeline(site=simulation.site, keys=simulation.keys, store=store, gateways=simulation.gateways)
    pipeline.run(simulation.receptions, batch_size=3_000)
    return store, pipeline


def test_counts_match_the_ground_truth(simulation: Simulation, stored: tuple[SQLiteStore, Pipeline]) -> None:
    store, pipeline = stored
    stats = pipeline.stats()
    truth = simulation.truth
    assert stats.received == len(simulation.receptions)
    assert stats.uplinks == len(truth.uplinks)
    assert stats.decoded == len(truth.uplinks) and stats.not_decoded == {}
    assert stats.rejected == dict(truth.rejections)
    assert set(stats.rejected) == {"bad_crc", "replay", "unknown_device", "unknown_gateway"}
    assert stats.duplicates_merged == truth.duplicates
    assert stats.unassigned == 0
    assert store.rejected_by_reason() == dict(truth.rejections)
    # every reception is in an uplink or in the rejected stream
    assert store.counts()["receptions"] + sum(truth.rejections.values()) == len(simulation.receptions)


def test_every_reading_stored_once_under_its_unit(
    simulation: Simulation, stored: tuple[SQLiteStore, Pipeline]
) -> None:
    store, _ = stored
    current = collections.defaultdict(list)
    for row in StoreReader(store).readings():
        if row.storage == 0 and row.tariff == 0 and row.subunit == 0:
            current[(row.unit_id, row.reading_time, row.quantity)].append(row)
    checked = collections.Counter[str]()
    for expected in simulation.truth.uplinks:
        if expected.kind not in MAIN_VALUE:
            continue
        quantity, key, scale = MAIN_VALUE[expected.kind]
        rows = current[(expected.unit, expected.reading_time, quantity)]
        matching = [r for r in rows if r.value == pytest.approx(float(expected.values[key]) * scale)]
        assert len(matching) == 1, (expected.device, expected.reading_time, rows)
        assert matching[0].building_id == "B1"
        checked[expected.kind] += 1
    assert min(checked.values()) >= 45 and len(checked) == 4


def test_smoke_detector_states_are_recorded(
    simulation: Simulation, stored: tuple[SQLiteStore, Pipeline]
) -> None:
    store, _ = stored
    smoke = [u for u in simulation.truth.uplinks if u.kind == "smoke_detector"]
    events = StoreReader(store).status_events()
    assert {e.event_time for e in events} >= {u.reading_time for u in smoke[:5]}
    assert all(
        e.event == "cleared"
        or e.event in ("smoke_chamber_soiled", "not_mounted", "removed", "battery_low", "obstacle_detected")
        for e in events
    )


def test_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--days", "40", "--units", "2"]) == 0
    out = capsys.readouterr().out
    assert "rejections per reason as injected" in out
    assert "B1-01" in out and "heating (rated HCA)" in out
    assert (tmp_path / "minolcore.sqlite").is_file() and (tmp_path / "traffic.jsonl").is_file()
    # The monthly table was read through the access layer, as a billing clerk, and audited.
    key = audit_key_for(tmp_path / "minolcore.sqlite", {})
    log = AuditLog(connect(tmp_path / "minolcore.sqlite"), key, clock=lambda: 0.0)
    assert log.verify().ok
    entry = log.records()[-1].data()
    assert (entry["action"], entry["decision"], entry["grants"]) == (
        "report_monthly",
        "allow",
        ["staff:billing"],
    )
    text = io.StringIO()
    assert (
        main(
            [
                "report",
                "billing",
                "--db",
                str(tmp_path / "minolcore.sqlite"),
                "--period",
                "2024-12-31:2025-12-31",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    text.write(capsys.readouterr().out)
    assert text.getvalue().splitlines()[0].startswith("row,unit")
