"""Ingest a log in-process into a new store, for counting the instructions it takes.

Machine timings here vary by up to half between runs of the same code; instruction counts
do not. Run once with the log, once with an empty file (the imports and set-up), and take
the difference:

    head -n 200000 DIR/log.jsonl > DIR/head200k.jsonl
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python tools/ingest_instructions.py DIR/head200k.jsonl DIR/site.toml DIR/keys.toml OUT.sqlite
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python tools/ingest_instructions.py /dev/null DIR/site.toml DIR/keys.toml OUT2.sqlite

``--no-store`` counts the pipeline alone. What ``minolcore ingest`` does, without the
command line and the checkpoint thread (whose timing would vary the count).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minolcore.cli import _load_keys
from minolcore.ingest import fewer_collections, ingest_files
from minolcore.pipeline import Pipeline
from minolcore.site import SiteRegistry
from minolcore.store import SQLiteStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("site", type=Path)
    parser.add_argument("keys", type=Path)
    parser.add_argument("db", type=Path, nargs="?")
    parser.add_argument("--no-store", action="store_true")
    args = parser.parse_args()
    if not args.no_store and (args.db is None or args.db.exists()):
        parser.error("a database path that does not exist yet is needed (or --no-store)")
    site = SiteRegistry.from_toml(args.site)
    store = None if args.no_store else SQLiteStore(args.db)
    pipeline = Pipeline(site=site, keys=_load_keys(str(args.keys)), store=store, gateways=list(site.gateways))
    try:
        with fewer_collections():
            ingest_files([args.log], pipeline)
    finally:
        if store is not None:
            store.close()


if __name__ == "__main__":
    main()
