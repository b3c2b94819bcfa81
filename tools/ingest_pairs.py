"""Time ``minolcore ingest`` of one log for one or more source trees, runs interleaved.

This machine's speed drifts by up to half within an hour, so two trees are only compared
run for run: each round runs every tree once, in turn (every other round in reverse
order), each into a new database. Reported per tree: the median wall time in s and
receptions/s, the median CPU time of the process (user + system, in s), the largest
resident set in MiB; with two trees, also the median of
the per-round ratios: the second tree's time over the first's (above 1: the first is faster).

    python tools/ingest_pairs.py DIR/log.jsonl DIR/site.toml DIR/keys.toml \\
        --tree new=src --tree old=/path/to/old/checkout/src --rounds 5

A tree is a ``src`` directory with the C extension built in place
(``python setup.py build_ext --inplace`` in its checkout); it is put first on
``PYTHONPATH``. Without ``--tree`` the installed minolcore runs alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(log: Path, site: Path, keys: Path, src: str | None, db: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, max RSS MB) of one ``minolcore ingest`` into the new store ``db``."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (src, env.get("PYTHONPATH"))))
    command = [sys.executable, "-m", "minolcore", "ingest", str(log)]
    command += ["--site", str(site), "--keys", str(keys), "--db", str(db)]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    # wait4 gives this child's own resource use (RUSAGE_CHILDREN would sum every child).
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"minolcore ingest exited with {child.returncode} ({src or 'installed'})")
    # ru_maxrss is in KiB on Linux: MiB here.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _receptions(log: Path) -> int:
    with log.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("site", type=Path)
    parser.add_argument("keys", type=Path)
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=SRC")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    trees: list[tuple[str, str | None]] = []
    for item in args.tree:
        label, sep, src = item.partition("=")
        if not sep or not label or not Path(src).is_dir():
            parser.error(f"--tree wants LABEL=SRC with an existing directory, not {item!r}")
        trees.append((label, str(Path(src).resolve())))
    trees = trees or [("installed", None)]
    if len({label for label, _ in trees}) < len(trees):
        parser.error("each --tree needs its own label")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    lines = _receptions(args.log)
    walls: dict[str, list[float]] = {label: [] for label, _ in trees}
    cpus: dict[str, list[float]] = {label: [] for label, _ in trees}
    rss: dict[str, float] = dict.fromkeys(walls, 0.0)
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(1, args.rounds + 1):
            # Alternating the order keeps a tree from always running first (warm caches).
            for label, src in trees if round_number % 2 else trees[::-1]:
                db = Path(scratch) / f"{label}-{round_number}.sqlite"
                wall, cpu, peak = _run(args.log, args.site, args.keys, src, db)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                walls[label].append(wall)
                cpus[label].append(cpu)
                rss[label] = max(rss[label], peak)
                print(f"round {round_number} {label}: {wall:.2f} s", flush=True)
    for label, times in walls.items():
        median = statistics.median(times)
        print(
            f"{label}: median {median:.2f} s ({lines / median:,.0f} receptions/s), "
            f"runs {' / '.join(f'{t:.2f}' for t in sorted(times))} s, "
            f"CPU median {statistics.median(cpus[label]):.2f} s, max RSS {rss[label]:.0f} MiB"
        )
    if len(trees) == 2:
        first, second = (label for label, _ in trees)
        ratios = [b / a for a, b in zip(walls[first], walls[second], strict=True)]
        print(
            f"{first} against {second}, round for round: median {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}x)"
        )


if __name__ == "__main__":
    main()
