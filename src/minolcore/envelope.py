"""Sealed gateway envelopes: the gateway-to-cloud encryption layer around collector batches.

A gateway seals each upload batch with its own AES-GCM key and a per-gateway sequence number;
the cloud opens it with :class:`EnvelopeOpener`, which authenticates the gateway and rejects
replays. Layout (all integers big-endian)::

    offset  size  field
    0       1     format version (0xE1)
    1       1     gateway id length n (1..255)
    2       n     gateway id, UTF-8
    2+n     8     sequence number (uint64)
    10+n    12    nonce (random per envelope)
    22+n    ...   ciphertext, then the 16-byte GCM tag

Everything before the ciphertext is the associated data, so the version, gateway id and
sequence number are authenticated without being encrypted: the opener needs the gateway id to
pick the key and the sequence number to check replays before it can decrypt anything.
Random 96-bit nonces are safe for up to about 2**32 envelopes per key; rotate keys before that.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from typing import ClassVar, TypeGuard

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from minolcore._model import Record
from minolcore.errors import GatewayProtocolError, InputError, ReplayError

__all__ = [
    "ENVELOPE_VERSION",
    "EnvelopeError",
    "EnvelopeOpener",
    "MalformedEnvelopeError",
    "OpenedEnvelope",
    "ReplayedEnvelopeError",
    "TamperedEnvelopeError",
    "UnknownGatewayError",
    "seal",
]

ENVELOPE_VERSION = 0xE1
# format version, gateway id length
PREFIX = struct.Struct(">BB")
# sequence number, nonce (follow the gateway id)
SEQUENCE_NONCE = struct.Struct(">Q12s")
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_GATEWAY_ID = 255
MAX_SEQUENCE = 2**64 - 1
_KEY_SIZES = (16, 24, 32)
_STATE_VERSION = 1


class EnvelopeError(GatewayProtocolError):
    """An envelope that was not accepted; ``reason`` is one of the four class-level reason strings."""

    reason: ClassVar[str]

    def __init__(self, detail: str, gateway_id: str | None = None) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail
        self.gateway_id = gateway_id


class MalformedEnvelopeError(EnvelopeError):
    """Not an envelope of a known format: too short, wrong version, bad gateway id."""

    reason = "malformed"


class UnknownGatewayError(EnvelopeError):
    """An envelope from a gateway id the opener has no key for."""

    reason = "unknown_gateway"


class TamperedEnvelopeError(EnvelopeError):
    """Authentication failed: changed bytes, or sealed with a key other than this gateway's."""

    reason = "tampered"


class ReplayedEnvelopeError(EnvelopeError, ReplayError):
    """An authentic envelope whose sequence number was already accepted or fell out of the window."""

    reason = "replayed"

    def __init__(self, detail: str, gateway_id: str, sequence: int) -> None:
        super().__init__(detail, gateway_id)
        self.sequence = sequence


class OpenedEnvelope(Record, frozen=True, gc=False, kw_only=True):
    """The authenticated content of an envelope; ``sequence`` is the gateway's uint64 counter."""

    gateway_id: str
    sequence: int
    batch: bytes


def _gateway_id_bytes(gateway_id: str) -> bytes:
    raw = gateway_id.encode("utf-8") if isinstance(gateway_id, str) else b""
    if not 1 <= len(raw) <= MAX_GATEWAY_ID:
        raise InputError(f"gateway id must be 1..{MAX_GATEWAY_ID} bytes of UTF-8")
    return raw


def _aead(key: bytes) -> AESGCM:
    # The message names only the length: key bytes never reach an error or a log.
    if not isinstance(key, bytes | bytearray) or len(key) not in _KEY_SIZES:
        length = len(key) if isinstance(key, bytes | bytearray) else "non-bytes"
        raise InputError(f"AES-GCM key must be 16, 24 or 32 bytes, got {length}")
    return AESGCM(bytes(key))


