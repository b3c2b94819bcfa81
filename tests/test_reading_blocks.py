"""Reading rows and uplinks as blocks (columns, texts from tables) merge, select, pack and
store exactly as the rows they hold: the store's upsert rule row by row is the model."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore import ingest
from minolcore.errors import InputError
from minolcore.store import SQLiteStore
from minolcore.store._columns import distinct_text_order, text_order, text_table, unpack_rows
from minolcore.store._readings import (
    EMPTY,
    historic_rows,
    merge_reading_blocks,
    merge_reading_blocks_keyed,
    pack_readings,
    placements,
    reading_keys,
    select_rows,
)
from minolcore.store._uplinks import pack_uplinks
from minolcore.store.base import ReadingBlock, StoreBatch, UplinkBlock

from .test_store import repeating_batch

# Values equal across types (1, 1.0, True) in key and value fields: a block keeps each as given.
DEVICES = st.sampled_from(["wmbus:A", "wmbus:B", "lorawan:C"])
TIMES = st.sampled_from(["2024-01-01T00:00", "2024-01-31T00:00", "2024-02-01T12:30:07"])
STORAGE = st.sampled_from([0, 1, 2, 1.0, True])
UNITS = st.sampled_from(["m3", "m³", "kWh"])
VALUES = st.none() | st.floats(allow_nan=False, width=32) | st.sampled_from([7, 2.5])
KEYS = st.sampled_from(["00", "0a", "ff", "0a0"])
PLACES = st.sampled_from([(None, None), ("B1", None), ("B1", "U1"), (None, "U2")])


@st.composite
def reading_rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    rows = []
    for _ in range(draw(st.integers(0, 14))):
        building, unit_id = draw(PLACES)
        rows.append(
            (
                draw(DEVICES),
                draw(TIMES),
                draw(st.sampled_from(["volume", "energy"])),
                draw(STORAGE),
                0,
                draw(st.sampled_from([0, 1])),
                "instantaneous",
                draw(VALUES),
                draw(UNITS),
                draw(st.sampled_from([1, 0, True])),
                building,
                unit_id,
                draw(KEYS),
            )
        )
    return rows


def merged_row_by_row(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The upsert's rule row by row: per key the first row, with the smallest uplink key;
    grouped by device (sorted), each device's rows in their order."""
    merged: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        held = merged.setdefault(row[:7], row)
        if held is not row and row[12] < held[12]:
            merged[row[:7]] = (*held[:12], row[12])
    return sorted(merged.values(), key=lambda row: row[0])


def exact(rows: list[tuple[Any, ...]]) -> list[tuple[tuple[str, str], ...]]:
    return [tuple((type(value).__name__, repr(value)) for value in row) for row in rows]


def split(rows: list[tuple[Any, ...]], cuts: list[int]) -> list[ReadingBlock]:
    bounds = sorted({0, len(rows), *(cut % (len(rows) + 1) for cut in cuts)})
    return [ReadingBlock.from_rows(rows[a:b]) for a, b in itertools.pairwise(bounds)]


@given(reading_rows())
def test_a_block_holds_its_rows_exactly(rows: list[tuple[Any, ...]]) -> None:
    assert exact(ReadingBlock.from_rows(rows).rows()) == exact(rows)


@given(reading_rows(), st.lists(st.integers(0, 20), max_size=3))
def test_blocks_merge_as_their_rows_merge_row_by_row(rows: list[tuple[Any, ...]], cuts: list[int]) -> None:
    merged = merge_reading_blocks(split(rows, cuts))
    assert exact(merged.rows()) == exact(merged_row_by_row(rows))


