"""Telegram-level decoding: frame, security and records in one call, with a JSON contract.

:func:`decode` takes one telegram (a wireless M-Bus frame in any CRC shape, or a wired
M-Bus long frame), removes its security layers and decodes its data records;
:func:`decode_batch` does the same for many telegrams, decrypting mode 5 through the
batch path of :mod:`minolcore.wmbus.security`, and never raises for a bad telegram.

Error policy: :func:`decode` raises the typed exception of a frame or security failure
(:class:`~minolcore.errors.FrameError`, :class:`~minolcore.errors.SecurityError`,
:class:`~minolcore.errors.InputError`) by default; with ``strict=False`` it returns a
:class:`Telegram` whose ``errors`` name the failure, whose ``security.status`` names a
security failure, and whose ``records`` are empty. Record errors never raise: the records
before the bad one are kept and the error is listed. A telegram whose security check failed
never yields values.

JSON contract (:meth:`Telegram.to_json`)::

    {"link": {"manufacturer": "ELS", "id": "12345678", "version": 51, "device_type": 3,
              "medium": "gas", "c_field": 68, "meter": null},
     "security": {"mode": 5, "status": "decrypted", "message_counter": null},
     "records": [{"dif": "0C", "vif": "14", "quantity": "volume", "unit": "m3",
                  "value": 28504.27, "storage": 0, "tariff": 0, "subunit": 0,
                  "function": "instantaneous", ...}],
     "errors": [], "kind": "wireless", "ci": 122, ...}

``security.mode`` is the TPL security mode (an int) or ``"ell_ctr"``; ``security.status``
is one of "decrypted", "not_encrypted", "already_decrypted", "no_key", "wrong_key",
"mac_mismatch", "unsupported". ``link.meter`` names the meter when a long TPL header
(behind a radio converter) carries another address than the link layer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

import msgspec

from minolcore._model import Record
from minolcore.errors import (
    FrameError,
    HeaderTruncatedError,
    InputError,
    MinolcoreError,
    NoKeyError,
    SecurityError,
    UnsupportedSecurityError,
    WrongKeyError,
)
from minolcore.wmbus.compact import FormatSignatureCache
from minolcore.wmbus.frame import LINK_HEADER_LENGTH, CRCModeName, Frame, FrameStatus, parse_frame
from minolcore.wmbus.headers import COMPACT_CIS, Address, TPLHeader, TPLKind, tpl_kind
from minolcore.wmbus.link import decode_id, decode_manufacturer, device_type_name
from minolcore.wmbus.record_batch import decode_records_batch
from minolcore.wmbus.records import DataRecord, DecodedRecords, decode_records
from minolcore.wmbus.scan import Flag, scan_frames
from minolcore.wmbus.security import (
    BLOCK,
    ELL_CTR,
    KEY_CHECK,
    STATUS_ALREADY_DECRYPTED,
    STATUS_DECRYPTED,
    STATUS_NOT_ENCRYPTED,
    KeyLike,
    Mode5Batch,
    OMSKey,
    SecurityMode,
    as_key,
    mode5_iv,
    unseal,
)
from minolcore.wmbus.wired import WiredFrame, parse_wired_frame

__all__ = [
    "SECURITY_STATUSES",
    "KeySource",
    "LinkInfo",
    "MeterAddress",
    "SecurityInfo",
    "Telegram",
    "decode",
    "decode_batch",
    "to_bytes",
]

SECURITY_STATUSES: Final = (
    "decrypted",
    "not_encrypted",
    "already_decrypted",
    "no_key",
    "wrong_key",
    "mac_mismatch",
    "unsupported",
)

TelegramKind = Literal["wireless", "wired", "invalid"]
KeySource: TypeAlias = KeyLike | Sequence[KeyLike | None] | Mapping[str, KeyLike] | None
"""Keys for :func:`decode_batch`: one key (or None) for all telegrams, a sequence parallel
to the frames, or a mapping from the meter ID (8 characters, e.g. "12345678") to its key."""

_WIRED_START: Final = 0x68
_DATA_CIS: Final = frozenset((TPLKind.NONE, TPLKind.SHORT, TPLKind.LONG))
_ENCODER = msgspec.json.Encoder()


class MeterAddress(Record):
    """A meter's address: 3-letter manufacturer, 8-character ID, version, device type."""

    manufacturer: str
    id: str
    version: int
    device_type: int
    medium: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the address."""
        return {
            "manufacturer": self.manufacturer,
            "id": self.id,
            "version": self.version,
            "device_type": self.device_type,
            "medium": self.medium,
        }


class LinkInfo(Record):
    """Who sent the telegram: the link-layer address (wireless) or the long header's
    address (wired), the C-field, and ``meter`` when a long TPL header names another
    device than the link layer (a meter behind a radio converter)."""

    manufacturer: str
    id: str
    version: int
    device_type: int
    medium: str
    c_field: int
    meter: MeterAddress | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the link information."""
        return {
            "manufacturer": self.manufacturer,
            "id": self.id,
            "version": self.version,
            "device_type": self.device_type,
            "medium": self.medium,
            "c_field": self.c_field,
            "meter": None if self.meter is None else self.meter.to_dict(),
        }

    @property
    def meter_id(self) -> str:
        """The real meter's ID (the long header's, else the link layer's)."""
        return self.id if self.meter is None else self.meter.id


