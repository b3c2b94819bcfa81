"""The SQLite store: idempotent, transactional writes and the reads the reports use."""

from __future__ import annotations

import datetime as dt
import gc
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore.errors import ConfigError, InputError, StoreError
from minolcore.store import (
    DeviceRow,
    ReadingRow,
    ReceptionRow,
    RejectedRow,
    SQLiteStore,
    StatusEventRow,
    StoreBatch,
    UplinkRow,
    content_key,
)
from minolcore.store import sqlite as sqlite_module
from minolcore.store._checkpoints import BackgroundCheckpoints
from minolcore.store._reader import StoreReader
from minolcore.store.base import ReadingBlock, UplinkValues, bad_reading_time
from minolcore.store.receptions import encode_reception_columns


def sample_batch(offset: int = 0) -> StoreBatch:
    uid = "wmbus:QDS:55667788:55:08"
    key = content_key(uid, b"frame-%d" % offset)
    return StoreBatch(
        devices=[
            DeviceRow(
                device_uid=uid,
                radio="wmbus",
                manufacturer="QDS",
                meter_id="55667788",
                version=0x55,
                device_type=8,
                kind="heat_cost_allocator",
            )
        ],
        uplinks=[
            UplinkRow(
                uplink_key=key,
                device_uid=uid,
                size=40,
                security_status="decrypted",
                receptions=tuple(
                    ReceptionRow(gateway_id=gw, received_at_ms=1000 + offset, rssi=-80.0, snr=None)
                    for gw in ("GW-1", "GW-2")
                ),
            )
        ],
        readings=[
            ReadingRow(
                device_uid=uid,
                reading_time=f"2026-01-{1 + offset % 28:02d}T00:00",
                quantity="hca_units",
                storage=0,
                tariff=0,
                subunit=0,
                function="instantaneous",
                value=1234.0 + offset,
                unit="HCA",
                valid=True,
                building_id="B1",
                unit_id="U1",
                uplink_key=key,
            )
        ],
        status_events=[StatusEventRow(device_uid=uid, event_time="2026-01-01T00:00", event="power_low")],
        rejected=[
            RejectedRow(gateway_id="GW-9", received_at_ms=5, reason="unknown_gateway", payload_hex="2E44")
        ],
    )


def test_write_is_idempotent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "m.sqlite")
    store.write(sample_batch())
    first = StoreReader(store).dump()
    store.write(sample_batch())
    assert StoreReader(store).dump() == first
    assert store.counts() == {
        "devices": 1,
        "uplinks": 1,
        "receptions": 2,
        "readings": 1,
        "status_events": 1,
        "rejected": 1,
    }
    assert store.rejected_by_reason() == {"unknown_gateway": 1}
    store.close()