@given(reading_rows())
def test_selected_rows_keys_and_placements_are_those_of_the_rows(rows: list[tuple[Any, ...]]) -> None:
    block = merge_reading_blocks([ReadingBlock.from_rows(rows)])
    merged = block.rows()
    historic = historic_rows(block)
    assert historic.tolist() == [at for at, row in enumerate(merged) if row[3] != 0]
    assert reading_keys(block, historic) == [merged[at][:7] for at in historic.tolist()]
    assert exact(select_rows(block, historic[::-1]).rows()) == exact(
        [merged[at] for at in historic.tolist()[::-1]]
    )
    expected = {(b or "", u or "", d) for d, *_, b, u, _ in merged if b is not None or u is not None}
    assert placements(block) == sorted(expected)


@given(reading_rows(), st.lists(st.integers(0, 20), max_size=3))
def test_the_merges_uplink_key_table_packs_as_the_keys_do(
    rows: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    """The uplink keys' table made while merging binds as the keys themselves would."""
    block, table = merge_reading_blocks_keyed(split(rows, cuts))
    assert exact(block.rows()) == exact(merge_reading_blocks(split(rows, cuts)).rows())
    expected = text_table(block.uplink_keys)
    if table is None:  # no rows, or keys that make no table
        assert expected is None or not len(block)
        return
    assert expected is not None
    assert table[0] == expected[0] and table[1].tolist() == expected[1].tolist()
    packed, with_table = pack_readings(block), pack_readings(block, table)
    assert (packed is None) == (with_table is None)
    if packed is not None and with_table is not None:
        assert exact(unpack_rows(with_table)) == exact(unpack_rows(packed))


@given(reading_rows())
def test_packed_readings_are_the_rows_python_binds(rows: list[tuple[Any, ...]]) -> None:
    block = merge_reading_blocks([ReadingBlock.from_rows(rows)])
    packed = pack_readings(block)
    if packed is None:
        # Only where Python's sqlite3 binds a column otherwise: a float for a storage number
        # in the fields' table, or integers and floats mixed among the values.
        storages = {type(fields[1]) for fields in block.fields}
        values = {type(row[7]) for row in block.rows()}
        assert not storages <= {int, bool} or values >= {int, float}
        return
    as_bound = [
        tuple(int(value) if isinstance(value, bool) else value for value in row) for row in block.rows()
    ]
    assert exact(unpack_rows(packed)) == exact(as_bound)


@given(reading_rows(), st.lists(st.integers(0, 20), max_size=3))
def test_a_store_stores_blocks_as_it_stores_their_rows(rows: list[tuple[Any, ...]], cuts: list[int]) -> None:
    as_blocks, as_rows = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    as_blocks.write(StoreBatch(reading_blocks=split(rows, cuts)))
    for row in rows:
        as_rows.write(StoreBatch(reading_values=[row]))
    assert as_blocks.digest() == as_rows.digest()
    # Placements follow the rows the batch keeps (one by one, a later row's place would count).
    kept = merged_row_by_row(rows)
    expected = sorted({(b or "", u or "", d) for d, *_, b, u, _ in kept if b is not None or u is not None})
    assert as_blocks._db.execute("SELECT * FROM placements ORDER BY 1, 2, 3").fetchall() == expected
    as_blocks.close()
    as_rows.close()


def test_an_empty_merge_is_the_empty_block() -> None:
    assert merge_reading_blocks([]) is EMPTY
    assert merge_reading_blocks([ReadingBlock.from_rows([])]) is EMPTY
    assert EMPTY.rows() == [] and placements(EMPTY) == [] and len(historic_rows(EMPTY)) == 0


def test_a_reading_row_of_another_width_is_an_input_error() -> None:
    with pytest.raises(InputError, match="13 values"):
        ReadingBlock.from_rows([("wmbus:A", "2024-01-01T00:00")])


def test_a_block_of_texts_that_do_not_pack_is_stored_through_python() -> None:
    row = ("wmbus:A", "2024-01-01T00:00", "volume", 1, 0, 0, "instantaneous", 1.5, "m3", 1, None, None, "0a")
    odd = (*row[:8], "\udc80", *row[9:])  # a lone surrogate: Python's sqlite3 refuses it
    block = ReadingBlock.from_rows([odd])
    assert pack_readings(block) is None
    with SQLiteStore(":memory:") as store, pytest.raises(InputError, match="cannot hold"):
        store.write(StoreBatch(reading_blocks=[block]))
    with SQLiteStore(":memory:") as store:
        store.write(StoreBatch(reading_blocks=[ReadingBlock.from_rows([row])]))
        assert store.counts()["readings"] == 1


def test_the_value_column_of_a_block_may_be_float64() -> None:
    block = ReadingBlock.from_rows([])
    numeric = ReadingBlock(
        device_uids=["wmbus:A"],
        times=["2024-01-01T00:00"],
        fields=[("volume", 0, 0, 0, "instantaneous", "m3")],
        places=[("B1", None)],
        uplink_keys=["0a", "0b"],
        device=np.zeros(2, dtype=np.int64),
        time=np.zeros(2, dtype=np.int64),
        field=np.zeros(2, dtype=np.int64),
        place=np.zeros(2, dtype=np.int64),
        uplink=np.array([1, 0], dtype=np.int64),
        value=np.array([np.nan, 2.0]),
        has_value=np.array([False, True]),
        valid=np.array([0, 1], dtype=np.uint8),
    )
    merged = merge_reading_blocks([block, numeric])
    assert merged.rows() == [
        ("wmbus:A", "2024-01-01T00:00", "volume", 0, 0, 0, "instantaneous", None, "m3", 0, "B1", None, "0a")
    ]


@given(first=repeating_batch(), second=repeating_batch(), as_blocks=st.booleans())
def test_uplinks_as_blocks_store_what_their_rows_store(
    first: StoreBatch, second: StoreBatch, as_blocks: bool
) -> None:
    by_rows, by_blocks = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    for batch in (first, second):
        by_rows.write(batch)
        values = list(batch.uplink_values)
        # Half of the tuples in a block of their own, half as tuples beside it.
        blocked = StoreBatch(
            **{
                **{name: getattr(batch, name) for name in StoreBatch.__struct_fields__},
                "uplink_values": values[: len(values) // 2] if as_blocks else values,
                "uplink_blocks": [UplinkBlock.from_rows(values[len(values) // 2 :])] if as_blocks else [],
            }
        )
        by_blocks.write(blocked)
    assert by_blocks.digest() == by_rows.digest()
    by_rows.close()
    by_blocks.close()


@given(st.lists(st.sampled_from(["0a", "0b", "ff", "f0"]), unique=True))
def test_distinct_uplinks_pack_in_the_order_of_their_keys(keys: list[str]) -> None:
    rows = [
        (key, "wmbus:A", 20 + n, "ok", "", 100 + n, 200 + n, f'[["GW-{n}",{100 + n},null,null]]')
        for n, key in enumerate(keys)
    ]
    block = UplinkBlock.from_rows(rows)
    assert block.rows() == rows
    assert pack_uplinks([block], [*rows[:1]]) is None or not rows  # a key twice: merged first
    packed = pack_uplinks([block], rows[:0])
    assert packed is not None
    assert unpack_rows(packed) == sorted(rows)
    both = pack_uplinks([UplinkBlock.from_rows(rows[:1])], rows[1:])
    assert both is not None and unpack_rows(both) == sorted(rows)


ROW = ("0a", "wmbus:A", 20, "ok", "", 100, 100, '[["GW-1",100,null,null]]')


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reception_entry": np.array([1], dtype=np.int64)}, "outside its table"),
        ({"reception_entry": np.array([-1], dtype=np.int64)}, "outside its table"),
        ({"receptions": b"\xff\xfe"}, "ascend within|not UTF-8"),
        ({"receptions": '[["GW-1",100,null,null]]'}, "must be bytes"),
        ({"device_uids": ["wmbus:A", "wmbus:B"]}, "one value per uplink"),
        ({"size": np.array([1.5])}, "64-bit integers"),
        ({"first_ms": np.array([2**63 + 4096], dtype=np.uint64)}, "64-bit integers"),
        ({"offsets": np.array([5, 0], dtype=np.int64)}, "ascend"),
    ],
)
def test_a_malformed_uplink_block_is_an_input_error(change: dict[str, Any], message: str) -> None:
    broken = msgspec.structs.replace(UplinkBlock.from_rows([ROW]), **change)
    with pytest.raises(InputError, match=message):
        broken.check()
    for native in (True, False):
        store = SQLiteStore(":memory:")
        if not native:
            store._close_native_rows()
            store._native_rows = None
        with pytest.raises(InputError, match=message):
            store.write(StoreBatch(uplink_blocks=[broken]))
        assert store.counts()["uplinks"] == 0
        store.close()
    with pytest.raises(InputError, match="8 values"):
        UplinkBlock.from_rows([ROW[:7]])  # type: ignore[list-item]


@pytest.mark.parametrize("column", [1, 3, 4, 7])
def test_a_missing_uplink_text_is_refused_either_way(column: int) -> None:
    # NOT NULL columns: a None binds NULL from C as from Python, and the store refuses it.
    row = (*ROW[:column], None, *ROW[column + 1 :])
    for native in (True, False):
        store = SQLiteStore(":memory:")
        if not native:
            store._close_native_rows()
            store._native_rows = None
        with pytest.raises(InputError):
            store.write(StoreBatch(uplink_values=[row]))  # type: ignore[list-item]
        assert store.counts()["uplinks"] == 0
        store.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"device": np.array([1], dtype=np.int64)}, "name entries"),
        ({"time": np.array([-1], dtype=np.int64)}, "name entries"),
        ({"field": np.array([0.0])}, "name entries"),
        ({"has_value": np.array([1])}, "bool array"),
        ({"valid": np.array([1, 1], dtype=np.uint8)}, "one value per row"),
    ],
)
def test_a_malformed_reading_block_is_an_input_error(change: dict[str, Any], message: str) -> None:
    row = ("wmbus:A", "2024-01-01T00:00", "volume", 0, 0, 0, "instantaneous", 1.5, "m3", 1, None, None, "0a")
    broken = msgspec.structs.replace(ReadingBlock.from_rows([row]), **change)
    with SQLiteStore(":memory:") as store, pytest.raises(InputError, match=message):
        store.write(StoreBatch(reading_blocks=[broken]))