def seal(batch: bytes, *, gateway_id: str, sequence: int, key: bytes) -> bytes:
    """Encrypt and authenticate ``batch`` for ``gateway_id``; ``sequence`` is a uint64 that must grow.

    ``key`` is a 16-, 24- or 32-byte AES key. Returns the envelope bytes (layout in the module doc).
    """
    raw_id = _gateway_id_bytes(gateway_id)
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise InputError(f"sequence {sequence} is not a 64-bit unsigned integer")
    aead = _aead(key)
    nonce = os.urandom(NONCE_SIZE)
    header = PREFIX.pack(ENVELOPE_VERSION, len(raw_id)) + raw_id + SEQUENCE_NONCE.pack(sequence, nonce)
    return header + aead.encrypt(nonce, bytes(batch), header)


class _ReplayWindow:
    """Highest accepted sequence plus a bitmap of the ``size`` sequences at and below it."""

    __slots__ = ("highest", "seen")

    def __init__(self, highest: int, seen: int) -> None:
        self.highest = highest
        self.seen = seen  # bit i set: sequence highest - i was accepted

    def fresh(self, sequence: int, size: int) -> bool:
        if sequence > self.highest:
            return True
        offset = self.highest - sequence
        return offset < size and not (self.seen >> offset) & 1

    def mark(self, sequence: int, size: int) -> None:
        if sequence > self.highest:
            shift = sequence - self.highest
            # A jump past the whole window forgets the bitmap; shifting by it would build a huge int.
            self.seen = 1 if shift >= size else ((self.seen << shift) | 1) & ((1 << size) - 1)
            self.highest = sequence
        else:
            self.seen |= 1 << (self.highest - sequence)


