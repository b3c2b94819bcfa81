"""A batch's reading rows as one :class:`~minolcore.store.base.ReadingBlock`, merged as the
store's upsert merges them, and packed for binding from C.

The upsert keeps, of all rows with one reading key (device, reading time, quantity,
storage, tariff, subunit, function), the first row in batch order with the smallest uplink
key of them all. Here that happens over numbers for the table entries (equal values, equal
numbers) in one hash pass of the C core (:mod:`minolcore._key_groups`), which compares the
uplink keys as it goes, instead of a dict entry per row; the rows stay columns up to the
statement: the C core binds their texts from the tables (see
:mod:`minolcore.store._columns`).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from minolcore._key_groups import EncodedTexts, encoded_texts, fixed_rows, key_groups
from minolcore.store._columns import (
    DOUBLE,
    INT64,
    TABLE,
    PackedColumns,
    TextTable,
    pack_column,
    table_column,
    text_order,
    text_table,
)
from minolcore.store.base import ReadingBlock

__all__ = [
    "EMPTY",
    "historic_rows",
    "merge_reading_blocks",
    "merge_reading_blocks_keyed",
    "pack_readings",
    "placements",
    "reading_keys",
    "run_starts",
    "select_rows",
]

_NO_INDEX = np.zeros(0, dtype=np.int64)
EMPTY = ReadingBlock(
    device_uids=(),
    times=(),
    fields=(),
    places=(),
    uplink_keys=(),
    device=_NO_INDEX,
    time=_NO_INDEX,
    field=_NO_INDEX,
    place=_NO_INDEX,
    uplink=_NO_INDEX,
    value=np.zeros(0, dtype=np.float64),
    has_value=np.zeros(0, dtype=np.bool_),
    valid=np.zeros(0, dtype=np.uint8),
)


def _exact(entry: Any) -> Hashable:
    """A table entry as a dict key that keeps equal values of different types (1, 1.0) apart."""
    return (tuple(map(type, entry)), entry) if type(entry) is tuple else (type(entry), entry)


def _all_texts(entries: Sequence[Any]) -> bool:
    return set(map(type, entries)) <= {str}


def _joined(tables: Sequence[Sequence[Any]]) -> tuple[list[Any], list[npt.NDArray[np.int64]]]:
    """One table of the entries of ``tables`` (each entry once, exactly as given, in the order
    they first come), and per table the numbers of its entries in it."""
    if all(map(_all_texts, tables)):
        # Texts alone (the pipeline's tables): a text is its own exact key, C-level passes.
        texts = list(dict.fromkeys(itertools.chain.from_iterable(tables)))
        index = dict(zip(texts, itertools.count()))
        return texts, [_numbers(map(index.__getitem__, table), len(table)) for table in tables]
    known: dict[Hashable, int] = {}
    joined: list[Any] = []
    numbers = []
    for table in tables:
        found = []
        for entry in table:
            key = _exact(entry)
            number = known.get(key)
            if number is None:
                number = known[key] = len(joined)
                joined.append(entry)
            found.append(number)
        numbers.append(np.asarray(found, dtype=np.int64))
    return joined, numbers


def _classes(entries: Sequence[Any], key: Callable[[Any], Hashable] | None = None) -> npt.NDArray[np.int64]:
    """Per entry of a table from :func:`_joined` the number of its class of equal values (of
    ``key`` of the entry): 0, 1, ..."""
    if key is None and _all_texts(entries):
        return np.arange(len(entries), dtype=np.int64)  # distinct texts: each its own class
    key = key or (lambda entry: entry)
    numbers: dict[Hashable, int] = {}
    return _numbers((numbers.setdefault(key(entry), len(numbers)) for entry in entries), len(entries))


def _numbers(numbers: Iterable[int], count: int) -> npt.NDArray[np.int64]:
    return np.fromiter(numbers, dtype=np.int64, count=count)


def _ranks(entries: Sequence[Any]) -> npt.NDArray[np.int64]:
    """Per entry of a table from :func:`_joined` its place in the sorted order of the
    distinct values: equal values, equal ranks (Python's ordering: raises TypeError for
    values that do not compare)."""
    if _all_texts(entries):  # distinct texts: the rank is the place in sorted order
        rank = np.empty(len(entries), dtype=np.int64)
        rank[text_order(entries)] = np.arange(len(entries))
        return rank
    classes = _classes(entries)
    first: dict[int, Any] = {}
    for number, entry in zip(classes.tolist(), entries, strict=True):
        first.setdefault(number, entry)
    order = sorted(first, key=first.__getitem__)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[classes]


def _concatenated(tables: Sequence[Sequence[Any]]) -> tuple[list[Any], list[npt.NDArray[np.int64]]]:
    """The entries of ``tables`` one table after another (not made distinct), and the
    numbers of each table's entries in it."""
    starts = itertools.accumulate(map(len, tables), initial=0)  # one more than tables
    numbers = [
        np.arange(start, start + len(table), dtype=np.int64)
        for start, table in zip(starts, tables, strict=False)
    ]
    return list(itertools.chain.from_iterable(tables)), numbers