@given(st.lists(st.text(max_size=3) | st.sampled_from(["0a", "0b", "a0", "ff", "FF", "é"]), max_size=12))
def test_text_order_is_pythons_stable_sort(texts: list[str]) -> None:
    assert text_order(texts).tolist() == sorted(range(len(texts)), key=texts.__getitem__)


@given(st.lists(st.text("0123456789abcdef", min_size=4, max_size=4), max_size=30))
def test_text_order_of_content_keys_is_pythons_stable_sort(keys: list[str]) -> None:
    # Texts of one length in ASCII: numpy sorts their bytes.
    assert text_order(keys).tolist() == sorted(range(len(keys)), key=keys.__getitem__)


# 32-character texts sorted as two 64-bit halves (lowercase hex digests): halves that
# repeat, texts that repeat, capital letters, spaces and other characters all included.
HALVES = st.sampled_from(["0" * 16, "f" * 16, "0123456789abcdef", "0123456789abcdee", "a" * 16])
DIGEST_TEXTS = st.lists(
    st.builds(str.__add__, HALVES, HALVES)
    | st.text("0123456789abcdef", min_size=32, max_size=32)
    | st.text("0123456789abcdefABCDEF ", min_size=32, max_size=32)
    | st.text("0123456789", min_size=32, max_size=32)
    | st.text(min_size=32, max_size=32),
    max_size=20,
)


