"""Write the collector log the ingest figures in docs/performance.md are measured on.

    python tools/make_ingest_log.py DIR [--days 1000] [--units 99]
    cd DIR && /usr/bin/time -v minolcore ingest log.jsonl --site site.toml --keys keys.toml --db big.sqlite

DIR gets site.toml, keys.toml and log.jsonl (1,006,538 lines with the defaults): a simulated
building seen by 3 gateways, with every fault the simulator injects.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from minolcore.reception import Radio
from minolcore.simulator import simulate, write_collector_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--units", type=int, default=99)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    simulation = simulate(start=dt.date(2024, 1, 1), days=args.days, seed=3, units=args.units, gateways=3)
    simulation.write_site_toml(args.out / "site.toml")
    simulation.write_keys_toml(args.out / "keys.toml")
    wmbus = [r for r in simulation.receptions if r.radio is Radio.WMBUS]
    lines = write_collector_log(args.out / "log.jsonl", wmbus)
    print(f"{lines:,} lines in {args.out / 'log.jsonl'}")


if __name__ == "__main__":
    main()
