"""The exception tree of minolcore.

Every error the library raises derives from :class:`MinolcoreError` and carries
the data that explains it, so callers can branch on type and inspect fields
instead of parsing messages. Messages never contain key material.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "CRCError",
    "ChecksumError",
    "ConfigError",
    "DecodeError",
    "FrameError",
    "FrameTooShortError",
    "GatewayProtocolError",
    "HeaderTruncatedError",
    "InputError",
    "KeyStoreError",
    "LFieldError",
    "LoRaWANError",
    "MACMismatchError",
    "MICError",
    "MinolcoreError",
    "NoKeyError",
    "RecordError",
    "ReplayError",
    "SecurityError",
    "UnsupportedSecurityError",
    "WiredFrameError",
    "WrongKeyError",
]


class MinolcoreError(Exception):
    """Root of every error raised by minolcore."""


class InputError(MinolcoreError, ValueError):
    """Input that is not even a candidate: odd-length hex, non-hex characters, wrong type."""


# --- frame layer (EN 13757-4 / EN 13757-2) -------------------------------------------------


class FrameError(MinolcoreError):
    """A frame that cannot be accepted. ``status`` is the batch status code of the same failure."""

    status: int = 0


class FrameTooShortError(FrameError):
    """Fewer bytes than the smallest frame of the detected shape."""

    def __init__(self, length: int, needed: int) -> None:
        super().__init__(f"frame has {length} bytes, at least {needed} needed")
        self.length = length
        self.needed = needed


class LFieldError(FrameError):
    """The L-field does not match the number of bytes received for any accepted frame shape."""

    def __init__(self, l_field: int, length: int, shape: str) -> None:
        super().__init__(f"L-field {l_field} does not fit {length} received bytes ({shape})")
        self.l_field = l_field
        self.length = length
        self.shape = shape


class CRCError(FrameError):
    """A data-link CRC failed. ``block`` is the 0-based block index (format B: 0 or 1)."""

    def __init__(self, block: int, expected: int, actual: int) -> None:
        super().__init__(f"CRC of block {block}: frame says 0x{expected:04X}, data gives 0x{actual:04X}")
        self.block = block
        self.expected = expected
        self.actual = actual


class HeaderTruncatedError(FrameError):
    """An ELL, AFL or TPL header runs past the end of the frame."""

    def __init__(self, layer: str, needed: int, available: int) -> None:
        super().__init__(f"{layer} header needs {needed} bytes, {available} left")
        self.layer = layer
        self.needed = needed
        self.available = available


class WiredFrameError(FrameError):
    """A wired M-Bus frame (EN 13757-2) with wrong start, stop or length bytes."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"wired M-Bus frame: {reason}")
        self.reason = reason


class ChecksumError(FrameError):
    """The arithmetic checksum of a wired M-Bus frame failed."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"checksum: frame says 0x{expected:02X}, data gives 0x{actual:02X}")
        self.expected = expected
        self.actual = actual


# --- security (OMS modes 5, 7, ELL AES-CTR) ------------------------------------------------


class SecurityError(MinolcoreError):
    """A telegram could not be decrypted or authenticated. ``status`` names the reason."""

    status: str = "error"


class NoKeyError(SecurityError):
    """The telegram is encrypted and no key was given."""

    status = "no_key"


class WrongKeyError(SecurityError):
    """Decryption ran but the key check (0x2F2F or the ELL payload CRC) failed."""

    status = "wrong_key"


class MACMismatchError(SecurityError):
    """The mode-7 AFL MAC did not verify."""

    status = "mac_mismatch"


class UnsupportedSecurityError(SecurityError):
    """A security mode or scheme minolcore does not implement."""

    status = "unsupported"

    def __init__(self, mode: int | str) -> None:
        super().__init__(f"security mode {mode} is not supported")
        self.mode = mode


# --- application layer (EN 13757-3) ---------------------------------------------------------


class DecodeError(MinolcoreError):
    """The application layer could not be decoded."""


class RecordError(DecodeError):
    """A data record that is truncated or malformed at ``offset`` (bytes into the APL)."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"record at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


# --- LoRaWAN, gateways, network server ------------------------------------------------------


class LoRaWANError(MinolcoreError):
    """A LoRaWAN PHYPayload that is malformed or cannot be processed."""


class MICError(LoRaWANError):
    """A LoRaWAN MIC did not verify."""


class GatewayProtocolError(MinolcoreError):
    """A gateway datagram, upload line or envelope that breaks its protocol."""


class ReplayError(MinolcoreError):
    """A counter or nonce that was seen before (replay)."""


# --- configuration, keys, access -------------------------------------------------------------


class ConfigError(MinolcoreError):
    """A site file, profile or setting that is invalid; ``where`` points at the offending entry."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


class StoreError(MinolcoreError):
    """The database refused a write: locked by another writer past the wait, read-only, or
    full. The batch was rolled back; writing it again later stores it."""


class KeyStoreError(MinolcoreError):
    """A key file or key store that cannot be read, decrypted or written (never shows key bytes)."""


class AccessDeniedError(MinolcoreError):
    """A read without a valid grant; ``reason`` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"access denied: {reason}")
        self.reason = reason
