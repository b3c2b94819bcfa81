"""A 128-bit AES key that never shows its bytes.

Keys are configuration, not data: they must not end up in logs, reprs, exception
messages or JSON. :class:`AesKey` wraps the 16 bytes, prints as ``AesKey(<redacted>)``
and only hands the bytes out through the explicitly named :meth:`AesKey.reveal`.

It also caches the keyed CMAC and AES-ECB contexts of the key, because building
them costs several times more than the one-block operations LoRaWAN needs.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from minolcore.errors import InputError

__all__ = ["KEY_SIZE", "AesKey", "KeyFormatError", "as_key"]

KEY_SIZE = 16
"""Length of every LoRaWAN 1.0.x key in bytes."""


class KeyFormatError(InputError):
    """A key that is not 16 bytes (or 32 hex digits). The message gives only the length."""

    def __init__(self, length: int, what: str = "bytes") -> None:
        super().__init__(f"an AES-128 key needs {KEY_SIZE} bytes, got {length} {what}")
        self.length = length


class AesKey:
    """An AES-128 key whose ``repr``/``str`` never contain the key bytes."""

    __slots__ = ("__weakref__", "_cmac", "_ecb", "_ecb_lock", "_key")

    _key: bytes
    _cmac: CMAC | None
    _ecb: CipherContext | None
    _ecb_lock: threading.Lock

    def __init__(self, key: bytes | bytearray | memoryview) -> None:
        """Wrap 16 raw key bytes."""
        if not isinstance(key, bytes | bytearray | memoryview):
            raise InputError(f"an AES key must be bytes, not {type(key).__name__}")
        raw = bytes(key)
        if len(raw) != KEY_SIZE:
            raise KeyFormatError(len(raw))
        self._key = raw
        self._cmac = None
        self._ecb = None
        self._ecb_lock = threading.Lock()

    @classmethod
    def from_hex(cls, text: str) -> AesKey:
        """Parse 32 hex digits (spaces allowed); errors never echo the text."""
        if not isinstance(text, str):
            raise InputError(f"a hex key must be str, not {type(text).__name__}")
        compact = "".join(text.split())
        if len(compact) != 2 * KEY_SIZE:
            raise KeyFormatError(len(compact), "hex digits")
        try:
            raw = bytes.fromhex(compact)
        except ValueError:
            # The text is the key: say what is wrong without repeating it.
            raise InputError("an AES key in hex holds non-hex characters") from None
        return cls(raw)

    def reveal(self) -> bytes:
        """The raw 16 key bytes; the one deliberate way out."""
        return self._key

    @property
    def fingerprint(self) -> str:
        """8 hex digits of SHA-256 over the key: tells keys apart in logs without exposing them."""
        return hashlib.sha256(b"minolcore-key-id" + self._key).hexdigest()[:8]

    def cmac_context(self) -> CMAC:
        """A fresh CMAC context keyed with this key (a copy of a cached one)."""
        template = self._cmac
        if template is None:
            template = CMAC(algorithms.AES(self._key))
            self._cmac = template
        return template.copy()

    def ecb_encrypt(self, data: bytes) -> bytes:
        """AES-128-ECB encryption of ``data`` (a multiple of 16 bytes long)."""
        # An ECB context keeps no state between blocks, so one cached context can
        # serve every call; the lock only guards against two threads using it at once,
        # in which case the loser builds its own context instead of waiting.
        if self._ecb_lock.acquire(blocking=False):
            try:
                ctx = self._ecb
                if ctx is None:
                    ctx = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
                    self._ecb = ctx
                return ctx.update(data)
            finally:
                self._ecb_lock.release()
        return Cipher(algorithms.AES(self._key), modes.ECB()).encryptor().update(data)

    def ecb_decrypt(self, data: bytes) -> bytes:
        """AES-128-ECB decryption of ``data`` (a multiple of 16 bytes long)."""
        return Cipher(algorithms.AES(self._key), modes.ECB()).decryptor().update(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AesKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash((AesKey, self._key))

    def __repr__(self) -> str:
        return "AesKey(<redacted>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling is an explicit serialisation of configuration; the cached
        # contexts cannot be pickled, so rebuild from the bytes.
        return (AesKey, (self._key,))


def as_key(key: bytes | bytearray | memoryview | AesKey) -> AesKey:
    """Accept an :class:`AesKey` or 16 raw bytes and return an :class:`AesKey`."""
    if isinstance(key, AesKey):
        return key
    return AesKey(key)
