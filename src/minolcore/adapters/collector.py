"""Wireless M-Bus collector uploads: JSON lines and plain hex lines, parsed as a stream.

A collector (a stationary receiver or a walk-by/drive-by device) uploads one telegram per line,
in one of two shapes, which may be mixed in one upload:

- JSON lines: ``{"gateway": "GW-1", "received_at": "2026-01-01T12:00:00Z", "rssi": -70,
  "mode": "T1", "frame": "2E44..."}``. Aliases: ``gateway_id`` for ``gateway``; ``time`` or ``ts``
  for ``received_at`` (ISO 8601 text or Unix seconds); ``telegram`` or ``hex`` for ``frame``.
  When several aliases are present the first in that order wins. Unknown keys are ignored.
- Hex lines: just the frame in hex (``2E4493...``, bytes may be separated by spaces); the gateway
  id and time are the caller's defaults.

:func:`iter_collector_lines` yields, in input order, one item per line: a :class:`Reception` or a
:class:`RejectedLine` with the 1-based line number and the reason. Nothing raises for bad input
and nothing is skipped silently, so a garbage line costs one rejection and the stream goes on.
"""

from __future__ import annotations

import enum
from binascii import unhexlify
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from minolcore import _native
from minolcore._model import Record
from minolcore.adapters import read_event_time
from minolcore.errors import GatewayProtocolError, InputError
from minolcore.reception import Reception, is_event_time

__all__ = [
    "COLLECTOR_LINE_DTYPE",
    "GATEWAY_DEFAULT",
    "GATEWAY_UNKNOWN",
    "LINE_FOR_PYTHON",
    "LINE_READ",
    "CollectorItem",
    "CollectorLineError",
    "RejectReason",
    "RejectedLine",
    "check_defaults",
    "iter_collector_file",
    "iter_collector_lines",
    "parse_collector_line",
    "read_collector_block",
    "read_numbered_line",
]

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_JSON_START = frozenset(("{", "[", '"', ord("{"), ord("["), ord('"')))
_TIME_PATHS = ("`$.received_at`", "`$.time`", "`$.ts`")


class RejectReason(enum.StrEnum):
    """Why a collector line was rejected."""

    EMPTY = "empty"
    BAD_JSON = "bad_json"
    BAD_FIELD = "bad_field"
    MISSING_FRAME = "missing_frame"
    ODD_HEX = "odd_hex"
    NON_HEX = "non_hex"
    BAD_TIME = "bad_time"
    # Packet-forwarder lines (:mod:`minolcore.adapters.gateway_log`):
    BAD_DATAGRAM = "bad_datagram"
    RADIO_CRC_FAILED = "radio_crc_failed"


class RejectedLine(Record, frozen=True, gc=False, kw_only=True):
    """A line that produced no reception: ``line_no`` is 1-based, ``raw`` the line as given."""

    line_no: int
    reason: RejectReason
    detail: str
    raw: str | bytes


CollectorItem = Reception | RejectedLine


