"""Compact profiles (EN 13757-3 Annex F) and the format-signature cache of compact frames.

Compact profile
    A variable-length record whose VIB carries VIFE 0x13 (inverse compact profile),
    0x1E (compact profile with register numbers) or 0x1F (compact profile). Its data are a
    spacing-control byte, a spacing-value byte and the profile elements:

    - spacing control bits 7-6: increment mode (0 absolute values, 1 increments,
      2 decrements, 3 signed differences); bits 5-4: spacing unit (0 s, 1 min, 2 h, 3 d);
      bits 3-0: the data coding of every element, as in the DIF (e.g. 0xB = 6-digit BCD).
    - spacing value 1-250: that many spacing units between elements; 0xFE means one month
      (unit d), three months (unit h) or six months (unit min). Other values give no time grid.

    The base value is the plain record of the same quantity, unit, storage number, tariff
    and subunit; the base time is the date record of the same storage number. An inverse
    profile runs back in time: element ``i`` describes the point ``base - (i+1) * spacing``
    and, in a difference mode, the value there is the value one step later minus the
    element (plus it for decrements). A compact profile (0x1E/0x1F) runs forward from the
    base in the same way. Invalid elements, or a missing base value, give ``None`` from
    there on: an unknown step cannot be bridged.

Format signature
    OMS compact frames (CI 0x79) carry, little-endian, the format signature (CRC-16/EN-13757
    over the concatenated DIF, DIFE, VIF and VIFE bytes of the full frame's records, fill bytes
    excluded), the full-frame CRC (CRC-16/EN-13757 over the full frame's records, headers and
    data) and then only the data bytes. :class:`FormatSignatureCache` learns layouts from
    decoded full frames and rebuilds a compact frame's records with them.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from minolcore._model import Record
from minolcore._native import crc16
from minolcore.errors import InputError, RecordError
from minolcore.wmbus.vif import (
    CODING_INT,
    CODING_LVAR,
    CODING_NONE,
    CODING_SPECIAL,
    DATA_CODING,
    DATA_LENGTH,
    lvar_length,
    read_number,
    scale,
)

if TYPE_CHECKING:
    from minolcore.wmbus.records import DecodedRecords

__all__ = [
    "PROFILE_MODES",
    "FormatSignatureCache",
    "Profile",
    "UnknownSignatureError",
    "expand_profile",
    "full_frame_crc",
    "parse_profile",
    "shift_time",
]

PROFILE_MODES: Final = ("absolute", "increment", "decrement", "signed_difference")
_UNIT_SECONDS: Final = (1, 60, 3600, 86400)
_UNIT_NAMES: Final = ("s", "min", "h", "d")
_MONTHS_FOR_FE: Final = {3: 1, 2: 3, 1: 6}

Number = int | float


class Profile(Record):
    """The parsed data of a compact-profile record (elements unscaled)."""

    mode: int
    unit: int
    spacing_value: int
    coding: int
    elements: tuple[int | float | None, ...]

    @property
    def months(self) -> int:
        """Months between elements, or 0 when the spacing is not in months."""
        return _MONTHS_FOR_FE.get(self.unit, 0) if self.spacing_value == 0xFE else 0

    @property
    def seconds(self) -> int:
        """Seconds between elements, or 0 when the spacing is in months or undefined."""
        if 1 <= self.spacing_value <= 250:
            return self.spacing_value * _UNIT_SECONDS[self.unit]
        return 0

    @property
    def spacing(self) -> str:
        """The spacing as text, e.g. "15 min" or "1 month"; "" when undefined."""
        if self.months:
            return f"{self.months} month"
        if self.seconds:
            return f"{self.spacing_value} {_UNIT_NAMES[self.unit]}"
        return ""


def parse_profile(body: bytes) -> Profile | None:
    """Parse the data of a compact-profile record (the bytes after the LVAR byte).

    Returns ``None`` when the body is shorter than its two control bytes or the element
    coding has no fixed length.
    """
    if len(body) < 2:
        return None
    control, spacing_value = body[0], body[1]
    coding_nibble = control & 0x0F
    coding = DATA_CODING[coding_nibble]
    size = DATA_LENGTH[coding_nibble]
    if coding in (CODING_NONE, CODING_LVAR, CODING_SPECIAL) or size == 0:
        return None
    mode = control >> 6
    # Increments and decrements are unsigned (type C); absolute values and signed
    # differences are signed (type B).
    signed = mode in (0, 3) or coding != CODING_INT
    elements = tuple(
        read_number(coding, body[i : i + size], signed) for i in range(2, len(body) - size + 1, size)
    )
    return Profile(
        mode=mode, unit=(control >> 4) & 0x03, spacing_value=spacing_value, coding=coding, elements=elements
    )


def _add_months(moment: _dt.datetime, months: int) -> _dt.datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def shift_time(base: str, steps: int, seconds: int, months: int) -> str | None:
    """``base`` (an ISO date or date-time) moved by ``steps`` spacings, in the same style.

    A date-only base stays a date when the spacing is whole days or months; otherwise the
    result is a date-time to the minute (to the second if the spacing needs it).
    """
    try:
        moment = _dt.datetime.fromisoformat(base)
    except ValueError:
        return None
    try:
        if months:
            moment = _add_months(moment, steps * months)
        else:
            moment = moment + _dt.timedelta(seconds=steps * seconds)
    except (OverflowError, ValueError):
        return None
    if len(base) == 10 and (months or seconds % 86400 == 0):
        return moment.date().isoformat()
    if len(base) > 16 or seconds % 60:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    return moment.strftime("%Y-%m-%dT%H:%M")


def _scale(raw: int | float | None, exponent: int) -> Number | None:
    return None if raw is None else scale(raw, exponent)


def expand_profile(
    profile: Profile,
    exponent: int,
    inverse: bool,
    base_value: Number | None,
    base_time: str | None,
) -> tuple[tuple[tuple[str | None, Number | None], ...], tuple[Number | None, ...]]:
    """The series ``((date, value), ...)`` and the scaled elements of a compact profile.

    ``exponent`` is the decimal exponent of the record (values are ``raw * 10**exponent``
    in the record's unit); ``base_value`` is in that unit, ``base_time`` an ISO string.
    """
    direction = -1 if inverse else 1
    seconds, months = profile.seconds, profile.months
    elements = tuple(_scale(e, exponent) for e in profile.elements)
    dates: list[str | None] = []
    for i in range(len(profile.elements)):
        if base_time is None or not (seconds or months):
            dates.append(None)
        else:
            dates.append(shift_time(base_time, direction * (i + 1), seconds, months))
    if profile.mode == 0:
        return tuple(zip(dates, elements, strict=True)), elements
    # Work in raw units so that long chains of decimal steps stay exact.
    running: int | float | None = None
    # An infinite or NaN base (a REAL32 record can hold one) gives no series to run back.
    if base_value is not None and (isinstance(base_value, int) or math.isfinite(base_value)):
        running = scale(base_value, -exponent)
        if abs(running - round(running)) < 1e-6:
            running = round(running)
    # Going back in time undoes an increase; a decrement counter runs the other way.
    sign = direction if profile.mode in (1, 3) else -direction
    values: list[Number | None] = []
    for element in profile.elements:
        running = None if running is None or element is None else running + sign * element
        values.append(_scale(running, exponent))
    return tuple(zip(dates, values, strict=True)), elements


# --- format signatures ---------------------------------------------------------------------


class UnknownSignatureError(RecordError):
    """A compact frame whose format signature no full frame has taught the cache yet."""

    def __init__(self, signature: int) -> None:
        super().__init__(
            0, f"unknown format signature 0x{signature:04X}: no full frame with this layout seen yet"
        )
        self.signature = signature


def full_frame_crc(decoded: DecodedRecords) -> int:
    """CRC-16/EN-13757 over the records (headers and data, no fill) of a decoded frame.

    This is the "full frame CRC" a compact frame (CI 0x79) carries after its signature.
    """
    return crc16(b"".join(bytes.fromhex(r.dif + r.vif + r.raw) for r in decoded.records))


class FormatSignatureCache:
    """Record layouts (DIF/VIF header sequences) of full frames, keyed by format signature.

    ``learn`` takes a decoded full frame; ``decode_compact`` rebuilds and decodes the data
    of a compact frame. The cache persists as JSON (``save`` / ``load``).
    """

    _FORMAT: Final = "minolcore-format-signatures"

    def __init__(self) -> None:
        self._layouts: dict[int, tuple[bytes, ...]] = {}

    def __len__(self) -> int:
        return len(self._layouts)

    def __contains__(self, signature: object) -> bool:
        return signature in self._layouts

    def __iter__(self) -> Iterator[int]:
        return iter(self._layouts)

    def learn(self, decoded: DecodedRecords) -> int | None:
        """Remember the layout of a fully decoded frame; returns its signature (a 16-bit int).

        Frames that did not decode completely, or hold no records, teach nothing (``None``).
        """
        if not decoded.complete or not decoded.records:
            return None
        headers = tuple(bytes.fromhex(r.dif + r.vif) for r in decoded.records)
        signature = crc16(b"".join(headers))
        self._layouts[signature] = headers
        return signature

    def layout(self, signature: int) -> tuple[str, ...]:
        """The record headers (hex) of a signature; raises :class:`UnknownSignatureError`."""
        headers = self._layouts.get(signature)
        if headers is None:
            raise UnknownSignatureError(signature)
        return tuple(h.hex().upper() for h in headers)

    def rebuild(self, signature: int, data: bytes | bytearray | memoryview) -> tuple[bytes, tuple[int, ...]]:
        """The full-frame records for a compact frame's data, and each record's data offset.

        Raises :class:`UnknownSignatureError` for an unknown signature and
        :class:`RecordError` (offset into ``data``) when the data do not fit the layout.
        Trailing 0x2F fill bytes are accepted.
        """
        headers = self._layouts.get(signature)
        if headers is None:
            raise UnknownSignatureError(signature)
        buf = bytes(data)
        out = bytearray()
        offsets: list[int] = []
        pos = 0
        end = len(buf)
        for header in headers:
            dif = header[0]
            offsets.append(pos)
            coding = DATA_CODING[dif & 0x0F]
            if coding == CODING_SPECIAL:
                out += header
                if dif in (0x0F, 0x1F):
                    out += buf[pos:]
                    pos = end
                continue
            if coding == CODING_LVAR:
                if pos >= end:
                    raise RecordError(pos, "compact data end before an LVAR byte")
                size = lvar_length(buf[pos])
                if size < 0:
                    raise RecordError(pos, f"reserved LVAR 0x{buf[pos]:02X}")
                size += 1
            else:
                size = DATA_LENGTH[dif & 0x0F]
            if pos + size > end:
                raise RecordError(
                    pos, f"compact data end inside the record with header {header.hex().upper()}"
                )
            out += header
            out += buf[pos : pos + size]
            pos += size
        if any(b != 0x2F for b in buf[pos:]):
            raise RecordError(pos, f"{end - pos} bytes of compact data left over after the layout")
        return bytes(out), tuple(offsets)

    def decode_compact(
        self, signature: int, data: bytes | bytearray | memoryview, *, full_frame_crc: int | None = None
    ) -> DecodedRecords:
        """Decode a compact frame's data with the layout learned for ``signature``.

        Never raises for bad data: an unknown signature gives status "unknown_signature"
        and no records; data that do not fit give status "malformed"; a ``full_frame_crc``
        (from the frame) that does not match the rebuilt records gives status
        "crc_mismatch" with the records kept. Record offsets point into ``data``.
        """
        from minolcore.wmbus.records import DecodedRecords, decode_records  # noqa: PLC0415

        if not isinstance(data, bytes | bytearray | memoryview):
            raise InputError(f"compact data must be bytes, not {type(data).__name__}")
        try:
            full, offsets = self.rebuild(signature, data)
        except UnknownSignatureError as exc:
            return DecodedRecords(
                records=(),
                errors=(str(exc),),
                signature=signature,
                complete=False,
                status="unknown_signature",
            )
        except RecordError as exc:
            return DecodedRecords(
                records=(), errors=(str(exc),), signature=signature, complete=False, status="malformed"
            )
        decoded = decode_records(full)
        records = tuple(
            r.evolve(offset=offsets[i]) if i < len(offsets) else r for i, r in enumerate(decoded.records)
        )
        status = decoded.status
        errors = decoded.errors
        if full_frame_crc is not None and decoded.complete:
            actual = crc16(full)
            if actual != full_frame_crc:
                status = "crc_mismatch"
                errors = (
                    *errors,
                    f"full-frame CRC: frame says 0x{full_frame_crc:04X}, rebuilt records give 0x{actual:04X}",
                )
        return DecodedRecords(
            records=records, errors=errors, signature=signature, complete=decoded.complete, status=status
        )

    def decode_compact_frame(self, payload: bytes | bytearray | memoryview) -> DecodedRecords:
        """Decode the bytes after CI 0x79: signature (2, LE), full-frame CRC (2, LE), data."""
        from minolcore.wmbus.records import DecodedRecords  # noqa: PLC0415

        if not isinstance(payload, bytes | bytearray | memoryview):
            raise InputError(f"compact frame payload must be bytes, not {type(payload).__name__}")
        buf = bytes(payload)
        if len(buf) < 4:
            return DecodedRecords(
                records=(),
                errors=(f"compact frame header needs 4 bytes, {len(buf)} given",),
                signature=0,
                complete=False,
                status="malformed",
            )
        signature = buf[0] | buf[1] << 8
        crc = buf[2] | buf[3] << 8
        return self.decode_compact(signature, buf[4:], full_frame_crc=crc)

    # --- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The cache as a JSON-ready dict."""
        return {
            "format": self._FORMAT,
            "version": 1,
            "layouts": {
                f"{sig:04X}": [h.hex().upper() for h in headers]
                for sig, headers in sorted(self._layouts.items())
            },
        }

    @classmethod
    def from_json(cls, document: object) -> FormatSignatureCache:
        """A cache from :meth:`to_json` output; raises :class:`InputError` if it is not one."""
        if not isinstance(document, dict) or document.get("format") != cls._FORMAT:
            raise InputError("not a format-signature cache document")
        if document.get("version") != 1:
            raise InputError(f"unsupported format-signature cache version {document.get('version')!r}")
        layouts = document.get("layouts")
        if not isinstance(layouts, dict):
            raise InputError("format-signature cache without a 'layouts' object")
        cache = cls()
        for key, headers in layouts.items():
            try:
                signature = int(key, 16)
                if not isinstance(headers, list) or not headers:
                    raise ValueError("empty layout")
                parsed = tuple(bytes.fromhex(h) for h in headers)
            except (TypeError, ValueError) as exc:
                raise InputError(f"format-signature cache entry {key!r}: {exc}") from exc
            if any(not h for h in parsed) or crc16(b"".join(parsed)) != signature:
                raise InputError(f"format-signature cache entry {key!r} does not match its signature")
            cache._layouts[signature] = parsed
        return cache

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the cache as JSON to ``path`` (atomically: a temporary file, then a rename)."""
        target = Path(path)
        text = json.dumps(self.to_json(), indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".fscache-", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FormatSignatureCache:
        """Read a cache written by :meth:`save`; raises :class:`InputError` for a bad file."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read format-signature cache {os.fspath(path)!r}: {exc}") from exc
        return cls.from_json(document)
