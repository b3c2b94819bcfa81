"""EN 13757-3 application-layer data records: the walker and its public API.

``decode_records(apl)`` walks the data records of an application layer (the bytes after
the TPL header, with or without the 0x2F2F key check) and returns typed
:class:`DataRecord` values. It never raises for bad data: a truncated or malformed record
stops the walk with an error message and the records before it are kept.
``walk_records`` is the strict twin that raises :class:`RecordError` instead.

Reading rules chosen here (the standard leaves them to the decoder):

- Integers are signed two's complement (type B) for measured quantities, unsigned
  (type C/D) for identifiers, counters and bit fields (fabrication number, error flags, ...)
  and when a VIFE says "type C/D". All bits set means "not set" for every width, so
  a genuine -1 of a signed field also reads as not set: meters use all-ones as the
  invalid marker far more often than they send -1.
- BCD with 0xF in the top nibble is negative; all-0xF BCD and any other non-decimal
  nibble mean "not set". A NaN real32 means "not set".
- Not-set values and invalid dates come out as ``value=None, valid=False``; the raw data
  bytes stay in ``raw`` (hex).
- Values are scaled into the unit of the VIF table: ``int`` when the decimal exponent is
  >= 0 and the raw value is an integer, ``float`` when the exponent is negative.
- LVAR text is sent last character first; it is returned in reading order.
"""

from __future__ import annotations

from typing import Any, Final, cast

import msgspec

from minolcore._model import Record
from minolcore._native import crc16
from minolcore.errors import InputError, RecordError
from minolcore.wmbus.compact import (
    PROFILE_MODES,
    FormatSignatureCache,
    UnknownSignatureError,
    expand_profile,
    full_frame_crc,
    parse_profile,
)
from minolcore.wmbus.dates import decode_timepoint
from minolcore.wmbus.vif import (
    CODING_BCD,
    CODING_INT,
    CODING_LVAR,
    CODING_NONE,
    DATA_CODING,
    DATA_LENGTH,
    FLAG_INVALID,
    FLAG_PROFILE_COMPACT,
    FLAG_PROFILE_INVERSE,
    FLAG_PROFILE_MASK,
    FLAG_PROFILE_REGISTERS,
    FLAG_UNSIGNED,
    KIND_MANUFACTURER,
    KIND_NUMBER,
    KIND_TIMEPOINT,
    NO_OFFSET,
    lvar_length,
    read_number,
    read_vib,
    scale,
)

__all__ = [
    "MAX_DIFE",
    "DataRecord",
    "DecodedRecords",
    "FormatSignatureCache",
    "UnknownSignatureError",
    "decode_records",
    "format_signature",
    "full_frame_crc",
    "walk_records",
]

MAX_DIFE: Final = 10
FUNCTIONS: Final = ("instantaneous", "maximum", "minimum", "during_error")

Series = tuple[tuple[str | None, float | int | None], ...]


