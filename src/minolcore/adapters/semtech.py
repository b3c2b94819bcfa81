"""Semtech UDP packet-forwarder protocol, version 2, without I/O.

Every datagram starts with a 4-byte header: protocol version (2), a 2-byte token chosen by the
sender, and an identifier byte. Gateway-to-server datagrams (PUSH_DATA 0x00, PULL_DATA 0x02,
TX_ACK 0x05) then carry the 8-byte gateway EUI, and PUSH_DATA / TX_ACK a JSON object.
Server-to-gateway datagrams are PUSH_ACK 0x01, PULL_ACK 0x04 (header only) and PULL_RESP 0x03
(header + JSON with a ``txpk`` object).

:func:`parse_datagram` turns bytes into one typed event or raises a :class:`DatagramError`
subclass whose ``reason`` names the defect. The builders (:func:`push_ack`, :func:`pull_ack`,
:func:`pull_resp` for the server side; :func:`push_data`, :func:`pull_data`, :func:`tx_ack` for a
gateway or a simulator) produce the bytes. :class:`GatewayIngest` is the stateful server
endpoint: one datagram in, the reply and the receptions out, with counters; it never raises on
bad input, so one broken gateway cannot stop ingestion.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, TypeVar

import msgspec

from minolcore._model import Record
from minolcore.adapters import parse_event_time, read_event_time
from minolcore.errors import GatewayProtocolError, InputError
from minolcore.reception import Radio, Reception, is_event_time

if TYPE_CHECKING:
    from minolcore.network import JoinAcceptance

__all__ = [
    "CRC_FAILED",
    "CRC_NONE",
    "CRC_OK",
    "JOIN_ACCEPT_DELAY1_US",
    "PROTOCOL_VERSION",
    "BadBase64Error",
    "BadFieldError",
    "BadJSONError",
    "BadLengthError",
    "BadTimeError",
    "DatagramError",
    "DatagramTooShortError",
    "Event",
    "GatewayIngest",
    "Identifier",
    "IngestOutcome",
    "IngestStats",
    "NotAnObjectError",
    "PullAck",
    "PullData",
    "PullResp",
    "PushAck",
    "PushData",
    "Reason",
    "ReceptionBatch",
    "Rxpk",
    "SizeMismatchError",
    "Stat",
    "TxAck",
    "Txpk",
    "UnknownIdentifierError",
    "UnsupportedVersionError",
    "join_accept_txpk",
    "parse_datagram",
    "parse_log_line",
    "pull_ack",
    "pull_data",
    "pull_resp",
    "push_ack",
    "push_data",
    "to_receptions",
    "tx_ack",
]

PROTOCOL_VERSION = 2

# version (uint8), token (uint16, big-endian), identifier (uint8)
HEADER = struct.Struct(">BHB")
# gateway EUI, right after the header in every gateway-to-server datagram
GATEWAY_EUI = struct.Struct(">8s")
GATEWAY_HEADER_SIZE = HEADER.size + GATEWAY_EUI.size

CRC_OK = 1
CRC_FAILED = -1
CRC_NONE = 0

_UINT32_MAX = 0xFFFFFFFF
_TOKEN_MAX = 0xFFFF


class Identifier(enum.IntEnum):
    """The identifier byte (offset 3) of each datagram type."""

    PUSH_DATA = 0x00
    PUSH_ACK = 0x01
    PULL_DATA = 0x02
    PULL_RESP = 0x03
    PULL_ACK = 0x04
    TX_ACK = 0x05


class Reason(enum.StrEnum):
    """Why a datagram was rejected; also the keys of :attr:`IngestStats.malformed`."""

    TOO_SHORT = "too_short"
    BAD_VERSION = "bad_version"
    UNKNOWN_IDENTIFIER = "unknown_identifier"
    BAD_LENGTH = "bad_length"
    BAD_JSON = "bad_json"
    NOT_OBJECT = "not_object"
    BAD_FIELD = "bad_field"
    BAD_BASE64 = "bad_base64"
    SIZE_MISMATCH = "size_mismatch"
    BAD_TIME = "bad_time"
    # a well-formed datagram that only the other side may send (e.g. PUSH_ACK sent to the server)
    WRONG_DIRECTION = "wrong_direction"


# --- errors ----------------------------------------------------------------------------------


class DatagramError(GatewayProtocolError):
    """A datagram that breaks the packet-forwarder protocol; ``reason`` says how."""

    reason: ClassVar[Reason]

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class DatagramTooShortError(DatagramError):
    """Fewer bytes than the header of the datagram type needs."""

    reason = Reason.TOO_SHORT

    def __init__(self, length: int, needed: int) -> None:
        super().__init__(f"datagram has {length} bytes, at least {needed} needed")
        self.length = length
        self.needed = needed


class UnsupportedVersionError(DatagramError):
    """A protocol version other than 2."""

    reason = Reason.BAD_VERSION

    def __init__(self, version: int) -> None:
        super().__init__(f"protocol version {version}, only {PROTOCOL_VERSION} is supported")
        self.version = version


class UnknownIdentifierError(DatagramError):
    """An identifier byte that names no datagram type."""

    reason = Reason.UNKNOWN_IDENTIFIER

    def __init__(self, identifier: int) -> None:
        super().__init__(f"identifier 0x{identifier:02X}")
        self.identifier = identifier


class BadLengthError(DatagramError):
    """A fixed-size datagram (PULL_DATA, PUSH_ACK, PULL_ACK) with bytes after its end."""

    reason = Reason.BAD_LENGTH

    def __init__(self, identifier: Identifier, length: int, expected: int) -> None:
        super().__init__(f"{identifier.name} has {length} bytes, expected {expected}")
        self.identifier = identifier
        self.length = length
        self.expected = expected


class BadJSONError(DatagramError):
    """The JSON part is missing or not valid JSON."""

    reason = Reason.BAD_JSON


class NotAnObjectError(DatagramError):
    """The JSON part is valid JSON but not an object."""

    reason = Reason.NOT_OBJECT


class BadFieldError(DatagramError):
    """A JSON field with the wrong type or out of range; ``detail`` names the path (``$.rxpk[0].tmst``)."""

    reason = Reason.BAD_FIELD


class BadBase64Error(DatagramError):
    """An rxpk ``data`` field that is not base64."""

    reason = Reason.BAD_BASE64

    def __init__(self, index: int) -> None:
        super().__init__(f"rxpk[{index}].data is not base64")
        self.index = index


class SizeMismatchError(DatagramError):
    """An rxpk whose ``size`` differs from the length of its decoded ``data``."""

    reason = Reason.SIZE_MISMATCH

    def __init__(self, index: int, size: int, actual: int) -> None:
        super().__init__(f"rxpk[{index}].size is {size}, data has {actual} bytes")
        self.index = index
        self.size = size
        self.actual = actual


class BadTimeError(DatagramError):
    """An rxpk ``time`` that is not an ISO 8601 UTC time between 1970 and 9999."""

    reason = Reason.BAD_TIME

    def __init__(self, index: int, text: str) -> None:
        super().__init__(f"rxpk[{index}].time {text[:64]!r} is not an ISO 8601 time between 1970 and 9999")
        self.index = index
        self.text = text


# --- events and JSON objects -----------------------------------------------------------------


class Rxpk(Record, frozen=True, gc=False, kw_only=True):
    """One received radio packet as a PUSH_DATA reports it.

    ``tmst``: the concentrator's free-running microsecond counter at the end of reception (32 bits,
    wraps every ~71.6 minutes); ``freq`` in MHz; ``stat``: CRC status (1 ok, -1 failed, 0 no CRC);
    ``datr``: LoRa data rate name (``SF7BW125``) or FSK bit rate in bit/s; ``rssi`` in dBm;
    ``lsnr`` in dB. ``time`` is the gateway's UTC time text as sent, ``time_unix`` the same
    instant in Unix seconds (both ``None`` when the gateway has no time source).
    """

    data: bytes
    tmst: int
    freq: float
    stat: int
    modu: str
    datr: str | int
    time: str | None = None
    time_unix: float | None = None
    chan: int | None = None
    rfch: int | None = None
    codr: str | None = None
    rssi: float | None = None
    lsnr: float | None = None

    @property
    def size(self) -> int:
        """Payload length in bytes."""
        return len(self.data)


class Stat(Record, frozen=True, gc=False, kw_only=True):
    """A gateway status report (the ``stat`` object); counts are since the previous report.

    ``time``: the gateway's own time text; ``lati``/``long`` in degrees (north/east positive);
    ``alti`` in metres; ``ackr``: percentage of upstream datagrams acknowledged.
    """

    time: str | None = None
    lati: float | None = None
    long: float | None = None
    alti: float | None = None
    rxnb: int | None = None
    rxok: int | None = None
    rxfw: int | None = None
    ackr: float | None = None
    dwnb: int | None = None
    txnb: int | None = None


class Txpk(Record, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """A downlink packet for PULL_RESP; ``None`` fields are left to the gateway's defaults.

    ``tmst``: concentrator counter value to send at, in µs; ``tmms``: GPS time in ms; ``freq`` in
    MHz; ``powe``: output power in dBm; ``datr``: LoRa data rate name or FSK bit rate in bit/s;
    ``fdev``: FSK deviation in Hz; ``prea``: preamble length in symbols.
    """

    freq: float
    data: bytes
    imme: bool | None = None
    tmst: int | None = None
    tmms: int | None = None
    time: str | None = None
    rfch: int | None = None
    powe: int | None = None
    modu: str | None = None
    datr: str | int | None = None
    codr: str | None = None
    fdev: int | None = None
    ipol: bool | None = None
    prea: int | None = None
    ncrc: bool | None = None


class PushData(Record, frozen=True, gc=False, kw_only=True):
    """PUSH_DATA: received packets and/or a status report. ``received_at``: server receive time, Unix s."""

    token: int
    gateway_eui: str
    rxpk: tuple[Rxpk, ...] = ()
    stat: Stat | None = None
    received_at: float | None = None


class PushAck(Record, frozen=True, gc=False, kw_only=True):
    """PUSH_ACK: the server acknowledges the PUSH_DATA with the same token."""

    token: int


class PullData(Record, frozen=True, gc=False, kw_only=True):
    """PULL_DATA: keep-alive that opens the downlink route to the gateway."""

    token: int
    gateway_eui: str


class PullAck(Record, frozen=True, gc=False, kw_only=True):
    """PULL_ACK: the server acknowledges the PULL_DATA with the same token."""

    token: int


class PullResp(Record, frozen=True, gc=False, kw_only=True):
    """PULL_RESP: one downlink packet for the gateway to send."""

    token: int
    txpk: Txpk


class TxAck(Record, frozen=True, gc=False, kw_only=True):
    """TX_ACK: the gateway's answer to a PULL_RESP; ``error`` is ``"NONE"`` on success."""

    token: int
    gateway_eui: str
    error: str = "NONE"