@given(DIGEST_TEXTS)
def test_digest_texts_sort_as_python_sorts_them(texts: list[str]) -> None:
    expected = sorted(range(len(texts)), key=texts.__getitem__)
    assert text_order(texts).tolist() == expected
    order = distinct_text_order(texts)
    if len(set(texts)) < len(texts):
        assert order is None
    else:
        assert order is not None and order.tolist() == expected


@given(reading_rows(), st.lists(st.sampled_from(["0a", 5, 1, 1.0, True]), min_size=14, max_size=14))
def test_uplink_keys_of_any_type_merge_as_the_upsert_compares_them(
    rows: list[tuple[Any, ...]], keys: list[Any]
) -> None:
    # Keys are only compared within a reading key's rows, as the upsert compares them: a
    # text and a number in one run cannot be compared, in different runs they never meet.
    rows = [(*row[:12], key) for row, key in zip(rows, keys, strict=False)]
    try:
        expected = exact(merged_row_by_row(rows))
    except TypeError:
        with pytest.raises(TypeError):
            merge_reading_blocks([ReadingBlock.from_rows(rows)])
        return
    assert exact(merge_reading_blocks(split(rows, [len(rows) // 2])).rows()) == expected


def test_pooled_batches_keep_their_order_whatever_kind_their_rows_are() -> None:
    # One reading, first as a block (1.0), then as a value tuple (2.0): written in turn the
    # first stays; pooled into one write, it must stay as well.
    row = ("wmbus:A", "2024-01-01T00:00", "volume", 0, 0, 0, "instantaneous", 1.0, "m3", 1, None, None, "0a")
    later = (*row[:7], 2.0, *row[8:])
    uplink = ("0a", "wmbus:A", 20, "ok", "", 100, 100, '[["GW-1",100,null,null]]')
    other_head = ("0a", "wmbus:A", 21, "ok", "", 100, 100, '[["GW-2",100,null,null]]')
    first = StoreBatch(
        reading_blocks=[ReadingBlock.from_rows([row])], uplink_blocks=[UplinkBlock.from_rows([uplink])]
    )
    second = StoreBatch(reading_values=[later], uplink_values=[other_head])
    in_turn, pooled_store = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    in_turn.write(first)
    in_turn.write(second)
    pool = ingest._PooledStore(pooled_store, rows=1000)
    pool.write(first)
    pool.write(second)
    pool.flush()
    assert pooled_store.digest() == in_turn.digest()
    in_turn.close()
    pooled_store.close()


@given(
    st.lists(st.text("0123456789abcdef", min_size=2, max_size=2), max_size=30)
    | st.lists(st.text(max_size=2), max_size=12)
)
def test_distinct_text_order_is_none_exactly_when_a_text_repeats(texts: list[str]) -> None:
    order = distinct_text_order(texts)
    if len(set(texts)) < len(texts):
        assert order is None
    else:
        assert order is not None and order.tolist() == sorted(range(len(texts)), key=texts.__getitem__)


def test_a_column_of_one_text_packs_only_when_every_row_holds_a_str() -> None:
    class Tag(str):
        pass

    row = ("a" * 32, "wmbus:A", 20, "ok", "", 100, 100, '[["GW-1",100,null,null]]')
    tagged = ("b" * 32, "wmbus:A", 20, Tag("ok"), "", 100, 100, '[["GW-1",100,null,null]]')
    packed = pack_uplinks([UplinkBlock.from_rows([row, (*tagged[:3], "ok", *tagged[4:])])], [])
    assert packed is not None
    status_table = packed.tables[3]
    assert status_table is not None and status_table[0] == b"ok"
    assert status_table[1].tolist() == [0, 2] and packed.values[3].tolist() == [0, 0]
    # A str subclass is bound by Python's sqlite3, which may adapt it: the rows are not packed.
    assert pack_uplinks([], [row, tagged]) is None
