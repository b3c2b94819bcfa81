"""Rows bound from C (``mc_sql_insert``) store exactly what Python's sqlite3 stores.

Three levels: packing rows into columns and back; the C insert against its pure-Python twin
(the same statements, the same rows, the same errors); and whole stores written with and
without the C binding, which must have equal digests.
"""

from __future__ import annotations

import gc
import sqlite3
import sys
import threading
from array import array
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore import _native
from minolcore._reference.sql_rows import insert_packed
from minolcore.store import SQLiteStore
from minolcore.store._columns import (
    DOUBLE,
    INT64,
    NULL,
    TABLE,
    TEXT,
    PackedColumns,
    distinct_text_column,
    distinct_text_order,
    pack_columns,
    table_column,
    text_table,
    unpack_rows,
)
from minolcore.store._native_rows import NativeRows
from minolcore.store.base import StoreBatch

from .test_store import repeating_batch, sample_batch

# A key, then a column of each declared type and one without a type: a column without type
# affinity keeps exactly the type it was bound with, so a float bound for an int shows.
SCHEMA = "CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT, c INTEGER, d REAL, e)"
INSERT = "INSERT INTO t VALUES {rows} ON CONFLICT (k) DO UPDATE SET a = excluded.a || '+'"
ONE = "(?, ?, ?, ?, ?, ?)"

TEXTS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6) | st.sampled_from(
    ["", "m³", "wmbus:QDS:1"]
)
INTEGERS = st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.sampled_from([0, -1, 2**63 - 1])
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
# Values Python's sqlite3 binds otherwise or refuses: the columns that hold them do not pack.
AWKWARD = st.sampled_from([b"\x00", 2**64, "a\x00b", "\udc80", 1.5, 7, 3.0])
KINDS = {
    "text": TEXTS,
    "nullable text": st.none() | TEXTS,
    "integer": INTEGERS,
    "nullable integer": st.none() | INTEGERS,
    "float": FLOATS,
    "nullable float": st.none() | FLOATS,
    "null": st.none(),
    "awkward": st.none() | TEXTS | INTEGERS | FLOATS | AWKWARD,
}


@st.composite
def table_rows(draw: st.DrawFn, awkward: bool = False) -> list[tuple[object, ...]]:
    """Rows for TABLE: keys that repeat (the upsert runs), each other column of one kind."""
    names = [name for name in KINDS if awkward or name != "awkward"]
    kinds = [draw(st.sampled_from(names)) for _ in range(5)]
    count = draw(st.integers(0, 14))
    return [
        (draw(st.integers(0, 9)), *(draw(KINDS[kind]) for kind in kinds))  # type: ignore[arg-type]
        for _ in range(count)
    ]


def new_table() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute(SCHEMA)
    db.execute("BEGIN")
    return db


