"""What SQLite costs for a store's uplink and reading rows, written three ways.

Replays the uplinks and readings of a store (in arrival order, cut into ten transactions,
each sorted as the store writes them) into a fresh database of the store's schema: one row
per statement (``executemany``), many rows per statement as the store writes them
(``SQLiteStore._insert_rows``), and with ``INSERT ... SELECT`` from a temporary table
filled beforehand, which is SQLite's own work without any per-row binding.

    python tools/store_floor.py big.sqlite
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import tempfile
import time

from minolcore.store.sqlite import _INSERT_READING, _INSERT_UPLINK, SQLiteStore

_TRANSACTIONS = 10


def main() -> None:
    source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    uplinks = source.execute("SELECT * FROM uplinks ORDER BY first_received_ms").fetchall()
    readings = source.execute(
        "SELECT r.* FROM readings r JOIN uplinks u USING (uplink_key) ORDER BY u.first_received_ms"
    ).fetchall()
    batches = []
    for n in range(_TRANSACTIONS):
        up = sorted(uplinks[n * len(uplinks) // _TRANSACTIONS : (n + 1) * len(uplinks) // _TRANSACTIONS])
        rd = readings[n * len(readings) // _TRANSACTIONS : (n + 1) * len(readings) // _TRANSACTIONS]
        batches.append((up, sorted(rd, key=lambda row: row[0])))
    print(f"{len(uplinks):,} uplinks and {len(readings):,} readings in {_TRANSACTIONS} transactions")
    for way, label in (
        ("one", "one row per statement"),
        ("many", "many rows per statement (the store)"),
        ("select", "INSERT ... SELECT (no binding)"),
    ):
        with tempfile.TemporaryDirectory() as folder:
            seconds = _replay(os.path.join(folder, "floor.sqlite"), batches, way)
        print(
            f"{label:36s} uplinks {seconds[0]:.2f} s, readings {seconds[1]:.2f} s, commits {seconds[2]:.2f} s"
        )


def _replay(path: str, batches: list[tuple[list[tuple[object, ...]], ...]], way: str) -> list[float]:
    store = SQLiteStore(path)  # the schema and pragmas of a new store
    db = store._db
    if way == "select":
        db.execute("CREATE TEMP TABLE u AS SELECT * FROM uplinks WHERE 0")
        db.execute("CREATE TEMP TABLE r AS SELECT * FROM readings WHERE 0")
    seconds = [0.0, 0.0, 0.0]
    for up, rd in batches:
        if way == "select":
            db.execute("DELETE FROM u")
            db.execute("DELETE FROM r")
            db.executemany("INSERT INTO u VALUES (?, ?, ?, ?, ?, ?, ?, ?)", up)
            db.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rd)
        db.execute("BEGIN IMMEDIATE")
        start = time.perf_counter()
        _insert(store, way, _INSERT_UPLINK, up, "u")
        middle = time.perf_counter()
        _insert(store, way, _INSERT_READING, rd, "r")
        end = time.perf_counter()
        db.execute("COMMIT")
        seconds[0] += middle - start
        seconds[1] += end - middle
        seconds[2] += time.perf_counter() - end
    store.close()
    return seconds


def _insert(
    store: SQLiteStore, way: str, statement: str, rows: list[tuple[object, ...]], staged: str
) -> None:
    """Write ``rows`` with ``statement`` one way; "select" copies the temporary table ``staged``."""
    if way == "one":
        store._db.executemany(statement, rows)
    elif way == "many":
        store._insert_rows(statement, rows)
    else:
        store._db.execute(re.sub(r"VALUES \([?, ]+\)", f"SELECT * FROM {staged} WHERE true", statement))


if __name__ == "__main__":
    main()
