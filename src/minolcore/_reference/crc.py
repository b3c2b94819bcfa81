"""CRC-16/EN-13757: poly 0x3D65, init 0, not reflected, xorout 0xFFFF (check 0xC2B7)."""

from __future__ import annotations

__all__ = ["CRC16_TABLE", "crc16"]

_POLY = 0x3D65


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


CRC16_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None) -> int:
    """CRC-16/EN-13757 of ``data[start:end]`` (a 16-bit integer)."""
    table = CRC16_TABLE
    crc = 0
    for byte in memoryview(data)[start:end].tobytes():
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc ^ 0xFFFF
