"""The logic of ``minolcore decode``: one telegram for a person or as JSON, or a stream of
telegrams as JSON lines.

``minolcore decode [--key HEX] [--json] HEX`` decodes one telegram; by default it prints a
readable summary and an aligned table of the records (values with their units, dates as
ISO 8601), with ``--json`` the JSON contract of :class:`~minolcore.wmbus.telegram.Telegram`.

``minolcore decode --jsonl [--key HEX]`` reads lines ``HEX`` or ``HEX KEY`` (``KEY`` is 32
hex digits or ``NOKEY``; without it ``--key`` applies) from standard input and writes
exactly one JSON object per input line, in input order, as each line arrives, also for
lines that cannot be decoded (empty, odd hex, bad key, garbage): their object has
``"kind": "invalid"`` and the reason in ``errors``. Every object carries ``"line"`` (1-based).
Compact frames are decoded with the layouts learned from the full frames earlier in the
stream.

Exit codes: 0 success (for ``--jsonl``: the stream was processed, whatever its lines held);
1 the telegram could not be decoded (frame or security error); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Final, TextIO

import msgspec

from minolcore.errors import InputError, MinolcoreError
from minolcore.wmbus.compact import FormatSignatureCache
from minolcore.wmbus.link import c_field_name
from minolcore.wmbus.records import DataRecord
from minolcore.wmbus.security import OMSKey
from minolcore.wmbus.telegram import Telegram, decode

__all__ = ["EXIT_BAD_ARGUMENTS", "EXIT_NOT_DECODED", "EXIT_OK", "format_telegram", "main", "run_decode"]

EXIT_OK: Final = 0
EXIT_NOT_DECODED: Final = 1
EXIT_BAD_ARGUMENTS: Final = 2

PROG: Final = "minolcore decode"
NO_KEY: Final = "NOKEY"
_KEY_CACHE_LIMIT: Final = 4096
_ENCODER = msgspec.json.Encoder()
_FAILED_STATUSES: Final = frozenset(("no_key", "wrong_key", "mac_mismatch", "unsupported"))


def _parse_key(text: str) -> OMSKey:
    """A key from 32 hex digits; the error message never repeats the text."""
    return OMSKey.from_hex(text)


def _invalid(error: str) -> Telegram:
    return Telegram(kind="invalid", link=None, security=None, records=(), errors=(error,))


# --- person-readable output ------------------------------------------------------------------


def _value_text(record: DataRecord) -> str:
    value = record.value
    if value is None:
        return "(not set)"
    if isinstance(value, bytes):
        return value.hex().upper() or "(empty)"
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def _unit_text(record: DataRecord) -> str:
    if record.series is not None:
        return f"{record.unit} ({len(record.series)} points, {record.spacing or 'no time grid'})".strip()
    return record.unit


def format_telegram(telegram: Telegram) -> str:
    """A readable multi-line description of ``telegram``: sender, security, an aligned table
    of the records (value and unit per record; dates as ISO 8601) and the errors."""
    lines: list[str] = []
    link = telegram.link
    if link is not None:
        lines.append(
            f"Meter     {link.manufacturer} {link.id}  version {link.version}  "
            f"{link.medium} (device type 0x{link.device_type:02X})"
        )
        if link.meter is not None:
            meter = link.meter
            lines.append(
                f"Behind    {meter.manufacturer} {meter.id}  version {meter.version}  "
                f"{meter.medium} (device type 0x{meter.device_type:02X})"
            )
        lines.append(
            f"Link      {telegram.kind}, C-field 0x{link.c_field:02X} ({c_field_name(link.c_field)})"
        )
    elif telegram.kind == "wired":
        lines.append(f"Link      wired, primary address {telegram.wired_address}")
    security = telegram.security
    if security is not None:
        mode = "ELL AES-CTR" if security.mode == "ell_ctr" else f"mode {security.mode}"
        counter = "" if security.message_counter is None else f", message counter {security.message_counter}"
        lines.append(f"Security  {mode}: {security.status}{counter}")
    if telegram.ci is not None:
        access = "" if telegram.access_number is None else f", access number {telegram.access_number}"
        status = "" if telegram.tpl_status is None else f", status 0x{telegram.tpl_status:02X}"
        compact = ", compact frame" if telegram.compact else ""
        lines.append(f"Transport CI 0x{telegram.ci:02X}{access}{status}{compact}")
    if telegram.records:
        header = ("#", "quantity", "value", "unit", "storage", "tariff", "subunit", "function")
        rows = [
            (
                str(index),
                record.quantity,
                _value_text(record),
                _unit_text(record),
                str(record.storage),
                str(record.tariff),
                str(record.subunit),
                record.function,
            )
            for index, record in enumerate(telegram.records, 1)
        ]
        widths = [max(len(row[col]) for row in (header, *rows)) for col in range(len(header))]
        lines.append("")
        for row in (header, *rows):
            cells = [
                cell.rjust(widths[col]) if col in (0, 2) else cell.ljust(widths[col])
                for col, cell in enumerate(row)
            ]
            lines.append("  ".join(cells).rstrip())
    else:
        lines.append("")
        lines.append("(no records)")
    if telegram.errors:
        lines.append("")
        lines.append("Errors:")
        lines.extend(f"  - {error}" for error in telegram.errors)
    return "\n".join(lines) + "\n"


# --- one telegram ---------------------------------------------------------------------------


def _exit_code(telegram: Telegram) -> int:
    if telegram.kind == "invalid":
        return EXIT_NOT_DECODED
    security = telegram.security
    if security is None or security.status in _FAILED_STATUSES:
        return EXIT_NOT_DECODED
    return EXIT_OK


def _run_single(hex_arg: str, key: OMSKey | None, as_json: bool, stdout: TextIO, stderr: TextIO) -> int:
    text = "".join(hex_arg.split())
    if not text:
        stderr.write(f"{PROG}: the telegram is empty\n")
        return EXIT_BAD_ARGUMENTS
    if len(text) % 2:
        stderr.write(f"{PROG}: the telegram has an odd number of hex digits ({len(text)})\n")
        return EXIT_BAD_ARGUMENTS
    try:
        bytes.fromhex(text)
    except ValueError:
        stderr.write(f"{PROG}: the telegram is not hex (only 0-9, A-F allowed)\n")
        return EXIT_BAD_ARGUMENTS
    telegram = decode(text, key, strict=False)
    if as_json:
        stdout.write(msgspec.json.format(telegram.to_json_bytes(), indent=2).decode() + "\n")
    else:
        stdout.write(format_telegram(telegram))
    return _exit_code(telegram)


# --- JSON lines -----------------------------------------------------------------------------


class _LineDecoder:
    """Decodes the lines of a ``--jsonl`` stream; keeps the parsed keys and learned layouts."""

    def __init__(self, default_key: OMSKey | None) -> None:
        self.default_key = default_key
        self.keys: dict[str, OMSKey] = {}
        self.signatures = FormatSignatureCache()

    def key(self, text: str) -> OMSKey | None:
        if text.upper() == NO_KEY:
            return None
        found = self.keys.get(text)
        if found is None:
            if len(self.keys) >= _KEY_CACHE_LIMIT:
                self.keys.clear()
            found = self.keys[text] = _parse_key(text)
        return found

    def decode_line(self, line: str) -> Telegram:
        parts = line.split()
        if not parts:
            return _invalid("input: empty line")
        if len(parts) > 2:
            return _invalid(f"input: expected 'HEX' or 'HEX KEY', got {len(parts)} fields")
        key = self.default_key
        if len(parts) == 2:
            try:
                key = self.key(parts[1])
            except InputError as error:
                return _invalid(f"input: key: {error}")
        try:
            return decode(parts[0], key, signatures=self.signatures, strict=False)
        except MinolcoreError as error:
            return _invalid(f"input: {error}")


def _run_jsonl(key: OMSKey | None, stdin: TextIO, stdout: TextIO) -> int:
    decoder = _LineDecoder(key)
    write = stdout.write
    flush = stdout.flush
    for number, line in enumerate(stdin, 1):
        document: dict[str, Any] = {"line": number}
        document.update(decoder.decode_line(line).to_dict())
        write(_ENCODER.encode(document).decode())
        write("\n")
        # A consumer on the other end of a pipe acts on each answer as it comes.
        flush()
    return EXIT_OK


def run_decode(
    hex_arg: str | None,
    *,
    key: str | None,
    as_json: bool,
    jsonl: bool,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Run ``minolcore decode`` with parsed arguments; returns the exit code (0 ok,
    1 telegram not decoded, 2 bad arguments). See the module documentation."""
    if jsonl and hex_arg is not None:
        stderr.write(f"{PROG}: give a telegram HEX or --jsonl (telegrams on stdin), not both\n")
        return EXIT_BAD_ARGUMENTS
    if not jsonl and hex_arg is None:
        stderr.write(f"{PROG}: missing the telegram HEX (or use --jsonl to read telegrams from stdin)\n")
        return EXIT_BAD_ARGUMENTS
    oms_key = None
    if key is not None and key.upper() != NO_KEY:
        try:
            oms_key = _parse_key(key)
        except InputError as error:
            stderr.write(f"{PROG}: --key: {error}\n")
            return EXIT_BAD_ARGUMENTS
    if jsonl:
        return _run_jsonl(oms_key, stdin, stdout)
    assert hex_arg is not None
    return _run_single(hex_arg, oms_key, as_json, stdout, stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m minolcore.wmbus.decode_cli``) with the same arguments."""
    parser = argparse.ArgumentParser(prog=PROG, description="Decode wireless or wired M-Bus telegrams.")
    parser.add_argument("hex", nargs="?", help="the telegram as hex")
    parser.add_argument("--key", help="AES-128 key: 32 hex digits, or NOKEY")
    parser.add_argument("--json", action="store_true", help="print the JSON contract instead of a table")
    parser.add_argument(
        "--jsonl", action="store_true", help="read 'HEX [KEY]' lines from stdin, write JSON lines"
    )
    args = parser.parse_args(argv)
    return run_decode(
        args.hex,
        key=args.key,
        as_json=args.json,
        jsonl=args.jsonl,
        stdin=sys.stdin,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())
