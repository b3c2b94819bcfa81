"""Run the ``minolcore`` command with named functions timed: the main thread's CPU time in
each, and the share of the whole run it is.

    python tools/stage_times.py "pipeline:fast_records,store.sqlite:SQLiteStore._write" \\
        ingest log.jsonl --site site.toml --keys keys.toml --db new.sqlite

Each name is ``module:attribute`` (the module under ``minolcore``, the attribute a function
or ``Class.method``); the function is replaced where the module holds it, so a function
imported by name into another module is named there (``pipeline:fast_records``, not
``pipeline_fast:fast_records``). Thread time, not wall time: the host's other load and the
store's checkpoint thread do not count. A wrapped function called very often (per
telegram) adds about half a microsecond a call to its own share.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

from minolcore.cli import main as run

_spent: collections.Counter[str] = collections.Counter()
_calls: collections.Counter[str] = collections.Counter()


def _wrap(spec: str) -> None:
    """Replace the function ``spec`` names by one that adds up its thread time (s)."""
    module_name, _, path = spec.partition(":")
    owner: Any = importlib.import_module(f"minolcore.{module_name}")
    *owners, name = path.split(".")
    for attribute in owners:
        owner = getattr(owner, attribute)
    timed: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(timed)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return timed(*args, **kwargs)
        finally:
            _spent[spec] += time.thread_time() - start
            _calls[spec] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for spec in sys.argv[1].split(","):
        _wrap(spec)
    start, wall = time.thread_time(), time.perf_counter()
    with contextlib.suppress(SystemExit):  # argparse's exit after --help or a usage error
        run(sys.argv[2:])
    total = time.thread_time() - start
    print(f"main thread CPU {total:.2f} s, wall {time.perf_counter() - wall:.2f} s", file=sys.stderr)
    for spec, seconds in sorted(_spent.items()):
        print(f"{spec:50s} {seconds:7.3f} s {seconds / total:6.1%}  calls {_calls[spec]}", file=sys.stderr)


if __name__ == "__main__":
    main()
