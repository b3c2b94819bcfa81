"""The ``minolcore`` command.

``minolcore`` alone scans the shipped sample of gateway frames and says what it found;
``minolcore scan FILE...`` does the same for files of hex frames (one per line);
``minolcore decode`` decrypts and decodes telegrams.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import TextIO

from minolcore import BACKEND, __version__
from minolcore.errors import MinolcoreError
from minolcore.wmbus.frame import FrameStatus
from minolcore.wmbus.link import decode_id, decode_manufacturer, device_type_name
from minolcore.wmbus.scan import Flag, ScanResult, scan_frames

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


def _run_scan(paths: Sequence[str], crc: str, out: TextIO, err: TextIO) -> int:
    counts: collections.Counter[str] = collections.Counter()
    batch: list[tuple[str, int, bytes]] = []

    def flush() -> None:
        result = scan_frames([raw for _, _, raw in batch], crc=crc)  # type: ignore[arg-type]
        for index, (source, number, _) in enumerate(batch):
            counts[_STATUS_TEXT[FrameStatus(int(result.status[index]))]] += 1
            print(f"{os.path.basename(source)}:{number}: {_describe(result, index)}", file=out)
        batch.clear()

    try:
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
    except OSError as error:
        print(f"minolcore: {error}", file=err)
        return 2
    total = sum(counts.values())
    summary = ", ".join(f"{count} {name}" for name, count in counts.most_common())
    print(f"\n{total} frames: {summary}  [C core: {BACKEND}]", file=out)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minolcore", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"minolcore {__version__} ({BACKEND})")
    commands = parser.add_subparsers(dest="command")
    scan_cmd = commands.add_parser("scan", help="validate wireless M-Bus frames (hex, one per line)")
    scan_cmd.add_argument("files", nargs="*", help="files of hex frames ('-' for stdin; default: the sample)")
    scan_cmd.add_argument("--crc", choices=("auto", "present", "absent"), default="auto")
    decode_cmd = commands.add_parser("decode", help="decrypt and decode telegrams")
    decode_cmd.add_argument("hex", nargs="?", help="one telegram as hex (omit with --jsonl)")
    decode_cmd.add_argument("--key", help="AES-128 key, 32 hex digits")
    decode_cmd.add_argument("--json", action="store_true", help="print the JSON object")
    decode_cmd.add_argument("--jsonl", action="store_true", help="read 'HEX [KEY]' lines from stdin")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minolcore`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command in (None, "scan"):
            files = getattr(args, "files", None) or [_sample_path()]
            return _run_scan(files, getattr(args, "crc", "auto"), sys.stdout, sys.stderr)
        if args.command == "decode":
            from minolcore.wmbus.decode_cli import run_decode  # noqa: PLC0415

            return run_decode(
                args.hex,
                key=args.key,
                as_json=args.json,
                jsonl=args.jsonl,
                stdin=sys.stdin,
                stdout=sys.stdout,
                stderr=sys.stderr,
            )
    except MinolcoreError as error:
        print(f"minolcore: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
