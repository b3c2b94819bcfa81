"""OMS security: AES-128 modes 5 and 7 of the transport layer and AES-128-CTR of the
extended link layer (EN 13757-7, OMS Vol. 2), decrypting and encrypting.

Every primitive (AES-ECB/CBC/CTR, AES-CMAC) comes from ``cryptography``. Keys travel
as :class:`OMSKey`, which never shows its bytes in a repr, a log line or an exception.

Key checks, in order of strength:

- mode 7: the AFL MAC (AES-CMAC with a derived key) over the still-encrypted message,
  compared in constant time, then the 0x2F2F prefix of the plaintext;
- ELL AES-CTR: the payload CRC inside the ciphertext must match the decrypted payload;
- mode 5: only the 0x2F2F prefix of the first plaintext block. Mode 5 carries no
  integrity protection, so a change to the second or later ciphertext block of a mode-5
  telegram cannot be detected by anyone; that is a property of the mode.

Telegrams that collectors store already decrypted (the header still announces mode 5/7
or CTR, but the bytes where ciphertext belongs already pass the key check) are accepted
with status ``"already_decrypted"``.

Bytes beyond L: when the configuration field announces N encrypted blocks but fewer than
N x 16 bytes lie inside L, the missing bytes are taken from :attr:`Frame.trailing` (bytes
received beyond L); the plaintext frame returned then covers them and its L grows to match.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Sequence
from typing import Any, Final, Literal, TypeAlias

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from minolcore import _native
from minolcore._model import Record, replace
from minolcore.errors import (
    HeaderTruncatedError,
    InputError,
    MACMismatchError,
    NoKeyError,
    UnsupportedSecurityError,
    WrongKeyError,
)
from minolcore.secret import AesKey
from minolcore.wmbus.builder import FrameShapeName, add_crcs, build_frame, encode_afl
from minolcore.wmbus.frame import LINK_HEADER_LENGTH, Frame, frame_from_canonical
from minolcore.wmbus.headers import (
    AFL_MAC_LENGTHS,
    Address,
    AFLHeader,
    ELLHeader,
    TPLHeader,
    parse_layers,
)

__all__ = [
    "KEY_SIZE",
    "STATUS_ALREADY_DECRYPTED",
    "STATUS_DECRYPTED",
    "STATUS_NOT_ENCRYPTED",
    "KeyLike",
    "Mode5Batch",
    "OMSKey",
    "SecurityMode",
    "Unsealed",
    "afl_mac",
    "as_key",
    "decrypt_mode5_batch",
    "derive_mode7_keys",
    "ell_ctr_iv",
    "encrypt_ell_ctr",
    "encrypt_mode5",
    "encrypt_mode7",
    "mode5_iv",
    "open_mode7",
    "seal_frame",
    "unseal",
]

KEY_SIZE: Final = 16
BLOCK: Final = 16
FILL: Final = 0x2F
KEY_CHECK: Final = b"\x2f\x2f"

STATUS_DECRYPTED: Final = "decrypted"
STATUS_NOT_ENCRYPTED: Final = "not_encrypted"
STATUS_ALREADY_DECRYPTED: Final = "already_decrypted"

ELL_CTR: Final = "ell_ctr"
SecurityMode: TypeAlias = int | Literal["ell_ctr"]
"""A TPL security mode (0, 5, 7, ...) or ``"ell_ctr"`` for ELL AES-128-CTR."""

_ADDRESS = struct.Struct("<HIBB")  # M, ID, version, type: the order of the link header
_KDF = struct.Struct("<BII7s")  # derivation constant, MCR, ID, 0x07 x 7
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_KDF_PAD = b"\x07" * 7
_KDF_ENC = 0x00
_KDF_MAC = 0x01
_KDF_SELECTION_OMS = 1
_CC_CLEARED_FOR_IV = ~(0x10 | 0x02) & 0xFF  # H (hop) and R (repeated access) may change in transit
_SN_ENCRYPTION_CTR = 1
_ELL_SN_CIS = (0x8D, 0x8F)
_ZERO_IV = bytes(BLOCK)
_CBC_ZERO_IV = modes.CBC(_ZERO_IV)  # immutable: one object serves every mode-7 decryption
_KDF_ENC_HEAD = bytes((_KDF_ENC,))
_KDF_MAC_HEAD = bytes((_KDF_MAC,))
_AFL_MAC_SIZES = frozenset(AFL_MAC_LENGTHS.values())
_MAX_CANONICAL = 256  # L = 255 and the 255 bytes it counts


# --- keys ------------------------------------------------------------------------------------


# OMS keys are the library's redacting AES-128 key type (shared with LoRaWAN).
OMSKey = AesKey


KeyLike: TypeAlias = OMSKey | bytes | bytearray | memoryview | str
"""An :class:`OMSKey`, 16 raw bytes, or 32 hex digits."""


def as_key(key: KeyLike) -> OMSKey:
    """Accept an :class:`OMSKey`, 16 bytes or 32 hex digits and return an :class:`OMSKey`."""
    if isinstance(key, OMSKey):
        return key
    if isinstance(key, str):
        return OMSKey.from_hex(key)
    return OMSKey(key)


# --- primitives --------------------------------------------------------------------------------


def mode5_iv(address: Address, acc: int) -> bytes:
    """Mode-5 IV: M (2, LE as on air) || ID (4) || version || type || ACC x 8 (16 bytes)."""
    return _ADDRESS.pack(
        address.manufacturer_code, address.id_value, address.version, address.device_type
    ) + (bytes((acc,)) * 8)


def ell_ctr_iv(link: Address, cc: int, sn: int) -> bytes:
    """ELL AES-CTR initial counter block: M || A || CC without H and R || SN (4, LE) ||
    FN 0x0000 || BC 0x00 (16 bytes; BC counts the 16-byte blocks from 0)."""
    return (
        _ADDRESS.pack(link.manufacturer_code, link.id_value, link.version, link.device_type)
        + bytes((cc & _CC_CLEARED_FOR_IV,))
        + _U32.pack(sn)
        + b"\x00\x00\x00"
    )


def derive_mode7_keys(key: KeyLike, message_counter: int, id_value: int) -> tuple[OMSKey, OMSKey]:
    """OMS KDF (selection 1): ``(Kenc, Kmac)`` = AES-CMAC(K, 0x00/0x01 || MCR (4, LE) ||
    ID (4, LE) || 0x07 x 7). ``message_counter`` is the AFL MCR, ``id_value`` the meter ID
    as the little-endian integer of its A-field (e.g. 0x12345678 for "12345678")."""
    master = as_key(key)
    kenc = master.cmac(_KDF.pack(_KDF_ENC, message_counter, id_value, _KDF_PAD))
    kmac = master.cmac(_KDF.pack(_KDF_MAC, message_counter, id_value, _KDF_PAD))
    return OMSKey(kenc), OMSKey(kmac)


def _afl_mac_prefix(afl: AFLHeader) -> bytes:
    prefix = bytearray()
    if afl.mcl is not None:
        prefix.append(afl.mcl)
    if afl.ki is not None:
        prefix += _U16.pack(afl.ki)
    if afl.mcr is not None:
        prefix += _U32.pack(afl.mcr)
    if afl.ml is not None:
        prefix += _U16.pack(afl.ml)
    return bytes(prefix)


def afl_mac(kmac: KeyLike, afl: AFLHeader, message: bytes) -> bytes:
    """The AFL MAC: AES-CMAC(Kmac, MCL || [KI] || MCR || [ML] || ``message``) truncated to
    the length the MCL's authentication type names (2, 4, 8, 12 or 16 bytes). ``message``
    runs from the TPL CI to the end of the still-encrypted telegram."""
    length = AFL_MAC_LENGTHS.get(afl.auth_type)
    if length is None:
        raise UnsupportedSecurityError(f"7 with AFL authentication type {afl.auth_type}")
    return as_key(kmac).cmac(_afl_mac_prefix(afl) + message)[:length]


def _cbc_decrypt(key: OMSKey, iv: bytes, data: bytes) -> bytes:
    return Cipher(algorithms.AES(key.reveal()), modes.CBC(iv)).decryptor().update(data)


def _cbc_encrypt(key: OMSKey, iv: bytes, data: bytes) -> bytes:
    return Cipher(algorithms.AES(key.reveal()), modes.CBC(iv)).encryptor().update(data)


def _ctr_crypt(key: OMSKey, iv: bytes, data: bytes) -> bytes:
    # The counter block's last byte is BC; CTR mode increments the whole block as a
    # big-endian integer, which equals BC + 1 for up to 256 blocks (any wM-Bus frame).
    return Cipher(algorithms.AES(key.reveal()), modes.CTR(iv)).encryptor().update(data)


# --- decryption of one frame --------------------------------------------------------------------


class Unsealed(Record):
    """A frame after the security layers: the plaintext frame, its application layer, and
    how it got there.

    ``frame`` is the plaintext view of the telegram (ciphertext replaced by plaintext, ELL
    layers parsed); ``apl`` is its application layer (records) from the byte after the TPL
    header on. ``mode`` is the TPL security mode, or ``"ell_ctr"`` when only the ELL was
    encrypted. ``message_counter`` is the AFL MCR (for replay checks), when present.
    """

    frame: Frame
    apl: bytes
    mode: SecurityMode
    status: str
    message_counter: int | None = None
    ell_encrypted: bool = False


def _security_address(frame: Frame) -> Address:
    """The address that keys mode 5 and 7: a long TPL header's, else the link layer's."""
    return frame.meter_address


def _encrypted_span(frame: Frame) -> tuple[int, int, bytes]:
    """(start, N x 16, bytes available from start including the bytes beyond L).

    Bytes beyond L count only as far as a frame can reach (L = 255): the plaintext frame
    that takes them in must still have an L-field."""
    tpl = frame.tpl
    blocks = 0 if tpl is None else tpl.encrypted_blocks
    start = frame.payload_offset
    available = (frame.data[start:] + frame.trailing)[: _MAX_CANONICAL - start]
    return start, blocks * BLOCK, available


def _with_plaintext(frame: Frame, start: int, plain: bytes, size: int) -> Frame:
    """The frame with ``size`` bytes from ``start`` replaced by ``plain``; bytes taken from
    beyond L become part of the frame (its L grows)."""
    # The headers precede the ciphertext, so every offset of ``frame`` stays valid; the
    # frame is not parsed again (that would hide the layers of a revealed ELL once more).
    data = frame.data
    inside = len(data) - start
    if size <= inside:
        return replace(frame, data=data[:start] + plain + data[start + size :])
    new = bytes((len(data) + size - inside - 1,)) + data[1:start] + plain
    return replace(frame, data=new, trailing=frame.trailing[size - inside :])


def _unseal_mode5(frame: Frame, key: OMSKey | None, allow_plaintext: bool) -> Unsealed:
    start, size, available = _encrypted_span(frame)
    if size == 0:
        return Unsealed(frame=frame, apl=frame.payload, mode=5, status=STATUS_NOT_ENCRYPTED)
    stored_plain = allow_plaintext and available[:2] == KEY_CHECK
    if key is None:
        if stored_plain:
            return _already_decrypted(frame, 5, None)
        raise NoKeyError("mode 5 telegram and no key given")
    if len(available) < size:
        if stored_plain:
            return _already_decrypted(frame, 5, None)
        raise HeaderTruncatedError("mode-5 encrypted blocks", size, len(available))
    address = _security_address(frame)
    plain = _cbc_decrypt(key, mode5_iv(address, frame.acc), available[:size])
    if plain[:2] != KEY_CHECK:
        if stored_plain:
            return _already_decrypted(frame, 5, None)
        raise WrongKeyError("mode 5: the plaintext does not start with 2F2F (wrong key or corrupted data)")
    out = _with_plaintext(frame, start, plain, size)
    return Unsealed(frame=out, apl=out.payload, mode=5, status=STATUS_DECRYPTED)


def _mode7_keys(frame: Frame, key: OMSKey, afl: AFLHeader) -> tuple[OMSKey, OMSKey]:
    tpl = frame.tpl
    if tpl is None or tpl.kdf_selection != _KDF_SELECTION_OMS:
        selection = None if tpl is None else tpl.kdf_selection
        raise UnsupportedSecurityError(f"7 with key derivation selection {selection}")
    assert afl.mcr is not None  # checked by the caller
    return derive_mode7_keys(key, afl.mcr, _security_address(frame).id_value)


def _unseal_mode7(frame: Frame, key: OMSKey | None, allow_plaintext: bool) -> Unsealed:
    afl = frame.afl
    if afl is None or afl.mcr is None or afl.mac is None:
        raise UnsupportedSecurityError("7 without an AFL message counter and MAC")
    counter = afl.mcr
    start, size, available = _encrypted_span(frame)
    stored_plain = allow_plaintext and available[:2] == KEY_CHECK
    if key is None:
        if stored_plain or size == 0:
            return _already_decrypted(frame, 7, counter, size == 0)
        raise NoKeyError("mode 7 telegram and no key given")
    kenc, kmac = _mode7_keys(frame, key, afl)
    expected = afl_mac(kmac, afl, frame.data[frame.tpl_offset :])
    if not hmac.compare_digest(expected, afl.mac):
        if stored_plain:
            return _already_decrypted(frame, 7, counter)
        raise MACMismatchError("mode 7: the AFL MAC does not verify (wrong key or corrupted data)")
    if size == 0:
        return Unsealed(
            frame=frame, apl=frame.payload, mode=7, status=STATUS_NOT_ENCRYPTED, message_counter=counter
        )
    # Only ciphertext inside L is covered by the MAC: blocks beyond L would come out
    # unauthenticated, so mode 7 never reads them (unlike mode 5, which has no MAC at all).
    inside = frame.data[start:]
    if len(inside) < size:
        raise HeaderTruncatedError("mode-7 encrypted blocks inside L", size, len(inside))
    plain = _cbc_decrypt(kenc, _ZERO_IV, inside[:size])
    if plain[:2] != KEY_CHECK:
        raise WrongKeyError("mode 7: the MAC verifies but the plaintext does not start with 2F2F")
    out = _with_plaintext(frame, start, plain, size)
    return Unsealed(frame=out, apl=out.payload, mode=7, status=STATUS_DECRYPTED, message_counter=counter)


def open_mode7(
    key: OMSKey, counter_and_id: bytes, authenticated: bytes, mac: bytes, ciphertext: bytes
) -> bytes | None:
    """The plaintext of mode-7 ``ciphertext`` if the AFL MAC verifies and the plaintext
    starts with 2F2F, else None: the checks of :func:`unseal` without its frame objects.

    ``counter_and_id``: MCR (4) || meter ID (4) as on air, i.e. the little-endian values
    :func:`derive_mode7_keys` takes; ``authenticated``: MCL || [KI] || MCR || [ML] || the
    bytes from the TPL CI to the end of the frame (what :func:`afl_mac` covers); ``mac``:
    the AFL MAC of the length the MCL names. The derived keys never leave this function.
    """
    if len(mac) not in _AFL_MAC_SIZES or len(counter_and_id) != 8 or len(ciphertext) % BLOCK:
        return None
    kdf_tail = counter_and_id + _KDF_PAD
    # A fresh context per telegram: Kmac changes with every message counter.
    check = CMAC(algorithms.AES(key.cmac(_KDF_MAC_HEAD + kdf_tail)))
    check.update(authenticated)
    if not hmac.compare_digest(check.finalize()[: len(mac)], mac):
        return None
    kenc = algorithms.AES(key.cmac(_KDF_ENC_HEAD + kdf_tail))
    plain = Cipher(kenc, _CBC_ZERO_IV).decryptor().update(ciphertext)
    return plain if plain[:2] == KEY_CHECK else None


def _already_decrypted(frame: Frame, mode: int, counter: int | None, unencrypted: bool = False) -> Unsealed:
    status = STATUS_NOT_ENCRYPTED if unencrypted else STATUS_ALREADY_DECRYPTED
    return Unsealed(frame=frame, apl=frame.payload, mode=mode, status=status, message_counter=counter)


def _payload_crc_ok(plain: bytes) -> bool:
    return len(plain) >= 2 and _U16.unpack_from(plain)[0] == _native.crc16(plain[2:])


def _reveal_ell(frame: Frame, plain: bytes) -> Frame:
    """The frame with the ELL payload (payload CRC onwards) replaced by ``plain`` and the
    layers behind it parsed (the ELL header itself keeps announcing CTR)."""
    start = frame.payload_offset
    canonical = frame.data[:start] + plain
    layers = parse_layers(canonical, start + 2)
    ell = frame.ell
    assert ell is not None
    revealed = ELLHeader(
        ci=ell.ci,
        cc=ell.cc,
        acc=ell.acc,
        address=ell.address,
        sn=ell.sn,
        payload_crc=_U16.unpack_from(plain)[0],
    )
    return Frame(
        data=canonical,
        trailing=frame.trailing,
        crc_shape=frame.crc_shape,
        l_field=frame.l_field,
        l_rewritten=frame.l_rewritten,
        c_field=frame.c_field,
        manufacturer_code=frame.manufacturer_code,
        id_value=frame.id_value,
        version=frame.version,
        device_type=frame.device_type,
        ci=frame.ci,
        ell=revealed,
        afl=layers.afl,
        tpl=layers.tpl,
        tpl_ci=layers.tpl_ci,
        tpl_offset=layers.tpl_offset,
        payload_offset=layers.payload_offset,
        hidden=False,
    )


def _unseal_ell(frame: Frame, key: OMSKey | None, allow_plaintext: bool) -> tuple[Frame, str]:
    ell = frame.ell
    assert ell is not None and ell.sn is not None
    if ell.encryption != _SN_ENCRYPTION_CTR:
        raise UnsupportedSecurityError(f"ELL encryption {ell.encryption}")
    payload = frame.data[frame.payload_offset :]
    stored_plain = allow_plaintext and _payload_crc_ok(payload)
    if key is None:
        if stored_plain:
            return _reveal_ell(frame, payload), STATUS_ALREADY_DECRYPTED
        raise NoKeyError("ELL AES-CTR telegram and no key given")
    plain = _ctr_crypt(key, ell_ctr_iv(frame.link_address, ell.cc, ell.sn), payload)
    if _payload_crc_ok(plain):
        return _reveal_ell(frame, plain), STATUS_DECRYPTED
    if stored_plain:
        return _reveal_ell(frame, payload), STATUS_ALREADY_DECRYPTED
    raise WrongKeyError("ELL AES-CTR: the payload CRC does not match (wrong key or corrupted data)")


def unseal(frame: Frame, key: KeyLike | None, *, allow_plaintext: bool = True) -> Unsealed:
    """Remove every security layer of ``frame`` (ELL AES-CTR, then TPL mode 5 or 7).

    Returns the plaintext frame and application layer with a status (``"decrypted"``,
    ``"not_encrypted"`` or ``"already_decrypted"``). Raises :class:`NoKeyError`,
    :class:`WrongKeyError`, :class:`MACMismatchError`, :class:`UnsupportedSecurityError`,
    or :class:`HeaderTruncatedError` when the announced ciphertext is missing; it never
    returns unchecked plaintext.

    ``allow_plaintext=False`` refuses telegrams stored already decrypted (for live radio
    traffic, where a plaintext telegram under an encrypting header is a forgery, not a
    collector's copy): they then fail like any other telegram whose check fails.
    """
    oms_key = None if key is None else as_key(key)
    ell_status: str | None = None
    if frame.hidden:
        frame, ell_status = _unseal_ell(frame, oms_key, allow_plaintext)
    mode = frame.security_mode
    if mode == 0:
        if ell_status is None:
            return Unsealed(frame=frame, apl=frame.payload, mode=0, status=STATUS_NOT_ENCRYPTED)
        afl = frame.afl
        counter = None if afl is None else afl.mcr
        return Unsealed(
            frame=frame,
            apl=frame.payload,
            mode=ELL_CTR,
            status=ell_status,
            message_counter=counter,
            ell_encrypted=True,
        )
    if mode == 5:
        result = _unseal_mode5(frame, oms_key, allow_plaintext)
    elif mode == 7:
        result = _unseal_mode7(frame, oms_key, allow_plaintext)
    else:
        raise UnsupportedSecurityError(mode)
    if ell_status is None:
        return result
    status = result.status
    if STATUS_DECRYPTED in (status, ell_status):
        status = STATUS_DECRYPTED
    return Unsealed(
        frame=result.frame,
        apl=result.apl,
        mode=result.mode,
        status=status,
        message_counter=result.message_counter,
        ell_encrypted=True,
    )


# --- encryption ---------------------------------------------------------------------------------


def _as_frame(frame: Frame | bytes) -> Frame:
    if isinstance(frame, Frame):
        return frame
    if not isinstance(frame, bytes) or len(frame) < LINK_HEADER_LENGTH + 1 or frame[0] != len(frame) - 1:
        raise InputError("expected a Frame or a canonical CRC-free frame (L = len - 1)")
    return frame_from_canonical(frame)


def _plain_span(frame: Frame, mode: int) -> tuple[int, int]:
    if frame.security_mode != mode:
        raise InputError(f"the TPL configuration field says mode {frame.security_mode}, not {mode}")
    start, size, _ = _encrypted_span(frame)
    inside = len(frame.data) - start
    if size > inside:
        raise InputError(f"CF announces {size} encrypted bytes, the frame holds {inside} after the TPL")
    if frame.data[start : start + 2] != KEY_CHECK and size:
        raise InputError("the plaintext to encrypt must start with 2F2F")
    return start, size


def encrypt_mode5(frame: Frame | bytes, key: KeyLike) -> bytes:
    """Encrypt a plaintext mode-5 frame (canonical, CRC-free; the CF's N blocks after the
    TPL header hold the plaintext starting 2F2F) and return the canonical ciphertext frame."""
    plain_frame = _as_frame(frame)
    start, size = _plain_span(plain_frame, 5)
    data = plain_frame.data
    iv = mode5_iv(_security_address(plain_frame), plain_frame.acc)
    cipher = _cbc_encrypt(as_key(key), iv, data[start : start + size])
    return data[:start] + cipher + data[start + size :]


def encrypt_mode7(frame: Frame | bytes, key: KeyLike) -> bytes:
    """Encrypt a plaintext mode-7 frame (canonical; an AFL with MCL, MCR and a MAC field of
    the AT's length, any content) and return the canonical frame with ciphertext and MAC."""
    plain_frame = _as_frame(frame)
    afl = plain_frame.afl
    if afl is None or afl.mcr is None or afl.mac is None:
        raise InputError("mode 7 needs an AFL with message counter and MAC fields")
    start, size = _plain_span(plain_frame, 7)
    data = plain_frame.data
    kenc, kmac = _mode7_keys(plain_frame, as_key(key), afl)
    cipher = _cbc_encrypt(kenc, _ZERO_IV, data[start : start + size])
    sealed = data[:start] + cipher + data[start + size :]
    mac = afl_mac(kmac, afl, sealed[plain_frame.tpl_offset :])
    afl_start = _afl_offset(plain_frame)
    head = encode_afl(
        AFLHeader(afll=afl.afll, fcl=afl.fcl, mcl=afl.mcl, ki=afl.ki, mcr=afl.mcr, mac=mac, ml=afl.ml)
    )
    return sealed[:afl_start] + head + sealed[afl_start + len(head) :]


def _afl_offset(frame: Frame) -> int:
    ell = frame.ell
    if ell is None:
        return LINK_HEADER_LENGTH
    return LINK_HEADER_LENGTH + {0x8C: 3, 0x8D: 9, 0x8E: 11, 0x8F: 17}[ell.ci]


def encrypt_ell_ctr(frame: Frame | bytes, key: KeyLike) -> bytes:
    """Encrypt the ELL payload of a canonical frame whose ELL II/IV SN announces AES-CTR and
    whose payload (payload CRC, then the inner layers) is plaintext; returns the canonical
    ciphertext frame. The payload CRC must already match (as :func:`seal_frame` makes it)."""
    plain_frame = _as_frame(frame)
    ell = plain_frame.ell
    if ell is None or ell.ci not in _ELL_SN_CIS or ell.encryption != _SN_ENCRYPTION_CTR:
        raise InputError("ELL-CTR encryption needs an ELL II/IV header whose SN announces AES-CTR")
    start = plain_frame.payload_offset
    payload = plain_frame.data[start:]
    if not _payload_crc_ok(payload):
        raise InputError("the ELL payload CRC does not match the plaintext payload")
    cipher = _ctr_crypt(as_key(key), ell_ctr_iv(plain_frame.link_address, ell.cc, ell.sn or 0), payload)
    return plain_frame.data[:start] + cipher


def seal_frame(
    key: KeyLike,
    *,
    manufacturer: str | int,
    id: str | int,
    version: int,
    device_type: int,
    tpl: TPLHeader | None = None,
    payload: bytes,
    c_field: int = 0x44,
    ell: ELLHeader | None = None,
    afl: AFLHeader | None = None,
    ci: int | None = None,
    shape: FrameShapeName = "none",
) -> bytes:
    """Build a frame and encrypt it as its headers say: TPL mode 5 or 7 (``payload`` is the
    plaintext application layer; it is given a 2F2F prefix if missing, padded with 2F to
    whole blocks, and the CF's block count is set), then ELL AES-CTR when ``ell``'s SN
    announces it. Mode 7 needs ``afl`` with MCL, MCR and a MAC field of the AT's length."""
    inner_tpl = tpl
    body = payload
    if tpl is not None and tpl.security_mode in (5, 7):
        if body[:2] != KEY_CHECK:
            body = KEY_CHECK + body
        body += bytes((FILL,)) * (-len(body) % BLOCK)
        blocks = len(body) // BLOCK
        if blocks > 15:
            raise InputError(f"{blocks} blocks of plaintext exceed the 15 the CF can announce")
        cf = (tpl.cf & ~0x00F0) | (blocks << 4)
        inner_tpl = TPLHeader(
            ci=tpl.ci, kind=tpl.kind, acc=tpl.acc, sts=tpl.sts, cf=cf, cf_ext=tpl.cf_ext, address=tpl.address
        )
    encrypt_ell = ell is not None and ell.encryption == _SN_ENCRYPTION_CTR
    plain_ell = ell
    if encrypt_ell:
        assert ell is not None
        # Built first without SN encryption so that the builder computes the payload CRC.
        plain_ell = ELLHeader(ci=ell.ci, cc=ell.cc, acc=ell.acc, address=ell.address, sn=0)
    canonical = build_frame(
        manufacturer=manufacturer,
        id=id,
        version=version,
        device_type=device_type,
        c_field=c_field,
        ell=plain_ell,
        afl=afl,
        tpl=inner_tpl,
        ci=ci,
        payload=body,
        shape="none",
    )
    if inner_tpl is not None and inner_tpl.security_mode == 5:
        canonical = encrypt_mode5(canonical, key)
    elif inner_tpl is not None and inner_tpl.security_mode == 7:
        canonical = encrypt_mode7(canonical, key)
    if ell is not None and ell.ci in _ELL_SN_CIS:
        # The ELL payload CRC covers the payload as sent inside the ELL, i.e. after the
        # TPL encryption; the SN announcing CTR is written once that CRC is right.
        sn_at = LINK_HEADER_LENGTH + (11 if ell.ci == 0x8F else 3)
        crc_at = sn_at + 4
        crc = _U16.pack(_native.crc16(canonical[crc_at + 2 :]))
        canonical = canonical[:sn_at] + _U32.pack(ell.sn or 0) + crc + canonical[crc_at + 2 :]
    if encrypt_ell:
        canonical = encrypt_ell_ctr(canonical, key)
    return add_crcs(canonical, shape)


# --- batch mode 5 ------------------------------------------------------------------------------


class Mode5Batch:
    """Mode-5 CBC decryption of many telegrams without a cipher object per telegram.

    Items are added with :meth:`add` (a key, the 16-byte IV and the ciphertext, a multiple
    of 16 bytes); :meth:`run` decrypts all items of one key with one ECB ``update()`` call
    on that key's cached context, then applies the CBC chaining (XOR with the previous
    ciphertext block, or the IV for the first) for all blocks at once with numpy.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[tuple[OMSKey, bytes, bytes]] = []

    def add(self, key: OMSKey, iv: bytes, ciphertext: bytes) -> int:
        """Queue one telegram; returns its index in the result of :meth:`run`."""
        if len(iv) != BLOCK or len(ciphertext) % BLOCK:
            raise InputError("mode-5 batch items need a 16-byte IV and whole 16-byte blocks")
        self._items.append((key, iv, ciphertext))
        return len(self._items) - 1

    def __len__(self) -> int:
        return len(self._items)

    def run(self) -> list[bytes]:
        """The plaintext of every queued item, in order of :meth:`add`."""
        items = self._items
        out: list[bytes] = [b""] * len(items)
        by_key: dict[OMSKey, list[int]] = {}
        for index, (key, _, _) in enumerate(items):
            by_key.setdefault(key, []).append(index)
        for key, indexes in by_key.items():
            ciphers = [items[i][2] for i in indexes]
            joined = b"".join(ciphers)
            if not joined:
                continue
            decrypted = np.frombuffer(key.ecb_decrypt(joined), dtype=np.uint8)
            chain = b"".join(items[i][1] + items[i][2][:-BLOCK] for i in indexes if items[i][2])
            plain = np.bitwise_xor(decrypted, np.frombuffer(chain, dtype=np.uint8)).tobytes()
            cursor = 0
            for i, cipher in zip(indexes, ciphers, strict=True):
                out[i] = plain[cursor : cursor + len(cipher)]
                cursor += len(cipher)
        return out


def decrypt_mode5_batch(items: Sequence[tuple[KeyLike, bytes, bytes]]) -> list[bytes]:
    """Mode-5 CBC plaintexts of ``(key, iv, ciphertext)`` items (see :class:`Mode5Batch`);
    no key check is made here."""
    batch = Mode5Batch()
    keys: dict[Any, OMSKey] = {}
    for key, iv, cipher in items:
        oms = key if isinstance(key, OMSKey) else keys.get(key)
        if oms is None:
            oms = keys[key] = as_key(key)
        batch.add(oms, iv, cipher)
    return batch.run()