def contents(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    # typeof() tells 1 from 1.0 and '1'; quote() tells NaN-turned-NULL and the exact text.
    return db.execute(
        "SELECT k, quote(a), quote(b), quote(c), quote(d), quote(e), typeof(e) FROM t ORDER BY k"
    ).fetchall()


def statements(per: int) -> tuple[str, str]:
    return INSERT.format(rows=", ".join([ONE] * per)), INSERT.format(rows=ONE)


def run_native(
    packed: PackedColumns, per: int
) -> tuple[list[tuple[object, ...]], type[BaseException] | None]:
    """The C insert (its twin under MINOLCORE_PUREPYTHON=1) into a new table."""
    many, one = statements(per)
    if _native.BACKEND != "cffi":
        return run_twin(packed, per)
    store = SQLiteStore(":memory:")
    assert store._native_rows is not None, "the C core binds rows wherever it is built (Linux)"
    store._db.execute(SCHEMA)
    store._db.execute("BEGIN")
    error: type[BaseException] | None = None
    try:
        store._native_rows.insert(many, per, one, packed)
    except Exception as raised:  # the class is what is compared
        error = type(raised)
    found = contents(store._db)
    store.close()
    return found, error


def run_twin(packed: PackedColumns, per: int) -> tuple[list[tuple[object, ...]], type[BaseException] | None]:
    many, one = statements(per)
    db = new_table()
    error: type[BaseException] | None = None
    try:
        insert_packed(db, many, per, one, packed)
    except Exception as raised:
        error = type(raised)
    return contents(db), error


@pytest.mark.equivalence
@given(table_rows(), st.integers(1, 5))
def test_the_c_insert_equals_its_twin(rows: list[tuple[object, ...]], per: int) -> None:
    packed = pack_columns(rows, 6)
    assert packed is not None, "columns of one kind each always pack"
    assert run_native(packed, per) == run_twin(packed, per)


@pytest.mark.equivalence
@given(table_rows(awkward=True), st.integers(1, 5))
def test_packed_rows_store_what_python_binds_row_by_row(rows: list[tuple[object, ...]], per: int) -> None:
    by_python = new_table()
    try:
        by_python.executemany(INSERT.format(rows=ONE), rows)
        expected: type[BaseException] | None = None
    except Exception as raised:
        expected = type(raised)
    packed = pack_columns(rows, 6)
    if packed is None:
        return  # such rows are bound by Python's sqlite3 itself
    found, error = run_native(packed, per)
    assert error is expected
    if expected is None:
        assert found == contents(by_python)


@given(table_rows(awkward=True))
def test_columns_unpack_to_the_rows_they_were_packed_from(rows: list[tuple[object, ...]]) -> None:
    packed = pack_columns(rows, 6)
    if packed is not None:
        assert list(map(exact, unpack_rows(packed))) == list(map(exact, rows))
        assert all(kind in (NULL, INT64, DOUBLE, TEXT) for kind in packed.kinds)  # TABLE: blocks only


def exact(row: tuple[object, ...]) -> tuple[object, ...]:
    """The row's values compared by type and representation (NaN equals NaN, -0.0 is not
    0.0); a bool as the integer Python's sqlite3 binds for it."""
    return tuple(
        (type(int(v)) if isinstance(v, bool) else type(v), repr(int(v) if isinstance(v, bool) else v))
        for v in row
    )


@pytest.mark.parametrize(
    ("column", "packs"),
    [
        (["a", "b"], True),
        (["a", None], True),
        ([None, "a"], True),
        ([1, True, None], True),
        ([1.0, None], True),
        ([None, None], True),
        (["a\x00b"], False),  # the NUL would end the text
        (["\udc80"], False),  # not encodable: Python's sqlite3 raises its own error
        ([2**63], False),  # beyond 64 bits: likewise
        ([1, 2.0], False),  # mixed: each binds as its own type
        ([b"x"], False),
        (["a", 1], False),
        ([1, np.int64(2)], False),  # Python's sqlite3 binds numpy's integers as blobs
        ([1.0, np.float32(2)], False),
        (["a", type("Text", (str,), {})("b")], False),  # a subclass: its adapter may differ
    ],
)
def test_which_columns_pack(column: list[object], packs: bool) -> None:
    rows = [(value,) for value in column]
    assert (pack_columns(rows, 1) is not None) is packs


def test_rows_of_another_width_do_not_pack() -> None:
    assert pack_columns([("a", 1)], 3) is None
    with pytest.raises(ValueError):
        pack_columns([("a", 1), ("b",)], 2)


def test_no_rows_pack_to_an_empty_insert() -> None:
    packed = pack_columns([], 6)
    assert packed is not None
    assert run_native(packed, 2) == ([], None)


def python_bound(store: SQLiteStore) -> SQLiteStore:
    """The store binding every row through Python's sqlite3, as without the C core."""
    store._close_native_rows()
    store._native_rows = None
    return store


@pytest.mark.equivalence
@given(first=repeating_batch(), second=repeating_batch())
@settings(max_examples=60)
def test_a_store_binding_in_c_stores_what_python_binding_stores(
    first: StoreBatch, second: StoreBatch
) -> None:
    native, by_python = SQLiteStore(":memory:"), python_bound(SQLiteStore(":memory:"))
    for batch in (first, second):
        native.write(batch)
        by_python.write(batch)
    assert native.digest() == by_python.digest()
    native.close()
    by_python.close()


@pytest.mark.parametrize(
    "change",
    [{"storage": 2**63}, {"value": 10**400, "storage": 7}, {"device_uid": "wmbus:\udc80", "storage": 7}],
)
def test_a_row_sqlite_cannot_hold_is_refused_alike_either_way(change: dict[str, Any]) -> None:
    batch = sample_batch()
    bad = msgspec.structs.replace(batch.readings[0], **change)
    for store in (SQLiteStore(":memory:"), python_bound(SQLiteStore(":memory:"))):
        with pytest.raises(Exception, match="cannot hold") as raised:
            store.write(msgspec.structs.replace(batch, readings=[*batch.readings, bad]))
        assert type(raised.value).__name__ == "InputError"
        assert store.counts()["readings"] == 0
        store.close()


def test_a_constraint_the_c_insert_breaks_is_an_input_error() -> None:
    row = sample_batch().reading_values or [msgspec.structs.astuple(sample_batch().readings[0])]
    broken = (None, *row[0][1:])  # device_uid is NOT NULL
    for store in (SQLiteStore(":memory:"), python_bound(SQLiteStore(":memory:"))):
        with pytest.raises(Exception, match="cannot hold") as raised:
            store.write(StoreBatch(reading_values=[broken]))  # type: ignore[list-item]
        assert type(raised.value).__name__ == "InputError"
        store.close()


def test_the_c_core_finds_the_connection_a_store_opened_while_other_threads_open_theirs() -> None:
    if _native.BACKEND != "cffi":
        assert SQLiteStore(":memory:")._native_rows is None
        return
    stop = threading.Event()

    def open_and_close() -> None:
        while not stop.is_set():
            sqlite3.connect(":memory:").close()

    others = [threading.Thread(target=open_and_close) for _ in range(2)]
    for thread in others:
        thread.start()
    try:
        stores = [SQLiteStore(":memory:") for _ in range(20)]
    finally:
        stop.set()
        for thread in others:
            thread.join()
    for number, store in enumerate(stores):
        assert store._native_rows is not None
        store.write(sample_batch(offset=number))
    for number, store in enumerate(stores):
        expected = SQLiteStore(":memory:")
        expected.write(sample_batch(offset=number))
        assert store.digest() == expected.digest()  # each wrote into its own database
        store.close()
        expected.close()


def test_a_closed_native_insert_refuses_to_run() -> None:
    store = SQLiteStore(":memory:")
    native = store._native_rows
    store.close()
    if native is not None:
        packed = pack_columns([(1, "a", None, None, None, None)], 6)
        assert packed is not None
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            native.insert(None, 1, INSERT.format(rows=ONE), packed)


def test_a_store_dropped_unclosed_finalizes_its_statements() -> None:
    store = SQLiteStore(":memory:")
    store.write(sample_batch())
    native: NativeRows | None = store._native_rows
    del store
    gc.collect()
    if native is not None:
        assert native._statements == {}
        assert native._number is None


@st.composite
def table_columns(draw: st.DrawFn) -> tuple[list[tuple[object, ...]], PackedColumns]:
    """Rows for TABLE whose two text columns a and b come from tables: entries, each row's
    entry number (b's may be null), and sometimes an entry number out of range."""
    entries = [draw(TEXTS) for _ in range(draw(st.integers(1, 4)))]
    table = text_table(entries)
    assert table is not None
    count = draw(st.integers(0, 12))
    bound = len(entries) + (1 if draw(st.booleans()) else 0)  # one past the end: refused
    a = [draw(st.integers(0, bound - 1)) for _ in range(count)]
    b = [draw(st.integers(0, len(entries) - 1)) for _ in range(count)]
    b_null = [draw(st.booleans()) for _ in range(count)]
    keys = [draw(st.integers(0, 9)) for _ in range(count)]
    packed = PackedColumns(
        count,
        (INT64, TABLE, TABLE, NULL, NULL, NULL),
        (array("q", keys), np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), None, None, None),
        (None, None, bytes(b_null) if any(b_null) else None, None, None, None),
        (None, table, table, None, None, None),
    )
    rows = [
        (k, entries[x] if x < len(entries) else None, None if null else entries[y], None, None, None)
        for k, x, y, null in zip(keys, a, b, b_null, strict=True)
    ]
    return rows, packed