def test_device_activity_follows_from_receptions(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.sqlite") as store:
        for offset in (5, 1, 9):
            store.write(sample_batch(offset))
        assert store.device_activity() == {"wmbus:QDS:55667788:55:08": (1001, 1009, 3)}


def test_readings_filters(tmp_path: Path) -> None:
    with SQLiteStore(":memory:") as store:
        for offset in range(5):
            store.write(sample_batch(offset))
        rows = StoreReader(store).readings(unit_id="U1", since="2026-01-02", until="2026-01-04T23:59")
        assert [row.value for row in rows] == [1235.0, 1236.0, 1237.0]
        assert StoreReader(store).readings(unit_id="U2") == []


def test_failed_batch_leaves_nothing(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.sqlite") as store:
        broken = StoreBatch(devices=sample_batch().devices, readings=[object()])  # type: ignore[list-item]
        with pytest.raises(InputError, match="cannot hold"):
            store.write(broken)
        assert store.counts()["devices"] == 0


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError):
        SQLiteStore(path)


@given(st.permutations(list(range(6))))
def test_order_of_batches_does_not_matter(order: list[int]) -> None:
    reference = SQLiteStore(":memory:")
    for offset in range(6):
        reference.write(sample_batch(offset))
    shuffled = SQLiteStore(":memory:")
    for offset in order:
        shuffled.write(sample_batch(offset))
    assert StoreReader(shuffled).dump() == StoreReader(reference).dump()
    assert shuffled.digest() == reference.digest()


def test_digest_tells_stores_apart_without_showing_rows(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.sqlite") as one, SQLiteStore(tmp_path / "b.sqlite") as two:
        one.write(sample_batch(1))
        two.write(sample_batch(1))
        assert one.digest() == two.digest()
        two.write(sample_batch(2))
        differs = {table for table in one.digest() if one.digest()[table] != two.digest()[table]}
        assert differs == {"uplinks", "readings"}
        assert all(len(value) == 64 and "1234" not in value for value in two.digest().values())


def test_content_key_is_stable() -> None:
    assert content_key("a", b"x") == content_key("a", b"x")
    assert content_key("a", b"x") != content_key("b", b"x")
    assert len(content_key("a", b"x")) == 32
    # Stored keys outlive the code: the digest (BLAKE2b-128, personalised, frame then uid) is fixed.
    assert content_key("a", b"x") == "7a760a61aed0fdfe8175319a79a640ad"
    assert sqlite3.sqlite_version_info >= (3, 24)  # upserts need 3.24


_small = st.integers(0, 2)


@st.composite
def repeating_batch(draw: st.DrawFn) -> StoreBatch:
    """Rows whose keys repeat within the batch, with differing non-key columns."""
    uids = [f"wmbus:QDS:0000000{i}:01:08" for i in range(2)]
    devices = [
        DeviceRow(
            device_uid=uids[draw(st.integers(0, 1))],
            radio="wmbus",
            manufacturer="QDS",
            meter_id=f"{draw(_small)}",
            version=draw(_small),
            device_type=8,
            kind=draw(st.sampled_from(["generic", "water_meter", "heat_meter"])),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]
    readings = [
        ReadingRow(
            device_uid=uids[draw(st.integers(0, 1))],
            reading_time=f"2025-10-0{draw(st.integers(1, 2))}T00:00",
            quantity="volume",
            storage=draw(_small),
            tariff=0,
            subunit=0,
            function="instantaneous",
            value=draw(st.one_of(st.none(), st.floats(0, 10))),
            unit="m3",
            valid=draw(st.booleans()),
            building_id=draw(st.sampled_from([None, "B1"])),
            unit_id=None,
            uplink_key=f"{draw(st.integers(0, 5)):02x}",
        )
        for _ in range(draw(st.integers(0, 12)))
    ]
    receptions = st.builds(
        ReceptionRow,
        gateway_id=st.sampled_from(["GW-1", "GW-2"]),
        received_at_ms=_small,
        rssi=st.one_of(st.none(), st.floats(-100, -50)),
    )
    uplinks = [
        UplinkRow(
            uplink_key=f"{draw(_small):02x}",
            device_uid=uids[0],
            size=draw(_small),
            security_status="ok",
            receptions=tuple(draw(st.lists(receptions, min_size=1, max_size=3))),
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    # Some uplinks come as the columnar path hands them over, receptions already encoded.
    uplinks_as_values = [draw(st.booleans()) for _ in uplinks]
    late = [(f"{draw(_small):02x}", draw(receptions)) for _ in range(draw(st.integers(0, 4)))]
    events = [
        StatusEventRow(
            device_uid=uids[0], event_time="2025-10-01T00:00", event="leak", detail=f"{draw(_small)}"
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    # Some readings come as value tuples, as the columnar path hands them over.
    as_values = [draw(st.booleans()) for _ in readings]
    return StoreBatch(
        devices=devices,
        uplinks=[row for row, values in zip(uplinks, uplinks_as_values, strict=True) if not values],
        uplink_values=[
            encoded(row) for row, values in zip(uplinks, uplinks_as_values, strict=True) if values
        ],
        late_receptions=late,
        readings=[row for row, values in zip(readings, as_values, strict=True) if not values],
        reading_values=[
            msgspec.structs.astuple(row) for row, values in zip(readings, as_values, strict=True) if values
        ],
        status_events=events,
    )


def encoded(row: UplinkRow) -> UplinkValues:
    """``row`` in the form the pipeline's columnar path stores (receptions as stored text)."""
    gateways = sorted({copy.gateway_id for copy in row.receptions})
    stored = encode_reception_columns(
        1,
        [0] * len(row.receptions),
        [gateways.index(copy.gateway_id) for copy in row.receptions],
        gateways,
        [copy.received_at_ms for copy in row.receptions],
        [math.nan if copy.rssi is None else copy.rssi for copy in row.receptions],
        [math.nan if copy.snr is None else copy.snr for copy in row.receptions],
    )
    return (
        row.uplink_key,
        row.device_uid,
        row.size,
        row.security_status,
        row.decode_errors,
        stored.first_ms[0],
        stored.last_ms[0],
        stored.texts[0],
    )


def test_an_encoded_uplink_stores_what_its_row_objects_store() -> None:
    row = UplinkRow(
        uplink_key="k",
        device_uid="d",
        size=3,
        security_status="ok",
        receptions=(
            ReceptionRow(gateway_id="GW-2", received_at_ms=7, rssi=-0.0),
            ReceptionRow(gateway_id="GW-1", received_at_ms=7, rssi=math.nan, snr=3),
            ReceptionRow(gateway_id="GW-1", received_at_ms=5, rssi=-81.5),
        ),
    )
    with SQLiteStore(":memory:") as objects, SQLiteStore(":memory:") as columns:
        objects.write(StoreBatch(uplinks=[row]))
        columns.write(StoreBatch(uplink_values=[encoded(row)]))
        assert objects.digest() == columns.digest()


def test_an_encoded_uplink_whose_text_is_not_receptions_is_refused() -> None:
    # Merged within a batch (read by the store) or with the stored row (by SQLite's function).
    damaged = (*encoded(sample_batch().uplinks[0])[:7], "[[1,")
    with SQLiteStore(":memory:") as store:
        with pytest.raises(InputError, match="not stored text"):
            store.write(StoreBatch(uplinks=[sample_batch().uplinks[0]], uplink_values=[damaged]))
        store.write(StoreBatch(uplinks=[sample_batch().uplinks[0]]))
        with pytest.raises(InputError, match="not stored reception text"):
            store.write(StoreBatch(uplink_values=[damaged]))


@given(first=repeating_batch(), second=repeating_batch())
def test_a_batch_stores_what_its_rows_store_one_by_one(first: StoreBatch, second: StoreBatch) -> None:
    # The store merges rows repeated within a batch before SQLite sees them: the result
    # must be that of the statements applied row by row.
    whole, single = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    for batch in (first, second):
        whole.write(batch)
        names = ("devices", "uplinks", "uplink_values", "late_receptions", "readings", "reading_values")
        for name in (*names, "status_events"):
            for row in getattr(batch, name):
                single.write(StoreBatch(**{name: [row]}))
    assert whole.digest() == single.digest()
    whole.close()
    single.close()


def test_an_uplink_keeps_every_copy_it_was_heard_in(tmp_path: Path) -> None:
    # Late copies, the same uplink fed again and any order leave one row with the union.
    def uplink(*copies: tuple[str, int]) -> UplinkRow:
        return UplinkRow(
            uplink_key="k1",
            device_uid="wmbus:QDS:55667788:55:08",
            size=40,
            security_status="ok",
            receptions=tuple(ReceptionRow(gateway_id=gw, received_at_ms=ms, rssi=-70.5) for gw, ms in copies),
        )

    late = ReceptionRow(gateway_id="GW-3", received_at_ms=900, rssi=None, snr=7.25)
    with SQLiteStore(tmp_path / "a.sqlite") as one, SQLiteStore(tmp_path / "b.sqlite") as two:
        one.write(StoreBatch(uplinks=[uplink(("GW-2", 1000), ("GW-1", 1000))]))
        one.write(StoreBatch(late_receptions=[("k1", late)]))
        one.write(StoreBatch(uplinks=[uplink(("GW-1", 1000))]))
        two.write(
            StoreBatch(
                uplinks=[uplink(("GW-1", 1000)), uplink(("GW-2", 1000))], late_receptions=[("k1", late)]
            )
        )
        assert one.digest() == two.digest()
        assert one.counts()["receptions"] == 3
        assert one.device_activity() == {"wmbus:QDS:55667788:55:08": (900, 1000, 1)}
        stored = one._db.execute("SELECT receptions FROM uplinks").fetchone()[0]
        assert stored == '[["GW-3",900,null,7.25],["GW-1",1000,-70.5,null],["GW-2",1000,-70.5,null]]'


def test_an_uplink_without_receptions_is_refused() -> None:
    with SQLiteStore(":memory:") as store:
        bare = UplinkRow(uplink_key="k", device_uid="d", size=1, security_status="ok")
        with pytest.raises(InputError, match="receptions"):
            store.write(StoreBatch(uplinks=[bare]))


def test_a_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with SQLiteStore(path) as store:
        store.set_meta("schema_version", "1")
    with pytest.raises(ConfigError, match="schema version 1"):
        SQLiteStore(path)


def _historic(uplink_key: str) -> StoreBatch:
    return StoreBatch(
        readings=[
            ReadingRow(
                device_uid="wmbus:QDS:55667788:55:08",
                reading_time="2025-12-31T00:00",
                quantity="hca_units",
                storage=1,
                tariff=0,
                subunit=0,
                function="instantaneous",
                value=812.0,
                unit="HCA",
                valid=True,
                building_id="B1",
                unit_id="U1",
                uplink_key=uplink_key,
            )
        ]
    )


def test_a_repeated_historic_value_keeps_the_smallest_uplink_key(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.sqlite") as store:
        for key in ("b2", "c3", "a1", "b2"):
            store.write(_historic(key))
        rows = StoreReader(store).readings()
        assert [row.uplink_key for row in rows] == ["a1"]


@pytest.mark.parametrize("elsewhere", [False, True])
def test_a_value_deleted_behind_the_store_is_written_again(tmp_path: Path, elsewhere: bool) -> None:
    # The store skips historic values it committed before; a deletion by another connection
    # (or by retention on its own) must not make it skip the value when it comes again.
    path = tmp_path / "m.sqlite"
    with SQLiteStore(path) as store:
        store.write(_historic("a1"))
        other = sqlite3.connect(path) if elsewhere else store._db
        other.execute("DELETE FROM readings")
        if elsewhere:
            other.commit()
            other.close()
        store.write(_historic("a1"))
        assert store.counts()["readings"] == 1


@pytest.mark.parametrize(("row_type", "table"), [(ReadingRow, "readings"), (StatusEventRow, "status_events")])
def test_rows_are_their_tables_columns_in_order(row_type: type, table: str) -> None:
    # The store binds a ReadingRow's (a StatusEventRow's) fields as the table's columns, in order.
    with SQLiteStore(":memory:") as store:
        columns = [row[1] for row in store._db.execute(f"PRAGMA table_info({table})")]
    assert [field.name for field in msgspec.structs.fields(row_type)] == columns


def test_a_deletion_right_after_a_commit_is_not_mistaken_for_the_stores_own(tmp_path: Path) -> None:
    # Another connection (a retention job) commits between this store's COMMIT and its next
    # write: the deleted value, sent again, must be stored again.
    path = tmp_path / "m.sqlite"
    store = SQLiteStore(path)
    other = sqlite3.connect(path, isolation_level=None)
    real = store._db

    class CommitHook:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def execute(self, sql: str, *args: Any) -> Any:
            result = real.execute(sql, *args)
            if sql == "COMMIT":
                other.execute("DELETE FROM readings")
            return result

    store._db = CommitHook()  # type: ignore[assignment]
    store.write(_historic("k1"))
    store._db = real
    store.write(_historic("k2"))
    assert store.counts()["readings"] == 1
    other.close()
    store.close()


def test_historic_values_committed_before_are_not_sent_again() -> None:
    # Devices and uplinks written in the same batch (as the pipeline writes) do not make the
    # store forget what it committed.
    store = SQLiteStore(":memory:")
    sent: list[int] = []
    unsettled = store._unsettled

    def counting(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        kept = unsettled(rows)
        sent.append(len(kept))
        return kept

    store._unsettled = counting  # type: ignore[method-assign]
    for offset in range(3):
        batch = sample_batch(offset)
        store.write(msgspec.structs.replace(batch, readings=[*batch.readings, *_historic("f0").readings]))  # type: ignore[type-var]
    assert sent == [2, 1, 1]  # the current value each time, the historic one once
    store.close()


levels = st.none() | st.sampled_from([0.0, -0.0, float("nan"), -80, -80.0]) | st.floats(-130, 20)
copies = st.builds(
    ReceptionRow,
    gateway_id=st.sampled_from(["GW-1", "GW-2"]),
    received_at_ms=st.integers(0, 3),
    rssi=levels,
    snr=levels,
)


@given(st.lists(copies, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_stored_receptions_do_not_depend_on_order_or_batches(
    receptions: list[ReceptionRow], rng: Any
) -> None:
    def stored(groups: list[list[ReceptionRow]]) -> str:
        with SQLiteStore(":memory:") as store:
            for group in groups:
                row = UplinkRow(
                    uplink_key="k", device_uid="d", size=1, security_status="ok", receptions=tuple(group)
                )
                store.write(StoreBatch(uplinks=[row]))
            return str(store._db.execute("SELECT receptions FROM uplinks").fetchone()[0])

    shuffled = receptions[:]
    rng.shuffle(shuffled)
    assert stored([receptions]) == stored([[r] for r in shuffled]) == stored([shuffled])


def test_a_late_copy_of_an_uplink_never_stored_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with SQLiteStore(":memory:") as store:
        late = ReceptionRow(gateway_id="GW-1", received_at_ms=5, rssi=-70.0)
        store.write(StoreBatch(late_receptions=[("missing", late)]))
    assert "1 late copies name uplinks that are not in" in caplog.text


def test_a_database_of_another_application_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE foo (x)")
    other.commit()
    other.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"holds other tables \(foo\)"):
        SQLiteStore(path)
    assert path.read_bytes() == before


def test_an_older_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    old.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    old.execute("CREATE TABLE readings (device_uid TEXT)")
    old.commit()
    old.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="schema version 1"):
        SQLiteStore(path)
    assert path.read_bytes() == before


def test_a_write_while_another_writer_holds_the_lock_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("minolcore.store.sqlite.BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "busy.sqlite"
    with SQLiteStore(path) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        store._db.execute("PRAGMA busy_timeout = 200")
        with pytest.raises(StoreError, match="locked"):
            store.write(sample_batch())
        holder.execute("ROLLBACK")
        holder.close()
        store.write(sample_batch())  # once the lock is free, the same batch goes in
        assert store.counts()["readings"] == len(sample_batch().readings)


@pytest.mark.parametrize(
    "change",
    [
        {"storage": 2**63},  # a key of its own: not merged away
        {"value": 10**400, "storage": 7},
        {"device_uid": "wmbus:\udc80", "storage": 7},
    ],
)
def test_a_row_the_database_cannot_hold_is_an_input_error(change: dict[str, Any]) -> None:
    batch = sample_batch()
    bad = msgspec.structs.replace(batch.readings[0], **change)
    with SQLiteStore(":memory:") as store:
        with pytest.raises(InputError, match="cannot hold"):
            store.write(msgspec.structs.replace(batch, readings=[*batch.readings, bad]))
        assert store.counts()["readings"] == 0


def test_a_version_2_database_is_brought_to_version_3(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with SQLiteStore(path) as store:
        store.write(sample_batch())
        expected = store.digest()
        by_unit = StoreReader(store).readings(unit_id="U1")
        # What a version 2 file held: an index of every reading by unit, no placements.
        store._db.executescript(
            "DROP TABLE placements;"
            "CREATE INDEX readings_by_unit ON readings (unit_id, quantity, reading_time);"
            "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
        )
    with SQLiteStore(path) as store:
        assert store.get_meta("schema_version") == "3"
        assert store.digest() == expected
        assert by_unit and StoreReader(store).readings(unit_id="U1") == by_unit
        indexes = store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert ("readings_by_unit",) not in indexes
        # A second process that read version 2 before the first brought it up, then got the
        # lock: it finds version 3 and changes nothing (it failed on the existing table).
        assert store._from_version_2() == "3"
        assert store.digest() == expected


PLACES = st.sampled_from([(None, None), ("B1", None), ("B1", "U1"), ("B1", "U2"), ("B2", "U1"), (None, "U3")])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4), PLACES), max_size=25))
def test_readings_by_building_and_unit_are_the_rows_placed_there(
    rows: list[tuple[int, int, tuple[str | None, str | None]]],
) -> None:
    """A meter may move between units (a swap): every filter finds exactly its rows."""
    values = [
        (
            f"wmbus:QDS:0000000{device}:01:08",
            f"2025-10-0{day}T00:00",
            *("volume", 0, 0, 0, "instantaneous", 1.0, "m3", True),
            building,
            unit,
            "k",
        )
        for device, day, (building, unit) in rows
    ]
    with SQLiteStore(":memory:") as store:
        store.write(StoreBatch(reading_values=values))
        reader = StoreReader(store)
        everything = reader.readings()
        for building in (None, "B1", "B2", "B3"):
            for unit in (None, "U1", "U2", "U3"):
                found = reader.readings(building_id=building, unit_id=unit)
                assert found == [
                    row
                    for row in everything
                    if building in (None, row.building_id) and unit in (None, row.unit_id)
                ]


def _reading_row(n: int) -> tuple[Any, ...]:
    """Reading values whose keys repeat every 84 rows and whose uplink keys every 7."""
    key = ("wmbus:A", f"2024-01-{n % 28 + 1:02d}T00:00", "volume", n % 3, 0, 0, "instantaneous")
    return (*key, float(n), "m3", True, None, None, f"{n % 7:032x}")


@given(st.integers(0, 260), st.integers(1, 120))
@settings(max_examples=25, deadline=None)
def test_rows_written_many_per_statement_are_the_rows_written_one_by_one(count: int, per: int) -> None:
    rows = [_reading_row(n) for n in range(count)]
    one_by_one = SQLiteStore(":memory:")
    one_by_one._db.execute("BEGIN")
    one_by_one._db.executemany(sqlite_module._INSERT_READING, rows)
    one_by_one._db.execute("COMMIT")
    many = SQLiteStore(":memory:")
    many._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 13 * per)
    many._db.execute("BEGIN")
    many._insert_rows(sqlite_module._INSERT_READING, rows)
    many._db.execute("COMMIT")
    assert many.digest() == one_by_one.digest()


def test_a_row_of_the_wrong_width_is_refused_whole() -> None:
    store = SQLiteStore(":memory:")
    row = (
        "wmbus:A",
        "2024-01-01T00:00",
        "volume",
        0,
        0,
        0,
        "instantaneous",
        1.0,
        "m3",
        True,
        None,
        None,
        "0a",
    )
    with pytest.raises(InputError, match="13 values"):
        store.write(StoreBatch(reading_values=[row, (*row[:1], "2024-01-02T00:00", *row[2:12]), row]))
    assert store.counts()["readings"] == 0


@pytest.mark.parametrize("value", [[1.0], {"m3": 1}, object()])
def test_a_value_of_a_type_sqlite_cannot_hold_is_an_input_error(value: object) -> None:
    store = SQLiteStore(":memory:")
    good = _reading_row(1)
    bad = (*_reading_row(2)[:7], value, *_reading_row(2)[8:])
    with pytest.raises(InputError, match="cannot hold"):
        store.write(StoreBatch(reading_values=[good, bad]))
    assert store.counts()["readings"] == 0


def test_writing_to_a_closed_store_is_a_store_error() -> None:
    store = SQLiteStore(":memory:")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.write(StoreBatch(reading_values=[_reading_row(1)]))


def _checkpointed_store(tmp_path: Path) -> tuple[SQLiteStore, BackgroundCheckpoints]:
    store = SQLiteStore(tmp_path / "store.sqlite", checkpoint_in_background=True)
    assert store._checkpoints is not None
    return store, store._checkpoints


class _Raising:
    """A checkpoint connection whose every statement raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def execute(self, statement: str) -> Any:
        raise self.error

    def close(self) -> None:
        pass


def _copied_into_the_database(store: SQLiteStore) -> bool:
    """Whether every page of the store is in the database file itself (checkpointed), not
    only in its write-ahead log."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    size = store._db.execute("PRAGMA page_size").fetchone()[0]
    return Path(store.path).stat().st_size >= pages * size


def test_background_checkpoints_store_what_commit_time_checkpoints_store(tmp_path: Path) -> None:
    # Enough rows to grow the database beyond its first pages, too few for SQLite's own
    # checkpoint, which waits for a log of 1000 pages.
    batches = [
        StoreBatch(reading_values=[(f"wmbus:{n}", *_reading_row(n)[1:]) for n in range(start, start + 200)])
        for start in range(0, 2000, 200)
    ]
    background = SQLiteStore(tmp_path / "background.sqlite", checkpoint_in_background=True)
    inline = SQLiteStore(tmp_path / "inline.sqlite")
    assert background._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for batch in batches:
        background.write(batch)
        inline.write(batch)
    checkpoints = background._checkpoints
    assert checkpoints is not None and checkpoints.wait(timeout_s=60)
    # The thread copied everything committed into the database, a commit nothing.
    assert _copied_into_the_database(background)
    assert not _copied_into_the_database(inline)
    assert background.digest() == inline.digest()
    background.close()
    assert not checkpoints._thread.is_alive()
    inline_digest = inline.digest()
    inline.close()
    with SQLiteStore(tmp_path / "background.sqlite") as reopened:
        assert reopened.digest() == inline_digest


def test_a_failed_background_checkpoint_is_logged_and_the_writes_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, checkpoints = _checkpointed_store(tmp_path)
    real, checkpoints._db = checkpoints._db, _Raising(sqlite3.OperationalError("database is locked"))  # type: ignore[assignment]
    store.write(sample_batch(1))
    assert checkpoints.wait(timeout_s=60)
    assert "background checkpoint failed: database is locked" in caplog.text
    checkpoints._db = real
    store.write(sample_batch(2))
    assert checkpoints.wait(timeout_s=60)
    assert store.counts()["readings"] == 2
    store.close()


def test_an_in_memory_store_has_no_background_checkpoints() -> None:
    with SQLiteStore(":memory:", checkpoint_in_background=True) as store:
        assert store._checkpoints is None
        store.write(sample_batch())


def test_a_new_store_has_16_kb_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "new.sqlite") as store:
        assert store._db.execute("PRAGMA page_size").fetchone()[0] == 16384
    older = tmp_path / "older.sqlite"
    with sqlite3.connect(older) as db:
        db.execute("PRAGMA page_size=4096")
        db.execute("CREATE TABLE access_log (x)")  # a table of the access layer, made first
    with SQLiteStore(older) as store:
        assert store._db.execute("PRAGMA page_size").fetchone()[0] == 4096
        store.write(sample_batch())
        assert store.counts()["readings"] == 1


def test_each_write_waits_for_the_last_checkpoint_so_the_log_starts_over(tmp_path: Path) -> None:
    # SQLite starts the write-ahead log over only when a write begins after a checkpoint
    # copied all of it: back-to-back writes must not outrun the thread and grow the log.
    store, checkpoints = _checkpointed_store(tmp_path)

    class SlowDisk:
        """The thread's connection on a disk slower than the writer."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, statement: str) -> Any:
            time.sleep(0.05)
            return self.db.execute(statement)

        def close(self) -> None:
            self.db.close()

    checkpoints._db = SlowDisk(checkpoints._db)  # type: ignore[assignment]
    wal = Path(f"{store.path}-wal")
    sizes = []
    for start in range(0, 40_000, 2_000):
        rows = [(f"wmbus:{n}", *_reading_row(n)[1:]) for n in range(start, start + 2_000)]
        store.write(StoreBatch(reading_values=rows))
        sizes.append(wal.stat().st_size)
    # A batch's pages and the one before it, never the whole history (about 20 batches).
    assert max(sizes) < 3 * max(sizes[:3])
    store.close()


def test_writes_go_on_with_commit_checkpoints_when_the_thread_has_stopped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, checkpoints = _checkpointed_store(tmp_path)
    checkpoints._db = _Raising(RuntimeError("not SQLite's"))  # type: ignore[assignment]
    store.write(sample_batch(1))
    assert not checkpoints.wait(timeout_s=60) and not checkpoints.running
    store.write(sample_batch(2))
    assert store._checkpoints is None
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert "background checkpoints stopped" in caplog.text
    assert store.counts()["readings"] == 2
    store.close()


def test_a_store_dropped_unclosed_stops_its_checkpoint_thread(tmp_path: Path) -> None:
    store, checkpoints = _checkpointed_store(tmp_path)
    store.write(sample_batch())
    del store
    gc.collect()
    assert checkpoints._thread.join(timeout=60) is None and not checkpoints._thread.is_alive()


def test_a_second_connection_that_cannot_be_opened_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.sqlite"
    SQLiteStore(path).close()
    real = sqlite3.connect
    opened = []

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(args[0])
        if len(opened) > 1:
            raise sqlite3.OperationalError("unable to open database file")
        return real(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    with pytest.raises(ConfigError, match="second connection for background checkpoints"):
        SQLiteStore(path, checkpoint_in_background=True)


@pytest.mark.parametrize(
    "reading_time",
    ["2024-02-30T00:00", "2024-01-01T24:00", "2024-01-01", "2024-01-01T00:00Z", "2024-01-01 00:00", "soon"],
)
@pytest.mark.parametrize("shape", ["objects", "values", "block"])
def test_a_reading_time_that_is_no_date_time_is_refused_whole(reading_time: str, shape: str) -> None:
    store = SQLiteStore(":memory:")
    good = _reading_row(1)
    bad = (good[0], reading_time, *good[2:])
    rows = [good, bad]
    if shape == "objects":
        batch = StoreBatch(
            readings=[ReadingRow(**dict(zip(ReadingRow.__struct_fields__, row, strict=True))) for row in rows]
        )
    elif shape == "values":
        batch = StoreBatch(reading_values=rows)
    else:
        batch = StoreBatch(reading_blocks=[ReadingBlock.from_rows(rows)])
    with pytest.raises(InputError, match=f"reading time.*{reading_time!r}"):
        store.write(batch)
    assert store.counts()["readings"] == 0


def _is_reading_time(text: object) -> bool:
    """The definition, independently: the two forms datetime reads back to the same text."""
    for timespec, width in (("minutes", 16), ("seconds", 19)):
        if isinstance(text, str) and len(text) == width:
            try:
                return dt.datetime.fromisoformat(text).isoformat(timespec=timespec) == text
            except ValueError:
                return False
    return False


_TIME_CHARS = st.sampled_from("0123456789-T: Z/\x00\xff")


@given(
    st.lists(
        st.one_of(
            st.datetimes().map(lambda d: d.isoformat(timespec="minutes")),
            st.datetimes().map(lambda d: d.isoformat(timespec="seconds")),
            st.text(_TIME_CHARS, min_size=16, max_size=16),
            st.text(_TIME_CHARS, min_size=19, max_size=19),
            st.text(max_size=20),
        ),
        max_size=12,
    )
)
def test_reading_times_are_checked_as_datetime_reads_them(texts: list[str]) -> None:
    bad = bad_reading_time(texts)
    if all(map(_is_reading_time, texts)):
        assert bad is None
    else:
        assert bad is not None and not _is_reading_time(texts[bad])
