"""An EN 13757-3 record ENCODER, written for the tests only.

It is deliberately independent of the decoder (no shared tables): it builds DIF/DIFE bytes,
data fields (two's complement integers, BCD with a 0xF minus sign, real32, LVAR text and
numbers), date fields (types G and F) and compact-profile bodies, so that round trips test
the decoder against a second reading of the standard.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

INT_WIDTH = {0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6, 0x7: 8}
BCD_DIGITS = {0x9: 2, 0xA: 4, 0xB: 6, 0xC: 8, 0xE: 12}
REAL32 = 0x5
LVAR = 0xD


def encode_dib(coding: int, storage: int = 0, tariff: int = 0, subunit: int = 0, function: int = 0) -> bytes:
    """DIF and as many DIFEs as the storage number, tariff and subunit need."""
    dif = coding | (function << 4) | ((storage & 1) << 6)
    storage >>= 1
    difes: list[int] = []
    while storage or tariff or subunit:
        difes.append((storage & 0x0F) | ((tariff & 0x03) << 4) | ((subunit & 0x01) << 6))
        storage >>= 4
        tariff >>= 2
        subunit >>= 1
    if not difes:
        return bytes([dif])
    out = [dif | 0x80] + [d | 0x80 for d in difes[:-1]] + [difes[-1]]
    return bytes(out)


def encode_int(value: int, width: int) -> bytes:
    """Little-endian two's complement of ``width`` bytes."""
    return (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")


def encode_bcd(value: int, digits: int) -> bytes:
    """Little-endian BCD; a negative value puts 0xF in the most significant nibble."""
    text = "F" + str(-value).rjust(digits - 1, "0") if value < 0 else str(value).rjust(digits, "0")
    assert len(text) == digits, (value, digits)
    return bytes.fromhex(text)[::-1]


def encode_data(coding: int, value: int | float) -> bytes:
    """The data field of a fixed-length coding."""
    if coding in INT_WIDTH:
        return encode_int(int(value), INT_WIDTH[coding])
    if coding in BCD_DIGITS:
        return encode_bcd(int(value), BCD_DIGITS[coding])
    if coding == REAL32:
        return struct.pack("<f", value)
    if coding in (0x0, 0x8):
        return b""
    raise ValueError(f"no fixed-length coding 0x{coding:X}")


def encode_record(
    coding: int,
    vib: bytes,
    value: int | float,
    *,
    storage: int = 0,
    tariff: int = 0,
    subunit: int = 0,
    function: int = 0,
) -> bytes:
    """One complete fixed-length record."""
    return encode_dib(coding, storage, tariff, subunit, function) + vib + encode_data(coding, value)


def lvar_text(text: str) -> bytes:
    """LVAR byte and an ASCII string, sent last character first."""
    raw = text.encode("latin-1")
    assert len(raw) <= 0xBF
    return bytes([len(raw)]) + raw[::-1]


def lvar_bcd(value: int, nbytes: int) -> bytes:
    """LVAR 0xC0+n (positive) or 0xD0+n (negative) BCD of ``nbytes`` bytes."""
    body = encode_bcd(abs(value), 2 * nbytes)
    return bytes([(0xD0 if value < 0 else 0xC0) + nbytes]) + body


def lvar_binary(value: int, nbytes: int) -> bytes:
    """LVAR 0xE0+n: a binary number of ``nbytes`` bytes."""
    return bytes([0xE0 + nbytes]) + encode_int(value, nbytes)


def date_g(year: int, month: int, day: int) -> bytes:
    """Type G date (years 2000-2099)."""
    y = year - 2000
    return bytes([day | ((y & 0x07) << 5), month | ((y & 0x78) << 1)])


def datetime_f(year: int, month: int, day: int, hour: int, minute: int) -> bytes:
    """Type F date-time (hundred-year field 1 = years 2000-2099)."""
    return bytes([minute, hour | (1 << 5)]) + date_g(year, month, day)


def profile_body(mode: int, unit: int, coding: int, spacing: int, elements: list[int | None]) -> bytes:
    """LVAR byte, spacing control, spacing value and the elements of a compact profile.

    ``None`` elements are sent as all-ones (not set).
    """
    body = bytearray([(mode << 6) | (unit << 4) | coding, spacing])
    for element in elements:
        if coding in INT_WIDTH:
            width = INT_WIDTH[coding]
            body += b"\xff" * width if element is None else encode_int(element, width)
        else:
            digits = BCD_DIGITS[coding]
            body += b"\xff" * (digits // 2) if element is None else encode_bcd(element, digits)
    return bytes([len(body)]) + bytes(body)


@dataclass(frozen=True)
class Spec:
    """A record to encode: coding, VIB, unscaled value and the DIF/DIFE numbers."""

    coding: int
    vib: bytes
    value: int | float
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: int = 0

    def encode(self) -> bytes:
        return encode_record(
            self.coding,
            self.vib,
            self.value,
            storage=self.storage,
            tariff=self.tariff,
            subunit=self.subunit,
            function=self.function,
        )

    def header(self) -> bytes:
        return encode_dib(self.coding, self.storage, self.tariff, self.subunit, self.function) + self.vib

    def data(self) -> bytes:
        return encode_data(self.coding, self.value)