class SecurityInfo(Record):
    """``mode``: TPL security mode or "ell_ctr"; ``status``: one of :data:`SECURITY_STATUSES`;
    ``message_counter``: the AFL message counter (MCR, for replay checks) when present."""

    mode: SecurityMode
    status: str
    message_counter: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"mode": self.mode, "status": self.status, "message_counter": self.message_counter}


class Telegram(Record):
    """One decoded telegram. ``records`` hold values in the unit each record names;
    ``errors`` list frame, security and record errors as text (empty when all went well).
    ``beyond_l`` counts the bytes received beyond the L-field that were read as records
    (a meter whose L is too short; 0 normally)."""

    kind: TelegramKind
    link: LinkInfo | None
    security: SecurityInfo | None
    records: tuple[DataRecord, ...]
    errors: tuple[str, ...] = ()
    ci: int | None = None
    access_number: int | None = None
    tpl_status: int | None = None
    signature: int | None = None
    compact: bool = False
    wired_address: int | None = None
    beyond_l: int = 0

    @property
    def ok(self) -> bool:
        """True when the telegram decoded without any error."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract as a dict (see the module documentation)."""
        return {
            "link": None if self.link is None else self.link.to_dict(),
            "security": None if self.security is None else self.security.to_dict(),
            "records": [record.to_dict() for record in self.records],
            "errors": list(self.errors),
            "kind": self.kind,
            "ci": self.ci,
            "access_number": self.access_number,
            "tpl_status": self.tpl_status,
            "signature": self.signature,
            "compact": self.compact,
            "wired_address": self.wired_address,
            "beyond_l": self.beyond_l,
        }

    def to_json(self) -> str:
        """The JSON contract as one line of text."""
        return _ENCODER.encode(self.to_dict()).decode()

    def to_json_bytes(self) -> bytes:
        """The JSON contract as UTF-8 bytes (no text round trip)."""
        return _ENCODER.encode(self.to_dict())


# --- helpers ------------------------------------------------------------------------------------


def to_bytes(frame: bytes | bytearray | memoryview | str) -> bytes:
    """A telegram given as bytes or as a hex string (whitespace allowed) as bytes.
    Raises :class:`InputError` for odd-length or non-hex text and for other types."""
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, bytearray | memoryview):
        return bytes(frame)
    if isinstance(frame, str):
        text = "".join(frame.split())
        if len(text) % 2:
            raise InputError(f"hex telegram has an odd number of digits ({len(text)})")
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise InputError(f"telegram is not a hex string ({len(text)} characters)") from None
    raise InputError(f"a telegram must be bytes or a hex string, not {type(frame).__name__}")


