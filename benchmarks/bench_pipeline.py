"""The whole data path on the simulated building: receptions/s from gateway copies to
rows in SQLite (network server, decryption, records, device models, assignment, store),
with Reception objects (the demo) and from a collector log (the ingest job).

    python -m pytest benchmarks/bench_pipeline.py --benchmark-only --benchmark-columns=median,rounds
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.conftest import record_rate
from minolcore import _native, pipeline_fast
from minolcore._batch_readings import UplinkPlaces, merge_reading_rows
from minolcore._layout_plans import ReadingColumn, ReadingTimes, telegram_rows
from minolcore._reference.receptions import join_receptions_into
from minolcore.errors import MinolcoreError
from minolcore.ingest import fewer_collections, ingest_files
from minolcore.pipeline import Pipeline
from minolcore.simulator import Simulation, simulate, write_collector_log
from minolcore.store import SQLiteStore
from minolcore.store.base import ReadingBlock, ReceptionRow, StoreBatch
from minolcore.store.receptions import encode_reception_columns, encode_receptions, join_receptions_native
from minolcore.wmbus.frame import parse_frame


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


@pytest.fixture(scope="module")
def collector_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Path, int]:
    """120 days of a 30-flat building as one collector upload (3 gateways, every fault)."""
    simulation = simulate(start=dt.date(2025, 1, 1), days=120, seed=3, units=30)
    path = tmp_path_factory.mktemp("ingest") / "log.jsonl"
    lines = write_collector_log(path, simulation.receptions)
    return simulation, path, lines


@pytest.mark.parametrize("checkpoints", ["background", "at_commit"])
def test_ingest_collector_log_into_sqlite(
    benchmark: Any, collector_log: tuple[Simulation, Path, int], tmp_path: Path, checkpoints: str
) -> None:
    # What `minolcore ingest` does per file: the columnar path, pooled store transactions,
    # garbage collected after each store write rather than by allocation count, WAL
    # checkpoints on their own thread ("at_commit": SQLite's own, inside the commits).
    simulation, path, lines = collector_log
    runs = iter(range(1_000))

    def run() -> int:
        store = SQLiteStore(
            tmp_path / f"ingest-{next(runs)}.sqlite", checkpoint_in_background=checkpoints == "background"
        )
        pipeline = Pipeline(
            site=simulation.site, keys=simulation.keys, store=store, gateways=simulation.gateways
        )
        with fewer_collections():
            summary = ingest_files([path], pipeline)
        store.close()
        return summary.lines

    assert benchmark.pedantic(run, rounds=3, iterations=1) == lines
    record_rate(benchmark, "receptions_per_s", lines)


@pytest.fixture(scope="module")
def mode7_telegrams(demo_year: Simulation) -> list[tuple[bytes, Any]]:
    """The demo year's distinct mode-7 telegrams (canonical frames) with their meters' keys
    (the unregistered meter has none and is left out)."""
    found: dict[bytes, Any] = {}
    declared = demo_year.site.gateway_crc
    for reception in demo_year.receptions:
        try:
            # Read as the network stage reads it: corrupted copies fail their gateway's CRCs.
            frame = parse_frame(reception.payload, crc=declared.get(reception.gateway_id, "auto"))
        except MinolcoreError:
            continue
        if frame.afl is not None and frame.tpl is not None and frame.tpl.security_mode == 7:
            address = frame.meter_address
            key = demo_year.keys.oms_key(
                address.manufacturer_code, address.id_value, address.version, address.device_type
            )
            if key is not None:
                found[frame.data] = key
    return list(found.items())


@pytest.mark.parametrize("path", ["bytes", "objects"])
def test_mode7_unseal_per_telegram(
    benchmark: Any, mode7_telegrams: list[tuple[bytes, Any]], path: str
) -> None:
    # The columnar path's mode-7 step: straight from the bytes, or through the frame objects.
    unseal = pipeline_fast._unseal_mode7 if path == "bytes" else pipeline_fast._unseal_mode7_objects

    def run() -> int:
        return sum(unseal(frame, key) is not None for frame, key in mode7_telegrams)

    assert benchmark.pedantic(run, rounds=5, iterations=1) == len(mode7_telegrams) > 1_000
    record_rate(benchmark, "telegrams_per_s", len(mode7_telegrams))


STORED_UPLINKS = 100_000


@pytest.fixture(scope="module")
def copy_columns() -> tuple[Any, ...]:
    """Per copy: uplink, gateway index, time (ms), RSSI (dBm), SNR (NaN), as the columnar
    path has them: 100,000 uplinks heard by one to three of three gateways."""
    rng = np.random.default_rng(5)
    heard = rng.integers(1, 4, STORED_UPLINKS)
    uplink = np.repeat(np.arange(STORED_UPLINKS), heard)
    gateway = np.concatenate([rng.permutation(3)[:n] for n in heard.tolist()])
    times = 1_704_081_572_337 + uplink * 731 + rng.integers(0, 40, len(uplink))
    rssi = np.round(rng.uniform(-110, -50, len(uplink)), 1)
    return uplink, gateway, times, rssi, np.full(len(uplink), np.nan)


@pytest.mark.parametrize("path", ["columns", "objects"])
def test_stored_receptions(benchmark: Any, copy_columns: tuple[Any, ...], path: str) -> None:
    """Each uplink's receptions in their stored form: from columns (joined in the C core), or
    as ReceptionRow objects put in order and encoded one uplink at a time."""
    uplink, gateway, times, rssi, snr = copy_columns
    names = ("GW-1", "GW-2", "GW-3")
    rows: list[list[ReceptionRow]] = [[] for _ in range(STORED_UPLINKS)]
    for u, g, t, r in zip(uplink.tolist(), gateway.tolist(), times.tolist(), rssi.tolist(), strict=True):
        rows[u].append(ReceptionRow(gateway_id=names[g], received_at_ms=t, rssi=r))

    def columns() -> list[str]:
        return encode_reception_columns(STORED_UPLINKS, uplink, gateway, names, times, rssi, snr).texts

    def objects() -> list[str]:
        return [encode_receptions(copies)[2] for copies in rows]

    texts = benchmark.pedantic(columns if path == "columns" else objects, rounds=5, iterations=1)
    assert texts == objects()
    record_rate(benchmark, "uplinks_per_s", STORED_UPLINKS)


@pytest.mark.parametrize("backend", ["C", "reference"])
def test_join_receptions(benchmark: Any, copy_columns: tuple[Any, ...], backend: str) -> None:
    """mc_join_receptions against its pure-Python twin (on a tenth of the uplinks)."""
    uplink, gateway, times, _, _ = copy_columns
    uplinks = STORED_UPLINKS if backend == "C" else STORED_UPLINKS // 10
    copies = int(np.searchsorted(uplink, uplinks))
    starts = np.searchsorted(uplink[:copies], np.arange(uplinks + 1)).astype(np.int64)
    pieces = [b'"GW-1"', b'"GW-2"', b'"GW-3"', b"null", b"-70.5"]
    piece_offsets = np.concatenate(([0], np.cumsum([len(p) for p in pieces]))).astype(np.int64)
    gateway_piece = gateway[:copies].astype(np.int32)
    level = np.full(copies, 4, dtype=np.int32)
    null = np.full(copies, 3, dtype=np.int32)
    ms = times[:copies].astype(np.int64)
    out = np.empty(copies * 64 + 2 * uplinks, dtype=np.uint8)
    out_offsets = np.empty(uplinks + 1, dtype=np.int64)
    joined = b"".join(pieces)

    join = join_receptions_native if backend == "C" else join_receptions_into

    def run() -> int:
        return join(starts, gateway_piece, ms, level, null, joined, piece_offsets, out, out_offsets)

    if backend == "C" and _native.BACKEND != "cffi":
        pytest.fail("the C join's benchmark needs the C core")
    written = benchmark.pedantic(run, rounds=5, iterations=1)
    assert written == out_offsets[-1] > 0
    record_rate(benchmark, "uplinks_per_s", uplinks)


BATCH_UPLINKS = 10_000  # a 20,000-line ingest batch holds about this many uplinks
BATCH_METERS = 500


@pytest.fixture(scope="module")
def reading_columns() -> tuple[Any, ...]:
    """The reading columns of one batch as the layout plans hand them over: 10,000 uplinks
    of 500 meters, each with its current value and 15 month-end values (repeated by every
    uplink of the meter, which is what the merge removes)."""
    rng = np.random.default_rng(9)
    telegrams = np.arange(BATCH_UPLINKS, dtype=np.int64)
    meter = telegrams % BATCH_METERS
    now = 202405010000 + telegrams // BATCH_METERS * 100 + meter % 60
    columns = [
        ReadingColumn(
            telegrams,
            0,
            ("volume", 0, 0, 0, "instantaneous", "m3"),
            now,
            rng.uniform(0, 1e3, BATCH_UPLINKS),
            np.ones(BATCH_UPLINKS, dtype=np.bool_),
        )
    ]
    for month in range(1, 16):
        # YYYYMMDDhhmm: the first of the month at midnight.
        month_end = np.full(
            BATCH_UPLINKS,
            (202300000000 + month * 1000000 if month <= 12 else 202400000000 + (month - 12) * 1000000)
            + 10000,
        )
        columns.append(
            ReadingColumn(
                telegrams,
                month,
                ("volume", month, 0, 0, "instantaneous", "m3"),
                month_end,
                (meter * 10.0 + month),
                np.ones(BATCH_UPLINKS, dtype=np.bool_),
            )
        )
    places = [
        (f"wmbus:QDS:{m:08d}:07:07", f"{rng.integers(2**63):032x}", "B1", f"U{m}") for m in meter.tolist()
    ]
    return columns, places


@pytest.mark.parametrize("path", ["columns", "one_by_one"])
def test_batch_reading_rows(benchmark: Any, reading_columns: tuple[Any, ...], path: str) -> None:
    """One row per reading key from a batch's reading columns: the numpy merge into a
    ReadingBlock (no row tuples) against building every row and merging them one by one in
    batch order (the store's rule)."""
    columns, places = reading_columns
    times = ReadingTimes()
    uplinks = uplink_places(places)

    def merged() -> ReadingBlock:
        return merge_reading_rows(columns, times, uplinks, [], [])[0]

    def one_by_one() -> list[Any]:
        by_telegram = telegram_rows(columns, times)
        kept: dict[tuple[Any, ...], Any] = {}
        for index, (device, key, building, unit) in enumerate(places):
            for row in by_telegram[index]:
                values = (device, *row, building, unit, key)
                held = kept.get(values[:7])
                if held is None:
                    kept[values[:7]] = values
                elif key < held[12]:
                    kept[values[:7]] = (*held[:12], key)
        return list(kept.values())

    result = benchmark.pedantic(merged if path == "columns" else one_by_one, rounds=5, iterations=1)
    rows = result.rows() if isinstance(result, ReadingBlock) else result
    assert sorted(rows) == sorted(map(as_stored, one_by_one()))
    record_rate(benchmark, "values_per_s", sum(len(c.stamps) for c in columns))


def uplink_places(places: list[tuple[str, str, str | None, str | None]]) -> UplinkPlaces:
    """(device, key, building, unit) per uplink as the pipeline hands them over: columns."""
    return UplinkPlaces([p[0] for p in places], [p[1] for p in places], [(p[2], p[3]) for p in places])


def as_stored(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row as a block holds it: valid as 1 or 0 (which SQLite stores alike)."""
    return (*row[:9], int(row[9]), *row[10:])


@pytest.mark.parametrize("binding", ["C", "python"])
def test_store_reading_block(benchmark: Any, reading_columns: tuple[Any, ...], binding: str) -> None:
    """A batch's merged readings (10,000 current values, 7,500 month-end values) written to
    a new in-memory store: bound from C out of the block's tables, against the same rows
    bound by Python's sqlite3."""
    columns, places = reading_columns
    block = merge_reading_rows(columns, ReadingTimes(), uplink_places(places), [], [])[0]
    batch = StoreBatch(reading_blocks=[block])
    stores: list[SQLiteStore] = []

    def new_store() -> tuple[tuple[()], dict[str, Any]]:
        store = SQLiteStore(":memory:")
        if binding == "python":
            store._close_native_rows()
            store._native_rows = None
        elif store._native_rows is None:
            pytest.fail("binding from C needs the C core")
        stores.append(store)
        return (), {}

    benchmark.pedantic(lambda: stores[-1].write(batch), setup=new_store, rounds=5, iterations=1)
    assert stores[-1].counts()["readings"] == len(block)
    record_rate(benchmark, "rows_per_s", len(block))
    for store in stores:
        store.close()
