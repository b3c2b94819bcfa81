"""Reference twin of ``mc_walk_records``: the same rows and statuses, written in Python."""

from __future__ import annotations

import math
import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from minolcore._reference.crc import crc16

__all__ = ["walk_into"]

# Numbers shared with csrc/minolcore.h (MC_WALK_*, MC_REC_*) and minolcore.wmbus.vif (CODING_*).
_OK, _HANDOVER, _MALFORMED, _NO_ROOM = 0, 1, 2, 3
_NUMBER, _MANUFACTURER_DATA, _MORE_FOLLOWS, _GLOBAL_READOUT = 1, 2, 4, 8
_NONE, _INT, _REAL, _BCD, _LVAR, _SPECIAL = 0, 1, 2, 3, 4, 5
_CODING: Final = (
    _NONE,
    _INT,
    _INT,
    _INT,
    _INT,
    _REAL,
    _INT,
    _INT,
    _NONE,
    _BCD,
    _BCD,
    _BCD,
    _BCD,
    _LVAR,
    _BCD,
)
_LENGTH: Final = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, 0, 6)
_MAX_EXT: Final = 10
_REAL32: Final = struct.Struct("<f")


def _number(data: bytes, coding: int) -> tuple[int, float] | None:
    """(value, real) of a fixed-length field, or None when it is marked "not set"."""
    if coding == _INT:
        if data == b"\xff" * len(data):
            return None
        value = int.from_bytes(data, "little", signed=True)
        return value, float(value)
    if coding == _BCD:
        digits = data[::-1].hex()
        if digits.isdigit():
            return int(digits), float(int(digits))
        if digits[0] == "f" and digits[1:].isdigit():
            return -int(digits[1:]), float(-int(digits[1:]))
        return None
    if coding == _REAL:
        real: float = _REAL32.unpack(data)[0]
        return (0, real) if math.isfinite(real) else None
    return None


class _StopError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _walk(apl: bytes, telegram: int, rows: list[dict[str, Any]], room: int) -> tuple[int, int, int]:
    """(status, stop offset, signature); appends the complete rows of ``apl`` to ``rows``."""
    heads: list[bytes] = []
    pos = 0
    end = len(apl)
    try:
        while pos < end:
            dif = apl[pos]
            if dif == 0x2F:
                pos += 1
                continue
            rec = pos
            stop = rec
            special = dif & 0x0F == 0x0F
            if special and dif not in (0x0F, 0x1F, 0x7F, 0xFF):
                raise _StopError(_MALFORMED)
            if len(rows) == room:
                raise _StopError(_NO_ROOM)
            row: dict[str, Any] = {"telegram": telegram, "offset": rec, "dib": bytes([dif]), "vib": b""}
            if special:
                heads.append(bytes([dif]))
                row.update(coding=_SPECIAL, data_offset=pos + 1)
                if dif in (0x0F, 0x1F):
                    row["flags"] = _MANUFACTURER_DATA | (_MORE_FOLLOWS if dif == 0x1F else 0)
                    row["data_length"] = end - pos - 1
                    rows.append(row)
                    return _OK, end, crc16(b"".join(heads))
                row["flags"] = _GLOBAL_READOUT
                rows.append(row)
                pos += 1
                continue
            pos += 1
            storage = (dif >> 6) & 1
            tariff = subunit = 0
            more = dif & 0x80
            n = 0
            while more:
                if pos >= end or n == _MAX_EXT:
                    raise _StopError(_MALFORMED)
                dife = apl[pos]
                pos += 1
                storage |= (dife & 0x0F) << (1 + 4 * n)
                tariff |= ((dife >> 4) & 0x03) << (2 * n)
                subunit |= ((dife >> 6) & 0x01) << n
                n += 1
                more = dife & 0x80
            dib = apl[rec:pos]
            if pos >= end:
                raise _StopError(_MALFORMED)
            if apl[pos] & 0x7F == 0x7C:
                raise _StopError(_HANDOVER)
            vib_start = pos
            more = apl[pos] & 0x80
            pos += 1
            n = 0
            while more:
                if pos >= end or n == _MAX_EXT:
                    raise _StopError(_MALFORMED)
                more = apl[pos] & 0x80
                pos += 1
                n += 1
            vib = apl[vib_start:pos]
            coding = _CODING[dif & 0x0F]
            if coding == _LVAR:
                raise _StopError(_HANDOVER)
            size = _LENGTH[dif & 0x0F]
            if pos + size > end:
                raise _StopError(_MALFORMED)
            number = _number(apl[pos : pos + size], coding)
            row.update(
                dib=dib,
                vib=vib,
                storage=storage,
                tariff=tariff,
                subunit=subunit,
                function=(dif >> 4) & 0x03,
                coding=coding,
                data_offset=pos,
                data_length=size,
            )
            if number is not None:
                row.update(value=number[0], real=number[1], flags=_NUMBER)
            pos += size
            heads.append(dib + vib)
            rows.append(row)
    except _StopError as stopped:
        return stopped.status, stop, crc16(b"".join(heads))
    return _OK, end, crc16(b"".join(heads))


def walk_into(
    buffer: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int32],
    rows: npt.NDArray[Any],
    info: npt.NDArray[Any],
) -> int:
    """Fill the rows (zeroed by the caller) and ``info`` exactly as ``mc_walk_records`` does;
    returns the rows used."""
    raw_all = buffer.tobytes()
    used = 0
    for index in range(len(offsets)):
        entry = info[index]
        entry["first_record"] = used
        length = int(lengths[index])
        if length < 0:
            entry["status"] = _MALFORMED
            continue
        offset = int(offsets[index])
        found: list[dict[str, Any]] = []
        status, stop, signature = _walk(raw_all[offset : offset + length], index, found, len(rows) - used)
        entry["status"] = status
        entry["stop_offset"] = stop
        entry["record_count"] = len(found)
        entry["signature"] = signature
        for row in found:
            target = rows[used]
            for name, value in row.items():
                if name in ("dib", "vib"):
                    target[name][: len(value)] = np.frombuffer(value, dtype=np.uint8)
                    target[f"{name}_length"] = len(value)
                else:
                    target[name] = value
            used += 1
    return used