class DataRecord(Record):
    """One data record of an EN 13757-3 application layer.

    ``dif``: hex of the DIF and DIFEs; ``vif``: hex of the whole VIB (VIF, VIFEs and, for a
    plain-text VIF, its length byte and characters); ``value``: the value in ``unit``
    (numbers scaled, dates as ISO strings "2008-05-31" / "2008-05-31T23:50", text as str,
    manufacturer or large binary data as bytes), ``None`` when not set (then
    ``valid`` is False); ``raw``: hex of the data bytes (for LVAR records including the
    LVAR byte); ``offset``: byte offset of the DIF in the application layer.
    ``storage``, ``tariff`` and ``subunit`` are the numbers from the DIF/DIFEs.
    ``modifiers`` name the combinable VIFEs ("per_hour", "backward_flow", ...).

    Compact-profile records have ``series``: ``((date, value), ...)`` of the historic values in
    ``unit`` (``None`` where unknown), ``elements`` (the scaled profile elements as sent),
    ``spacing`` (e.g. "1 month") and ``profile_mode``. ``more_follows`` marks DIF 0x1F
    (manufacturer data continued in the next telegram).
    """

    dif: str
    vif: str
    quantity: str
    unit: str
    value: float | int | str | bytes | None
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: str = "instantaneous"
    valid: bool = True
    raw: str = ""
    offset: int = 0
    modifiers: tuple[str, ...] = ()
    series: Series | None = None
    elements: tuple[float | int | None, ...] | None = None
    spacing: str = ""
    profile_mode: str = ""
    more_follows: bool = False

    def evolve(self, **changes: Any) -> DataRecord:
        """A copy with ``changes`` applied (the record itself is frozen)."""
        new: DataRecord = msgspec.structs.replace(cast(Any, self), **changes)
        return new

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: dif, vif, quantity, unit, value, storage, tariff, subunit,
        function, plus valid, raw, offset, modifiers and the profile fields when present.
        Bytes values appear as upper-case hex strings."""
        value = self.value
        out: dict[str, Any] = {
            "dif": self.dif,
            "vif": self.vif,
            "quantity": self.quantity,
            "unit": self.unit,
            "value": value.hex().upper() if isinstance(value, bytes) else value,
            "storage": self.storage,
            "tariff": self.tariff,
            "subunit": self.subunit,
            "function": self.function,
            "valid": self.valid,
            "raw": self.raw,
            "offset": self.offset,
            "modifiers": list(self.modifiers),
        }
        if self.series is not None:
            out["series"] = [list(point) for point in self.series]
            out["elements"] = list(self.elements or ())
            out["spacing"] = self.spacing
            out["profile_mode"] = self.profile_mode
        if self.more_follows:
            out["more_follows"] = True
        return out


class DecodedRecords(Record):
    """The result of a walk.

    ``signature`` is the format signature (CRC-16/EN-13757 over the DIF/VIF headers of the
    records found); ``complete`` is False when the walk stopped early; ``status`` is "ok",
    "malformed", or from a compact-frame decode "unknown_signature" / "crc_mismatch".
    """

    records: tuple[DataRecord, ...]
    errors: tuple[str, ...] = ()
    signature: int = 0
    complete: bool = True
    status: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the result."""
        return {
            "records": [r.to_dict() for r in self.records],
            "errors": list(self.errors),
            "signature": self.signature,
            "complete": self.complete,
            "status": self.status,
        }


def _lvar_value(
    lvar: int, data: bytes, kind: int, exponent: int
) -> tuple[float | int | str | bytes | None, bool]:
    if lvar < 0xC0:
        if kind == KIND_MANUFACTURER:
            return data, True
        return data[::-1].decode("latin-1"), True
    if lvar < 0xE0:
        digits = data[::-1].hex()
        if not digits or not digits.isdigit():
            return None, False
        number = int(digits) if lvar < 0xD0 else -int(digits)
    elif lvar < 0xF0:
        if not data or data == b"\xff" * len(data):
            return None, False
        if kind == KIND_MANUFACTURER:
            return data, True
        number = int.from_bytes(data, "little", signed=True)
    else:
        return data, True
    if kind == KIND_MANUFACTURER:
        return number, True
    return scale(number, exponent), True