def _is_wired(raw: bytes) -> bool:
    # A wireless frame may also start with 0x68 (L = 104); the wired long frame repeats
    # the start byte and its length and ends with 0x16 right where L says.
    return (
        len(raw) >= 9
        and raw[0] == _WIRED_START
        and raw[3] == _WIRED_START
        and raw[1] == raw[2]
        and len(raw) == raw[1] + 6
    )


def _meter_address(address: Address) -> MeterAddress:
    return MeterAddress(
        manufacturer=address.manufacturer,
        id=address.id,
        version=address.version,
        device_type=address.device_type,
        medium=device_type_name(address.device_type),
    )


def _link_info(frame: Frame) -> LinkInfo:
    tpl = frame.tpl
    meter = None
    if tpl is not None and tpl.address is not None and tpl.address != frame.link_address:
        meter = _meter_address(tpl.address)
    return LinkInfo(
        manufacturer=decode_manufacturer(frame.manufacturer_code),
        id=decode_id(frame.id_value),
        version=frame.version,
        device_type=frame.device_type,
        medium=device_type_name(frame.device_type),
        c_field=frame.c_field,
        meter=meter,
    )


def _security_mode_of(frame: Frame) -> SecurityMode:
    if frame.hidden:
        return ELL_CTR
    return frame.security_mode


def _decode_apl(
    ci: int | None,
    apl: bytes,
    signatures: FormatSignatureCache | None,
    key_checked: bool,
    walked: DecodedRecords | None = None,
) -> tuple[DecodedRecords | None, tuple[str, ...], bool]:
    """(decoded records or None, errors, compact) for the application layer behind ``ci``.
    ``key_checked``: the APL came out of mode 5/7 and starts with its 2F2F key check.
    ``walked``: ``decode_records(apl)`` when the batch path has already decoded it."""
    if ci is None:
        return None, ("no transport layer CI",), False
    if ci in COMPACT_CIS:
        if key_checked:
            # An encrypted compact frame carries the key check before its signature.
            apl = apl[len(KEY_CHECK) :]
        if signatures is None:
            signature = int.from_bytes(apl[:2], "little") if len(apl) >= 2 else 0
            return (
                None,
                (
                    f"compact frame (CI 0x{ci:02X}, format signature 0x{signature:04X}): "
                    "no signature cache given",
                ),
                True,
            )
        decoded = signatures.decode_compact_frame(apl)
        return decoded, decoded.errors, True
    kind = tpl_kind(ci)
    if kind is TPLKind.MANUFACTURER:
        return None, (f"manufacturer-specific application layer (CI 0x{ci:02X}) is not decoded",), False
    if kind not in _DATA_CIS:
        return None, (f"CI 0x{ci:02X} carries no EN 13757-3 data records",), False
    decoded = decode_records(apl) if walked is None else walked
    if signatures is not None:
        signatures.learn(decoded)
    return decoded, decoded.errors, False


class _Parts(Record):
    """Everything about a telegram except its records: what the record stage needs."""

    kind: TelegramKind
    link: LinkInfo | None
    security: SecurityInfo | None
    tpl: TPLHeader | None
    ci: int | None
    apl: bytes | None
    errors: tuple[str, ...] = ()
    wired_address: int | None = None
    trailing: bytes = b""  # bytes received beyond L (CRC-free frames only)


def _finish(
    parts: _Parts, signatures: FormatSignatureCache | None, walked: DecodedRecords | None = None
) -> Telegram:
    """The record stage: decode the application layer (if security let it through).
    ``walked`` is ``decode_records(parts.apl)`` when the batch path already has it."""
    records: tuple[DataRecord, ...] = ()
    signature = None
    compact = False
    beyond_l = 0
    errors = parts.errors
    if parts.apl is not None:
        security = parts.security
        key_checked = (
            security is not None
            and security.mode in (5, 7)
            and security.status in (STATUS_DECRYPTED, STATUS_ALREADY_DECRYPTED)
            and parts.apl[:2] == KEY_CHECK
        )
        decoded, record_errors, compact = _decode_apl(parts.ci, parts.apl, signatures, key_checked, walked)
        if decoded is not None and not decoded.complete and parts.trailing and not compact:
            # Some meters send more than L covers (the policy of the security layer for
            # ciphertext, applied to records): when the walk runs off the end of L, the
            # bytes received beyond it are read too if that yields more records.
            longer, longer_errors, _ = _decode_apl(
                parts.ci, parts.apl + parts.trailing, signatures, key_checked
            )
            if longer is not None and len(longer.records) > len(decoded.records):
                decoded, record_errors = longer, longer_errors
                beyond_l = len(parts.trailing)
        errors = errors + record_errors
        if decoded is not None:
            records = decoded.records
            signature = decoded.signature
    tpl = parts.tpl
    return Telegram(
        kind=parts.kind,
        link=parts.link,
        security=parts.security,
        records=records,
        errors=errors,
        ci=parts.ci,
        access_number=None if tpl is None else tpl.acc,
        tpl_status=None if tpl is None else tpl.sts,
        signature=signature,
        compact=compact,
        wired_address=parts.wired_address,
        beyond_l=beyond_l,
    )