@pytest.mark.equivalence
@given(table_columns(), st.integers(1, 5))
def test_the_c_insert_binds_table_entries_as_its_twin(
    columns: tuple[list[tuple[object, ...]], PackedColumns], per: int
) -> None:
    rows, packed = columns
    native, twin = run_native(packed, per), run_twin(packed, per)
    assert native == twin
    found, error = twin
    if any(row[1] is None for row in rows):
        assert error is sqlite3.InterfaceError and found == []  # refused before any row ran
    elif error is None:
        assert list(map(exact, unpack_rows(packed))) == list(map(exact, rows))


def test_a_table_whose_offsets_go_backwards_is_refused_whole() -> None:
    texts, offsets = text_table(["ab", "cd"])  # type: ignore[misc]
    backwards = np.array([0, 3, 2], dtype=np.int64)
    for table in ((texts, backwards), (texts, np.array([0, 2, 9], dtype=np.int64))):
        packed = PackedColumns(
            1,
            (INT64, TABLE, NULL, NULL, NULL, NULL),
            (array("q", [1]), np.zeros(1, dtype=np.int64), None, None, None, None),
            (None,) * 6,
            (None, table, None, None, None, None),
        )
        assert run_native(packed, 1) == ([], sqlite3.InterfaceError)
        assert run_twin(packed, 1) == ([], sqlite3.InterfaceError)
    assert offsets.tolist() == [0, 2, 4]