class CollectorLineError(GatewayProtocolError):
    """One collector line that cannot be read (raised only by :func:`parse_collector_line`)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _JsonLine(Record, frozen=True, gc=False, kw_only=True):
    frame: str | None = None
    telegram: str | None = None
    hex: str | None = None
    gateway: str | None = None
    gateway_id: str | None = None
    received_at: str | float | None = None
    time: str | float | None = None
    ts: str | float | None = None
    rssi: float | None = None
    mode: str | None = None


_DECODER = msgspec.json.Decoder(_JsonLine)


def _unhex(text: str | bytes) -> bytes:
    try:
        return unhexlify(text)
    except ValueError:
        pass
    # Only lines that failed the fast path get here: allow spaces between bytes, then name the defect.
    spaced = text if isinstance(text, str) else text.decode("latin-1")
    try:
        return bytes.fromhex(spaced)
    except ValueError:
        pass
    digits = "".join(spaced.split())
    for column, char in enumerate(digits, 1):
        if char not in _HEX_DIGITS:
            raise CollectorLineError(RejectReason.NON_HEX, f"{char!r} (hex digit {column}) is not hex")
    if len(digits) % 2:
        raise CollectorLineError(RejectReason.ODD_HEX, f"{len(digits)} hex digits, an odd number")
    raise CollectorLineError(RejectReason.NON_HEX, "whitespace inside a byte")


def _event_time(value: str | float) -> float:
    try:
        return read_event_time(value)
    except ValueError as exc:
        raise CollectorLineError(RejectReason.BAD_TIME, str(exc)) from None


def _parse_json(text: str | bytes, default_gateway: str, default_time: float) -> Reception:
    try:
        line = _DECODER.decode(text)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if " - at `$" not in message:
            raise CollectorLineError(RejectReason.BAD_JSON, f"not a JSON object: {message}") from None
        if message.endswith(_TIME_PATHS):
            raise CollectorLineError(RejectReason.BAD_TIME, message) from None
        raise CollectorLineError(RejectReason.BAD_FIELD, message) from None
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        # UnicodeDecodeError: bytes that are not UTF-8 inside a string; UnicodeEncodeError:
        # lone surrogates in a str line (text read with surrogateescape).
        raise CollectorLineError(RejectReason.BAD_JSON, str(exc)) from None
    frame = line.frame or line.telegram or line.hex
    if not frame:
        raise CollectorLineError(RejectReason.MISSING_FRAME, "no frame, telegram or hex key with a value")
    payload = _unhex(frame)
    if not payload:
        # Whitespace alone ("\r", " ") passes bytes.fromhex as zero bytes: no frame either.
        raise CollectorLineError(RejectReason.MISSING_FRAME, "the frame holds no hex digits")
    when = line.received_at
    if when is None:
        when = line.time if line.time is not None else line.ts
    return Reception(
        gateway_id=line.gateway or line.gateway_id or default_gateway,
        received_at=default_time if when is None else _event_time(when),
        payload=payload,
        rssi=line.rssi,
        mode=line.mode or "",
    )


def parse_collector_line(line: str | bytes, *, default_gateway: str, default_time: float) -> Reception:
    """Parse one line (JSON or hex) into a reception; ``default_time`` is in Unix seconds.

    Raises :class:`CollectorLineError` (with ``reason``) for a line that cannot be read.
    """
    text = line.strip()
    if not text:
        raise CollectorLineError(RejectReason.EMPTY, "blank line")
    if text[0] in _JSON_START:
        return _parse_json(text, default_gateway, default_time)
    return Reception(gateway_id=default_gateway, received_at=default_time, payload=_unhex(text))


def check_defaults(default_gateway: str, default_time: float) -> None:
    """Raise :class:`InputError` unless the gateway id is a non-empty string and the time
    Unix seconds between 1970 and 9999."""
    if not isinstance(default_gateway, str) or not default_gateway:
        raise InputError("default_gateway must be a non-empty string")
    if not is_event_time(default_time):
        raise InputError(f"default_time {default_time!r} is not Unix seconds between 1970 and 9999")


def iter_collector_lines(
    lines: Iterable[str | bytes], *, default_gateway: str, default_time: float
) -> Iterator[CollectorItem]:
    """Yield one :class:`Reception` or :class:`RejectedLine` per input line, in order.

    Hex lines and JSON lines without gateway or time take ``default_gateway`` and
    ``default_time`` (Unix seconds). Line numbers count every line from 1, blank ones included.
    Bad defaults raise :class:`InputError` at once; bad lines never raise.
    """
    check_defaults(default_gateway, default_time)
    return _iter_lines(lines, default_gateway, default_time)


def _strip_bom(line: str | bytes) -> str | bytes:
    if isinstance(line, str):
        return line.removeprefix("\ufeff")
    return line.removeprefix(b"\xef\xbb\xbf")


def _iter_lines(
    lines: Iterable[str | bytes], default_gateway: str, default_time: float
) -> Iterator[CollectorItem]:
    for line_no, raw in enumerate(lines, 1):
        yield read_numbered_line(raw, line_no, default_gateway, default_time)


def read_numbered_line(
    raw: str | bytes, line_no: int, default_gateway: str, default_time: float
) -> CollectorItem:
    """Line ``line_no`` (counted from 1) as a :class:`Reception` or a :class:`RejectedLine`;
    never raises. ``default_time`` in Unix seconds; the defaults are not checked here."""
    try:
        # Editors on Windows start UTF-8 files with a byte order mark; it belongs to the file.
        line = _strip_bom(raw) if line_no == 1 else raw
        return parse_collector_line(line, default_gateway=default_gateway, default_time=default_time)
    except CollectorLineError as exc:
        return RejectedLine(line_no=line_no, reason=exc.reason, detail=exc.detail, raw=raw)


def iter_collector_file(
    path: str | PathLike[str], *, default_gateway: str, default_time: float
) -> Iterator[CollectorItem]:
    """Stream a collector upload file (Unix seconds for ``default_time``); see :func:`iter_collector_lines`.

    The file is read as bytes: JSON and hex need no text decoding, which saves a copy per line.
    """
    check_defaults(default_gateway, default_time)

    def generate() -> Iterator[CollectorItem]:
        with open(path, "rb") as handle:
            yield from _iter_lines(handle, default_gateway, default_time)

    return generate()


# One row per line of mc_read_collector_lines (minolcore.h: mc_collector_line).
COLLECTOR_LINE_DTYPE = np.dtype(
    [
        ("line_offset", "<i8"),
        ("line_length", "<i8"),
        ("payload_offset", "<i8"),
        ("received_at", "<f8"),
        ("rssi", "<f8"),
        ("payload_length", "<i4"),
        ("gateway", "<i4"),
        ("gateway_offset", "<i4"),
        ("gateway_length", "<i4"),
        ("status", "u1"),
        ("reserved", "u1", (7,)),
    ]
)
LINE_READ, LINE_FOR_PYTHON = 0, 1
GATEWAY_UNKNOWN, GATEWAY_DEFAULT = -1, -2


def read_collector_block(
    block: bytes, gateway_ids: Sequence[str]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint8]]:
    """Rows (:data:`COLLECTOR_LINE_DTYPE`) of every line of ``block``, and the frames of the
    lines read, back to back.

    Lines of the common JSON shape (see ``csrc/mc_lines.c``) are read in bulk by the C core
    (or its twin): their row has status :data:`LINE_READ`, the frame at ``payload_offset``,
    the gateway as an index into ``gateway_ids`` (:data:`GATEWAY_UNKNOWN` for another name,
    :data:`GATEWAY_DEFAULT` for none), the time in s (NaN: none) and the RSSI in dBm (NaN:
    none). Every other line has status :data:`LINE_FOR_PYTHON`, for
    :func:`read_numbered_line`, which reads the shapes the bulk reader leaves and names the
    defects of bad lines. Raises :class:`InputError` for a block that is not bytes or
    gateway ids that are not text.
    """
    if not isinstance(block, bytes):
        raise InputError(f"a block of lines must be bytes, not {type(block).__name__}")
    if not all(isinstance(name, str) for name in gateway_ids):
        raise InputError("gateway ids must be strings")
    try:
        encoded = [name.encode() for name in gateway_ids]
    except UnicodeEncodeError:
        raise InputError("a gateway id that is not Unicode text (a lone surrogate)") from None
    name_offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(name) for name in encoded], out=name_offsets[1:])
    names = b"".join(encoded)
    out = np.empty(len(block) // 2, dtype=np.uint8)
    # Rows for as many lines as the block's first 64 KB promise, and a quarter more:
    # counting every line first would cost a third of reading them. The lines of a block
    # whose later lines are shorter and do not fit are counted, and read on from where the
    # first rows ended.
    sample = min(len(block), _SAMPLE_BYTES)
    capacity = len(block) * (block.count(b"\n", 0, sample) + 1) // max(sample, 1) * 5 // 4 + 16
    parts = []
    at = used = 0
    while True:
        rows = _read_lines(block, at, names, name_offsets, encoded, capacity, out, used)
        parts.append(rows)
        if not len(rows):
            break
        last = rows[-1]
        at = int(last["line_offset"] + last["line_length"])
        used = int(last["payload_offset"] + last["payload_length"])
        if at >= len(block):
            break
        capacity = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8, offset=at) == ord("\n"))) + 1
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), out


# Bytes of a block whose lines tell how many rows the whole block needs.
_SAMPLE_BYTES = 1 << 16


def _read_lines(
    block: bytes,
    at: int,
    names: bytes,
    name_offsets: npt.NDArray[np.int64],
    encoded: list[bytes],
    capacity: int,
    out: npt.NDArray[np.uint8],
    used: int,
) -> npt.NDArray[Any]:
    """Rows of at most ``capacity`` lines of ``block`` from byte ``at`` on, their frames
    written to ``out`` from ``used`` on (offsets in the rows count from the block's and
    ``out``'s starts)."""
    rows = np.zeros(capacity, dtype=COLLECTOR_LINE_DTYPE)
    if _native.BACKEND == "cffi":
        ffi, lib = _native.ffi, _native.lib
        count = lib.mc_read_collector_lines(
            ffi.from_buffer("uint8_t[]", block) + at,
            len(block) - at,
            names,
            ffi.from_buffer("int64_t[]", name_offsets),
            len(encoded),
            ffi.from_buffer("mc_collector_line[]", rows),
            capacity,
            ffi.from_buffer("uint8_t[]", out) + used,
        )
    else:
        from minolcore._reference.lines import read_collector_lines_into  # noqa: PLC0415

        count = read_collector_lines_into(block[at:] if at else block, encoded, rows, out[used:])
    rows = rows[:count]
    if at:
        rows["line_offset"] += at
    if used:
        rows["payload_offset"] += used
    return rows