def _invalid(error: MinolcoreError) -> _Parts:
    return _Parts(
        kind="invalid", link=None, security=None, tpl=None, ci=None, apl=None, errors=(_describe(error),)
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, SecurityError):
        return f"security ({error.status}): {error}"
    if isinstance(error, FrameError):
        return f"frame: {error}"
    if isinstance(error, InputError):
        return f"input: {error}"
    return f"{type(error).__name__}: {error}"


# --- wireless and wired --------------------------------------------------------------------------


def _wireless_parts(frame: Frame, key: OMSKey | None, strict: bool, allow_plaintext: bool = True) -> _Parts:
    link = _link_info(frame)
    try:
        unsealed = unseal(frame, key, allow_plaintext=allow_plaintext)
    except (SecurityError, FrameError) as error:
        if strict:
            raise
        counter = None if frame.afl is None else frame.afl.mcr
        security = (
            SecurityInfo(mode=_security_mode_of(frame), status=error.status, message_counter=counter)
            if isinstance(error, SecurityError)
            else None
        )
        return _Parts(
            kind="wireless",
            link=link,
            security=security,
            tpl=frame.tpl,
            ci=frame.tpl_ci,
            apl=None,
            errors=(_describe(error),),
        )
    plain = unsealed.frame
    if plain is not frame:
        link = _link_info(plain)
    security = SecurityInfo(
        mode=unsealed.mode, status=unsealed.status, message_counter=unsealed.message_counter
    )
    return _Parts(
        kind="wireless",
        link=link,
        security=security,
        tpl=plain.tpl,
        ci=plain.tpl_ci,
        apl=unsealed.apl,
        trailing=plain.trailing,
    )


def _unseal_wired(wired: WiredFrame, key: OMSKey | None, allow_plaintext: bool) -> tuple[SecurityInfo, bytes]:
    """Security of a wired long frame: plain, stored decrypted, or mode 5 under a long header."""
    tpl = wired.tpl
    payload = wired.payload
    mode = 0 if tpl is None else tpl.security_mode
    if mode == 0 or tpl is None:
        return SecurityInfo(mode=0, status=STATUS_NOT_ENCRYPTED), payload
    size = tpl.encrypted_blocks * BLOCK
    if size == 0:
        return SecurityInfo(mode=mode, status=STATUS_NOT_ENCRYPTED), payload
    stored_plain = allow_plaintext and payload[:2] == KEY_CHECK
    if stored_plain and (key is None or mode != 5):
        return SecurityInfo(mode=mode, status=STATUS_ALREADY_DECRYPTED), payload
    if mode != 5 or tpl.address is None:
        raise UnsupportedSecurityError(f"{mode} in a wired frame without a long header")
    if key is None:
        raise NoKeyError("mode 5 wired frame and no key given")
    if len(payload) < size:
        raise HeaderTruncatedError("mode-5 encrypted blocks", size, len(payload))
    batch = Mode5Batch()
    batch.add(key, mode5_iv(tpl.address, tpl.acc), payload[:size])
    plain = batch.run()[0]
    if plain[:2] == KEY_CHECK:
        return SecurityInfo(mode=5, status=STATUS_DECRYPTED), plain + payload[size:]
    if stored_plain:
        return SecurityInfo(mode=5, status=STATUS_ALREADY_DECRYPTED), payload
    raise WrongKeyError("mode 5: the plaintext does not start with 2F2F (wrong key or corrupted data)")


