"""LoRaWAN 1.0.x PHYPayload: parsing, building, and authenticated decoding.

Layout (all multi-byte fields little-endian on the air)::

    PHYPayload = MHDR(1) | MACPayload | MIC(4)
    data:        MHDR | DevAddr(4) | FCtrl(1) | FCnt(2) | FOpts(0..15) | [FPort(1) | FRMPayload] | MIC
    JoinRequest: MHDR | JoinEUI(8) | DevEUI(8) | DevNonce(2) | MIC
    JoinAccept:  MHDR | encrypted(AppNonce(3) | NetID(3) | DevAddr(4) | DLSettings | RxDelay
                                  | [CFList(16)] | MIC)

Identifiers are shown the way people write them: DevAddr ``"49BE7DF1"`` and EUIs as
16 hex digits, i.e. the big-endian hex of the little-endian field. DevNonce, AppNonce
and NetID are the integer values of their little-endian fields.

Parsing never raises anything but :class:`~minolcore.errors.LoRaWANError` subclasses
for malformed bytes (and :class:`~minolcore.errors.InputError` for a non-bytes argument).

:func:`decode_uplink` authenticates before it decrypts: when the MIC does not verify,
``mic_valid`` is False and ``payload`` is ``b""`` and ``mac_commands`` is empty, so no
caller can act on unauthenticated data by accident.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Sequence
from enum import IntEnum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from minolcore._model import Record
from minolcore.errors import InputError, LoRaWANError
from minolcore.lorawan.crypto import (
    MIC_SIZE,
    KeyLike,
    b0_block,
    compute_data_mic,
    compute_join_mic,
    crypt_frm_payload,
    join_accept_encrypt,
)
from minolcore.lorawan.keys import AesKey, as_key
from minolcore.lorawan.mac import MACCommand, parse_mac_commands

__all__ = [
    "FHDR",
    "JOIN_ACCEPT_BODY",
    "JOIN_REQUEST",
    "MAX_PHY_PAYLOAD",
    "DataFrame",
    "Downlink",
    "EncryptedJoinAccept",
    "FCntOverflowError",
    "FCtrl",
    "FOptsOnPort0Error",
    "FOptsOverrunError",
    "Frame",
    "FrameBuildError",
    "JoinAccept",
    "JoinRequest",
    "MType",
    "OpaqueFrame",
    "PHYLengthError",
    "PHYPayloadError",
    "UnexpectedMTypeError",
    "UnsupportedMajorError",
    "Uplink",
    "build_data_frame",
    "build_join_accept",
    "build_join_request",
    "cf_list_from_frequencies",
    "decode_downlink",
    "decode_uplink",
    "format_dev_addr",
    "format_eui",
    "frame_mtype",
    "join_accept_from_plaintext",
    "parse_dev_addr",
    "parse_eui",
    "parse_phy",
    "rebuild_fcnt",
    "verify_mics",
]


FHDR = struct.Struct("<BIBH")
"""MHDR | DevAddr (LE) | FCtrl | FCnt (16 bits, LE): the first 8 bytes of every data frame."""

JOIN_REQUEST = struct.Struct("<B8s8sH4s")
"""MHDR | JoinEUI (8, LE) | DevEUI (8, LE) | DevNonce (LE) | MIC: 23 bytes."""

JOIN_ACCEPT_BODY = struct.Struct("<3s3sIBB")
"""AppNonce (3, LE) | NetID (3, LE) | DevAddr (LE) | DLSettings | RxDelay: 12 bytes, then [CFList] | MIC."""

_MIC = struct.Struct("<4s")
_CF_FREQ = struct.Struct("<I")

MAX_PHY_PAYLOAD = 255
"""Largest PHYPayload a LoRa radio frame can carry, in bytes."""

_MIN_DATA = FHDR.size + MIC_SIZE  # 12
_CF_LIST_SIZE = 16
_JOIN_ACCEPT_SIZES = (
    1 + JOIN_ACCEPT_BODY.size + MIC_SIZE,
    1 + JOIN_ACCEPT_BODY.size + _CF_LIST_SIZE + MIC_SIZE,
)
_FCNT16_MASK = 0xFFFF
_FCNT32_MAX = 0xFFFFFFFF
_MAX_FOPTS = 15
_LORAWAN_R1 = 0

_FCTRL_ADR = 0x80
_FCTRL_ADR_ACK_REQ = 0x40
_FCTRL_ACK = 0x20
_FCTRL_FPENDING_CLASS_B = 0x10
_FCTRL_FOPTS_LEN = 0x0F


class MType(IntEnum):
    """Message type: MHDR bits 7..5."""

    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_DATA_UP = 2
    UNCONFIRMED_DATA_DOWN = 3
    CONFIRMED_DATA_UP = 4
    CONFIRMED_DATA_DOWN = 5
    RFU = 6
    PROPRIETARY = 7


_DATA_MTYPES = frozenset((2, 3, 4, 5))
_UPLINK_MTYPES = frozenset((2, 4))
_CONFIRMED_MTYPES = frozenset((4, 5))
_MTYPES = tuple(MType)


# --- errors ---------------------------------------------------------------------------------


class PHYPayloadError(LoRaWANError):
    """A PHYPayload whose bytes do not form a valid LoRaWAN 1.0.x frame."""


class PHYLengthError(PHYPayloadError):
    """A PHYPayload too short or too long for its message type. Lengths in bytes."""

    def __init__(self, what: str, length: int, expected: str) -> None:
        super().__init__(f"{what}: {length} bytes, expected {expected}")
        self.what = what
        self.length = length
        self.expected = expected


class FOptsOverrunError(PHYPayloadError):
    """FCtrl.FOptsLen points past the bytes available before the MIC."""

    def __init__(self, fopts_len: int, available: int) -> None:
        super().__init__(f"FOptsLen {fopts_len} but only {available} bytes before the MIC")
        self.fopts_len = fopts_len
        self.available = available


class FOptsOnPort0Error(PHYPayloadError):
    """FOpts present together with FPort 0, which the specification forbids."""

    def __init__(self, fopts_len: int) -> None:
        super().__init__(f"FPort 0 together with {fopts_len} bytes of FOpts")
        self.fopts_len = fopts_len


class UnsupportedMajorError(PHYPayloadError):
    """MHDR.Major other than 0 (LoRaWAN R1) on a join or data frame."""

    def __init__(self, major: int) -> None:
        super().__init__(f"MHDR major version {major} is not LoRaWAN R1 (0)")
        self.major = major


class UnexpectedMTypeError(LoRaWANError):
    """A well-formed frame of a message type the caller did not ask for."""

    def __init__(self, mtype: MType, expected: str) -> None:
        super().__init__(f"{mtype.name} frame where {expected} was expected")
        self.mtype = mtype
        self.expected = expected


class FCntOverflowError(LoRaWANError):
    """The rebuilt frame counter would pass 2**32 - 1; the device must join again."""

    def __init__(self, fcnt16: int, last_fcnt: int) -> None:
        super().__init__(f"FCnt {fcnt16:#06x} after {last_fcnt:#010x} wraps the 32-bit counter")
        self.fcnt16 = fcnt16
        self.last_fcnt = last_fcnt


class FrameBuildError(LoRaWANError, InputError):
    """Arguments that cannot make a valid frame (a builder's input error)."""


# --- records --------------------------------------------------------------------------------


class FCtrl(Record, frozen=True, gc=False, kw_only=True):
    """The frame control octet. Bit 0x10 is FPending downlink and ClassB uplink."""

    adr: bool
    adr_ack_req: bool
    ack: bool
    f_pending: bool
    class_b: bool
    fopts_len: int

    @classmethod
    def from_byte(cls, value: int, *, uplink: bool) -> FCtrl:
        """Decode an FCtrl octet of the given direction."""
        bit4 = bool(value & _FCTRL_FPENDING_CLASS_B)
        return cls(
            adr=bool(value & _FCTRL_ADR),
            adr_ack_req=bool(value & _FCTRL_ADR_ACK_REQ),
            ack=bool(value & _FCTRL_ACK),
            f_pending=bit4 and not uplink,
            class_b=bit4 and uplink,
            fopts_len=value & _FCTRL_FOPTS_LEN,
        )


class DataFrame(Record, frozen=True, gc=False, kw_only=True):
    """A parsed (not yet authenticated) data frame; ``frm_payload`` is still encrypted."""

    mtype: MType
    major: int
    dev_addr: str
    dev_addr_int: int
    fctrl: FCtrl
    fcnt16: int
    fopts: bytes
    fport: int | None
    frm_payload: bytes
    mic: bytes
    phy: bytes

    @property
    def uplink(self) -> bool:
        """True for (un)confirmed data up."""
        return self.mtype in _UPLINK_MTYPES

    @property
    def confirmed(self) -> bool:
        """True for confirmed data up/down."""
        return self.mtype in _CONFIRMED_MTYPES


class JoinRequest(Record, frozen=True, gc=False, kw_only=True):
    """A parsed JoinRequest (plaintext; the MIC uses the AppKey)."""

    major: int
    join_eui: str
    dev_eui: str
    dev_nonce: int
    mic: bytes
    phy: bytes


class EncryptedJoinAccept(Record, frozen=True, gc=False, kw_only=True):
    """A JoinAccept as received: opaque until decrypted with the AppKey."""

    major: int
    ciphertext: bytes
    phy: bytes


class OpaqueFrame(Record, frozen=True, gc=False, kw_only=True):
    """An RFU or proprietary frame: ``payload`` is everything after MHDR."""

    mtype: MType
    major: int
    payload: bytes
    phy: bytes


class JoinAccept(Record, frozen=True, gc=False, kw_only=True):
    """A decrypted JoinAccept whose MIC has been checked."""

    major: int
    app_nonce: int
    net_id: int
    dev_addr: str
    dl_settings: int
    rx_delay: int
    cf_list: bytes | None
    mic: bytes

    @property
    def rx1_dr_offset(self) -> int:
        """RX1 data-rate offset (DLSettings bits 6..4)."""
        return (self.dl_settings >> 4) & 0x07

    @property
    def rx2_data_rate(self) -> int:
        """RX2 data rate index (DLSettings bits 3..0)."""
        return self.dl_settings & 0x0F

    @property
    def rx1_delay_s(self) -> int:
        """Delay from uplink end to RX1 in seconds (RxDelay 0 means 1 s)."""
        return max(1, self.rx_delay & 0x0F)

    @property
    def cf_list_frequencies_hz(self) -> tuple[int, ...]:
        """Channel frequencies in Hz of a frequency-type CFList (type 0); empty otherwise."""
        cf = self.cf_list
        if cf is None or cf[15] != 0:
            return ()
        freqs = (_CF_FREQ.unpack(cf[i : i + 3] + b"\x00")[0] * 100 for i in range(0, 15, 3))
        return tuple(f for f in freqs if f)


Frame = DataFrame | JoinRequest | EncryptedJoinAccept | OpaqueFrame


class _DataMessage(Record, frozen=True, gc=False, kw_only=True):
    mtype: MType
    major: int
    confirmed: bool
    dev_addr: str
    fcnt: int
    fctrl: FCtrl
    fport: int | None
    payload: bytes
    mac_commands: tuple[MACCommand, ...]
    mic: bytes
    mic_valid: bool

    @property
    def adr(self) -> bool:
        """FCtrl.ADR."""
        return self.fctrl.adr

    @property
    def ack(self) -> bool:
        """FCtrl.ACK: this frame acknowledges the last confirmed frame of the other side."""
        return self.fctrl.ack


class Uplink(_DataMessage, frozen=True, gc=False, kw_only=True):
    """An authenticated-and-decrypted data uplink (see the module notes on ``mic_valid``).

    ``fcnt`` is the rebuilt 32-bit counter; ``payload`` the decrypted FRMPayload (``b""``
    when the MIC failed); ``mac_commands`` from FOpts or, on FPort 0, from the payload.
    """

    @property
    def adr_ack_req(self) -> bool:
        """FCtrl.ADRACKReq."""
        return self.fctrl.adr_ack_req

    @property
    def class_b(self) -> bool:
        """FCtrl.ClassB (uplink bit 4)."""
        return self.fctrl.class_b


class Downlink(_DataMessage, frozen=True, gc=False, kw_only=True):
    """A data downlink decoded on the device side (same rules as :class:`Uplink`)."""

    @property
    def f_pending(self) -> bool:
        """FCtrl.FPending: the network has more data queued."""
        return self.fctrl.f_pending


# --- identifiers ----------------------------------------------------------------------------


def format_dev_addr(value: int) -> str:
    """DevAddr as written by people: 8 upper-case hex digits of the 32-bit value."""
    return f"{value:08X}"


def parse_dev_addr(dev_addr: str | int) -> int:
    """DevAddr from ``"49BE7DF1"`` or an int to its 32-bit value."""
    if isinstance(dev_addr, int) and not isinstance(dev_addr, bool):
        if not 0 <= dev_addr <= _FCNT32_MAX:
            raise InputError(f"DevAddr {dev_addr} is not a 32-bit value")
        return dev_addr
    if isinstance(dev_addr, str) and len(dev_addr) == 8:
        try:
            return int(dev_addr, 16)
        except ValueError:
            pass
    raise InputError(f"DevAddr must be 8 hex digits or a 32-bit int, got {dev_addr!r}")


def format_eui(field: bytes) -> str:
    """An 8-byte little-endian EUI field as 16 upper-case hex digits (big-endian)."""
    return field[::-1].hex().upper()


def parse_eui(eui: str | int) -> bytes:
    """``"70B3D57ED00000DC"`` or a 64-bit int to the 8-byte little-endian field."""
    if isinstance(eui, int) and not isinstance(eui, bool):
        if not 0 <= eui < 1 << 64:
            raise InputError(f"EUI {eui} is not a 64-bit value")
        return eui.to_bytes(8, "little")
    if isinstance(eui, str):
        compact = eui.replace("-", "").replace(":", "")
        if len(compact) == 16:
            try:
                return bytes.fromhex(compact)[::-1]
            except ValueError:
                pass
    raise InputError(f"EUI must be 16 hex digits or a 64-bit int, got {eui!r}")


# --- parsing --------------------------------------------------------------------------------


def _as_bytes(phy: object) -> bytes:
    if isinstance(phy, bytes):
        return phy
    if isinstance(phy, bytearray | memoryview):
        return bytes(phy)
    raise InputError(f"a PHYPayload must be bytes, not {type(phy).__name__}")


def parse_phy(phy: bytes | bytearray | memoryview) -> Frame:
    """Parse a PHYPayload of any message type (no keys needed, nothing verified)."""
    data = _as_bytes(phy)
    n = len(data)
    if n == 0:
        raise PHYLengthError("PHYPayload", 0, "at least 1")
    if n > MAX_PHY_PAYLOAD:
        raise PHYLengthError("PHYPayload", n, f"at most {MAX_PHY_PAYLOAD}")
    mhdr = data[0]
    mtype = _MTYPES[mhdr >> 5]
    major = mhdr & 0x03
    if mtype >= MType.RFU:
        return OpaqueFrame(mtype=mtype, major=major, payload=data[1:], phy=data)
    if major != _LORAWAN_R1:
        raise UnsupportedMajorError(major)
    if mtype == MType.JOIN_REQUEST:
        if n != JOIN_REQUEST.size:
            raise PHYLengthError("JoinRequest", n, str(JOIN_REQUEST.size))
        _, join_eui, dev_eui, dev_nonce, mic = JOIN_REQUEST.unpack(data)
        return JoinRequest(
            major=major,
            join_eui=format_eui(join_eui),
            dev_eui=format_eui(dev_eui),
            dev_nonce=dev_nonce,
            mic=mic,
            phy=data,
        )
    if mtype == MType.JOIN_ACCEPT:
        if n not in _JOIN_ACCEPT_SIZES:
            raise PHYLengthError("JoinAccept", n, " or ".join(map(str, _JOIN_ACCEPT_SIZES)))
        return EncryptedJoinAccept(major=major, ciphertext=data[1:], phy=data)
    return _parse_data(data, mtype, major)


def _parse_data(data: bytes, mtype: MType, major: int) -> DataFrame:
    n = len(data)
    if n < _MIN_DATA:
        raise PHYLengthError(f"{mtype.name} frame", n, f"at least {_MIN_DATA}")
    _, dev_addr, fctrl_byte, fcnt16 = FHDR.unpack_from(data)
    uplink = mtype in _UPLINK_MTYPES
    fctrl = FCtrl.from_byte(fctrl_byte, uplink=uplink)
    fopts_len = fctrl.fopts_len
    body_end = n - MIC_SIZE
    fopts_end = FHDR.size + fopts_len
    if fopts_end > body_end:
        raise FOptsOverrunError(fopts_len, body_end - FHDR.size)
    fport: int | None = None
    frm_payload = b""
    if fopts_end < body_end:
        fport = data[fopts_end]
        if fport == 0 and fopts_len:
            raise FOptsOnPort0Error(fopts_len)
        frm_payload = data[fopts_end + 1 : body_end]
    return DataFrame(
        mtype=mtype,
        major=major,
        dev_addr=format_dev_addr(dev_addr),
        dev_addr_int=dev_addr,
        fctrl=fctrl,
        fcnt16=fcnt16,
        fopts=data[FHDR.size : fopts_end],
        fport=fport,
        frm_payload=frm_payload,
        mic=data[body_end:],
        phy=data,
    )


def join_accept_from_plaintext(mhdr: int, plaintext: bytes) -> JoinAccept:
    """Unpack a decrypted JoinAccept body (after MHDR, MIC included; 16 or 32 bytes)."""
    n = len(plaintext)
    if n + 1 not in _JOIN_ACCEPT_SIZES:
        raise PHYLengthError("JoinAccept", n + 1, " or ".join(map(str, _JOIN_ACCEPT_SIZES)))
    app_nonce, net_id, dev_addr, dl_settings, rx_delay = JOIN_ACCEPT_BODY.unpack_from(plaintext)
    cf_list = plaintext[JOIN_ACCEPT_BODY.size : n - MIC_SIZE] or None
    return JoinAccept(
        major=mhdr & 0x03,
        app_nonce=int.from_bytes(app_nonce, "little"),
        net_id=int.from_bytes(net_id, "little"),
        dev_addr=format_dev_addr(dev_addr),
        dl_settings=dl_settings,
        rx_delay=rx_delay,
        cf_list=cf_list,
        mic=plaintext[n - MIC_SIZE :],
    )


# --- frame counter --------------------------------------------------------------------------


def rebuild_fcnt(fcnt16: int, last_fcnt32: int | None) -> int:
    """The 32-bit FCnt from the 16 transmitted bits and the last accepted 32-bit value.

    The result is never below ``last_fcnt32``: equal means a repeat (retransmission or
    replay, the caller decides), a lower 16-bit value means the low half rolled over.
    With no last counter the 16-bit value is returned. Raises :class:`FCntOverflowError`
    when the counter would pass 2**32 - 1.
    """
    if not 0 <= fcnt16 <= _FCNT16_MASK:
        raise InputError(f"FCnt {fcnt16} is not a 16-bit value")
    if last_fcnt32 is None:
        return fcnt16
    if not 0 <= last_fcnt32 <= _FCNT32_MAX:
        raise InputError(f"last FCnt {last_fcnt32} is not a 32-bit value")
    candidate = (last_fcnt32 & ~_FCNT16_MASK) | fcnt16
    if candidate < last_fcnt32:
        candidate += _FCNT16_MASK + 1
        if candidate > _FCNT32_MAX:
            raise FCntOverflowError(fcnt16, last_fcnt32)
    return candidate


# --- authenticated decoding -----------------------------------------------------------------


def _decode_data(
    frame: DataFrame, nwk_s_key: KeyLike, app_s_key: KeyLike, last_fcnt: int | None
) -> tuple[int, bool, bytes, tuple[MACCommand, ...]]:
    uplink = frame.uplink
    fcnt = rebuild_fcnt(frame.fcnt16, last_fcnt)
    nwk = as_key(nwk_s_key)
    expected = compute_data_mic(
        nwk, frame.phy[:-MIC_SIZE], dev_addr=frame.dev_addr_int, fcnt32=fcnt, uplink=uplink
    )
    if not hmac.compare_digest(expected, frame.mic):
        return fcnt, False, b"", ()
    key = nwk if frame.fport == 0 else as_key(app_s_key)
    payload = crypt_frm_payload(
        key, frame.frm_payload, dev_addr=frame.dev_addr_int, fcnt32=fcnt, uplink=uplink
    )
    commands = parse_mac_commands(frame.fopts, uplink=uplink) if frame.fopts else ()
    if frame.fport == 0:
        commands = parse_mac_commands(payload, uplink=uplink)
    return fcnt, True, payload, commands


def decode_uplink(
    phy: bytes,
    *,
    nwk_s_key: bytes | AesKey,
    app_s_key: bytes | AesKey,
    last_fcnt: int | None = None,
) -> Uplink:
    """Parse, authenticate and decrypt a data uplink.

    ``last_fcnt`` is the last accepted 32-bit FCnt of the device (``None`` for the first
    frame). A wrong MIC does not raise: ``mic_valid`` is False and nothing is decrypted
    (``payload == b""``, no MAC commands). Malformed bytes raise :class:`PHYPayloadError`
    subclasses, a non-uplink frame :class:`UnexpectedMTypeError`. No replay check here:
    that needs state, see :class:`minolcore.lorawan.join.Session`.
    """
    frame = parse_phy(phy)
    if not isinstance(frame, DataFrame) or not frame.uplink:
        raise UnexpectedMTypeError(frame_mtype(frame), "a data uplink")
    return _message(Uplink, frame, _decode_data(frame, nwk_s_key, app_s_key, last_fcnt))


def decode_downlink(
    phy: bytes,
    *,
    nwk_s_key: bytes | AesKey,
    app_s_key: bytes | AesKey,
    last_fcnt: int | None = None,
) -> Downlink:
    """Device-side counterpart of :func:`decode_uplink` for data downlinks (same rules)."""
    frame = parse_phy(phy)
    if not isinstance(frame, DataFrame) or frame.uplink:
        raise UnexpectedMTypeError(frame_mtype(frame), "a data downlink")
    return _message(Downlink, frame, _decode_data(frame, nwk_s_key, app_s_key, last_fcnt))


_M = TypeVar("_M", Uplink, Downlink)


def _message(
    kind: type[_M], frame: DataFrame, decoded: tuple[int, bool, bytes, tuple[MACCommand, ...]]
) -> _M:
    """The decoded data message of ``frame`` (uplink and downlink carry the same fields)."""
    fcnt, valid, payload, commands = decoded
    return kind(
        mtype=frame.mtype,
        major=frame.major,
        confirmed=frame.confirmed,
        dev_addr=frame.dev_addr,
        fcnt=fcnt,
        fctrl=frame.fctrl,
        fport=frame.fport,
        payload=payload,
        mac_commands=commands,
        mic=frame.mic,
        mic_valid=valid,
    )


def frame_mtype(frame: Frame) -> MType:
    """The message type of any parsed frame."""
    if isinstance(frame, JoinRequest):
        return MType.JOIN_REQUEST
    if isinstance(frame, EncryptedJoinAccept):
        return MType.JOIN_ACCEPT
    return frame.mtype


def verify_mics(
    phys: Sequence[bytes],
    nwk_s_keys: KeyLike | Sequence[KeyLike],
    last_fcnts: Sequence[int | None] | None = None,
) -> npt.NDArray[np.bool_]:
    """Check the MICs of many data frames at once; one bool per frame.

    ``nwk_s_keys`` is one key for all frames or one per frame; ``last_fcnts`` the last
    32-bit counters per frame (default: none, use the 16 transmitted bits). Malformed
    frames and non-data frames give False rather than raising. Keys given as bytes are
    wrapped once per distinct value, so each key's CMAC context is built once per call.
    """
    count = len(phys)
    out = np.zeros(count, dtype=np.bool_)
    single: AesKey | None = None
    per_frame: Sequence[KeyLike] = ()
    if isinstance(nwk_s_keys, AesKey | bytes | bytearray | memoryview):
        single = as_key(nwk_s_keys)
    else:
        per_frame = nwk_s_keys
        if len(per_frame) != count:
            raise InputError(f"{len(per_frame)} keys for {count} frames")
    if last_fcnts is not None and len(last_fcnts) != count:
        raise InputError(f"{len(last_fcnts)} counters for {count} frames")
    wrapped: dict[bytes, AesKey] = {}
    unpack = FHDR.unpack_from
    for i, phy in enumerate(phys):
        n = len(phy)
        if n < _MIN_DATA or n > MAX_PHY_PAYLOAD:
            continue
        mhdr, dev_addr, fctrl, fcnt16 = unpack(phy)
        mtype = mhdr >> 5
        if mtype not in _DATA_MTYPES or mhdr & 0x03 or FHDR.size + (fctrl & _FCTRL_FOPTS_LEN) > n - MIC_SIZE:
            continue
        if single is not None:
            key = single
        else:
            given = per_frame[i]
            if isinstance(given, AesKey):
                key = given
            else:
                raw = bytes(given)
                cached = wrapped.get(raw)
                if cached is None:
                    cached = wrapped[raw] = AesKey(raw)
                key = cached
        last = None if last_fcnts is None else last_fcnts[i]
        try:
            fcnt = rebuild_fcnt(fcnt16, last)
        except LoRaWANError:
            continue
        ctx = key.cmac_context()
        ctx.update(b0_block(dev_addr, fcnt, n - MIC_SIZE, uplink=mtype in _UPLINK_MTYPES))
        ctx.update(phy[: n - MIC_SIZE])
        out[i] = hmac.compare_digest(ctx.finalize()[:MIC_SIZE], phy[n - MIC_SIZE :])
    return out


# --- building -------------------------------------------------------------------------------


def build_data_frame(
    *,
    dev_addr: str | int,
    fcnt: int,
    nwk_s_key: KeyLike,
    app_s_key: KeyLike | None = None,
    uplink: bool = True,
    confirmed: bool = False,
    fport: int | None = None,
    payload: bytes = b"",
    fopts: bytes = b"",
    adr: bool = False,
    adr_ack_req: bool = False,
    ack: bool = False,
    f_pending: bool = False,
    class_b: bool = False,
    major: int = _LORAWAN_R1,
) -> bytes:
    """Build, encrypt and sign a data frame; returns the PHYPayload.

    ``fcnt`` is the 32-bit counter (its low 16 bits are sent, all 32 are signed);
    ``payload`` the plaintext FRMPayload (MAC commands when ``fport`` is 0, then
    encrypted with the NwkSKey); ``fopts`` at most 15 bytes of plaintext MAC commands.
    """
    addr = parse_dev_addr(dev_addr)
    if not 0 <= fcnt <= _FCNT32_MAX:
        raise FrameBuildError(f"FCnt {fcnt} is not a 32-bit value")
    if len(fopts) > _MAX_FOPTS:
        raise FrameBuildError(f"FOpts of {len(fopts)} bytes, at most {_MAX_FOPTS}")
    if not 0 <= major <= 3:
        raise FrameBuildError(f"major {major} does not fit 2 bits")
    if fport is None:
        if payload:
            raise FrameBuildError("an FRMPayload needs an FPort")
    elif not 0 <= fport <= 0xFF:
        raise FrameBuildError(f"FPort {fport} does not fit a byte")
    elif fport == 0 and fopts:
        raise FrameBuildError("FOpts must be empty on FPort 0")
    if uplink and f_pending:
        raise FrameBuildError("FPending is a downlink flag")
    if not uplink and (class_b or adr_ack_req):
        raise FrameBuildError("ClassB and ADRACKReq are uplink flags")
    if uplink:
        mtype = MType.CONFIRMED_DATA_UP if confirmed else MType.UNCONFIRMED_DATA_UP
    else:
        mtype = MType.CONFIRMED_DATA_DOWN if confirmed else MType.UNCONFIRMED_DATA_DOWN
    fctrl = (
        (_FCTRL_ADR if adr else 0)
        | (_FCTRL_ADR_ACK_REQ if adr_ack_req else 0)
        | (_FCTRL_ACK if ack else 0)
        | (_FCTRL_FPENDING_CLASS_B if (f_pending or class_b) else 0)
        | len(fopts)
    )
    nwk = as_key(nwk_s_key)
    parts = [FHDR.pack((mtype << 5) | major, addr, fctrl, fcnt & _FCNT16_MASK), bytes(fopts)]
    if fport is not None:
        if fport == 0:
            key = nwk
        elif app_s_key is None:
            raise FrameBuildError(f"FPort {fport} needs an AppSKey")
        else:
            key = as_key(app_s_key)
        parts.append(bytes((fport,)))
        parts.append(crypt_frm_payload(key, bytes(payload), dev_addr=addr, fcnt32=fcnt, uplink=uplink))
    msg = b"".join(parts)
    if len(msg) + MIC_SIZE > MAX_PHY_PAYLOAD:
        raise FrameBuildError(f"frame of {len(msg) + MIC_SIZE} bytes exceeds {MAX_PHY_PAYLOAD}")
    return msg + compute_data_mic(nwk, msg, dev_addr=addr, fcnt32=fcnt, uplink=uplink)


def build_join_request(*, join_eui: str | int, dev_eui: str | int, dev_nonce: int, app_key: KeyLike) -> bytes:
    """Build and sign a JoinRequest; ``dev_nonce`` is the 16-bit value."""
    if not 0 <= dev_nonce <= _FCNT16_MASK:
        raise FrameBuildError(f"DevNonce {dev_nonce} is not a 16-bit value")
    msg = JOIN_REQUEST.pack(MType.JOIN_REQUEST << 5, parse_eui(join_eui), parse_eui(dev_eui), dev_nonce, b"")
    msg = msg[:-MIC_SIZE]
    return msg + compute_join_mic(app_key, msg)


def cf_list_from_frequencies(frequencies_hz: Sequence[int]) -> bytes:
    """A frequency-type CFList (type 0) of up to 5 channel frequencies in Hz (multiples of 100)."""
    if len(frequencies_hz) > 5:
        raise FrameBuildError(f"a CFList holds at most 5 frequencies, got {len(frequencies_hz)}")
    out = bytearray(_CF_LIST_SIZE)
    for i, freq in enumerate(frequencies_hz):
        units, rest = divmod(freq, 100)
        if rest or not 0 <= units < 1 << 24:
            raise FrameBuildError(f"frequency {freq} Hz is not a 24-bit multiple of 100 Hz")
        out[3 * i : 3 * i + 3] = units.to_bytes(3, "little")
    return bytes(out)


def build_join_accept(
    *,
    app_key: KeyLike,
    app_nonce: int,
    net_id: int,
    dev_addr: str | int,
    dl_settings: int = 0,
    rx_delay: int = 1,
    cf_list: bytes | None = None,
) -> bytes:
    """Build, sign and encrypt a JoinAccept; returns the PHYPayload to send.

    ``app_nonce`` and ``net_id`` are 24-bit values; ``rx_delay`` in seconds (1..15);
    ``cf_list`` 16 bytes or ``None``.
    """
    fields = (("AppNonce", app_nonce, 24), ("NetID", net_id, 24), ("DLSettings", dl_settings, 8))
    for name, value, bits in fields:
        if not 0 <= value < 1 << bits:
            raise FrameBuildError(f"{name} {value} does not fit {bits} bits")
    if not 0 <= rx_delay <= 0x0F:
        raise FrameBuildError(f"RxDelay {rx_delay} does not fit 4 bits")
    if cf_list is not None and len(cf_list) != _CF_LIST_SIZE:
        raise FrameBuildError(f"CFList of {len(cf_list)} bytes, {_CF_LIST_SIZE} expected")
    mhdr = bytes((MType.JOIN_ACCEPT << 5,))
    body = JOIN_ACCEPT_BODY.pack(
        app_nonce.to_bytes(3, "little"),
        net_id.to_bytes(3, "little"),
        parse_dev_addr(dev_addr),
        dl_settings,
        rx_delay,
    )
    if cf_list is not None:
        body += bytes(cf_list)
    key = as_key(app_key)
    mic = compute_join_mic(key, mhdr + body)
    return mhdr + join_accept_encrypt(key, body + mic)
