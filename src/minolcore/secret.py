"""The AES-128 key type of minolcore: never shows its bytes, caches its contexts.

Keys are configuration, not data: they must not end up in logs, reprs, exception
messages or exports. :class:`AesKey` wraps the 16 bytes, prints as
``AesKey(<redacted 1a2b3c4d>)`` (a fingerprint that tells keys apart without exposing
them) and hands the bytes out only through the explicitly named :meth:`AesKey.reveal`.
OMS telegrams and LoRaWAN frames use the same type.

It caches its AES-ECB encryption and decryption contexts and a keyed CMAC template:
building those costs several microseconds, the one- or few-block operations of a
telegram a fraction of that.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from minolcore.errors import InputError

__all__ = ["KEY_SIZE", "AesKey", "KeyFormatError"]

KEY_SIZE = 16
"""Length of an AES-128 key in bytes."""


class KeyFormatError(InputError):
    """A key that is not 16 bytes (or 32 hex digits). The message gives only the length."""

    def __init__(self, length: int, what: str = "bytes") -> None:
        super().__init__(f"an AES-128 key needs {KEY_SIZE} bytes, got {length} {what}")
        self.length = length


class AesKey:
    """An AES-128 key whose ``repr``/``str`` never contain the key bytes."""

    __slots__ = ("__weakref__", "_cmac", "_dec", "_enc", "_key", "_lock")

    _key: bytes
    _enc: CipherContext | None
    _dec: CipherContext | None
    _cmac: CMAC | None
    _lock: threading.Lock

    def __init__(self, key: bytes | bytearray | memoryview) -> None:
        """Wrap 16 raw key bytes."""
        if not isinstance(key, bytes | bytearray | memoryview):
            raise InputError(f"an AES key must be bytes, not {type(key).__name__}")
        raw = bytes(key)
        if len(raw) != KEY_SIZE:
            raise KeyFormatError(len(raw))
        self._key = raw
        self._enc = None
        self._dec = None
        self._cmac = None
        self._lock = threading.Lock()

    @classmethod
    def from_hex(cls, text: str) -> AesKey:
        """Parse 32 hex digits (whitespace allowed). Errors never repeat the text."""
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
        """The raw 16 key bytes: the one deliberate way out."""
        return self._key

    @property
    def fingerprint(self) -> str:
        """8 hex digits of SHA-256 over the key: tells keys apart in logs without exposing them."""
        return hashlib.sha256(b"minolcore-key-id" + self._key).hexdigest()[:8]

    def _context(self, decrypt: bool) -> CipherContext:
        cipher = Cipher(algorithms.AES(self._key), modes.ECB())
        return cipher.decryptor() if decrypt else cipher.encryptor()

    def ecb_encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """AES-128-ECB encryption of ``data`` (a multiple of 16 bytes)."""
        # ECB contexts keep no state between blocks, so one cached context serves every
        # call; a second thread that finds it busy builds its own instead of waiting.
        if self._lock.acquire(blocking=False):
            try:
                if self._enc is None:
                    self._enc = self._context(decrypt=False)
                return self._enc.update(data)
            finally:
                self._lock.release()
        return self._context(decrypt=False).update(data)

    def ecb_decrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """AES-128-ECB decryption of ``data`` (a multiple of 16 bytes)."""
        if self._lock.acquire(blocking=False):
            try:
                if self._dec is None:
                    self._dec = self._context(decrypt=True)
                return self._dec.update(data)
            finally:
                self._lock.release()
        return self._context(decrypt=True).update(data)

    def cmac_context(self) -> CMAC:
        """A fresh CMAC context keyed with this key (a copy of a cached one)."""
        template = self._cmac
        if template is None:
            template = self._cmac = CMAC(algorithms.AES(self._key))
        return template.copy()

    def cmac(self, data: bytes) -> bytes:
        """The full 16-byte AES-CMAC of ``data`` under this key."""
        ctx = self.cmac_context()
        ctx.update(data)
        return ctx.finalize()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AesKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash((AesKey, self._key))

    def __repr__(self) -> str:
        return f"AesKey(<redacted {self.fingerprint}>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling is an explicit serialisation of configuration (e.g. to a worker
        # process); the cached contexts cannot be pickled, so rebuild from the bytes.
        return (AesKey, (self._key,))