def _wired_parts(raw: bytes, key: OMSKey | None, strict: bool, allow_plaintext: bool = True) -> _Parts:
    wired = parse_wired_frame(raw)
    tpl = wired.tpl
    link = None
    if tpl is not None and tpl.address is not None:
        address = _meter_address(tpl.address)
        link = LinkInfo(
            manufacturer=address.manufacturer,
            id=address.id,
            version=address.version,
            device_type=address.device_type,
            medium=address.medium,
            c_field=wired.c_field,
        )
    try:
        security, apl = _unseal_wired(wired, key, allow_plaintext)
    except (SecurityError, FrameError) as error:
        if strict:
            raise
        info = None
        if isinstance(error, SecurityError):
            info = SecurityInfo(mode=0 if tpl is None else tpl.security_mode, status=error.status)
        return _Parts(
            kind="wired",
            link=link,
            security=info,
            tpl=tpl,
            ci=wired.tpl_ci,
            apl=None,
            errors=(_describe(error),),
            wired_address=wired.address,
        )
    return _Parts(
        kind="wired",
        link=link,
        security=security,
        tpl=tpl,
        ci=wired.tpl_ci,
        apl=apl,
        wired_address=wired.address,
    )


def decode(
    frame: bytes | bytearray | memoryview | str,
    key: KeyLike | None = None,
    *,
    crc: CRCModeName = "auto",
    signatures: FormatSignatureCache | None = None,
    strict: bool = True,
    allow_plaintext: bool = True,
) -> Telegram:
    """Decode one telegram: a wireless M-Bus frame (CRCs present, absent or detected as
    ``crc`` says) or a wired M-Bus long frame (``68 L L 68 ... 16``), as bytes or hex.

    ``key`` is the meter's AES-128 key (16 bytes, 32 hex digits or an :class:`OMSKey`).
    ``signatures`` decodes compact frames and learns from every full frame decoded.
    With ``strict`` (the default) frame, security and input errors raise their typed
    exception; with ``strict=False`` they are reported in the returned telegram.
    ``allow_plaintext=False`` refuses telegrams stored already decrypted (see
    :func:`~minolcore.wmbus.security.unseal`). Values are in the unit each record names.
    """
    try:
        raw = to_bytes(frame)
        oms_key = None if key is None else as_key(key)
        if _is_wired(raw):
            parts = _wired_parts(raw, oms_key, strict, allow_plaintext)
        else:
            parts = _wireless_parts(parse_frame(raw, crc=crc), oms_key, strict, allow_plaintext)
    except MinolcoreError as error:
        if strict:
            raise
        parts = _invalid(error)
    return _finish(parts, signatures)


# --- batch --------------------------------------------------------------------------------------


class _KeyResolver:
    """Turns the ``keys`` argument of :func:`decode_batch` into one key per telegram,
    building each distinct :class:`OMSKey` once (so its cached cipher contexts are shared)."""

    def __init__(self, keys: KeySource, count: int) -> None:
        self._cache: dict[Any, OMSKey] = {}
        self._single: OMSKey | None = None
        self._sequence: Sequence[KeyLike | None] | None = None
        self._mapping: Mapping[str, KeyLike] | None = None
        if keys is None:
            return
        if isinstance(keys, OMSKey | bytes | bytearray | memoryview | str):
            self._single = as_key(keys)
        elif isinstance(keys, Mapping):
            self._mapping = {str(k).upper(): v for k, v in keys.items()}
        else:
            if len(keys) != count:
                raise InputError(f"{len(keys)} keys for {count} telegrams")
            self._sequence = keys

    def _wrap(self, key: KeyLike | None) -> OMSKey | None:
        if key is None or isinstance(key, OMSKey):
            return key
        cache_key = bytes(key) if isinstance(key, bytearray | memoryview) else key
        found = self._cache.get(cache_key)
        if found is None:
            found = self._cache[cache_key] = as_key(key)
        return found

    def key_for(self, index: int, meter_ids: tuple[str, ...]) -> OMSKey | None:
        """The key of telegram ``index`` whose meter IDs (real meter first) are ``meter_ids``."""
        if self._single is not None:
            return self._single
        if self._sequence is not None:
            return self._wrap(self._sequence[index])
        if self._mapping is not None:
            for meter_id in meter_ids:
                found = self._mapping.get(meter_id)
                if found is not None:
                    return self._wrap(found)
        return None


