"""Reference twin of ``mc_sql_insert``: packed rows bound through Python's ``sqlite3``."""

from __future__ import annotations

import itertools
import sqlite3

from minolcore.store._columns import PackedColumns, unpack_rows

__all__ = ["insert_packed"]


def insert_packed(
    db: sqlite3.Connection, many: str | None, rows_per_many: int, one: str, packed: PackedColumns
) -> None:
    """Run ``many`` (a statement of ``rows_per_many`` rows, or None) for each whole chunk of
    the rows, then ``one`` (of one row) for each row left, as ``mc_sql_insert`` does; SQLite's
    errors come as ``sqlite3``'s exceptions."""
    rows = unpack_rows(packed)
    whole = 0
    if many is not None:
        whole = len(rows) - len(rows) % rows_per_many
        flat = itertools.chain.from_iterable
        db.executemany(
            many, (tuple(flat(rows[i : i + rows_per_many])) for i in range(0, whole, rows_per_many))
        )
    db.executemany(one, rows[whole:])