Event = PushData | PushAck | PullData | PullAck | PullResp | TxAck


class _RxpkWire(Record, frozen=True, gc=False, kw_only=True):
    data: str
    tmst: Annotated[int, msgspec.Meta(ge=0, le=_UINT32_MAX)]
    freq: Annotated[float, msgspec.Meta(ge=0)]
    stat: Literal[-1, 0, 1]
    modu: str
    datr: str | Annotated[int, msgspec.Meta(ge=0)]
    time: str | None = None
    chan: Annotated[int, msgspec.Meta(ge=0)] | None = None
    rfch: Annotated[int, msgspec.Meta(ge=0)] | None = None
    codr: str | None = None
    rssi: float | None = None
    lsnr: float | None = None
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None


class _PushWire(Record, frozen=True, gc=False, kw_only=True):
    rxpk: tuple[_RxpkWire, ...] = ()
    stat: Stat | None = None


class _TxAckBody(Record, frozen=True, gc=False, kw_only=True):
    error: str = "NONE"


class _TxAckWire(Record, frozen=True, gc=False, kw_only=True):
    txpk_ack: _TxAckBody = _TxAckBody()


class _PullRespWire(Record, frozen=True, gc=False, kw_only=True):
    txpk: Txpk


_T = TypeVar("_T")