def _times(
    blocks: Sequence[ReadingBlock],
) -> tuple[list[Any], list[npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
    """(a table of the blocks' reading times, the numbers of each block's entries in it, per
    entry the number of its class of equal values). Texts of one width (the pipeline's
    times, nearly all distinct across batches) stay one table after another and get their
    classes from their bytes in C, faster than a dict that hashes every new text; others
    are made distinct as :func:`_joined` does."""
    tables = [block.times for block in blocks]
    if all(map(_all_texts, tables)):
        entries, numbers = _concatenated(tables)
        rows = fixed_rows(entries)
        if rows is not None:
            return entries, numbers, key_groups(rows).group_of
    times, numbers = _joined(tables)
    return times, numbers, _classes(times)


def _smallest_keys(
    uplink_keys: Sequence[Any], ordered: npt.NDArray[np.int64], starts: npt.NDArray[np.intp]
) -> npt.NDArray[np.int64]:
    """Per run of rows of one reading key (``ordered`` the rows' uplink entries, runs from
    ``starts``) the entry of its smallest uplink key: of equal ones the first, as the upsert
    leaves it (a later row replaces the key only with a smaller one). Most runs are one row;
    the longer ones (a historic value repeated by the batches of one write) are compared in
    Python, as the upsert compares them."""
    chosen = ordered[starts].copy()
    ends = np.append(starts[1:], len(ordered))
    for run in np.flatnonzero(ends - starts > 1).tolist():
        best = int(chosen[run])
        for entry in ordered[starts[run] + 1 : ends[run]].tolist():
            if uplink_keys[entry] < uplink_keys[best]:
                best = entry
        chosen[run] = best
    return chosen


def run_starts(order: npt.NDArray[np.intp], keys: Sequence[npt.NDArray[Any]]) -> npt.NDArray[np.intp]:
    """Where each run of rows with equal ``keys`` starts among the rows in ``order`` (which
    sorts them by those keys)."""
    same = np.ones(len(order), dtype=np.bool_)
    same[:1] = False
    for key in keys:
        part = key[order]
        same[1:] &= part[1:] == part[:-1]
    return np.flatnonzero(~same)


def merge_reading_blocks(blocks: Sequence[ReadingBlock]) -> ReadingBlock:
    """The rows of ``blocks`` (in order) as the upsert leaves them: one row per reading key,
    the first in order with the smallest uplink key of them all. The rows come grouped by
    device uid in sorted order, each device's rows in their order: a device's rows are
    inserted together, which keeps the inserts local in the B-tree."""
    return merge_reading_blocks_keyed(blocks)[0]


def merge_reading_blocks_keyed(blocks: Sequence[ReadingBlock]) -> tuple[ReadingBlock, TextTable | None]:
    """(:func:`merge_reading_blocks`, its uplink keys as a :data:`TextTable` where they are
    all ``str`` and encodable, else None): the keys are encoded once, for comparing them
    here and for binding them in :func:`pack_readings`."""
    blocks = [block for block in blocks if len(block)]
    if not blocks:
        return EMPTY, None
    device_uids, device_numbers = _joined([block.device_uids for block in blocks])
    times, time_numbers, time_classes = _times(blocks)
    fields, field_numbers = _joined([block.fields for block in blocks])
    places, place_numbers = _joined([block.places for block in blocks])
    # Uplink keys are only compared, never looked up: their tables are not made distinct.
    uplink_keys, uplink_numbers = _concatenated([block.uplink_keys for block in blocks])

    def column(numbers: list[npt.NDArray[np.int64]], name: str) -> npt.NDArray[np.int64]:
        return np.concatenate(
            [table[getattr(block, name)] for table, block in zip(numbers, blocks, strict=True)]
        )

    device = column(device_numbers, "device")
    time = column(time_numbers, "time")
    field = column(field_numbers, "field")
    place = column(place_numbers, "place")
    uplink = column(uplink_numbers, "uplink")
    numeric = all(block.value.dtype == np.float64 and block.valid.dtype == np.uint8 for block in blocks)
    if numeric:
        value = np.concatenate([block.value for block in blocks])
        valid = np.concatenate([block.valid for block in blocks])
    else:
        value = np.concatenate([block.value.astype(object) for block in blocks])
        valid = np.concatenate([block.valid.astype(object) for block in blocks])
    has_value = np.concatenate([block.has_value for block in blocks])

    # Reading keys as numbers: equal values, equal numbers (1 and 1.0 are one key, as in a dict).
    key_device = _classes(device_uids)[device]
    key_time = time_classes[time]
    key_fields = _classes(fields, lambda entry: entry[:5])[field]
    # One group per reading key, in batch order; its first row wins. Texts compare as the
    # upsert compares them in C; keys of other types in Python.
    # Strict UTF-8 (the table's) and the "surrogatepass" of encoded_texts agree where the
    # former encodes at all; lone surrogates take encoded_texts.
    uplink_table = text_table(uplink_keys)
    texts = (
        encoded_texts(uplink_keys)
        if uplink_table is None
        else EncodedTexts(uplink_table[0], uplink_table[1][:-1], uplink_table[1][1:])
    )
    groups = key_groups(
        np.stack([key_device, key_time, key_fields], axis=1),
        texts=texts,
        text_of=None if texts is None else uplink,
    )
    winners = groups.first
    if groups.smallest is not None:
        chosen_uplink = groups.smallest
    else:
        order = np.argsort(groups.group_of, kind="stable")
        chosen_uplink = _smallest_keys(uplink_keys, uplink[order], run_starts(order, (groups.group_of,)))
    # Grouped by device uid in sorted order, each device's rows in batch order (the winners
    # come in batch order).
    regroup = np.argsort(_ranks(device_uids)[device[winners]], kind="stable")
    kept = winners[regroup]
    merged = ReadingBlock(
        device_uids=device_uids,
        times=times,
        fields=fields,
        places=places,
        uplink_keys=uplink_keys,
        device=device[kept],
        time=time[kept],
        field=field[kept],
        place=place[kept],
        uplink=chosen_uplink[regroup],
        value=value[kept],
        has_value=has_value[kept],
        valid=valid[kept],
    )
    return merged, uplink_table


def reading_keys(block: ReadingBlock, rows: npt.NDArray[np.intp]) -> list[tuple[Any, ...]]:
    """The reading keys of ``rows``: (device, reading time, quantity, storage, tariff,
    subunit, function) each."""
    keys = [entry[:5] for entry in block.fields]
    return [
        (device, time, *fields)
        for device, time, fields in zip(
            map(block.device_uids.__getitem__, block.device[rows].tolist()),
            map(block.times.__getitem__, block.time[rows].tolist()),
            map(keys.__getitem__, block.field[rows].tolist()),
            strict=True,
        )
    ]


def select_rows(block: ReadingBlock, rows: npt.NDArray[np.intp]) -> ReadingBlock:
    """The block of ``rows`` of ``block`` (in that order), with the same tables."""
    return ReadingBlock(
        device_uids=block.device_uids,
        times=block.times,
        fields=block.fields,
        places=block.places,
        uplink_keys=block.uplink_keys,
        device=block.device[rows],
        time=block.time[rows],
        field=block.field[rows],
        place=block.place[rows],
        uplink=block.uplink[rows],
        value=block.value[rows],
        has_value=block.has_value[rows],
        valid=block.valid[rows],
    )


def historic_rows(block: ReadingBlock) -> npt.NDArray[np.intp]:
    """The rows of historic values (storage other than 0: due-date and month-end values)."""
    historic_field = np.fromiter(
        (entry[1] != 0 for entry in block.fields), dtype=np.bool_, count=len(block.fields)
    )
    return np.flatnonzero(historic_field[block.field]) if len(block.fields) else np.zeros(0, dtype=np.intp)


def placements(block: ReadingBlock) -> list[tuple[str, str, str]]:
    """(building or '', unit or '', device) of every row placed in a building or unit."""
    if not len(block):
        return []
    # Each (place, device) pair once, in the order the rows first have it: of equal ids of
    # different types (1 and 1.0) the set keeps the first, as it would over the rows.
    pairs = block.place * len(block.device_uids) + block.device
    _, first = np.unique(pairs, return_index=True)
    found = set()
    for pair in pairs[np.sort(first)].tolist():
        building, unit = block.places[pair // len(block.device_uids)]
        if building is not None or unit is not None:
            found.add((building or "", unit or "", block.device_uids[pair % len(block.device_uids)]))
    return sorted(found)


def pack_readings(block: ReadingBlock, uplink_table: TextTable | None = None) -> PackedColumns | None:
    """The block's rows packed for the readings' INSERT (its 13 columns), texts bound from
    the tables; None where a column does not pack exactly (see :mod:`minolcore.store._columns`):
    the rows then go through Python's sqlite3. ``uplink_table``: the block's ``uplink_keys``
    already as a table (from :func:`merge_reading_blocks_keyed`), not encoded again."""
    count = len(block)
    tables: list[TextTable | None] = []
    kinds: list[int] = []
    values: list[Any] = []
    nulls: list[bytes | None] = []

    def text(entries: Sequence[Any], numbers: npt.NDArray[np.int64]) -> bool:
        column = table_column(entries, numbers)
        if column is None:
            return False
        kinds.append(TABLE)
        values.append(numbers)
        nulls.append(column[1])
        tables.append(column[0])
        return True

    def integers(entries: Sequence[Any], numbers: npt.NDArray[np.int64]) -> bool:
        if not set(map(type, entries)) <= {int, bool}:
            return False
        try:
            table = np.asarray(array("q", entries), dtype=np.int64)
        except OverflowError:
            return False
        kinds.append(INT64)
        values.append(table[numbers] if len(table) else numbers)
        nulls.append(None)
        tables.append(None)
        return True

    def objects(column: npt.NDArray[Any]) -> bool:
        packed = pack_column(column.tolist(), count)
        if packed is None:
            return False
        kinds.append(packed[0])
        values.append(packed[1])
        nulls.append(packed[2])
        tables.append(None)
        return True

    fields = block.fields
    field_part = [[entry[part] for entry in fields] for part in range(6)]
    ok = (
        text(block.device_uids, block.device)
        and text(block.times, block.time)
        and text(field_part[0], block.field)
        and integers(field_part[1], block.field)
        and integers(field_part[2], block.field)
        and integers(field_part[3], block.field)
        and text(field_part[4], block.field)
    )
    if not ok:
        return None
    if block.value.dtype == np.float64:
        kinds.append(DOUBLE)
        values.append(block.value)
        nulls.append(None if block.has_value.all() else (~block.has_value).view(np.uint8).tobytes())
        tables.append(None)
    else:
        present = block.value.copy()
        present[~block.has_value] = None
        if not objects(present):
            return None
    if not text(field_part[5], block.field):
        return None
    if block.valid.dtype == np.uint8:
        kinds.append(INT64)
        values.append(block.valid.astype(np.int64))
        nulls.append(None)
        tables.append(None)
    elif not objects(block.valid):
        return None
    ok = text([place[0] for place in block.places], block.place) and text(
        [place[1] for place in block.places], block.place
    )
    if ok and uplink_table is not None:
        kinds.append(TABLE)
        values.append(block.uplink)
        nulls.append(None)
        tables.append(uplink_table)
    else:
        ok = ok and text(block.uplink_keys, block.uplink)
    if not ok:
        return None
    return PackedColumns(count, tuple(kinds), tuple(values), tuple(nulls), tuple(tables))
