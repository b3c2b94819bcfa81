"""Reference twin of ``mc_read_collector_lines``: collector log lines into rows, line by line."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["read_collector_lines_into"]

LINE_READ, LINE_FOR_PYTHON = 0, 1
GATEWAY_UNKNOWN, GATEWAY_DEFAULT = -1, -2
_MAX_EVENT_TIME = 253_402_300_800.0
_MAX_DIGITS = 15
_MAX_LONG_DIGITS = 40  # with a fraction, where the C reader reads long numbers
_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_TEXT_KEYS = ("frame", "telegram", "hex", "gateway", "gateway_id", "mode")
_NUMBER_KEYS = ("received_at", "time", "ts", "rssi")
_KEYS = frozenset(_TEXT_KEYS + _NUMBER_KEYS)


class _LeftToPythonError(Exception):
    """The line is not of the shape read here."""


class _Cursor:
    def __init__(self, line: bytes) -> None:
        self.line = line
        self.at = 0

    def peek(self) -> int | None:
        return self.line[self.at] if self.at < len(self.line) else None

    def skip_space(self) -> None:
        while self.at < len(self.line) and self.line[self.at] in _SPACE:
            self.at += 1

    def expect(self, char: bytes) -> None:
        if self.peek() != char[0]:
            raise _LeftToPythonError
        self.at += 1

    def string(self) -> tuple[int, bytes]:
        """(offset of the contents, contents) of a printable-ASCII string without escapes."""
        self.expect(b'"')
        start = self.at
        while self.peek() != ord('"'):
            byte = self.peek()
            if byte is None or byte < 0x20 or byte > 0x7E or byte == ord("\\"):
                raise _LeftToPythonError
            self.at += 1
        self.at += 1
        return start, self.line[start : self.at - 1]

    def number(self, long_numbers: bool) -> bytes:
        start = self.at
        if self.peek() == ord("-"):
            self.at += 1
        digits = self.at
        first = self.peek()
        if first is None or first not in _DIGITS:
            raise _LeftToPythonError
        if first == ord("0"):
            self.at += 1
        else:
            while (byte := self.peek()) is not None and byte in _DIGITS:
                self.at += 1
        count = self.at - digits
        fraction_given = self.peek() == ord(".")
        if fraction_given:
            self.at += 1
            fraction = self.at
            while (byte := self.peek()) is not None and byte in _DIGITS:
                self.at += 1
            if self.at == fraction:
                raise _LeftToPythonError
            count += self.at - fraction
        if count > _MAX_DIGITS and not (fraction_given and count <= _MAX_LONG_DIGITS and long_numbers):
            raise _LeftToPythonError
        after = self.peek()
        if after is not None and (after in b"eE" or after in _DIGITS):
            raise _LeftToPythonError
        return self.line[start : self.at]


def _fields(line: bytes, long_numbers: bool) -> dict[str, tuple[bool, int, bytes]]:
    """Known keys: (is a string, offset of a string's contents, text)."""
    cursor = _Cursor(line)
    cursor.skip_space()
    cursor.expect(b"{")
    cursor.skip_space()
    found: dict[str, tuple[bool, int, bytes]] = {}
    if cursor.peek() == ord("}"):
        cursor.at += 1
    else:
        while True:
            cursor.skip_space()
            _, key = cursor.string()
            cursor.skip_space()
            cursor.expect(b":")
            cursor.skip_space()
            if cursor.peek() == ord('"'):
                offset, text = cursor.string()
                value = (True, offset, text)
            else:
                value = (False, 0, cursor.number(long_numbers))
            name = key.decode("ascii")
            if name in _KEYS:
                if name in found:
                    raise _LeftToPythonError
                found[name] = value
            cursor.skip_space()
            if cursor.peek() == ord(","):
                cursor.at += 1
                continue
            cursor.expect(b"}")
            break
    cursor.skip_space()
    if cursor.at != len(line):
        raise _LeftToPythonError
    return found


_ISO_SEPARATORS = ((4, ord("-")), (7, ord("-")), (10, ord("T")), (13, ord(":")), (16, ord(":")))
_ISO_FIELDS = ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_LAST_EXACT = 2**53  # microseconds below this are exact as a double
_ISO_ZONES = (b"", b"Z", b"+00:00")


def _iso_seconds(text: bytes) -> float:
    """Unix seconds of a UTC time text "YYYY-MM-DDThh:mm:ss[.f]" (1 to 6 fraction digits,
    then "Z", "+00:00" or nothing) from 1970 to before 2255, as Python's
    datetime.timestamp() has them; any other text is left to Python."""
    if len(text) < 19 or any(text[at] != char for at, char in _ISO_SEPARATORS):
        raise _LeftToPythonError
    parts = [text[start:end] for start, end in _ISO_FIELDS]
    if not all(c in _DIGITS for part in parts for c in part):
        raise _LeftToPythonError
    year, month, day, hour, minute, second = map(int, parts)
    leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
    if (
        year < 1970
        or not 1 <= month <= 12
        or not 1 <= day <= _DAYS_IN_MONTH[month]
        or (month == 2 and day == 29 and not leap)
        or hour > 23
        or minute > 59
        or second > 59
    ):
        raise _LeftToPythonError
    at, micros = 19, 0
    if text[at : at + 1] == b".":
        start = at = at + 1
        while at < len(text) and at - start < 7 and text[at] in _DIGITS:
            at += 1
        if not 1 <= at - start <= 6:
            raise _LeftToPythonError
        micros = int(text[start:at].ljust(6, b"0"))
    if text[at:] not in _ISO_ZONES:
        raise _LeftToPythonError
    days = (dt.date(year, month, day) - dt.date(1970, 1, 1)).days
    whole = (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000 + micros
    if whole >= _LAST_EXACT:
        raise _LeftToPythonError
    return whole / 1_000_000


def _number(text: bytes) -> float:
    """A JSON number as the line reader has it: an integer (even -0) is an int made float."""
    return float(text) if b"." in text else float(int(text))


def _read_line(
    line: bytes, names: list[bytes], long_numbers: bool
) -> tuple[bytes, int, int, int, float, float]:
    """(payload, gateway, gateway offset, gateway length, received_at, rssi) of a line."""
    found = _fields(line, long_numbers)
    if any(found[key][0] is False for key in _TEXT_KEYS if key in found):
        raise _LeftToPythonError
    if "rssi" in found and found["rssi"][0]:
        raise _LeftToPythonError
    frames = [found[key][2] for key in ("frame", "telegram", "hex") if key in found]
    if len(frames) != 1 or not frames[0] or len(frames[0]) % 2 or any(c not in _HEX for c in frames[0]):
        raise _LeftToPythonError
    payload = bytes.fromhex(frames[0].decode("ascii"))
    if "gateway" in found and "gateway_id" in found:
        raise _LeftToPythonError
    gateway, gateway_offset, gateway_length = GATEWAY_DEFAULT, 0, 0
    given = found.get("gateway") or found.get("gateway_id")
    if given is not None:
        _, gateway_offset, text = given
        if not text:
            raise _LeftToPythonError
        gateway = names.index(text) if text in names else GATEWAY_UNKNOWN
        gateway_length = len(text)
    when = found.get("received_at") or found.get("time") or found.get("ts")
    received_at = math.nan
    if when is not None:
        received_at = _iso_seconds(when[2]) if when[0] else _number(when[2])
        if not 0.0 <= received_at < _MAX_EVENT_TIME:
            raise _LeftToPythonError
    rssi = _number(found["rssi"][2]) if "rssi" in found else math.nan
    return payload, gateway, gateway_offset, gateway_length, received_at, rssi


def read_collector_lines_into(
    buf: bytes,
    names: list[bytes],
    rows: npt.NDArray[Any],
    out: npt.NDArray[np.uint8],
    long_numbers: bool = True,
) -> int:
    """Fill ``rows``, and ``out`` at the frames of the lines read, exactly as
    ``mc_read_collector_lines`` does (``rows`` holds at most as many lines as it has rows;
    beyond the frames of the lines read, ``out`` holds whatever the C reader left there, which
    nothing reads); returns the lines done. ``long_numbers``: read
    numbers of 16 to 40 digits with a fraction, as the C reader does where its C library
    can (``mc_long_numbers``)."""
    count = used = at = 0
    while at < len(buf) and count < len(rows):
        newline = buf.find(b"\n", at)
        end = len(buf) if newline < 0 else newline + 1
        text = buf[at : end - 1] if newline >= 0 else buf[at:end]
        row = rows[count]
        row["line_offset"], row["line_length"], row["payload_offset"] = at, end - at, used
        try:
            payload, gateway, gateway_offset, gateway_length, received_at, rssi = _read_line(
                text, names, long_numbers
            )
        except _LeftToPythonError:
            row["status"], row["payload_length"] = LINE_FOR_PYTHON, 0
            row["received_at"] = row["rssi"] = math.nan
            row["gateway"] = row["gateway_offset"] = row["gateway_length"] = 0
        else:
            row["status"], row["payload_length"] = LINE_READ, len(payload)
            row["gateway"], row["gateway_offset"], row["gateway_length"] = (
                gateway,
                gateway_offset,
                gateway_length,
            )
            row["received_at"], row["rssi"] = received_at, rssi
            out[used : used + len(payload)] = np.frombuffer(payload, dtype=np.uint8)
            used += len(payload)
        count += 1
        at = end
    return count