_PUSH_DECODER = msgspec.json.Decoder(_PushWire)
_TX_ACK_DECODER = msgspec.json.Decoder(_TxAckWire)
_PULL_RESP_DECODER = msgspec.json.Decoder(_PullRespWire)
_ENCODER = msgspec.json.Encoder()


# --- parsing ---------------------------------------------------------------------------------


def parse_datagram(data: bytes, *, received_at: float | None = None) -> Event:
    """Parse one datagram into its event; ``received_at`` is the server receive time in Unix seconds.

    Raises a :class:`DatagramError` subclass (a :class:`GatewayProtocolError`) for any datagram
    that breaks the protocol, and nothing else, whatever the bytes.
    """
    length = len(data)
    if length < HEADER.size:
        raise DatagramTooShortError(length, HEADER.size)
    version, token, identifier = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersionError(version)
    parser = _PARSERS.get(identifier)
    if parser is None:
        raise UnknownIdentifierError(identifier)
    return parser(data, token, received_at)


def _gateway_eui(data: bytes) -> str:
    if len(data) < GATEWAY_HEADER_SIZE:
        raise DatagramTooShortError(len(data), GATEWAY_HEADER_SIZE)
    eui: bytes = GATEWAY_EUI.unpack_from(data, HEADER.size)[0]
    return eui.hex().upper()


