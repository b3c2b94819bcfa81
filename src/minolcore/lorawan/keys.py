"""LoRaWAN keys: the library's redacting :class:`~minolcore.secret.AesKey` (every LoRaWAN
1.0.x key is AES-128), and the conversion the public functions apply to their key arguments."""

from __future__ import annotations

from minolcore.secret import KEY_SIZE, AesKey, KeyFormatError

__all__ = ["KEY_SIZE", "AesKey", "KeyFormatError", "as_key"]


def as_key(key: bytes | bytearray | memoryview | AesKey) -> AesKey:
    """Accept an :class:`AesKey` or 16 raw bytes and return an :class:`AesKey`."""
    if isinstance(key, AesKey):
        return key
    return AesKey(key)
