"""Reference twin of ``mc_sql_insert``: packed rows bound through Python's ``sqlite3``."""

from __future__ import annotations

import itertools
import sqlite3

from minolcore.store._columns import TABLE, PackedColumns, unpack_rows

__all__ = ["insert_packed"]


def insert_packed(
    db: sqlite3.Connection, many: str | None, rows_per_many: int, one: str, packed: PackedColumns
) -> None:
    """Run ``many`` (a statement of ``rows_per_many`` rows, or None) for each whole chunk of
    the rows, then ``one`` (of one row) for each row left, as ``mc_sql_insert`` does; SQLite's
    errors come as ``sqlite3``'s exceptions."""
    _check_tables(packed)
    rows = unpack_rows(packed)
    whole = 0
    if many is not None:
        whole = len(rows) - len(rows) % rows_per_many
        flat = itertools.chain.from_iterable
        db.executemany(
            many, (tuple(flat(rows[i : i + rows_per_many])) for i in range(0, whole, rows_per_many))
        )
    db.executemany(one, rows[whole:])


def _check_tables(packed: PackedColumns) -> None:
    """Refuse a row's table entry out of range, or a table's offsets out of order, before
    any row runs."""
    for column, kind in enumerate(packed.kinds):
        table = packed.table(column)
        if kind != TABLE or table is None:
            continue
        texts, offsets = table
        bounds = offsets.tolist()
        if (
            any(end < start for start, end in itertools.pairwise(bounds))
            or bounds[0] < 0
            or bounds[-1] > len(texts)
        ):
            raise sqlite3.InterfaceError("a table's offsets are out of order")
        mask = packed.nulls[column]
        entries = list(packed.values[column])
        if any(
            (mask is None or not mask[row]) and not 0 <= entry < len(bounds) - 1
            for row, entry in enumerate(entries)
        ):
            raise sqlite3.InterfaceError("a row's table entry is out of range")