class _Pending(Record):
    """A mode-5 telegram waiting for the batch decryption, with what its telegram needs."""

    index: int
    raw: bytes
    key: OMSKey
    link: LinkInfo
    tpl: TPLHeader
    tail: bytes  # plaintext after the encrypted blocks
    trailing: bytes


_FAST_FLAGS: Final = frozenset((int(Flag.TPL), int(Flag.TPL | Flag.LONG_TPL)))
_STATUS_OK: Final = int(FrameStatus.OK)
_SCAN_COLUMNS: Final = (
    "status",
    "security_mode",
    "flags",
    "tpl_ci",
    "encrypted_blocks",
    "out_offset",
    "out_length",
    "trailing",
    "acc",
    "meter_manufacturer",
    "meter_id",
    "meter_version",
    "meter_device_type",
)
_FAST_TPL: Final = {0x7A: (TPLKind.SHORT, 5), 0x72: (TPLKind.LONG, 13)}
_LINK = struct.Struct("<BHIBB")  # C, M, ID, version, type


def _fast_candidate(
    index: int, raw: bytes, row: tuple[int, ...], out: bytes, resolver: _KeyResolver
) -> tuple[_Pending, bytes, bytes] | None:
    """The batch-path work for a scanned frame (``row``: its :data:`_SCAN_COLUMNS`):
    (pending, IV, ciphertext), or None when the frame needs the general path (other
    layers, other modes, no key, ciphertext not inside L)."""
    (status, mode, flags, tpl_ci, blocks, out_offset, length, trailing_length, acc, *meter_row) = row
    if status != _STATUS_OK or mode != 5 or flags not in _FAST_FLAGS:
        return None
    shape = _FAST_TPL.get(tpl_ci)
    if shape is None:
        return None
    kind, header = shape
    start = LINK_HEADER_LENGTH + header
    size = blocks * BLOCK
    if size == 0 or start + size > length:
        return None
    canonical = out[out_offset : out_offset + length]
    c_field, m_code, id_value, version, device_type = _LINK.unpack_from(canonical, 1)
    meter = (meter_row[0], meter_row[1], meter_row[2])
    meter_type = meter_row[3]
    key = resolver.key_for(index, (decode_id(meter[1]), decode_id(id_value)))
    if key is None:
        return None
    address = None
    meter_info = None
    if kind is TPLKind.LONG:
        address = Address(
            manufacturer_code=meter[0], id_value=meter[1], version=meter[2], device_type=meter_type
        )
        if (meter[0], meter[1], meter[2], meter_type) != (m_code, id_value, version, device_type):
            meter_info = _meter_address(address)
    tpl = TPLHeader(
        ci=tpl_ci,
        kind=kind,
        acc=acc,
        sts=canonical[start - 3],
        cf=canonical[start - 2] | canonical[start - 1] << 8,
        address=address,
    )
    link = LinkInfo(
        manufacturer=decode_manufacturer(m_code),
        id=decode_id(id_value),
        version=version,
        device_type=device_type,
        medium=device_type_name(device_type),
        c_field=c_field,
        meter=meter_info,
    )
    iv = _ADDRESS_IV.pack(meter[0], meter[1], meter[2], meter_type) + bytes((acc,)) * 8
    trailing = out[out_offset + length : out_offset + length + trailing_length]
    pending = _Pending(
        index=index, raw=raw, key=key, link=link, tpl=tpl, tail=canonical[start + size :], trailing=trailing
    )
    return pending, iv, canonical[start : start + size]


