"""The ``minolcore`` command.

- ``minolcore`` / ``minolcore demo [--out DIR]``: simulate a building for a year, run the
  pipeline into DIR/minolcore.sqlite and show what happened and each unit's monthly
  consumption;
- ``minolcore ingest FILE... --site SITE.toml --keys KEYS --db DB``: real gateway logs;
- ``minolcore report billing|monthly|smoke --db DB``: the applications' reports, each read
  through the access layer as operator staff and audited (audit key: see
  :mod:`minolcore.access.keyfile`);
- ``minolcore decode``: decrypt and decode telegrams;
- ``minolcore scan FILE...``: validate wireless M-Bus frames (hex, one per line).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import getpass
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from minolcore import BACKEND, __version__
from minolcore.errors import ConfigError, InputError, MinolcoreError
from minolcore.wmbus.frame import FrameStatus
from minolcore.wmbus.link import decode_id, decode_manufacturer, device_type_name
from minolcore.wmbus.scan import Flag, ScanResult, scan_frames

if TYPE_CHECKING:
    from minolcore.access import AccessLayer, Principal

__all__ = ["main"]

_SHAPES = {0: "no CRC", 1: "format A", 2: "format B"}
_STATUS_TEXT = {
    FrameStatus.OK: "ok",
    FrameStatus.TOO_SHORT: "too short",
    FrameStatus.L_FIELD: "L-field mismatch",
    FrameStatus.CRC: "CRC error",
    FrameStatus.HEADER_TRUNCATED: "header truncated",
}
_BATCH = 65_536


def _sample_path() -> str:
    return str(resources.files("minolcore") / "data" / "sample_frames.txt")


# --- scan -------------------------------------------------------------------------------------


def _hex_lines(paths: Sequence[str], stdin: TextIO) -> Iterator[tuple[str, int, str]]:
    """(source, line number, text) of every non-blank, non-comment line."""
    for path in paths:
        handle = stdin if path == "-" else open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
        try:
            for number, line in enumerate(handle, 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    yield path, number, text
        finally:
            if handle is not stdin:
                handle.close()


def _describe(result: ScanResult, index: int) -> str:
    row = result.info[index]
    status = FrameStatus(int(row["status"]))
    if status in (FrameStatus.TOO_SHORT, FrameStatus.L_FIELD, FrameStatus.CRC):
        return _STATUS_TEXT[status]
    meter = (
        f"{decode_manufacturer(int(row['meter_manufacturer']))} {decode_id(int(row['meter_id']))} "
        f"{device_type_name(int(row['meter_device_type']))}"
    )
    text = f"{_SHAPES[int(row['crc_shape'])]:<9} {meter:<36} CI {int(row['ci']):02X}"
    if int(row["flags"]) & Flag.LONG_TPL and (row["id"], row["manufacturer"]) != (
        row["meter_id"],
        row["meter_manufacturer"],
    ):
        text += f" via {decode_manufacturer(int(row['manufacturer']))} {decode_id(int(row['id']))}"
    if int(row["flags"]) & Flag.HIDDEN:
        text += "  ELL AES-CTR"
    elif int(row["security_mode"]):
        text += f"  mode {int(row['security_mode'])}, {int(row['encrypted_blocks'])} blocks"
    if status is not FrameStatus.OK:
        text += f"  ({_STATUS_TEXT[status]})"
    return text


def _run_scan(paths: Sequence[str], crc: str, out: TextIO) -> int:
    counts: collections.Counter[str] = collections.Counter()
    batch: list[tuple[str, int, bytes]] = []

    def flush() -> None:
        result = scan_frames([raw for _, _, raw in batch], crc=crc)  # type: ignore[arg-type]
        for index, (source, number, _) in enumerate(batch):
            counts[_STATUS_TEXT[FrameStatus(int(result.status[index]))]] += 1
            print(f"{os.path.basename(source)}:{number}: {_describe(result, index)}", file=out)
        batch.clear()

    for source, number, text in _hex_lines(paths, sys.stdin):
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            counts["not hex"] += 1
            print(f"{os.path.basename(source)}:{number}: not a hex frame", file=out)
            continue
        batch.append((source, number, raw))
        if len(batch) >= _BATCH:
            flush()
    if batch:
        flush()
    total = sum(counts.values())
    summary = ", ".join(f"{count} {name}" for name, count in counts.most_common())
    print(f"\n{total} frames: {summary}  [C core: {BACKEND}]", file=out)
    return 0


# --- pipeline jobs ----------------------------------------------------------------------------


def _load_keys(path: str) -> object:
    from minolcore.keys import MAGIC, KeyStore, master_key_from_env, master_key_from_file  # noqa: PLC0415

    try:
        head = Path(path).read_bytes()[: len(MAGIC)]
    except OSError as error:
        raise ConfigError(f"cannot read the key file: {error.strerror}", path) from None
    if head != MAGIC:
        return KeyStore.import_plain(path)
    master_file = os.environ.get("MINOLCORE_MASTER_KEY_FILE")
    master = master_key_from_file(master_file) if master_file else master_key_from_env()
    return KeyStore.load(path, master)


def _run_ingest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from minolcore.ingest import fewer_collections, ingest_files, print_stats  # noqa: PLC0415
    from minolcore.keys import KeyStore  # noqa: PLC0415
    from minolcore.pipeline import Pipeline  # noqa: PLC0415
    from minolcore.site import SiteRegistry  # noqa: PLC0415
    from minolcore.store import SQLiteStore  # noqa: PLC0415

    site = SiteRegistry.from_toml(args.site)
    keys = _load_keys(args.keys)
    assert isinstance(keys, KeyStore)
    gateways = list(args.gateway or site.gateways)
    if not gateways:
        raise ConfigError(
            "no gateways: list them in the site file (gateways = [...]) or give --gateway", args.site
        )
    for path in args.files:
        if os.path.isdir(path):
            raise ConfigError("a directory, not a log file (name the files in it)", path)
        if not os.path.isfile(path):
            raise ConfigError("no such file", path)
    if args.db in ("", ":memory:") or args.db.startswith("file:"):
        raise ConfigError("name a database file: an in-memory database would be lost at exit", "--db")
    # A bulk load: the writer does not wait for the disk at checkpoints.
    store = SQLiteStore(args.db, checkpoint_in_background=True)
    bar = None
    try:
        store.set_meta("site_toml", site.to_toml())
        pipeline = Pipeline(site=site, keys=keys, store=store, gateways=gateways)
        if err.isatty():
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(unit=" lines", unit_scale=True, file=err)
        with fewer_collections():
            summary = ingest_files(args.files, pipeline, progress=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
        store.close()
    print(
        f"ingested {summary.lines:,} lines from {len(args.files)} file(s) in {summary.seconds:.1f} s "
        f"({summary.lines / max(summary.seconds, 1e-9):,.0f} lines/s) into {args.db}",
        file=out,
    )
    for reason, count in summary.bad_lines.items():
        print(f"  bad lines: {reason:<12} {count:>8,}", file=out)

    print_stats(summary.pipeline, out)
    return 0


def _parse_period(text: str | None) -> tuple[dt.date, dt.date] | None:
    if text is None:
        return None
    try:
        if ":" in text:
            first, last = text.split(":", 1)
            return dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        year = int(text)
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    except ValueError:
        raise InputError(f"--period must be YYYY or YYYY-MM-DD:YYYY-MM-DD, got {text!r}") from None


# The staff role each report is read under: the narrowest role whose job needs the purpose.
REPORT_STAFF_ROLES = {"billing": "billing", "monthly": "billing", "smoke": "technician"}


def operator_id(environ: Mapping[str, str] | None = None) -> str:
    """Who runs the command, for the audit trail: ``MINOLCORE_OPERATOR``, else the login name."""
    env = os.environ if environ is None else environ
    named = env.get("MINOLCORE_OPERATOR")
    if named:
        return named
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "operator"


def report_text(
    kind: str,
    layer: AccessLayer,
    operator: Principal,
    *,
    latest_reading: str | None,
    building: str | None,
    unit: str | None,
    period: tuple[dt.date, dt.date] | None,
    fmt: str,
) -> str:
    """One report rendered as text, read through ``layer`` as ``operator`` (an audited access).
    Without a period: billing takes the last complete billing year of the data (newest reading
    time ``latest_reading``, ISO), monthly the twelve months up to it, smoke its time."""
    from minolcore import reports  # noqa: PLC0415

    site = layer.site
    try:
        latest = dt.date.today() if latest_reading is None else dt.date.fromisoformat(latest_reading[:10])
    except ValueError:
        raise ConfigError(
            f"the newest reading time in the database is not a date: {latest_reading!r}"
        ) from None
    buildings = [b.id for b in site.buildings()]
    if building is None and unit is None:
        if len(buildings) != 1:
            raise ConfigError(f"name a building (--building), one of: {', '.join(buildings) or 'none'}")
        building = buildings[0]
    report: reports.Report
    if unit is not None and kind != "monthly":
        raise ConfigError(f"--unit applies to the monthly report; the {kind} report covers a building")
    if kind == "billing":
        if building is None:
            raise ConfigError("the billing report needs --building")
        settings = site.building(building).billing
        due = settings.due_date if settings is not None else (lambda year: dt.date(year, 12, 31))
        if period is None:
            year = latest.year if due(latest.year) <= latest else latest.year - 1
            period = (due(year - 1), due(year))
        report = layer.billing_report(operator, building=building, period=period)
    elif kind == "monthly":
        if period is None:
            first = dt.date(latest.year - 1, latest.month, 1) + dt.timedelta(days=31)
            period = (first.replace(day=1), latest)
        if building is None:
            assert unit is not None
            building = site.unit(unit).building
        report = layer.monthly_report(operator, building=building, unit=unit, months=period)
    else:
        if building is None:
            raise ConfigError("the smoke detector report needs --building")
        at = None if period is None else dt.datetime.combine(period[1], dt.time(23, 59))
        if at is None and latest_reading is not None:
            try:
                at = dt.datetime.fromisoformat(latest_reading)
            except ValueError:
                raise ConfigError(f"the newest reading time is not a time: {latest_reading!r}") from None
        report = layer.smoke_report(operator, building=building, at=at)
    return reports.render(report, fmt)  # type: ignore[arg-type]


def _run_report(args: argparse.Namespace, out: TextIO) -> int:
    from minolcore.access import AccessLayer, Principal, Role, audit_key_for  # noqa: PLC0415
    from minolcore.site import SiteRegistry  # noqa: PLC0415
    from minolcore.store import SQLiteStore  # noqa: PLC0415

    if not os.path.isfile(args.db):
        raise ConfigError("no such database", args.db)
    audit_key = audit_key_for(args.db)
    store = SQLiteStore(args.db)
    try:
        if args.site:
            site = SiteRegistry.from_toml(args.site)
        else:
            text = store.get_meta("site_toml")
            if text is None:
                raise ConfigError("the database holds no site; give --site", args.db)
            site = SiteRegistry.from_toml_text(text, source=f"{args.db} (stored site)")
        layer = AccessLayer(store, site, audit_key=audit_key)
        operator = Principal(id=operator_id(), role=Role.OPERATOR, staff_role=REPORT_STAFF_ROLES[args.kind])
        try:
            text = report_text(
                args.kind,
                layer,
                operator,
                latest_reading=store.latest_reading_time(),
                building=args.building,
                unit=args.unit,
                period=_parse_period(args.period),
                fmt=args.format,
            )
        finally:
            layer.close()
    finally:
        store.close()
    out.write(text if text.endswith("\n") else text + "\n")
    return 0


def _run_demo(args: argparse.Namespace, out: TextIO) -> int:
    from minolcore import demo  # noqa: PLC0415

    return demo.run_demo(Path(args.out), days=args.days, units=args.units, seed=args.seed, out=out)


# --- parser -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minolcore", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"minolcore {__version__} ({BACKEND})")
    commands = parser.add_subparsers(dest="command")

    demo_cmd = commands.add_parser("demo", help="simulate a building for a year and run the pipeline")
    demo_cmd.add_argument("--out", default="minolcore-demo", help="output folder (default: minolcore-demo)")
    demo_cmd.add_argument("--days", type=int, default=365, help="simulated days (default 365)")
    demo_cmd.add_argument("--units", type=int, default=6, help="apartments in the building (default 6)")
    demo_cmd.add_argument("--seed", type=int, default=1, help="random seed of the simulation")

    ingest_cmd = commands.add_parser("ingest", help="run gateway log files through the pipeline into SQLite")
    ingest_cmd.add_argument(
        "files",
        nargs="+",
        help="gateway logs: collector lines (JSON or hex) and packet-forwarder lines (rxpk or datagram JSON)",
    )
    ingest_cmd.add_argument("--site", required=True, help="site file (TOML)")
    ingest_cmd.add_argument(
        "--keys",
        required=True,
        help="key file: plain TOML, or sealed (master key from "
        "MINOLCORE_MASTER_KEY or the file named by MINOLCORE_MASTER_KEY_FILE)",
    )
    ingest_cmd.add_argument("--db", required=True, help="SQLite database (created if missing)")
    ingest_cmd.add_argument("--gateway", action="append", help="admitted gateway id (default: the site's)")

    report_cmd = commands.add_parser("report", help="billing, monthly consumption or smoke inspection")
    report_cmd.add_argument("kind", choices=("billing", "monthly", "smoke"))
    report_cmd.add_argument("--db", required=True, help="SQLite database written by ingest or demo")
    report_cmd.add_argument("--site", help="site file (default: the one stored with the data)")
    report_cmd.add_argument("--building", help="building id (default: every building)")
    report_cmd.add_argument("--unit", help="unit id (monthly report)")
    report_cmd.add_argument("--period", help="YYYY, or YYYY-MM-DD:YYYY-MM-DD")
    report_cmd.add_argument("--format", choices=("table", "csv", "json"), default="table")

    decode_cmd = commands.add_parser("decode", help="decrypt and decode telegrams")
    decode_cmd.add_argument("hex", nargs="?", help="one telegram as hex (omit with --jsonl)")
    decode_cmd.add_argument("--key", help="AES-128 key, 32 hex digits")
    decode_cmd.add_argument("--json", action="store_true", help="print the JSON object")
    decode_cmd.add_argument("--jsonl", action="store_true", help="read 'HEX [KEY]' lines from stdin")

    scan_cmd = commands.add_parser("scan", help="validate wireless M-Bus frames (hex, one per line)")
    scan_cmd.add_argument("files", nargs="*", help="files of hex frames ('-' for stdin; default: the sample)")
    scan_cmd.add_argument("--crc", choices=("auto", "present", "absent"), default="auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minolcore`` command; returns the exit code (0 ok, 1 failed, 2 usage)."""
    args = _parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        if args.command is None:
            args = _parser().parse_args(["demo", *([] if argv is None else argv)])
        if args.command == "demo":
            return _run_demo(args, out)
        if args.command == "ingest":
            return _run_ingest(args, out, err)
        if args.command == "report":
            return _run_report(args, out)
        if args.command == "scan":
            return _run_scan(args.files or [_sample_path()], args.crc, out)
        if args.command == "decode":
            from minolcore.wmbus.decode_cli import run_decode  # noqa: PLC0415

            return run_decode(
                args.hex,
                key=args.key,
                as_json=args.json,
                jsonl=args.jsonl,
                stdin=sys.stdin,
                stdout=out,
                stderr=err,
            )
    except MinolcoreError as error:
        print(f"minolcore: {error}", file=err)
        return 1
    except BrokenPipeError:
        return 0
    except OSError as error:
        print(f"minolcore: {error}", file=err)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