def _walk(buf: bytes, start: int, out: list[DataRecord], heads: list[bytes]) -> None:
    """Append the records of ``buf[start:]`` to ``out`` (and their headers to ``heads``).

    Raises :class:`RecordError` at the first malformed record.
    """
    pos = start
    end = len(buf)
    append = out.append
    while pos < end:
        dif = buf[pos]
        if dif == 0x2F:
            pos += 1
            continue
        rec_off = pos
        if dif & 0x0F == 0x0F:
            if dif in (0x0F, 0x1F):
                # Manufacturer data: the rest of the application layer, as sent.
                rest = buf[pos + 1 :]
                heads.append(buf[pos : pos + 1])
                append(
                    DataRecord(
                        dif=f"{dif:02X}",
                        vif="",
                        quantity="manufacturer_specific",
                        unit="",
                        value=rest,
                        raw=rest.hex().upper(),
                        offset=rec_off,
                        more_follows=dif == 0x1F,
                    )
                )
                return
            if dif in (0x7F, 0xFF):
                heads.append(buf[pos : pos + 1])
                append(
                    DataRecord(
                        dif=f"{dif:02X}",
                        vif="",
                        quantity="global_readout",
                        unit="",
                        value=None,
                        valid=False,
                        offset=rec_off,
                    )
                )
                pos += 1
                continue
            raise RecordError(rec_off, f"reserved special DIF 0x{dif:02X}")

        pos += 1
        storage = (dif >> 6) & 1
        tariff = 0
        subunit = 0
        more = dif & 0x80
        n = 0
        while more:
            if pos >= end:
                raise RecordError(rec_off, "DIFE missing")
            if n == MAX_DIFE:
                raise RecordError(rec_off, f"more than {MAX_DIFE} DIFEs")
            dife = buf[pos]
            pos += 1
            storage |= (dife & 0x0F) << (1 + 4 * n)
            tariff |= ((dife >> 4) & 0x03) << (2 * n)
            subunit |= ((dife >> 6) & 0x01) << n
            n += 1
            more = dife & 0x80
        dib = buf[rec_off:pos]
        pos, vib, quantity, unit, exponent, kind, modifiers, flags, offset_exp = read_vib(
            buf, pos, end, rec_off
        )

        coding = DATA_CODING[dif & 0x0F]
        value: float | int | str | bytes | None
        valid = True
        if coding == CODING_LVAR:
            if pos >= end:
                raise RecordError(rec_off, "LVAR byte missing")
            lvar = buf[pos]
            size = lvar_length(lvar)
            if size < 0:
                raise RecordError(rec_off, f"reserved LVAR 0x{lvar:02X}")
            if pos + 1 + size > end:
                raise RecordError(rec_off, f"{size} bytes of LVAR data announced, {end - pos - 1} left")
            data = buf[pos + 1 : pos + 1 + size]
            raw = buf[pos : pos + 1 + size]
            pos += 1 + size
            if flags & FLAG_PROFILE_MASK:
                value = None  # expanded into a series once all records are known
            else:
                value, valid = _lvar_value(lvar, data, kind, exponent)
        else:
            size = DATA_LENGTH[dif & 0x0F]
            if pos + size > end:
                raise RecordError(rec_off, f"{size} data bytes needed, {end - pos} left")
            raw = data = buf[pos : pos + size]
            pos += size
            if coding == CODING_NONE:
                value, valid = None, False
            elif kind == KIND_TIMEPOINT:
                value = decode_timepoint(data) if coding in (CODING_INT, CODING_BCD) else None
                valid = value is not None
            elif kind == KIND_MANUFACTURER:
                value = read_number(coding, data, False)
                valid = value is not None
            else:
                number = read_number(coding, data, kind == KIND_NUMBER and not flags & FLAG_UNSIGNED)
                if number is None:
                    value, valid = None, False
                else:
                    value = scale(number, exponent) if exponent else number
                    if offset_exp != NO_OFFSET:
                        value = value + (10**offset_exp if offset_exp >= 0 else 1 / 10**-offset_exp)
        if flags & FLAG_INVALID:
            value, valid = None, False

        heads.append(dib + vib)
        append(
            DataRecord(
                dif=dib.hex().upper(),
                vif=vib.hex().upper(),
                quantity=quantity,
                unit=unit,
                value=value,
                storage=storage,
                tariff=tariff,
                subunit=subunit,
                function=FUNCTIONS[(dif >> 4) & 0x03],
                valid=valid,
                raw=raw.hex().upper(),
                offset=rec_off,
                modifiers=modifiers,
            )
        )