# msgspec raises UnicodeDecodeError for bytes that are not UTF-8 inside a string.
_NOT_JSON = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)


def _json_body(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T:
    # Some forwarders terminate the JSON with NUL bytes (C strings); they carry no meaning.
    body = body.rstrip(b"\x00")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        typed_error = str(exc)
    except _NOT_JSON as exc:
        raise BadJSONError(str(exc)) from None
    # The typed decoder stops at the first mismatch; an untyped pass tells "not JSON" and
    # "not an object" apart from "wrong field", which lands in a different counter.
    try:
        generic = msgspec.json.decode(body)
    except _NOT_JSON as exc:
        raise BadJSONError(str(exc)) from None
    if not isinstance(generic, dict):
        raise NotAnObjectError(f"JSON is {type(generic).__name__}, not an object")
    raise BadFieldError(typed_error)


def _b64decode(text: str, index: int) -> bytes:
    # The spec asks for padded base64 but some forwarders drop the padding; both are accepted.
    missing = -len(text) % 4
    if missing == 3:
        raise BadBase64Error(index)
    try:
        return base64.b64decode(text + "=" * missing, validate=True)
    except (binascii.Error, ValueError):
        raise BadBase64Error(index) from None


def _rxpk_from_wire(wire: _RxpkWire, index: int) -> Rxpk:
    payload = _b64decode(wire.data, index)
    if wire.size is not None and wire.size != len(payload):
        raise SizeMismatchError(index, wire.size, len(payload))
    time_unix = None
    if wire.time is not None:
        try:
            time_unix = parse_event_time(wire.time)
        except ValueError:
            raise BadTimeError(index, wire.time) from None
        if not is_event_time(time_unix):
            raise BadTimeError(index, wire.time)
    return Rxpk(
        data=payload,
        tmst=wire.tmst,
        freq=wire.freq,
        stat=wire.stat,
        modu=wire.modu,
        datr=wire.datr,
        time=wire.time,
        time_unix=time_unix,
        chan=wire.chan,
        rfch=wire.rfch,
        codr=wire.codr,
        rssi=wire.rssi,
        lsnr=wire.lsnr,
    )


def _parse_push_data(data: bytes, token: int, received_at: float | None) -> PushData:
    eui = _gateway_eui(data)
    body = _json_body(_PUSH_DECODER, data[GATEWAY_HEADER_SIZE:])
    rxpk = tuple(_rxpk_from_wire(wire, index) for index, wire in enumerate(body.rxpk))
    return PushData(token=token, gateway_eui=eui, rxpk=rxpk, stat=body.stat, received_at=received_at)


def _parse_pull_data(data: bytes, token: int, received_at: float | None) -> PullData:
    eui = _gateway_eui(data)
    if len(data) != GATEWAY_HEADER_SIZE:
        raise BadLengthError(Identifier.PULL_DATA, len(data), GATEWAY_HEADER_SIZE)
    return PullData(token=token, gateway_eui=eui)


def _parse_tx_ack(data: bytes, token: int, received_at: float | None) -> TxAck:
    eui = _gateway_eui(data)
    body = data[GATEWAY_HEADER_SIZE:]
    # The JSON part is optional: without it the transmission succeeded.
    if not body.rstrip(b"\x00"):
        return TxAck(token=token, gateway_eui=eui)
    wire = _json_body(_TX_ACK_DECODER, body)
    return TxAck(token=token, gateway_eui=eui, error=wire.txpk_ack.error)


def _parse_push_ack(data: bytes, token: int, received_at: float | None) -> PushAck:
    if len(data) != HEADER.size:
        raise BadLengthError(Identifier.PUSH_ACK, len(data), HEADER.size)
    return PushAck(token=token)


def _parse_pull_ack(data: bytes, token: int, received_at: float | None) -> PullAck:
    if len(data) != HEADER.size:
        raise BadLengthError(Identifier.PULL_ACK, len(data), HEADER.size)
    return PullAck(token=token)


def _parse_pull_resp(data: bytes, token: int, received_at: float | None) -> PullResp:
    wire = _json_body(_PULL_RESP_DECODER, data[HEADER.size :])
    return PullResp(token=token, txpk=wire.txpk)


_PARSERS: dict[int, Callable[[bytes, int, float | None], Event]] = {
    Identifier.PUSH_DATA: _parse_push_data,
    Identifier.PUSH_ACK: _parse_push_ack,
    Identifier.PULL_DATA: _parse_pull_data,
    Identifier.PULL_RESP: _parse_pull_resp,
    Identifier.PULL_ACK: _parse_pull_ack,
    Identifier.TX_ACK: _parse_tx_ack,
}


# --- building --------------------------------------------------------------------------------


def _header(token: int, identifier: Identifier) -> bytes:
    if not 0 <= token <= _TOKEN_MAX:
        raise InputError(f"token {token} is not a 16-bit unsigned integer")
    return HEADER.pack(PROTOCOL_VERSION, token, identifier)


def _eui_bytes(gateway_eui: str) -> bytes:
    try:
        raw = bytes.fromhex(gateway_eui)
    except ValueError:
        raw = b""
    if len(raw) != GATEWAY_EUI.size:
        raise InputError(f"gateway EUI {gateway_eui!r} is not 16 hex digits")
    return raw


def push_ack(token: int) -> bytes:
    """PUSH_ACK for the PUSH_DATA with this 16-bit token (4 bytes)."""
    return _header(token, Identifier.PUSH_ACK)


def pull_ack(token: int) -> bytes:
    """PULL_ACK for the PULL_DATA with this 16-bit token (4 bytes)."""
    return _header(token, Identifier.PULL_ACK)


def pull_resp(token: int, txpk: Txpk) -> bytes:
    """PULL_RESP carrying one downlink; the gateway answers with a TX_ACK of the same 16-bit token."""
    body = msgspec.to_builtins(txpk)
    body["size"] = len(txpk.data)
    return _header(token, Identifier.PULL_RESP) + _ENCODER.encode({"txpk": body})


# LoRaWAN 1.0.x regional parameters (EU863-870): the device opens RX1 JOIN_ACCEPT_DELAY1
# after its JoinRequest, on the request's channel and data rate (RX1DROffset 0).
JOIN_ACCEPT_DELAY1_US = 5_000_000
_TMST_MODULUS = 1 << 32
_LORA_RATE = re.compile(r"SF(?:[5-9]|1[0-2])BW(?:125|250|500)", re.ASCII)
_FSK_RATE = re.compile(r"FSK([0-9]{1,6})", re.ASCII)
_FSK_DEVIATION_HZ = 25_000  # EU863-870 DR7: 50 kbit/s GFSK


def join_accept_txpk(acceptance: JoinAcceptance, *, power_dbm: int = 14, rf_chain: int = 0) -> Txpk:
    """The downlink that answers an accepted JoinRequest in the device's RX1 window: the
    JoinAccept, JOIN_ACCEPT_DELAY1 (5 s) after the request on the gateway's own counter
    (``tmst``), on its frequency (MHz) and data rate, with inverted IQ as downlinks use.
    Send it with :meth:`~minolcore.adapters.udp.UdpServer.send_downlink` to
    ``acceptance.gateway_id``. Raises :class:`InputError` when the request's reception
    lacks its ``tmst``, frequency or data rate (a log line rather than a live gateway)."""
    if acceptance.tmst is None or acceptance.frequency is None or not acceptance.mode:
        raise InputError("the JoinRequest's reception has no tmst, frequency or data rate to answer on")
    lora = _LORA_RATE.fullmatch(acceptance.mode) is not None
    fsk = _FSK_RATE.fullmatch(acceptance.mode)
    if not lora and fsk is None:
        raise InputError(f"data rate {acceptance.mode!r} is neither LoRa (SFnBWm) nor FSK (FSKn)")
    return Txpk(
        imme=False,
        tmst=(acceptance.tmst + JOIN_ACCEPT_DELAY1_US) % _TMST_MODULUS,
        freq=acceptance.frequency,
        rfch=rf_chain,
        powe=power_dbm,
        modu="LORA" if lora else "FSK",
        datr=acceptance.mode if fsk is None else int(fsk[1]),
        fdev=None if lora else _FSK_DEVIATION_HZ,
        codr="4/5" if lora else None,
        ipol=True if lora else None,
        data=acceptance.join_accept,
    )


def push_data(token: int, gateway_eui: str, rxpk: Sequence[Rxpk] = (), stat: Stat | None = None) -> bytes:
    """PUSH_DATA as a gateway sends it (for simulators and tests); ``token`` is 16-bit."""
    body: dict[str, object] = {}
    if rxpk:
        body["rxpk"] = [_rxpk_to_wire(packet) for packet in rxpk]
    if stat is not None:
        body["stat"] = msgspec.to_builtins(stat)
    return _header(token, Identifier.PUSH_DATA) + _eui_bytes(gateway_eui) + _ENCODER.encode(body)


def _rxpk_to_wire(packet: Rxpk) -> dict[str, object]:
    wire: dict[str, object] = {
        "tmst": packet.tmst,
        "freq": packet.freq,
        "stat": packet.stat,
        "modu": packet.modu,
        "datr": packet.datr,
        "size": len(packet.data),
        "data": base64.b64encode(packet.data).decode("ascii"),
    }
    optional = {
        "time": packet.time,
        "chan": packet.chan,
        "rfch": packet.rfch,
        "codr": packet.codr,
        "rssi": packet.rssi,
        "lsnr": packet.lsnr,
    }
    wire.update((key, value) for key, value in optional.items() if value is not None)
    return wire


def pull_data(token: int, gateway_eui: str) -> bytes:
    """PULL_DATA as a gateway sends it (12 bytes); ``token`` is 16-bit."""
    return _header(token, Identifier.PULL_DATA) + _eui_bytes(gateway_eui)


def tx_ack(token: int, gateway_eui: str, error: str = "NONE") -> bytes:
    """TX_ACK as a gateway sends it; ``token`` (16-bit) is the one of the PULL_RESP it answers."""
    body = _ENCODER.encode({"txpk_ack": {"error": error}})
    return _header(token, Identifier.TX_ACK) + _eui_bytes(gateway_eui) + body


# --- receptions and the stateful endpoint ----------------------------------------------------


class ReceptionBatch(Record, frozen=True, gc=False, kw_only=True):
    """The receptions of one PUSH_DATA and how many packets were dropped for a failed CRC."""

    receptions: tuple[Reception, ...]
    crc_failed: int
    no_crc: int


def to_receptions(push: PushData, *, received_at: float | None = None) -> ReceptionBatch:
    """Turn a PUSH_DATA into LoRaWAN receptions, dropping (and counting) packets whose CRC failed.

    Each reception's event time is the gateway's ``time`` (Unix seconds) when present, else
    ``received_at`` (the server receive time, Unix seconds), else ``push.received_at``. Packets
    without a CRC (stat 0) are kept: the LoRaWAN MIC still protects them.
    """
    server_time = received_at if received_at is not None else push.received_at
    receptions: list[Reception] = []
    crc_failed = 0
    no_crc = 0
    for packet in push.rxpk:
        if packet.stat == CRC_FAILED:
            crc_failed += 1
            continue
        if packet.stat == CRC_NONE:
            no_crc += 1
        event_time = packet.time_unix if packet.time_unix is not None else server_time
        if event_time is None:
            raise InputError("rxpk without a time and no server receive time given")
        mode = packet.datr if isinstance(packet.datr, str) else f"{packet.modu}{packet.datr}"
        receptions.append(
            Reception(
                gateway_id=push.gateway_eui,
                received_at=event_time,
                payload=packet.data,
                radio=Radio.LORAWAN,
                rssi=packet.rssi,
                snr=packet.lsnr,
                frequency=packet.freq,
                mode=mode,
                tmst=packet.tmst,
            )
        )
    return ReceptionBatch(receptions=tuple(receptions), crc_failed=crc_failed, no_crc=no_crc)


# --- packet-forwarder logs --------------------------------------------------------------------


class _LogLine(Record, frozen=True, gc=False, kw_only=True):
    datagram: str | None = None
    rxpk: tuple[_RxpkWire, ...] | None = None
    stat: Stat | None = None
    gateway: str | None = None
    gateway_id: str | None = None
    received_at: str | float | None = None


_LOG_DECODER = msgspec.json.Decoder(_LogLine)


def parse_log_line(line: str | bytes, *, default_gateway: str, default_time: float) -> ReceptionBatch:
    """One line of a packet-forwarder log, as ``minolcore ingest`` reads them:

    - ``{"datagram": "02ABCD00AA555A...", "received_at": ...}``: one UDP datagram from a
      gateway, in hex. A PUSH_DATA gives its receptions; PULL_DATA and TX_ACK give none.
    - ``{"gateway": "AA555A0000000000", "received_at": ..., "rxpk": [...]}``: the JSON body
      of a PUSH_DATA with the gateway's id (``gateway_id`` is an alias).

    ``received_at`` is the server's receive time (ISO 8601 or Unix seconds), used for packets
    without a gateway ``time``; without it, ``default_time`` (Unix seconds). A line without a
    gateway takes ``default_gateway``. Packets whose radio CRC failed are dropped and counted
    in the result. Raises a :class:`DatagramError` for a line that breaks the protocol.
    """
    try:
        text = line.encode() if isinstance(line, str) else line
    except UnicodeEncodeError as exc:  # a lone surrogate in a str line
        raise BadJSONError(str(exc)) from None
    parsed = _json_body(_LOG_DECODER, text.strip())
    server_time = _log_time(parsed.received_at, default_time)
    if parsed.datagram is not None:
        try:
            datagram = bytes.fromhex(parsed.datagram)
        except ValueError:
            raise BadFieldError("$.datagram is not hex") from None
        event = parse_datagram(datagram, received_at=server_time)
        if isinstance(event, PushData):
            return to_receptions(event, received_at=server_time)
        if isinstance(event, PullData | TxAck):
            return ReceptionBatch(receptions=(), crc_failed=0, no_crc=0)
        raise BadFieldError(f"$.datagram is a {type(event).__name__}, which servers send, not gateways")
    if parsed.rxpk is None:
        raise BadFieldError("neither $.datagram nor $.rxpk")
    push = PushData(
        token=0,
        gateway_eui=parsed.gateway or parsed.gateway_id or default_gateway,
        rxpk=tuple(_rxpk_from_wire(wire, index) for index, wire in enumerate(parsed.rxpk)),
        stat=parsed.stat,
        received_at=server_time,
    )
    return to_receptions(push)


def _log_time(value: str | float | None, default: float) -> float:
    if value is None:
        return default
    try:
        return read_event_time(value)
    except ValueError as exc:
        raise BadFieldError(f"$.received_at: {exc}") from None


class IngestOutcome(Record, frozen=True, gc=False, kw_only=True):
    """What to do with one datagram: ``reply`` to send back (``b""``: none), receptions to deliver.

    ``rejected`` is the reason when the datagram was dropped, with ``detail`` explaining it.
    """

    event: Event | None
    reply: bytes
    receptions: tuple[Reception, ...] = ()
    rejected: Reason | None = None
    detail: str = ""


class IngestStats(Record, frozen=True, gc=False, kw_only=True):
    """Counters of a :class:`GatewayIngest` since it was created (all counts, no units)."""

    datagrams: int
    push_data: int
    pull_data: int
    tx_ack: int
    rxpk_ok: int
    rxpk_no_crc: int
    crc_failed: int
    malformed: dict[str, int]
    tx_errors: int


class GatewayIngest:
    """The server side of the protocol as a state machine over datagrams, with counters.

    :meth:`receive` never raises for bad input: a malformed datagram is counted under its
    reason and gets no reply, which the gateway sees as a missing acknowledgement (its
    ``ackr`` statistic drops) instead of a silent success.
    """

    def __init__(self) -> None:
        self.datagrams = 0
        self.push_data = 0
        self.pull_data = 0
        self.tx_ack = 0
        self.rxpk_ok = 0
        self.rxpk_no_crc = 0
        self.crc_failed = 0
        self.tx_errors = 0
        self.malformed: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"GatewayIngest(datagrams={self.datagrams}, malformed={sum(self.malformed.values())})"

    def receive(self, data: bytes, *, received_at: float) -> IngestOutcome:
        """Handle one datagram received at ``received_at`` (server time, Unix seconds)."""
        self.datagrams += 1
        try:
            event = parse_datagram(data, received_at=received_at)
        except DatagramError as exc:
            self.malformed[exc.reason.value] += 1
            return IngestOutcome(event=None, reply=b"", rejected=exc.reason, detail=exc.detail)
        if isinstance(event, PushData):
            self.push_data += 1
            batch = to_receptions(event, received_at=received_at)
            self.crc_failed += batch.crc_failed
            self.rxpk_no_crc += batch.no_crc
            self.rxpk_ok += len(batch.receptions) - batch.no_crc
            return IngestOutcome(event=event, reply=push_ack(event.token), receptions=batch.receptions)
        if isinstance(event, PullData):
            self.pull_data += 1
            return IngestOutcome(event=event, reply=pull_ack(event.token))
        if isinstance(event, TxAck):
            self.tx_ack += 1
            if event.error != "NONE":
                self.tx_errors += 1
            return IngestOutcome(event=event, reply=b"")
        self.malformed[Reason.WRONG_DIRECTION.value] += 1
        return IngestOutcome(
            event=event,
            reply=b"",
            rejected=Reason.WRONG_DIRECTION,
            detail=f"{type(event).__name__} is sent by servers, not gateways",
        )

    def stats(self) -> IngestStats:
        """A snapshot of the counters."""
        return IngestStats(
            datagrams=self.datagrams,
            push_data=self.push_data,
            pull_data=self.pull_data,
            tx_ack=self.tx_ack,
            rxpk_ok=self.rxpk_ok,
            rxpk_no_crc=self.rxpk_no_crc,
            crc_failed=self.crc_failed,
            malformed=dict(self.malformed),
            tx_errors=self.tx_errors,
        )