@pytest.mark.parametrize(
    ("entries", "packs"),
    [(["a", "m³", ""], True), (["a", None], False), (["a", 1], False), (["\udc80"], False), ([], True)],
)
def test_which_tables_pack(entries: list[object], packs: bool) -> None:
    table = text_table(entries)
    assert (table is not None) is packs
    if table is not None:
        texts, offsets = table
        decoded = [texts[offsets[e] : offsets[e + 1]].decode() for e in range(len(entries))]
        assert decoded == entries


def test_rows_of_a_none_entry_bind_null() -> None:
    column = table_column(["a", None, "b"], np.array([1, 0, 1, 2], dtype=np.int64))
    assert column is not None
    (texts, offsets), nulls = column
    assert nulls == bytes([1, 0, 1, 0])
    assert [texts[offsets[e] : offsets[e + 1]] for e in range(3)] == [b"a", b"", b"b"]
    assert table_column(["a", "b"], np.array([1], dtype=np.int64)) is not None
    assert table_column(["a", 1], np.array([1], dtype=np.int64)) is None


def test_the_store_binds_on_its_own_connection_when_opening_it_opens_another(tmp_path: Path) -> None:
    # An audit hook that opens a database of its own right after the store's was opened: the
    # C core must bind on the store's connection, not on the one opened last.
    other = tmp_path / "other.sqlite"
    armed: list[bool] = []

    def open_another(event: str, args: tuple[object, ...]) -> None:
        if event == "sqlite3.connect/handle" and armed and armed.pop():
            sqlite3.connect(other).close()

    sys.addaudithook(open_another)  # hooks stay for the process: this one fires once
    armed.append(True)
    store = SQLiteStore(tmp_path / "store.sqlite")
    assert not armed
    store.write(sample_batch())
    assert store.counts()["readings"] > 0
    store.close()
    assert sqlite3.connect(other).execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


@given(st.lists(TEXTS, max_size=6), st.integers(1, 3))
def test_distinct_text_column_is_the_order_and_the_table(texts: list[str], width: int) -> None:
    """The keys' order and table from one join equal distinct_text_order and text_table,
    for texts of one width in ASCII (one join), hex digests and any others."""
    fixed = [format(number, f"0{width}x") for number in range(len(texts), 0, -1)]
    digests = [format(number << 64, "032x") for number in range(len(texts), 0, -1)]  # the content keys' form
    for case in (texts, fixed, digests):
        column = distinct_text_column(case)
        order = distinct_text_order(case)
        table = text_table(case)
        if order is None or table is None:
            assert column is None
            continue
        assert column is not None
        assert column[0].tolist() == order.tolist()
        assert column[1][0] == table[0] and column[1][1].tolist() == table[1].tolist()