class EnvelopeOpener:
    """Opens envelopes from known gateways and rejects replays.

    ``keys`` maps gateway id to its AES key (16, 24 or 32 bytes). ``window`` is how many sequence
    numbers, counted down from the highest accepted one, are tracked individually: 1 demands
    strictly increasing numbers; larger values accept batches that arrive out of order (e.g.
    after an upload retry) but still only once each.
    """

    def __init__(self, keys: Mapping[str, bytes] | None = None, *, window: int = 64) -> None:
        if not 1 <= window <= 4096:
            raise InputError(f"window {window} is not between 1 and 4096")
        self._window = window
        self._aeads: dict[str, AESGCM] = {}
        self._replay: dict[str, _ReplayWindow] = {}
        for gateway_id, key in (keys or {}).items():
            self.add_gateway(gateway_id, key)

    def __repr__(self) -> str:
        return f"EnvelopeOpener(gateways={sorted(self._aeads)!r}, window={self._window})"

    @property
    def window(self) -> int:
        """Size of the out-of-order window, in sequence numbers."""
        return self._window

    @property
    def gateways(self) -> frozenset[str]:
        """Gateway ids with a key."""
        return frozenset(self._aeads)

    def add_gateway(self, gateway_id: str, key: bytes) -> None:
        """Register or replace a gateway's key; its replay state is kept across key rotation."""
        _gateway_id_bytes(gateway_id)
        self._aeads[gateway_id] = _aead(key)

    def remove_gateway(self, gateway_id: str) -> None:
        """Forget a gateway's key (its replay state stays, so a re-added key cannot be replayed)."""
        self._aeads.pop(gateway_id, None)

    def last_sequence(self, gateway_id: str) -> int | None:
        """Highest sequence number accepted from the gateway, or ``None``."""
        state = self._replay.get(gateway_id)
        return None if state is None else state.highest

    def open(self, envelope: bytes) -> OpenedEnvelope:
        """Authenticate and decrypt one envelope, then record its sequence number.

        Raises :class:`MalformedEnvelopeError`, :class:`UnknownGatewayError`,
        :class:`TamperedEnvelopeError` or :class:`ReplayedEnvelopeError`; state changes only on success.
        """
        envelope = bytes(envelope)
        gateway_id, sequence, nonce, header_size = self._parse_header(envelope)
        aead = self._aeads.get(gateway_id)
        if aead is None:
            raise UnknownGatewayError(f"no key for gateway {gateway_id!r}", gateway_id)
        try:
            batch = aead.decrypt(nonce, envelope[header_size:], envelope[:header_size])
        except InvalidTag:
            raise TamperedEnvelopeError(
                f"authentication failed for gateway {gateway_id!r}, sequence {sequence}", gateway_id
            ) from None
        # Replays are judged only after authentication, so forged sequence numbers cannot
        # move the window or be reported as anything but tampering.
        state = self._replay.get(gateway_id)
        if state is None:
            self._replay[gateway_id] = _ReplayWindow(sequence, 1)
        elif state.fresh(sequence, self._window):
            state.mark(sequence, self._window)
        else:
            raise ReplayedEnvelopeError(
                f"sequence {sequence} from gateway {gateway_id!r} already accepted or too old "
                f"(highest {state.highest}, window {self._window})",
                gateway_id,
                sequence,
            )
        return OpenedEnvelope(gateway_id=gateway_id, sequence=sequence, batch=batch)

    @staticmethod
    def _parse_header(envelope: bytes) -> tuple[str, int, bytes, int]:
        if len(envelope) < PREFIX.size:
            raise MalformedEnvelopeError(f"{len(envelope)} bytes, shorter than any envelope")
        version, id_length = PREFIX.unpack_from(envelope)
        if version != ENVELOPE_VERSION:
            raise MalformedEnvelopeError(f"format version 0x{version:02X}, expected 0x{ENVELOPE_VERSION:02X}")
        if id_length == 0:
            raise MalformedEnvelopeError("empty gateway id")
        header_size = PREFIX.size + id_length + SEQUENCE_NONCE.size
        if len(envelope) < header_size + TAG_SIZE:
            raise MalformedEnvelopeError(f"{len(envelope)} bytes, at least {header_size + TAG_SIZE} needed")
        try:
            gateway_id = envelope[PREFIX.size : PREFIX.size + id_length].decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEnvelopeError("gateway id is not UTF-8") from None
        sequence, nonce = SEQUENCE_NONCE.unpack_from(envelope, PREFIX.size + id_length)
        return gateway_id, sequence, nonce, header_size

    def export_state(self) -> dict[str, object]:
        """The replay state as plain JSON-compatible data (no keys): persist it and restore on start."""
        return {
            "version": _STATE_VERSION,
            "window": self._window,
            "gateways": {
                gateway_id: {"highest": state.highest, "seen": state.seen}
                for gateway_id, state in sorted(self._replay.items())
            },
        }

    def restore_state(self, state: Mapping[str, object]) -> None:
        """Load replay state from :meth:`export_state`, replacing the state of the gateways it lists.

        A state exported with a different window is accepted; bits beyond this opener's window are dropped.
        """
        gateways = state.get("gateways") if isinstance(state, Mapping) else None
        if not isinstance(gateways, Mapping) or state.get("version") != _STATE_VERSION:
            raise InputError("not an envelope replay state (version 1 with a 'gateways' mapping)")
        restored: dict[str, _ReplayWindow] = {}
        mask = (1 << self._window) - 1
        for gateway_id, entry in gateways.items():
            if not isinstance(gateway_id, str) or not isinstance(entry, Mapping):
                raise InputError(f"bad replay state entry for gateway {gateway_id!r}")
            highest = entry.get("highest")
            seen = entry.get("seen")
            if not _is_uint(highest, MAX_SEQUENCE) or not _is_uint(seen, (1 << 4096) - 1):
                raise InputError(f"bad replay state for gateway {gateway_id!r}")
            # The highest sequence itself is always marked as seen.
            restored[gateway_id] = _ReplayWindow(highest, (seen & mask) | 1)
        # Validate everything first so that a bad entry leaves the current state untouched.
        self._replay.update(restored)


def _is_uint(value: object, maximum: int) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum
