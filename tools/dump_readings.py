"""Dump a store's readings as tab-separated lines for tools/sqlite_floor.c: in reading-time
order, cut into six transactions (each sorted by key, as the store writes them).

    python tools/dump_readings.py big.sqlite readings.tsv
"""

from __future__ import annotations

import sqlite3
import sys


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    rows = sqlite3.connect(source).execute("SELECT * FROM readings ORDER BY reading_time").fetchall()
    size = (len(rows) + 5) // 6
    with open(target, "w", encoding="utf-8") as out:
        for start in range(0, len(rows), size):
            for row in sorted(rows[start : start + size]):
                out.write("\t".join("" if value is None else str(value) for value in row) + "\n")
            out.write("#COMMIT\n")
    print(f"{len(rows):,} readings in {target}")


if __name__ == "__main__":
    main()