_ADDRESS_IV = struct.Struct("<HIBB")


def decode_batch(
    frames: Iterable[bytes | bytearray | memoryview | str],
    keys: KeySource = None,
    *,
    crc: CRCModeName = "auto",
    signatures: FormatSignatureCache | None = None,
    allow_plaintext: bool = True,
) -> list[Telegram]:
    """Decode many telegrams; one :class:`Telegram` per input, in order, never raising for
    a bad telegram (its ``errors`` say what failed). ``keys`` is one key for all, a sequence
    parallel to ``frames``, or a mapping from meter ID to key (see :data:`KeySource`); a
    malformed ``keys`` argument raises :class:`InputError`.

    The frames are validated in one call into the C core (:func:`~minolcore.wmbus.scan.scan`);
    mode-5 telegrams with a plain TPL header are then decrypted together, one AES-ECB call
    per key (see :class:`~minolcore.wmbus.security.Mode5Batch`); every other telegram takes
    the path of :func:`decode` (``strict=False``), with the same result. Records are decoded
    in input order, so with ``signatures`` a compact frame profits from every full frame
    before it in the batch. ``allow_plaintext`` is as for :func:`decode`.
    """
    items = list(frames)
    resolver = _KeyResolver(keys, len(items))
    parts: list[_Parts | None] = [None] * len(items)
    wireless: list[tuple[int, bytes]] = []
    for index, item in enumerate(items):
        try:
            raw = to_bytes(item)
            if _is_wired(raw):
                parts[index] = _wired_parts(raw, resolver.key_for(index, ()), False, allow_plaintext)
            else:
                wireless.append((index, raw))
        except MinolcoreError as error:
            parts[index] = _invalid(error)
    pending: list[_Pending] = []
    batch = Mode5Batch()
    general: list[tuple[int, bytes]] = []
    if wireless:
        scanned = scan_frames([raw for _, raw in wireless], crc=crc)
        out = scanned.output.tobytes()
        # Whole columns to Python ints at once: indexing numpy rows field by field costs more
        # than the decryption of the telegram.
        rows = zip(*(scanned.info[name].tolist() for name in _SCAN_COLUMNS), strict=True)
        for (index, raw), row in zip(wireless, rows, strict=True):
            candidate = _fast_candidate(index, raw, row, out, resolver)
            if candidate is None:
                general.append((index, raw))
                continue
            waiting, iv, ciphertext = candidate
            batch.add(waiting.key, iv, ciphertext)
            pending.append(waiting)
    plains = batch.run() if len(batch) else []
    for work, plain in zip(pending, plains, strict=True):
        if plain[:2] == KEY_CHECK:
            parts[work.index] = _Parts(
                kind="wireless",
                link=work.link,
                security=SecurityInfo(mode=5, status=STATUS_DECRYPTED),
                tpl=work.tpl,
                ci=work.tpl.ci,
                apl=plain + work.tail,
                trailing=work.trailing,
            )
        else:
            # Stored decrypted or a failed key check: the general path decides and reports.
            general.append((work.index, work.raw))
    for index, raw in general:
        try:
            frame = parse_frame(raw, crc=crc)
            key = resolver.key_for(index, (frame.meter_address.id, decode_id(frame.id_value)))
            parts[index] = _wireless_parts(frame, key, False, allow_plaintext)
        except MinolcoreError as error:
            parts[index] = _invalid(error)
    done = [p if p is not None else _invalid(InputError("not decoded")) for p in parts]
    # The records of every plain data application layer in one walk through the C core;
    # _finish keeps the order (and the signature learning) of the telegrams.
    record_layers = [
        i
        for i, p in enumerate(done)
        if p.apl is not None and p.ci is not None and p.ci not in COMPACT_CIS and tpl_kind(p.ci) in _DATA_CIS
    ]
    walked: list[DecodedRecords | None] = [None] * len(done)
    for index, decoded in zip(
        record_layers, decode_records_batch([done[i].apl or b"" for i in record_layers]), strict=True
    ):
        walked[index] = decoded
    return [_finish(p, signatures, w) for p, w in zip(done, walked, strict=True)]
