"""A batch's uplinks packed for binding from C, in the order of their keys, without a tuple
per uplink: the blocks' columns are bound through an index (the order), their receptions'
texts from the tables the C core joined them into (see :mod:`minolcore.store.receptions`).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from minolcore.store._columns import INT64, TABLE, PackedColumns, TextTable, text_order, text_table
from minolcore.store.base import UplinkBlock, UplinkValues

__all__ = ["distinct_keys", "pack_uplinks"]


def distinct_keys(blocks: Sequence[UplinkBlock], rows: Sequence[UplinkValues]) -> bool:
    """Whether every uplink key of the blocks and rows comes once (the pipeline's batches)."""
    keys = list(itertools.chain(*(block.uplink_keys for block in blocks), map(operator.itemgetter(0), rows)))
    return len(set(keys)) == len(keys)


def pack_uplinks(blocks: Sequence[UplinkBlock], rows: Sequence[UplinkValues]) -> PackedColumns | None:
    """The uplinks of ``blocks`` and ``rows`` (keys all distinct, see :func:`distinct_keys`)
    packed for the uplinks' INSERT, in the order of their keys (the B-tree of the key then
    takes its inserts in order); None where a column does not pack exactly: the rows then go
    through Python's sqlite3."""
    if not all(len(row) == 8 for row in rows):
        return None
    blocks = [block for block in blocks if len(block)]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    keys = list(itertools.chain(*(block.uplink_keys for block in blocks), columns[0]))
    count = len(keys)
    if not set(map(type, keys)) <= {str}:
        return None
    for block in blocks:
        entry = np.asarray(block.reception_entry)
        if len(entry) != len(block) or (
            len(entry) and (entry.min() < 0 or entry.max() >= len(block.offsets) - 1)
        ):
            return None
    order = text_order(keys)

    def text(parts: list[Sequence[Any]]) -> TextTable | None:
        return text_table(list(itertools.chain.from_iterable(parts)))

    def integers(parts: list[npt.NDArray[np.int64]], given: Sequence[Any]) -> npt.NDArray[np.int64] | None:
        if not set(map(type, given)) <= {int, bool}:
            return None
        try:
            return np.take(np.concatenate([*parts, np.asarray(given, dtype=np.int64)]), order)
        except OverflowError:
            return None

    tables = [
        text_table(keys),
        text([block.device_uids for block in blocks] + [columns[1]]),
        text([block.security_status for block in blocks] + [columns[3]]),
        text([block.decode_errors for block in blocks] + [columns[4]]),
        _reception_table(blocks, columns[7]),
    ]
    numbers = [
        integers([block.size for block in blocks], columns[2]),
        integers([block.first_ms for block in blocks], columns[5]),
        integers([block.last_ms for block in blocks], columns[6]),
    ]
    if any(table is None for table in tables) or any(column is None for column in numbers):
        return None
    key_table, device_table, status_table, errors_table, reception_table = tables
    size, first_ms, last_ms = numbers
    assert reception_table is not None
    entries = _reception_entries(blocks, len(columns[7]))[order]
    return PackedColumns(
        count,
        (TABLE, TABLE, INT64, TABLE, TABLE, INT64, INT64, TABLE),
        (order, order, size, order, order, first_ms, last_ms, entries),
        (None,) * 8,
        (key_table, device_table, None, status_table, errors_table, None, None, reception_table),
    )


def _reception_table(blocks: Sequence[UplinkBlock], texts: Sequence[Any]) -> TextTable | None:
    """The blocks' reception tables and the rows' texts as one table, in that order."""
    given = text_table(texts)
    if given is None:
        return None
    tables = [(block.receptions, np.asarray(block.offsets, dtype=np.int64)) for block in blocks] + [given]
    if any(
        len(offsets) < 1 or np.any(np.diff(offsets) < 0) or offsets[0] < 0 or offsets[-1] > len(data)
        for data, offsets in tables
    ):
        return None
    datas = [data[offsets[0] : offsets[-1]] for data, offsets in tables]
    starts = itertools.accumulate(map(len, datas), initial=0)
    shifted = [np.zeros(1, dtype=np.int64)]
    shifted += [offsets[1:] - offsets[0] + start for start, (_, offsets) in zip(starts, tables, strict=False)]
    return b"".join(datas), np.concatenate(shifted)


def _reception_entries(blocks: Sequence[UplinkBlock], rows: int) -> npt.NDArray[np.int64]:
    """Per uplink (the blocks' rows, then the given rows) its entry in :func:`_reception_table`."""
    entries = []
    base = 0
    for block in blocks:
        entries.append(np.asarray(block.reception_entry, dtype=np.int64) + base)
        base += len(block.offsets) - 1
    entries.append(np.arange(base, base + rows, dtype=np.int64))
    return np.concatenate(entries)
