"""A batch's uplinks packed for binding from C, in the order of their keys, without a tuple
per uplink: the blocks' columns are bound through an index (the order), their receptions'
texts from the tables the C core joined them into (see :mod:`minolcore.store.receptions`).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from minolcore.store._columns import (
    INT64,
    TABLE,
    PackedColumns,
    TextTable,
    distinct_text_column,
    table_column,
    text_table,
)
from minolcore.store.base import UplinkBlock, UplinkValues

__all__ = ["pack_uplinks"]


def pack_uplinks(blocks: Sequence[UplinkBlock], rows: Sequence[UplinkValues]) -> PackedColumns | None:
    """The uplinks of ``blocks`` (checked: :meth:`UplinkBlock.check`) and ``rows`` packed for
    the uplinks' INSERT, in the order of their keys (the B-tree of the key then takes its
    inserts in order); None where a key comes twice (such rows are merged first) or a column
    does not pack exactly: the rows then go through Python's sqlite3."""
    if not all(len(row) == 8 for row in rows):
        return None
    blocks = [block for block in blocks if len(block)]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    keys = list(itertools.chain(*(block.uplink_keys for block in blocks), columns[0]))
    if not set(map(type, keys)) <= {str}:
        return None
    # The keys are joined once for their order and their table.
    key_column = distinct_text_column(cast(list[str], keys))
    if key_column is None:
        return None
    order, key_table = key_column

    def text(parts: Sequence[Sequence[Any]]) -> tuple[npt.NDArray[np.int64], TextTable, bytes | None] | None:
        """(the rows' entries, the table, the null mask) of a text column."""
        given = [part for part in parts if len(part)]
        firsts = [part[0] for part in given]
        if set(map(type, firsts)) <= {str} and all(
            all(map(operator.is_, part, itertools.repeat(first)))
            for part, first in zip(given, firsts, strict=True)
        ):
            # One text object in every row of each part (the pipeline's status and errors of
            # a block): a table of a few entries, one per part, without joining every row's
            # text. Equal texts in other objects take table_column, which tests their types.
            table = text_table(firsts)
            if table is None:
                return None
            part_of = np.repeat(np.arange(len(given), dtype=np.int64), [len(part) for part in given])
            return np.take(part_of, order), table, None
        column = table_column(list(itertools.chain.from_iterable(given)), order)
        return None if column is None else (order, *column)

    def integers(parts: Sequence[npt.NDArray[Any]], given: Sequence[Any]) -> npt.NDArray[np.int64] | None:
        if not set(map(type, given)) <= {int, bool}:
            return None
        try:
            tail = np.asarray(given, dtype=np.int64)
        except OverflowError:
            return None
        return np.take(np.concatenate([*(np.asarray(part).astype(np.int64) for part in parts), tail]), order)

    texts = [
        (order, key_table, None),
        text([*(block.device_uids for block in blocks), columns[1]]),
        text([*(block.security_status for block in blocks), columns[3]]),
        text([*(block.decode_errors for block in blocks), columns[4]]),
    ]
    numbers = [
        integers([block.size for block in blocks], columns[2]),
        integers([block.first_ms for block in blocks], columns[5]),
        integers([block.last_ms for block in blocks], columns[6]),
    ]
    receptions = _reception_table(blocks, columns[7])
    if any(part is None for part in texts) or any(part is None for part in numbers) or receptions is None:
        return None
    key, device, status, errors = cast(list[tuple[npt.NDArray[np.int64], TextTable, bytes | None]], texts)
    size, first_ms, last_ms = numbers
    entries = np.take(_reception_entries(blocks, len(columns[7])), order)
    return PackedColumns(
        len(keys),
        (TABLE, TABLE, INT64, TABLE, TABLE, INT64, INT64, TABLE),
        (key[0], device[0], size, status[0], errors[0], first_ms, last_ms, entries),
        (key[2], device[2], None, status[2], errors[2], None, None, None),
        (key[1], device[1], None, status[1], errors[1], None, None, receptions),
    )


def _reception_table(blocks: Sequence[UplinkBlock], texts: Sequence[Any]) -> TextTable | None:
    """The blocks' reception tables and the rows' texts as one table, in that order (None
    where a row's text is not a ``str``)."""
    given = text_table(texts)
    if given is None:
        return None
    tables = [(block.receptions, np.asarray(block.offsets, dtype=np.int64)) for block in blocks] + [given]
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
        entries.append(np.asarray(block.reception_entry).astype(np.int64) + base)
        base += len(block.offsets) - 1
    entries.append(np.arange(base, base + rows, dtype=np.int64))
    return np.concatenate(entries)
