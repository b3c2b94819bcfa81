"""``minolcore demo``: a simulated building for a year through the whole data path.

The simulator makes genuine traffic (OMS modes 5 and 7, LoRaWAN, several gateways, late
collector uploads, corrupted and foreign frames, a replay, a meter swap); the pipeline
admits, dedupes, decrypts, decodes, assigns and stores it; the report shows what happened
and each unit's monthly consumption. The files written let a user repeat every step with
the real commands (``minolcore ingest`` and ``minolcore report``).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import TextIO

from minolcore.access import AUDIT_KEY_ENV, AUDIT_KEY_FILE_ENV, AccessLayer, Principal, Role, audit_key_for
from minolcore.ingest import print_stats
from minolcore.pipeline import Pipeline
from minolcore.reports import MonthlyReport
from minolcore.simulator import simulate, write_collector_log, write_packet_forwarder_log
from minolcore.store import SQLiteStore

__all__ = ["DEMO_START", "print_monthly", "print_stats", "run_demo"]

DEMO_START = dt.date(2025, 1, 1)


def print_monthly(report: MonthlyReport, out: TextIO) -> None:
    """Each unit's monthly consumption, one line per month, the kinds side by side."""
    kinds = sorted({row.kind for row in report.rows})
    measures = {row.kind: row.measure for row in report.rows}
    table: dict[tuple[str, str], dict[str, float | None]] = {}
    for row in report.rows:
        table.setdefault((row.unit, row.month), {})[row.kind] = row.consumption
    header = "".join(f"{kind.replace('_', ' ')} ({measures[kind]})".rjust(22) for kind in kinds)
    last_unit = None
    for (unit, month), values in sorted(table.items()):
        if unit != last_unit:
            print(f"\n{unit:<9}{header}", file=out)
            last_unit = unit
        cells = "".join(("-" if values.get(k) is None else f"{values[k]:,.2f}").rjust(22) for k in kinds)
        print(f"  {month:<7}{cells}", file=out)


def run_demo(out_dir: Path, *, days: int = 365, units: int = 6, seed: int = 1, out: TextIO) -> int:
    """Simulate ``days`` days of a building with ``units`` flats, run the pipeline into
    ``out_dir/minolcore.sqlite`` and print a summary and the monthly consumption (exit code)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    simulation = simulate(start=DEMO_START, days=days, seed=seed, units=units)
    simulated = time.perf_counter() - started
    site_file, keys_file, log_file = out_dir / "site.toml", out_dir / "keys.toml", out_dir / "traffic.jsonl"
    lorawan_file = out_dir / "lorawan.jsonl"
    simulation.write_site_toml(site_file)
    simulation.write_keys_toml(keys_file)
    write_collector_log(log_file, simulation.receptions)
    write_packet_forwarder_log(lorawan_file, simulation.receptions)
    database = out_dir / "minolcore.sqlite"
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)
    store = SQLiteStore(database)
    store.set_meta("site_toml", simulation.site.to_toml())
    pipeline = Pipeline(site=simulation.site, keys=simulation.keys, store=store, gateways=simulation.gateways)
    started = time.perf_counter()
    stats = pipeline.run(simulation.receptions)
    ran = time.perf_counter() - started
    last_day = DEMO_START + dt.timedelta(days=days - 1)
    building = simulation.site.buildings()[0].id
    print(
        f"Simulated building {building}: {units} flats, {len(simulation.devices)} devices, "
        f"{days} days from {DEMO_START} ({simulated:.1f} s); pipeline ran in {ran:.1f} s "
        f"({stats.received / max(ran, 1e-9):,.0f} receptions/s).\n",
        file=out,
    )
    print_stats(stats, out)
    expected = dict(sorted(simulation.truth.rejections.items()))
    verdict = "as injected" if expected == stats.rejected else f"injected: {expected}"
    print(f"rejections per reason {verdict}", file=out)
    from minolcore.cli import operator_id  # noqa: PLC0415

    # The table is an audited read like any other: a billing clerk's monthly information.
    layer = AccessLayer(store, simulation.site, audit_key=audit_key_for(database))
    clerk = Principal(id=operator_id(), role=Role.OPERATOR, staff_role="billing")
    try:
        report = layer.monthly_report(clerk, building=building, months=(DEMO_START, last_day))
    finally:
        layer.close()
    print(
        "\nMonthly consumption per unit (EED / HeizkostenV § 6a; full report: minolcore report monthly):",
        file=out,
    )
    print_monthly(report, out)
    store.close()
    key_file = (
        ""
        if os.environ.get(AUDIT_KEY_ENV) or os.environ.get(AUDIT_KEY_FILE_ENV)
        else (" minolcore.sqlite.audit-key (the audit log's key),")
    )
    print(
        f"\nWritten to {out_dir}/: minolcore.sqlite,{key_file} site.toml, keys.toml (simulated keys), "
        "traffic.jsonl (wireless M-Bus collector lines), lorawan.jsonl (packet-forwarder lines).\n"
        f"Next: minolcore report billing --db {database}   |   minolcore report smoke --db {database}\n"
        f"      minolcore ingest {log_file} {lorawan_file} --site {site_file} --keys {keys_file} "
        "--db other.sqlite",
        file=out,
    )
    return 0