def _expand_profiles(records: list[DataRecord]) -> None:
    """Replace compact-profile records by their expanded form (series with dates)."""
    for index, rec in enumerate(records):
        if rec.series is not None or not rec.raw or rec.value is not None or rec.dif[1:2] != "D":
            continue
        profile_flags = _profile_flags(rec.modifiers)
        if not profile_flags:
            continue
        profile = parse_profile(bytes.fromhex(rec.raw)[1:])
        if profile is None:
            records[index] = rec.evolve(valid=False, series=(), elements=())
            continue
        base_value: int | float | None = None
        base_time: str | None = None
        exponent = _record_exponent(rec)
        for other in records:
            if other is rec or other.series is not None or _profile_flags(other.modifiers):
                continue
            same_cell = other.storage == rec.storage and other.subunit == rec.subunit
            if (
                base_value is None
                and same_cell
                and other.tariff == rec.tariff
                and other.quantity == rec.quantity
                and other.unit == rec.unit
                and isinstance(other.value, int | float)
            ):
                base_value = other.value
            if (
                base_time is None
                and same_cell
                and other.quantity in ("date", "datetime")
                and isinstance(other.value, str)
            ):
                base_time = other.value
        series, elements = expand_profile(
            profile, exponent, bool(profile_flags & FLAG_PROFILE_INVERSE), base_value, base_time
        )
        records[index] = rec.evolve(
            series=series,
            elements=elements,
            spacing=profile.spacing,
            profile_mode=PROFILE_MODES[profile.mode],
            valid=any(v is not None for _, v in series),
        )


_PROFILE_NAMES: Final = {
    "inverse_compact_profile": FLAG_PROFILE_INVERSE,
    "compact_profile_with_registers": FLAG_PROFILE_REGISTERS,
    "compact_profile": FLAG_PROFILE_COMPACT,
}


def _profile_flags(modifiers: tuple[str, ...]) -> int:
    flags = 0
    for name in modifiers:
        flags |= _PROFILE_NAMES.get(name, 0)
    return flags


def _record_exponent(rec: DataRecord) -> int:
    """The decimal exponent the VIB of ``rec`` gives its values."""
    vib = bytes.fromhex(rec.vif)
    return read_vib(vib, 0, len(vib), rec.offset)[4]


def _check_input(apl: object, start: object) -> bytes:
    if not isinstance(apl, bytes | bytearray | memoryview):
        raise InputError(
            f"application layer must be bytes, bytearray or memoryview, not {type(apl).__name__}"
        )
    if not isinstance(start, int) or isinstance(start, bool):
        raise InputError(f"start must be an int, not {type(start).__name__}")
    buf = apl if isinstance(apl, bytes) else bytes(apl)
    if not 0 <= start <= len(buf):
        raise InputError(f"start {start} outside the {len(buf)} bytes given")
    return buf


def decode_records(apl: bytes | bytearray | memoryview, *, start: int = 0) -> DecodedRecords:
    """Decode the data records of ``apl`` from byte ``start`` on (0x2F fill is skipped).

    Never raises for bad data; raises :class:`InputError` only for a wrong argument type or
    a ``start`` outside the buffer. Values are in the unit named by each record.
    """
    buf = _check_input(apl, start)
    records: list[DataRecord] = []
    heads: list[bytes] = []
    errors: tuple[str, ...] = ()
    complete = True
    try:
        _walk(buf, start, records, heads)
    except RecordError as exc:
        errors = (str(exc),)
        complete = False
    if records:
        _expand_profiles(records)
    return DecodedRecords(
        records=tuple(records),
        errors=errors,
        signature=crc16(b"".join(heads)),
        complete=complete,
        status="ok" if complete else "malformed",
    )


def walk_records(apl: bytes | bytearray | memoryview, *, start: int = 0) -> tuple[DataRecord, ...]:
    """The strict twin of :func:`decode_records`: raises :class:`RecordError` at the first
    malformed record (``offset`` into ``apl``) instead of returning a partial result."""
    buf = _check_input(apl, start)
    records: list[DataRecord] = []
    _walk(buf, start, records, [])
    if records:
        _expand_profiles(records)
    return tuple(records)


def format_signature(records: tuple[DataRecord, ...] | list[DataRecord]) -> int:
    """The format signature (16-bit CRC-16/EN-13757) over the DIF/VIF headers of ``records``."""
    return crc16(b"".join(bytes.fromhex(r.dif + r.vif) for r in records))
