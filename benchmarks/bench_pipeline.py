"""The whole data path on the simulated building: receptions/s from gateway copies to
rows in SQLite (network server, decryption, records, device models, assignment, store).

    python -m pytest benchmarks/bench_pipeline.py --benchmark-only --benchmark-columns=median,rounds
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import record_rate
from minolcore.pipeline import Pipeline
from minolcore.simulator import Simulation, simulate
from minolcore.store import SQLiteStore


@pytest.fixture(scope="module")
def demo_year() -> Simulation:
    return simulate(start=dt.date(2025, 1, 1), days=365, seed=1, units=6)


def test_pipeline_demo_year_into_sqlite(benchmark: Any, demo_year: Simulation, tmp_path: Path) -> None:
    runs = iter(range(1_000))

    def run() -> int:
        store = SQLiteStore(tmp_path / f"run-{next(runs)}.sqlite")
        pipeline = Pipeline(
            site=demo_year.site, keys=demo_year.keys, store=store, gateways=demo_year.gateways
        )
        stats = pipeline.run(demo_year.receptions)
        store.close()
        return stats.uplinks

    assert benchmark.pedantic(run, rounds=3, iterations=1) == len(demo_year.truth.uplinks)
    record_rate(benchmark, "receptions_per_s", len(demo_year.receptions))


def test_simulate_demo_year(benchmark: Any) -> None:
    simulation = benchmark.pedantic(
        simulate,
        kwargs={"start": dt.date(2025, 1, 1), "days": 365, "seed": 1, "units": 6},
        rounds=3,
        iterations=1,
    )
    assert len(simulation.receptions) > 20_000
