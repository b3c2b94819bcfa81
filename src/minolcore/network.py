"""The network server stage: admission, multi-gateway dedupe, replay protection, statistics.

Sans-IO and batch-first: :meth:`NetworkServer.feed` takes the receptions of one batch
(every copy of every transmission, as each gateway heard it) and returns one
:class:`NetworkUplink` per transmission with all the receptions merged into it, plus every
copy that was refused with its reason. Nothing is silently dropped.
:meth:`NetworkServer.feed_grouped` does the same work and gives it as columns
(:class:`GroupedBatch`: which reception opened each uplink, which copies merged into it),
for the pipeline's bulk path that builds no object per copy; it also takes the log
reader's :class:`~minolcore.reception.ReceptionColumns` without a ``Reception`` per line.

Wireless M-Bus takes one C scan call for the whole batch, numpy masks for admission and one
dedupe-table call; :meth:`NetworkServer.feed_wmbus_columns` exposes that path on raw columns
(a byte buffer with offsets and lengths) for collectors that upload millions of frames.
LoRaWAN frames are few per second per gateway and each needs its own CMAC, so that path is
a plain loop over the frames that open a new uplink.

Uplink ids are global to the server: wireless M-Bus uplinks get even ids, LoRaWAN uplinks
odd ones (each path has its own dedupe table and window). A copy that arrives in a later
``feed`` call within the window is reported in ``late_receptions`` under the id of the
uplink emitted before, never as a new uplink.

Replay protection keeps per device the last accepted counter: the 32-bit LoRaWAN FCnt,
rebuilt from the 16 transmitted bits, and the OMS mode-7 AFL message counter (MCR). A
new transmission whose counter does not increase is refused as ``"replay"``; copies of
the very same bytes inside the window are merged by the dedupe table before that check.

Keys (session keys, the fingerprint key) never appear in reprs, logs, errors or snapshots.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from minolcore._model import Record, replace
from minolcore._native import siphash24
from minolcore.dedupe import DedupeSnapshot, DedupeTable
from minolcore.errors import ConfigError, InputError, LoRaWANError
from minolcore.lorawan import Session, Uplink, decode_uplink
from minolcore.lorawan.join import (
    DevNonceReplayError,
    JoinMICError,
    JoinResult,
    JoinServer,
    JoinServerState,
    UnknownDeviceError,
)
from minolcore.lorawan.phy import format_eui, parse_dev_addr, parse_eui
from minolcore.reception import MAX_EVENT_TIME, Radio, Reception, ReceptionColumns, is_event_time
from minolcore.wmbus.frame import CRC_MODE_NAMES, CRCMode, CRCModeName, FrameStatus
from minolcore.wmbus.headers import Address
from minolcore.wmbus.link import decode_id, decode_manufacturer
from minolcore.wmbus.scan import Flag, ScanResult, pack_frames, scan

__all__ = [
    "STATE_VERSION",
    "GatewayStats",
    "GroupedBatch",
    "JoinAcceptance",
    "JoinedDevice",
    "NetworkBatch",
    "NetworkServer",
    "NetworkState",
    "NetworkStats",
    "NetworkUplink",
    "Outcome",
    "ReceptionInfo",
    "RejectReason",
    "RejectedReception",
    "WMBusColumns",
    "decode_state",
    "encode_state",
    "reception_info",
    "wmbus_device_key",
]

logger = logging.getLogger(__name__)

STATE_VERSION = 2
"""Layout version of :class:`NetworkState` (version 1, before OTAA, is read too)."""
_STATE_VERSIONS = frozenset((1, 2))

_LORAWAN_HEADER = struct.Struct("<BIBH")  # MHDR, DevAddr, FCtrl, FCnt16
_LORAWAN_MIN = _LORAWAN_HEADER.size + 4  # header + MIC
_LORAWAN_MAX = 255
_UPLINK_MHDRS = frozenset((0x40, 0x80))  # (un)confirmed data up, LoRaWAN R1
_JOIN_REQUEST_MHDR = 0x00
_JOIN_REQUEST_SIZE = 23  # MHDR, JoinEUI (8), DevEUI (8), DevNonce (2), MIC (4)
_FCNT16_SPAN = 1 << 16
_MAX_UNKNOWN_GATEWAYS = 1024  # ids are attacker-chosen: cap what we remember about them
_KEY_CHECK_INPUT = b"minolcore.network key check"
_INT64_MIN = -(2**63)


class RejectReason(enum.StrEnum):
    """Why a reception was refused."""

    UNKNOWN_GATEWAY = "unknown_gateway"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_CRC = "bad_crc"
    MALFORMED = "malformed"
    BAD_MIC = "bad_mic"
    REPLAY = "replay"
    BAD_TIME = "bad_time"  # received_at is no Unix time between 1970 and 9999


class Outcome(enum.IntEnum):
    """Per-item outcome codes of the columnar API (uint8 column ``outcome``). The refusals
    are the codes from UNKNOWN_GATEWAY to BAD_TIME; accepted JoinRequests come after them."""

    OPENED = 0  # first copy of a new uplink
    MERGED = 1  # another copy of an uplink opened in the same call
    LATE = 2  # a copy of an uplink emitted by an earlier call
    UNKNOWN_GATEWAY = 3
    UNKNOWN_DEVICE = 4
    BAD_CRC = 5
    MALFORMED = 6
    BAD_MIC = 7
    REPLAY = 8
    BAD_TIME = 9
    JOINED = 10  # first copy of an accepted LoRaWAN JoinRequest
    JOIN_COPY = 11  # another copy of an accepted JoinRequest (this call or a later one)


_N_OUTCOMES = len(Outcome)
_FIRST_REJECT = int(Outcome.UNKNOWN_GATEWAY)
_LAST_REJECT = int(Outcome.BAD_TIME)
_METER_CACHE_LIMIT = 1 << 16
_REASON_OF: dict[int, RejectReason] = {
    int(Outcome.UNKNOWN_GATEWAY): RejectReason.UNKNOWN_GATEWAY,
    int(Outcome.UNKNOWN_DEVICE): RejectReason.UNKNOWN_DEVICE,
    int(Outcome.BAD_CRC): RejectReason.BAD_CRC,
    int(Outcome.MALFORMED): RejectReason.MALFORMED,
    int(Outcome.BAD_MIC): RejectReason.BAD_MIC,
    int(Outcome.REPLAY): RejectReason.REPLAY,
    int(Outcome.BAD_TIME): RejectReason.BAD_TIME,
}
_OUTCOME_OF = {reason: code for code, reason in _REASON_OF.items()}


def wmbus_device_key(address: Address) -> int:
    """The packed 64-bit key of a wireless M-Bus address: M(16) ID(32) version(8) type(8)."""
    return (
        (address.manufacturer_code & 0xFFFF) << 48
        | (address.id_value & 0xFFFFFFFF) << 16
        | (address.version & 0xFF) << 8
        | (address.device_type & 0xFF)
    )


def _member(sorted_keys: npt.NDArray[np.uint64], keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Which ``keys`` occur in ``sorted_keys`` (binary search, one numpy call)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=np.bool_)
    pos = np.searchsorted(sorted_keys, keys)
    found: npt.NDArray[np.bool_] = sorted_keys[np.minimum(pos, len(sorted_keys) - 1)] == keys
    return found


def _device_name(key: int) -> str:
    return (
        f"{decode_manufacturer(key >> 48)}-{decode_id((key >> 16) & 0xFFFFFFFF)}"
        f"-{(key >> 8) & 0xFF:02X}-{key & 0xFF:02X}"
    )


def _address_of(key: int) -> Address:
    return Address(
        manufacturer_code=key >> 48,
        id_value=(key >> 16) & 0xFFFFFFFF,
        version=(key >> 8) & 0xFF,
        device_type=key & 0xFF,
    )


# --- output records ---------------------------------------------------------------------------


class ReceptionInfo(Record):
    """One gateway's copy of an uplink: event time in s since the epoch, RSSI in dBm, SNR in dB,
    frequency in MHz."""

    gateway_id: str
    received_at: float
    rssi: float | None = None
    snr: float | None = None
    frequency: float | None = None


class NetworkUplink(Record):
    """One transmission, once, with every copy heard in the same batch.

    ``uplink_id`` is global to the server; ``device`` is ``"MMM-IIIIIIII-VV-TT"`` (wireless
    M-Bus, the real meter behind a radio converter) or the DevAddr in hex (LoRaWAN);
    ``frame`` the canonical CRC-free frame or the verified PHYPayload; ``counter`` the MCR
    or the 32-bit FCnt when there is one; ``received_at`` the earliest event time of the
    receptions in s since the epoch.
    """

    uplink_id: int
    radio: Radio
    device: str
    frame: bytes
    received_at: float
    receptions: tuple[ReceptionInfo, ...]
    counter: int | None = None
    address: Address | None = None
    lorawan: Uplink | None = None


class RejectedReception(Record):
    """A refused reception: its position in the fed sequence, the reason, and the reception."""

    index: int
    reason: RejectReason
    reception: Reception


class JoinAcceptance(Record):
    """A LoRaWAN JoinRequest the server accepted, and how to answer it.

    ``join_accept`` is the encrypted JoinAccept PHYPayload for the device (safe to send
    and to log: only the device's AppKey opens it). It answers the copy of the request
    heard best (highest RSSI) in its batch: by ``gateway_id``, at ``received_at`` (s since
    the epoch), on ``frequency`` (MHz) at data rate ``mode``, and ``tmst`` (the gateway's
    concentrator counter at that reception, µs) where the gateway gave it. The device
    listens JOIN_ACCEPT_DELAY1 (5 s) after its request in RX1, 6 s in RX2; see
    :func:`minolcore.adapters.semtech.join_accept_txpk`.
    """

    dev_eui: str
    dev_addr: str
    join_accept: bytes
    gateway_id: str
    received_at: float
    rssi: float | None = None  # dBm
    frequency: float | None = None  # MHz
    mode: str = ""
    tmst: int | None = None  # µs, the gateway's counter


class JoinedDevice(Record):
    """The current session of an OTAA device as plain data, without keys: the session keys
    follow from the device's AppKey, the network's NetID and these two nonces.
    ``joined_at_ms``: the event time of the JoinRequest that began it (ms since the epoch);
    an older request, heard late, does not end it."""

    dev_eui: str
    dev_addr: str
    dev_nonce: int
    app_nonce: int
    joined_at_ms: int


class NetworkBatch(Record):
    """What one :meth:`NetworkServer.feed` call produced.

    ``late_receptions`` maps the id of an uplink emitted by an earlier call to the copies
    of it that arrived only now (a collector that uploads late). ``joins``: the
    JoinRequests accepted, each with the JoinAccept to send back.
    """

    uplinks: tuple[NetworkUplink, ...]
    late_receptions: dict[int, tuple[ReceptionInfo, ...]]
    rejected: tuple[RejectedReception, ...]
    # Positions in the fed batch of each late copy, parallel to ``late_receptions``.
    late_indexes: dict[int, tuple[int, ...]] = msgspec.field(default_factory=dict)
    joins: tuple[JoinAcceptance, ...] = ()


class OpenedFrames:
    """The wireless M-Bus receptions of a batch that opened an uplink, as columns in
    reception order: their ``rows`` (reception indexes), canonical ``frames`` and meters
    (``devices``, :func:`wmbus_device_key`); :meth:`counters` gives their message counters."""

    __slots__ = ("_has_counter", "_message_counters", "devices", "frames", "rows")

    def __init__(
        self,
        rows: list[int],
        frames: list[bytes],
        devices: list[int],
        message_counters: npt.NDArray[np.uint32],
        has_counter: npt.NDArray[np.bool_],
    ) -> None:
        self.rows = rows
        self.frames = frames
        self.devices = devices
        self._message_counters = message_counters
        self._has_counter = has_counter

    def counters(self) -> list[int | None]:
        """Each frame's AFL message counter, None where it has none."""
        counters: list[int | None] = list(self._message_counters.tolist())
        for row in np.flatnonzero(~self._has_counter).tolist():
            counters[row] = None
        return counters


_NOTHING_OPENED = OpenedFrames([], [], [], np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.bool_))


class GroupedBatch:
    """What :meth:`NetworkServer.feed_grouped` made of a batch, as columns.

    Uplink ``p`` (in the order the batch opened them) was opened by reception
    ``openers[p]`` and has id ``uplink_ids[p]``; ``copy_rows`` lists the receptions merged
    into the batch's uplinks (openers included, in batch order) and ``copy_uplinks`` the
    uplink position of each. Per reception: ``gateway`` (the server's gateway index, -1
    unknown) and ``received_ms`` (ms since the epoch; 0 for a refused time). The wireless
    M-Bus receptions that opened an uplink are ``opened`` (columns); keyed by opening
    reception: their canonical ``frames``, message ``counters`` and meter ``devices``
    (:func:`wmbus_device_key`), and the ``decoded`` LoRaWAN uplinks. ``late`` maps the id of
    an uplink emitted earlier to the receptions that are late copies of it; ``rejected``
    are the refused receptions; ``joins`` the LoRaWAN JoinRequests accepted.
    """

    __slots__ = (
        "_counters",
        "_devices",
        "_frames",
        "copy_rows",
        "copy_uplinks",
        "decoded",
        "gateway",
        "joins",
        "late",
        "opened",
        "openers",
        "received_ms",
        "receptions",
        "rejected",
        "uplink_ids",
    )

    def __init__(
        self,
        *,
        receptions: Sequence[Reception],
        openers: list[int],
        uplink_ids: list[int],
        copy_rows: npt.NDArray[np.int64],
        copy_uplinks: npt.NDArray[np.int64],
        gateway: npt.NDArray[np.int64],
        received_ms: npt.NDArray[np.int64],
        opened: OpenedFrames,
        decoded: dict[int, Uplink],
        late: dict[int, list[int]],
        rejected: tuple[RejectedReception, ...],
        joins: tuple[JoinAcceptance, ...] = (),
    ) -> None:
        self.receptions = receptions
        self.openers = openers
        self.uplink_ids = uplink_ids
        self.copy_rows = copy_rows
        self.copy_uplinks = copy_uplinks
        self.gateway = gateway
        self.received_ms = received_ms
        self.opened = opened
        self.decoded = decoded
        self.late = late
        self.rejected = rejected
        self.joins = joins
        # The tables by opening reception, made when first asked for: the columnar path
        # reads the columns of `opened`.
        self._frames: dict[int, bytes] | None = None
        self._counters: dict[int, int | None] | None = None
        self._devices: dict[int, int] | None = None

    @property
    def frames(self) -> dict[int, bytes]:
        """The canonical frame of each wireless M-Bus uplink, by opening reception."""
        if self._frames is None:
            self._frames = dict(zip(self.opened.rows, self.opened.frames, strict=True))
        return self._frames

    @property
    def counters(self) -> dict[int, int | None]:
        """The AFL message counter of each wireless M-Bus uplink (None without one), by
        opening reception."""
        if self._counters is None:
            self._counters = dict(zip(self.opened.rows, self.opened.counters(), strict=True))
        return self._counters

    @property
    def devices(self) -> dict[int, int]:
        """The meter (:func:`wmbus_device_key`) of each wireless M-Bus uplink, by opening
        reception."""
        if self._devices is None:
            self._devices = dict(zip(self.opened.rows, self.opened.devices, strict=True))
        return self._devices

    def late_copies(self) -> int:
        """The number of late copies."""
        return sum(len(indexes) for indexes in self.late.values())


class GatewayStats(Record):
    """Counters of one gateway (numbers of receptions)."""

    received: int = 0
    uplinks: int = 0
    merged: int = 0
    late: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    joins: int = 0
    join_copies: int = 0


class NetworkStats(Record):
    """Counters of the server since it was created (numbers of receptions, except ``uplinks``
    and ``joins``, which count uplinks and accepted JoinRequests; each is opened by exactly
    one reception, its other copies count as ``merged`` and ``join_copies``)."""

    received: int
    uplinks: int
    merged: int
    late: int
    rejected: dict[str, int]
    gateways: dict[str, GatewayStats]
    unknown_gateways: dict[str, int]
    joins: int = 0
    join_copies: int = 0


class NetworkState(Record):
    """Everything a server learns while running, as plain JSON-encodable data, no keys.

    ``key_check`` is a SipHash of a fixed string under the fingerprint key: it lets
    :meth:`NetworkServer.restore` refuse a different key (whose fingerprints would not
    match the stored ones) without storing the key. Counters are keyed by the packed
    wireless M-Bus address (:func:`wmbus_device_key`) and the 32-bit DevAddr.
    """

    version: int
    key_check: int
    wmbus_dedupe: DedupeSnapshot
    lorawan_dedupe: DedupeSnapshot
    wmbus_counters: dict[int, int]
    lorawan_fcnts: dict[int, int]
    refused_uplinks: dict[int, tuple[str, int]]
    stats: NetworkStats
    # OTAA: the join server's nonces and counters, each joined device's session (its keys
    # are derived again from its AppKey on restore), and the ids of accepted JoinRequests
    # whose copies may still arrive (uplink id -> first time in ms).
    join_server: JoinServerState | None = None
    joined: tuple[JoinedDevice, ...] = ()
    joined_uplinks: dict[int, int] = msgspec.field(default_factory=dict)


class WMBusColumns:
    """Per-frame result columns of :meth:`NetworkServer.feed_wmbus_columns`.

    ``outcome`` (uint8, :class:`Outcome`), ``uplink_id`` (int64, -1 when refused before the
    dedupe table), ``device_key`` (uint64, :func:`wmbus_device_key` of the real meter),
    and the ``scan`` result with the canonical frames.
    """

    __slots__ = ("device_key", "outcome", "scan", "uplink_id")

    def __init__(
        self,
        outcome: npt.NDArray[np.uint8],
        uplink_id: npt.NDArray[np.int64],
        device_key: npt.NDArray[np.uint64],
        scan_result: ScanResult,
    ) -> None:
        self.outcome = outcome
        self.uplink_id = uplink_id
        self.device_key = device_key
        self.scan = scan_result

    def __len__(self) -> int:
        return len(self.outcome)

    def __repr__(self) -> str:
        counts = np.bincount(self.outcome, minlength=_N_OUTCOMES)
        return f"<WMBusColumns {len(self)} frames, {int(counts[0])} new uplinks>"


# --- the server -------------------------------------------------------------------------------


class _LoRaWANBatch:
    """The LoRaWAN receptions of one call as the server works through them: per reception
    its payload and time (ms), and what it comes to (outcome, uplink id, decoded uplink,
    accepted join); ``id_base``: the first uplink id of the call (copies of uplinks with
    lower ids are late)."""

    __slots__ = (
        "addrs",
        "decoded",
        "fingerprints",
        "id_base",
        "joins",
        "outcome",
        "phys",
        "times",
        "uplink_ids",
    )

    def __init__(self, phys: Sequence[bytes], times: npt.NDArray[np.int64], id_base: int) -> None:
        count = len(phys)
        self.phys = phys
        self.times = times
        self.id_base = id_base
        self.outcome = np.full(count, Outcome.OPENED, dtype=np.uint8)
        self.uplink_ids = np.full(count, -1, dtype=np.int64)
        self.decoded: list[Uplink | None] = [None] * count
        self.joins: dict[int, JoinResult] = {}
        self.fingerprints = np.zeros(count, dtype=np.uint64)
        self.addrs = np.full(count, -1, dtype=np.int64)  # -1: a JoinRequest


class NetworkServer:
    """Admission, dedupe and replay protection for wireless M-Bus and LoRaWAN receptions.

    ``gateways``: the registered gateway ids. ``wmbus_devices``: addresses of the registered
    meters (a meter behind a radio converter by its own address); ``wmbus_meters``:
    (manufacturer code, ID) pairs of meters registered for any version and device type.
    ``lorawan_devices``: one :class:`~minolcore.lorawan.Session` per DevAddr (its ``fcnt_up`` seeds the replay
    counter): activation by personalisation. ``join_server``: the
    :class:`~minolcore.lorawan.JoinServer` holding the AppKeys of the OTAA devices; each
    JoinRequest it accepts gives its device a new session (the one before it ends) and a
    JoinAccept to send back (``joins`` of the batch). ``fingerprint_key``: 16 secret bytes,
    random by default (pass the same key to :meth:`restore`). Windows and retention are in
    ms of event time; retention defaults to twice the window; ``max_capacity`` caps each
    dedupe table in slots (24 bytes each).
    ``gateway_crc``: per gateway id, how it hands over wireless M-Bus frames: ``"present"``
    (with their data-link CRCs, as received), ``"absent"`` (CRCs removed) or ``"auto"`` (the
    default: detected per frame). Declare it where known: a format-B frame with a bad CRC
    is indistinguishable from a CRC-free frame, so only ``"present"`` rejects it as
    ``bad_crc``.
    """

    def __init__(
        self,
        *,
        gateways: Iterable[str],
        wmbus_devices: Iterable[Address] = (),
        wmbus_meters: Iterable[tuple[int, int]] = (),
        lorawan_devices: Iterable[Session] = (),
        join_server: JoinServer | None = None,
        fingerprint_key: bytes | None = None,
        wmbus_window_ms: int = 300_000,
        lorawan_window_ms: int = 1_000,
        wmbus_retention_ms: int | None = None,
        lorawan_retention_ms: int | None = None,
        initial_capacity: int = 1 << 12,
        max_capacity: int = 1 << 24,
        gateway_crc: Mapping[str, CRCModeName] | None = None,
    ) -> None:
        key = os.urandom(16) if fingerprint_key is None else fingerprint_key
        if not isinstance(key, bytes) or len(key) != 16:
            raise ConfigError("the fingerprint key must be 16 bytes")
        if wmbus_window_ms < 0 or lorawan_window_ms < 0:
            raise ConfigError("dedupe windows must be >= 0 ms")
        self._key = key
        # device key -> (device name, address) of the meters seen.
        self._meters: dict[int, tuple[str, Address]] = {}
        self._gateway_ids: list[str] = []
        self._gateway_index: dict[str, int] = {}
        for gateway in gateways:
            if gateway not in self._gateway_index:
                self._gateway_index[gateway] = len(self._gateway_ids)
                self._gateway_ids.append(gateway)
        self._gateway_crc = self._crc_modes({} if gateway_crc is None else gateway_crc)
        self._gateway_crc_codes = np.array(
            [CRCMode[mode.upper()] for mode in self._gateway_crc], dtype=np.uint8
        )
        self._wmbus_keys = np.unique(np.array([wmbus_device_key(a) for a in wmbus_devices], dtype=np.uint64))
        # Meters registered by manufacturer and ID alone (any version and device type).
        self._wmbus_meter_keys = np.unique(
            np.array([(m & 0xFFFF) << 32 | (i & 0xFFFFFFFF) for m, i in wmbus_meters], dtype=np.uint64)
        )
        self._sessions: dict[int, Session] = {}
        self._fcnts: dict[int, int] = {}
        for session in lorawan_devices:
            addr = int(session.dev_addr, 16)
            self._sessions[addr] = session
            if session.fcnt_up is not None:
                self._fcnts[addr] = session.fcnt_up
        self._join_server = join_server
        if join_server is not None:
            join_server.reserve_dev_addrs(self._sessions)  # the ABP devices' addresses
        # OTAA: each joined device's session by DevEUI, and the DevEUI behind a DevAddr (the
        # current one of each device, and the one before it, whose late copies may still come).
        self._joined: dict[str, JoinedDevice] = {}
        self._dev_euis: dict[int, str] = {}
        self._wmbus_window = int(wmbus_window_ms)
        self._lorawan_window = int(lorawan_window_ms)
        wmbus_retention = 2 * self._wmbus_window if wmbus_retention_ms is None else wmbus_retention_ms
        lorawan_retention = 2 * self._lorawan_window if lorawan_retention_ms is None else lorawan_retention_ms
        if wmbus_retention < self._wmbus_window or lorawan_retention < self._lorawan_window:
            raise ConfigError("retention must be at least the dedupe window")
        self._wmbus_table = DedupeTable(
            initial_capacity=initial_capacity, max_capacity=max_capacity, retention_ms=wmbus_retention
        )
        self._lorawan_table = DedupeTable(
            initial_capacity=initial_capacity, max_capacity=max_capacity, retention_ms=lorawan_retention
        )
        self._mcrs: dict[int, int] = {}
        # Uplink ids whose first copy was refused after the dedupe table gave them an id
        # (replay, bad MIC), or was an accepted JoinRequest (JOIN_COPY): later copies share
        # that verdict. Value: (outcome, first time in ms).
        self._refused: dict[int, tuple[int, int]] = {}
        self._gateway_counts = np.zeros((len(self._gateway_ids), _N_OUTCOMES), dtype=np.int64)
        self._unknown_gateways: dict[str, int] = {}
        self._unknown_other = 0

    # -- configuration ---------------------------------------------------------------------

    def _crc_modes(self, gateway_crc: Mapping[str, CRCModeName]) -> tuple[CRCModeName, ...]:
        """The CRC mode of every registered gateway, in gateway-index order."""
        if not isinstance(gateway_crc, Mapping):
            raise ConfigError("gateway_crc must map gateway ids to crc modes")
        for gateway, mode in gateway_crc.items():
            if gateway not in self._gateway_index:
                raise ConfigError(f"gateway_crc names {gateway!r}, which is not a registered gateway")
            if mode not in CRC_MODE_NAMES:
                raise ConfigError(
                    f"gateway_crc[{gateway!r}] must be one of {', '.join(CRC_MODE_NAMES)}, got {mode!r}"
                )
        return tuple(gateway_crc.get(gateway, "auto") for gateway in self._gateway_ids)

    @property
    def gateway_crc(self) -> dict[str, CRCModeName]:
        """How each registered gateway hands over wireless M-Bus frames (see the class)."""
        return dict(zip(self._gateway_ids, self._gateway_crc, strict=True))

    @property
    def gateway_ids(self) -> tuple[str, ...]:
        """The registered gateways; position i is gateway index i of the columnar API."""
        return tuple(self._gateway_ids)

    def gateway_index(self, gateway_id: str) -> int:
        """Index of a gateway for the columnar API, -1 if it is not registered."""
        return self._gateway_index.get(gateway_id, -1)

    @property
    def key_check(self) -> int:
        """A 64-bit check value of the fingerprint key (not the key; safe to store)."""
        return siphash24(self._key, _KEY_CHECK_INPUT)

    def __repr__(self) -> str:
        return (
            f"<NetworkServer {len(self._gateway_ids)} gateways, {len(self._wmbus_keys)} wM-Bus devices, "
            f"{len(self._sessions)} LoRaWAN devices, windows {self._wmbus_window}/{self._lorawan_window} ms, "
            "keys=<redacted>>"
        )

    # -- wireless M-Bus, columnar ----------------------------------------------------------

    def feed_wmbus_columns(
        self,
        buffer: Any,
        offsets: Any,
        lengths: Any,
        gateway_index: Any,
        times_ms: Any,
    ) -> WMBusColumns:
        """Admit, dedupe and replay-check a batch of wireless M-Bus frames given as columns.

        Frame i is ``buffer[offsets[i] : offsets[i] + lengths[i]]`` (bytes, any CRC shape);
        ``gateway_index[i]`` is :meth:`gateway_index` of its gateway (-1: unknown);
        ``times_ms[i]`` its event time in ms since the epoch. Updates the counters and the
        per-device state; returns one outcome per frame.
        """
        columns = self._wmbus_columns(buffer, offsets, lengths, gateway_index, times_ms)
        self._unknown_other += int(np.count_nonzero(columns.outcome == Outcome.UNKNOWN_GATEWAY))
        return columns

    def _wmbus_columns(
        self, buffer: Any, offsets: Any, lengths: Any, gateway_index: Any, times_ms: Any
    ) -> WMBusColumns:
        gw = np.ascontiguousarray(gateway_index, dtype=np.int64)
        times = np.ascontiguousarray(times_ms, dtype=np.int64)
        # Before the scan: the per-frame CRC modes are picked by gateway index.
        if gw.ndim != 1 or gw.shape != np.shape(offsets) or times.shape != gw.shape:
            raise InputError("gateway_index and times_ms need one value per frame")
        result = self._scan(buffer, offsets, lengths, gw)
        count = len(result)
        info = result.info
        outcome = np.full(count, Outcome.OPENED, dtype=np.uint8)
        status = info["status"]
        outcome[status != FrameStatus.OK] = Outcome.MALFORMED
        outcome[status == FrameStatus.CRC] = Outcome.BAD_CRC
        device = (
            info["meter_manufacturer"].astype(np.uint64) << np.uint64(48)
            | info["meter_id"].astype(np.uint64) << np.uint64(16)
            | info["meter_version"].astype(np.uint64) << np.uint64(8)
            | info["meter_device_type"].astype(np.uint64)
        )
        known = _member(self._wmbus_keys, device)
        if len(self._wmbus_meter_keys):
            known |= _member(self._wmbus_meter_keys, device >> np.uint64(16))
        outcome[(outcome == Outcome.OPENED) & ~known] = Outcome.UNKNOWN_DEVICE
        bad_gateway = (gw < 0) | (gw >= len(self._gateway_ids))
        outcome[bad_gateway] = Outcome.UNKNOWN_GATEWAY
        uplink_ids = np.full(count, -1, dtype=np.int64)
        admitted = np.flatnonzero(outcome == Outcome.OPENED)
        if len(admitted):
            id_base = self._wmbus_table.stats().next_id
            ids, new = self._wmbus_table.process(
                info["fingerprint"][admitted], times[admitted], self._wmbus_window
            )
            uplink_ids[admitted] = ids * 2
            codes = np.where(new, np.uint8(Outcome.OPENED), np.uint8(Outcome.MERGED))
            codes[~new & (ids < id_base)] = Outcome.LATE
            has_mcr = (info["flags"][admitted] & Flag.MCR) != 0
            opened_mcr = np.flatnonzero(new & has_mcr)
            if len(opened_mcr):
                rows = admitted[opened_mcr]
                ok = self._check_mcrs(device[rows], info["message_counter"][rows].astype(np.int64))
                replayed = opened_mcr[~ok]
                codes[replayed] = Outcome.REPLAY
                for row in admitted[replayed]:
                    self._refused[int(uplink_ids[row])] = (int(Outcome.REPLAY), int(times[row]))
            if self._refused:
                self._apply_refused(uplink_ids[admitted], codes, new)
            outcome[admitted] = codes
            self._prune_refused(self._wmbus_table, parity=0)
        self._count(gw, outcome, bad_gateway)
        return WMBusColumns(outcome, uplink_ids, device, result)

    def _scan(self, buffer: Any, offsets: Any, lengths: Any, gw: npt.NDArray[np.int64]) -> ScanResult:
        """:func:`scan` with each frame in the CRC mode of its gateway (``"auto"`` for an
        unknown gateway, whose frames are refused anyway)."""
        codes = self._gateway_crc_codes
        if not codes.any():  # every gateway "auto": the common case needs no mode column
            return scan(buffer, offsets, lengths, key=self._key)
        known = (gw >= 0) & (gw < len(codes))
        modes = np.where(known, codes[np.where(known, gw, 0)], np.uint8(CRCMode.AUTO))
        return scan(buffer, offsets, lengths, key=self._key, crc_per_frame=modes)

    def _check_mcrs(
        self, keys: npt.NDArray[np.uint64], counters: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Which of these new uplinks (in batch order) raise their meter's MCR; updates the state.

        An item passes iff its counter exceeds the meter's last counter and every earlier
        counter of the batch: a refused item never exceeds that running maximum, so the
        running maximum over all earlier items equals the one over the accepted ones, which
        a segmented cumulative maximum gives without a Python loop.
        """
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        values = counters[order] + 1  # 0 means "no counter yet"
        unique, starts, group = np.unique(sorted_keys, return_index=True, return_inverse=True)
        last = np.array([self._mcrs.get(int(k), -1) + 1 for k in unique], dtype=np.int64)
        offset = group.astype(np.int64) << 34  # counters are < 2**32: groups never overlap
        running = np.maximum.accumulate(values + offset)
        previous = np.empty_like(running)
        previous[0] = 0
        previous[1:] = running[:-1] - offset[1:]
        previous[starts] = 0
        bound = np.maximum(np.maximum(previous, 0), last[group])
        accepted_sorted = values > bound
        new_last = np.maximum(last, np.maximum.reduceat(values, starts)) - 1
        for k, value in zip(unique.tolist(), new_last.tolist(), strict=True):
            self._mcrs[k] = value
        accepted = np.empty(len(keys), dtype=np.bool_)
        accepted[order] = accepted_sorted
        return accepted

    def _apply_refused(
        self, ids: npt.NDArray[np.int64], codes: npt.NDArray[np.uint8], new: npt.NDArray[np.bool_]
    ) -> None:
        refused_ids = np.fromiter(self._refused, dtype=np.int64, count=len(self._refused))
        refused_codes = np.fromiter(
            (v[0] for v in self._refused.values()), dtype=np.uint8, count=len(refused_ids)
        )
        order = np.argsort(refused_ids)
        refused_ids, refused_codes = refused_ids[order], refused_codes[order]
        pos = np.minimum(np.searchsorted(refused_ids, ids), len(refused_ids) - 1)
        hit = ~new & (refused_ids[pos] == ids)
        codes[hit] = refused_codes[pos[hit]]

    def _prune_refused(self, table: DedupeTable, parity: int) -> None:
        # A refusal must live exactly as long as its fingerprint in the table, or a late copy
        # would find the entry and pass as a copy of an accepted uplink. The table drops an
        # entry only at a sweep, and a sweep drops every entry first seen before its cutoff.
        if not self._refused:
            return
        stats = table.stats()
        if stats.last_sweep_watermark < _INT64_MIN + stats.retention_ms:
            return
        cutoff = stats.last_sweep_watermark - stats.retention_ms
        self._refused = {uid: v for uid, v in self._refused.items() if uid % 2 != parity or v[1] >= cutoff}

    def _count(
        self, gw: npt.NDArray[np.int64], outcome: npt.NDArray[np.uint8], bad_gateway: npt.NDArray[np.bool_]
    ) -> None:
        good = ~bad_gateway
        flat = gw[good] * _N_OUTCOMES + outcome[good]
        counts = np.bincount(flat, minlength=self._gateway_counts.size)
        self._gateway_counts += counts.reshape(self._gateway_counts.shape)

    def _count_unknown_gateways(self, gateway_ids: Iterable[str]) -> None:
        for gateway in gateway_ids:
            if gateway in self._unknown_gateways or len(self._unknown_gateways) < _MAX_UNKNOWN_GATEWAYS:
                self._unknown_gateways[gateway] = self._unknown_gateways.get(gateway, 0) + 1
            else:
                self._unknown_other += 1

    # -- LoRaWAN -----------------------------------------------------------------------------

    def _feed_lorawan(
        self, phys: Sequence[bytes], gw: npt.NDArray[np.int64], times: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], list[Uplink | None], dict[int, JoinResult]]:
        """(outcome, uplink id, decoded uplink, accepted join) of each PHYPayload. A
        JoinRequest is deduplicated like a data uplink, and only its first copy goes to the
        join server. With JoinRequests in the batch, everything is taken in event-time
        order: a join begins its device's session for the uplinks after it, and ends the
        one before it for them alone."""
        batch = _LoRaWANBatch(phys, times, self._lorawan_table.stats().next_id)
        is_join = np.zeros(len(phys), dtype=np.bool_)
        for i, phy in enumerate(phys):
            if gw[i] < 0:
                batch.outcome[i] = Outcome.UNKNOWN_GATEWAY
                continue
            if len(phy) == _JOIN_REQUEST_SIZE and phy[0] == _JOIN_REQUEST_MHDR:
                dev_eui = int.from_bytes(phy[9:17], "little")
                if self._join_server is None or not self._join_server.has_device(dev_eui):
                    batch.outcome[i] = Outcome.UNKNOWN_DEVICE
                    continue
                is_join[i] = True
            else:
                if not _LORAWAN_MIN <= len(phy) <= _LORAWAN_MAX:
                    batch.outcome[i] = Outcome.MALFORMED
                    continue
                mhdr, addr, fctrl, _ = _LORAWAN_HEADER.unpack_from(phy)
                if mhdr not in _UPLINK_MHDRS or _LORAWAN_HEADER.size + (fctrl & 0x0F) > len(phy) - 4:
                    batch.outcome[i] = Outcome.MALFORMED
                    continue
                batch.addrs[i] = addr
            batch.fingerprints[i] = siphash24(self._key, phy)
        candidates = np.flatnonzero(batch.outcome == Outcome.OPENED)
        if not is_join[candidates].any():
            self._admit_uplinks(batch, candidates)
        else:
            in_time = candidates[np.argsort(times[candidates], kind="stable")]
            # Runs of data uplinks between the JoinRequests, each request a run of its own.
            cuts = np.flatnonzero(is_join[in_time])
            for run in np.split(in_time, np.unique(np.concatenate([cuts, cuts + 1]))):
                if not len(run):
                    continue
                if is_join[run[0]]:
                    self._admit_join(batch, int(run[0]))
                else:
                    self._admit_uplinks(batch, run)
        self._prune_refused(self._lorawan_table, parity=1)
        return batch.outcome, batch.uplink_ids, batch.decoded, batch.joins

    def _dedupe_lorawan(
        self, batch: _LoRaWANBatch, rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
        """Give ``rows`` their uplink ids; (their codes as copies, which are new)."""
        ids, new = self._lorawan_table.process(
            batch.fingerprints[rows], batch.times[rows], self._lorawan_window
        )
        batch.uplink_ids[rows] = ids * 2 + 1
        codes = np.where(new, np.uint8(Outcome.OPENED), np.uint8(Outcome.MERGED))
        codes[~new & (ids < batch.id_base)] = Outcome.LATE
        return codes, new

    def _admit_uplinks(self, batch: _LoRaWANBatch, rows: npt.NDArray[np.int64]) -> None:
        """Dedupe and verify data uplinks, in the order of ``rows``. A DevAddr whose session
        a rejoin ended still finds its copies of uplinks stored before; nothing new."""
        addrs = batch.addrs[rows].tolist()
        known = np.fromiter(
            (addr in self._sessions or addr in self._dev_euis for addr in addrs),
            dtype=np.bool_,
            count=len(addrs),
        )
        batch.outcome[rows[~known]] = Outcome.UNKNOWN_DEVICE
        admitted = rows[known]
        if not len(admitted):
            return
        codes, new = self._dedupe_lorawan(batch, admitted)
        for j in np.flatnonzero(new).tolist():
            row = int(admitted[j])
            addr = int(batch.addrs[row])
            if addr in self._sessions:
                code, up = self._verify_lorawan(batch.phys[row], addr)
            else:
                code, up = int(Outcome.UNKNOWN_DEVICE), None
            codes[j] = code
            if up is None:
                self._refused[int(batch.uplink_ids[row])] = (code, int(batch.times[row]))
            else:
                batch.decoded[row] = up
        if self._refused:
            self._apply_refused(batch.uplink_ids[admitted], codes, new)
        batch.outcome[admitted] = codes

    def _admit_join(self, batch: _LoRaWANBatch, row: int) -> None:
        """Dedupe one copy of a JoinRequest; the first copy is answered (or refused), the
        others share its verdict."""
        rows = np.array([row], dtype=np.int64)
        _, new = self._dedupe_lorawan(batch, rows)
        uid = int(batch.uplink_ids[row])
        if new[0]:
            code, joined = self._verify_join(batch.phys[row], int(batch.times[row]))
            if joined is not None:
                batch.joins[row] = joined
            # Later copies of an accepted request are its copies, not new requests.
            self._refused[uid] = (
                int(Outcome.JOIN_COPY) if joined is not None else code,
                int(batch.times[row]),
            )
            batch.outcome[row] = code
            return
        # A copy: the first one's verdict (gone only with its fingerprint from the table).
        held = self._refused.get(uid)
        batch.outcome[row] = Outcome.JOIN_COPY if held is None else held[0]

    def _verify_join(self, phy: bytes, at_ms: int) -> tuple[int, JoinResult | None]:
        """The outcome of a JoinRequest's first copy, heard at ``at_ms`` (ms since the epoch);
        an accepted one begins its device's new session here. A request older than the
        device's current session is refused as a replay: the device moved on."""
        assert self._join_server is not None  # only requests of its devices come here
        current = self._joined.get(f"{int.from_bytes(phy[9:17], 'little'):016X}")
        if current is not None and at_ms < current.joined_at_ms:
            return int(Outcome.REPLAY), None
        try:
            result = self._join_server.handle_join_request(phy)
        except UnknownDeviceError:
            return int(Outcome.UNKNOWN_DEVICE), None
        except JoinMICError:
            return int(Outcome.BAD_MIC), None
        except DevNonceReplayError:
            return int(Outcome.REPLAY), None
        except LoRaWANError:
            return int(Outcome.MALFORMED), None
        joined = JoinedDevice(
            dev_eui=result.dev_eui,
            dev_addr=result.dev_addr,
            dev_nonce=result.dev_nonce,
            app_nonce=result.app_nonce,
            joined_at_ms=at_ms,
        )
        holder = self._address_holder(joined)
        if holder is not None:
            # Only a DevAddr allocator of the user's can hand out an address in use.
            logger.error(
                "the join of %s was given DevAddr %s, which %s holds", joined.dev_eui, joined.dev_addr, holder
            )
            return int(Outcome.UNKNOWN_DEVICE), None
        self._start_session(joined, result.session)
        return int(Outcome.JOINED), result

    def _address_holder(self, joined: JoinedDevice) -> str | None:
        """Who else holds the DevAddr of a new session: an ABP device, another OTAA device, or
        nobody (None)."""
        addr = int(joined.dev_addr, 16)
        if addr not in self._sessions:
            return None
        owner = self._dev_euis.get(addr)
        if owner is None:
            return "an ABP device"
        return None if owner == joined.dev_eui else f"the OTAA device {owner}"

    def _start_session(self, joined: JoinedDevice, session: Session) -> None:
        """Make ``session`` the OTAA device's only one: the DevAddr of its session before
        (if another) admits nothing new, and the new one counts frames from scratch."""
        addr = int(joined.dev_addr, 16)
        before = self._joined.get(joined.dev_eui)
        if before is not None and before.dev_addr != joined.dev_addr:
            old = int(before.dev_addr, 16)
            self._sessions.pop(old, None)
            self._fcnts.pop(old, None)
            # Only the current and the previous DevAddr of a device stay named.
            for stale in [a for a, eui in self._dev_euis.items() if eui == joined.dev_eui and a != old]:
                del self._dev_euis[stale]
        self._joined[joined.dev_eui] = joined
        self._sessions[addr] = session
        self._fcnts.pop(addr, None)
        self._dev_euis[addr] = joined.dev_eui

    def dev_eui_of(self, dev_addr: str | int) -> str | None:
        """The DevEUI (16 hex digits) of the OTAA device that holds or held the DevAddr
        (8 hex digits or the 32-bit value) in its current or previous session, else None.
        Raises :class:`InputError` for a DevAddr that is not one."""
        return self._dev_euis.get(parse_dev_addr(dev_addr))

    def _verify_lorawan(self, phy: bytes, addr: int) -> tuple[int, Uplink | None]:
        session = self._sessions[addr]
        last = self._fcnts.get(addr)
        try:
            up = decode_uplink(phy, nwk_s_key=session.nwk_s_key, app_s_key=session.app_s_key, last_fcnt=last)
        except LoRaWANError:
            # A counter that would pass 2**32 - 1, or bytes decode_uplink refuses.
            return int(Outcome.MALFORMED), None
        if not up.mic_valid:
            # An old frame replayed after a 16-bit rollover is rebuilt one span too high and
            # fails the MIC; if it verifies at its real, lower counter it is a replay.
            if last is not None and up.fcnt - _FCNT16_SPAN >= 0:
                older = decode_uplink(
                    phy,
                    nwk_s_key=session.nwk_s_key,
                    app_s_key=session.app_s_key,
                    last_fcnt=up.fcnt - _FCNT16_SPAN,
                )
                if older.mic_valid and older.fcnt <= last:
                    return int(Outcome.REPLAY), None
            return int(Outcome.BAD_MIC), None
        if last is not None and up.fcnt <= last:
            return int(Outcome.REPLAY), None
        self._fcnts[addr] = up.fcnt
        return int(Outcome.OPENED), up

    # -- the object API ----------------------------------------------------------------------

    def feed(self, receptions: Sequence[Reception]) -> NetworkBatch:
        """Process one batch of receptions (any radio, any gateway, any order).

        Returns one uplink per new transmission with the copies of this batch merged into
        it, copies of uplinks emitted earlier as ``late_receptions``, and every refused
        reception with its reason.
        """
        return self.objects(self.feed_grouped(receptions))

    def feed_grouped(self, receptions: Sequence[Reception]) -> GroupedBatch:
        """:meth:`feed` without the per-copy objects: the same processing and counters, the
        result as columns (see :class:`GroupedBatch`)."""
        count = len(receptions)
        outcome = np.zeros(count, dtype=np.uint8)
        gateway = np.full(count, -1, dtype=np.int64)
        received_ms = np.zeros(count, dtype=np.int64)
        lorawan_rows: list[int] = []
        if isinstance(receptions, ReceptionColumns):
            wmbus = self._wmbus_of_columns(receptions, outcome)
        else:
            wmbus_rows: list[int] = []
            bad_times: list[int] = []
            for i, reception in enumerate(receptions):
                if not is_event_time(reception.received_at):
                    bad_times.append(i)
                    continue
                (lorawan_rows if reception.radio is Radio.LORAWAN else wmbus_rows).append(i)
            if bad_times:
                self._refuse_bad_times(receptions, bad_times, outcome)
            selected = [receptions[i] for i in wmbus_rows]
            wmbus = (
                np.array(wmbus_rows, dtype=np.int64),
                *pack_frames([r.payload for r in selected]),
                np.array([self._gateway_index.get(r.gateway_id, -1) for r in selected], dtype=np.int64),
                _times_ms([r.received_at for r in selected]),
            )
        uplink_ids = np.full(count, -1, dtype=np.int64)
        opened_frames = _NOTHING_OPENED
        decoded: dict[int, Uplink] = {}
        joins: tuple[JoinAcceptance, ...] = ()
        rows, buffer, offsets, lengths, gw, times = wmbus
        if len(rows):
            columns = self._wmbus_columns(buffer, offsets, lengths, gw, times)
            outcome[rows] = columns.outcome
            uplink_ids[rows] = columns.uplink_id
            gateway[rows] = gw
            received_ms[rows] = times
            opened = np.flatnonzero(columns.outcome == Outcome.OPENED)
            info = columns.scan.info
            output = columns.scan.output.tobytes()
            # Whole columns at C level (map), each field of the structured array taken
            # alone: no Python step per uplink, no copy of whole records.
            starts = info["out_offset"][opened].astype(np.int64)
            ends = (starts + info["out_length"][opened]).tolist()
            opened_frames = OpenedFrames(
                rows[opened].tolist(),
                list(map(output.__getitem__, map(slice, starts.tolist(), ends))),
                columns.device_key[opened].tolist(),
                info["message_counter"][opened],
                (info["flags"][opened] & int(Flag.MCR)) != 0,
            )
        if lorawan_rows:
            selected = [receptions[i] for i in lorawan_rows]
            gw = np.array([self._gateway_index.get(r.gateway_id, -1) for r in selected], dtype=np.int64)
            times = _times_ms([r.received_at for r in selected])
            codes, ids, ups, accepted = self._feed_lorawan([r.payload for r in selected], gw, times)
            self._count(gw, codes, gw < 0)
            rows = np.array(lorawan_rows, dtype=np.int64)
            outcome[rows] = codes
            uplink_ids[rows] = ids
            gateway[rows] = gw
            received_ms[rows] = times
            for j, up in enumerate(ups):
                if up is not None:
                    decoded[lorawan_rows[j]] = up
            joins = _acceptances(selected, ids, codes, accepted)
        refused = np.flatnonzero((outcome >= _FIRST_REJECT) & (outcome <= _LAST_REJECT)).tolist()
        rejected = tuple(
            RejectedReception(index=i, reason=_REASON_OF[code], reception=receptions[i])
            for i, code in zip(refused, outcome[refused].tolist(), strict=True)
        )
        self._count_unknown_gateways(
            [item.reception.gateway_id for item in rejected if item.reason is RejectReason.UNKNOWN_GATEWAY]
        )
        if rejected:
            logger.debug("network batch: %d receptions, %d refused", count, len(rejected))
        late: dict[int, list[int]] = {}
        for i in np.flatnonzero(outcome == Outcome.LATE).tolist():
            late.setdefault(int(uplink_ids[i]), []).append(i)
        openers = np.flatnonzero(outcome == Outcome.OPENED)
        copies = np.flatnonzero(outcome <= Outcome.MERGED)
        # Each copy's uplink by position: the openers' ids, sorted, searched.
        opener_ids = uplink_ids[openers]
        by_id = np.argsort(opener_ids, kind="stable")
        copy_ids = uplink_ids[copies]
        place = np.minimum(np.searchsorted(opener_ids[by_id], copy_ids), max(len(openers) - 1, 0))
        found = by_id[place] if len(openers) else np.zeros(0, dtype=np.int64)
        matched = opener_ids[found] == copy_ids if len(openers) else np.zeros(len(copies), dtype=np.bool_)
        if not matched.all():
            # Only a dedupe-table defect could merge a copy into an uplink no reception opened.
            logger.warning("%d merged copies name no uplink of their batch", int((~matched).sum()))
            copies, found = copies[matched], found[matched]
        return GroupedBatch(
            receptions=receptions,
            openers=openers.tolist(),
            uplink_ids=opener_ids.tolist(),
            copy_rows=copies,
            copy_uplinks=found.astype(np.int64),
            gateway=gateway,
            received_ms=received_ms,
            opened=opened_frames,
            decoded=decoded,
            late=late,
            rejected=rejected,
            joins=joins,
        )

    def _wmbus_of_columns(
        self, receptions: ReceptionColumns, outcome: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.int64], Any, Any, Any, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(rows, buffer, offsets, lengths, gateway indexes, times in ms) of the receptions
        with a possible time (the others refused as bad_time), from their columns."""
        seconds = receptions.received_at
        possible = (seconds >= 0.0) & (seconds < MAX_EVENT_TIME)  # False for NaN too
        if receptions.gateway_table == tuple(self._gateway_ids):
            gw = receptions.gateway.astype(np.int64)
        else:
            remap = np.array([self._gateway_index.get(name, -1) for name in receptions.gateway_table] + [-1])
            gw = remap[receptions.gateway]  # -1 picks the appended -1
        for row, name in receptions.other_gateways.items():
            gw[row] = self._gateway_index.get(name, -1)
        if not possible.all():
            self._refuse_bad_times(receptions, np.flatnonzero(~possible).tolist(), outcome)
        rows = np.flatnonzero(possible)
        return (
            rows,
            receptions.buffer,
            receptions.offsets[rows],
            receptions.lengths[rows],
            gw[rows],
            np.rint(seconds[rows] * 1000).astype(np.int64),
        )

    def _refuse_bad_times(
        self, receptions: Sequence[Reception], rows: list[int], outcome: npt.NDArray[np.uint8]
    ) -> None:
        outcome[rows] = Outcome.BAD_TIME
        gw = np.array([self._gateway_index.get(receptions[i].gateway_id, -1) for i in rows], dtype=np.int64)
        self._count(gw, outcome[rows], gw < 0)

    def meter(self, device_key: int) -> tuple[str, Address]:
        """The name (``"MMM-IIIIIIII-VV-TT"``) and address of a wireless M-Bus meter by its
        :func:`wmbus_device_key` (built once per meter)."""
        meter = self._meters.get(device_key)
        if meter is None:
            if len(self._meters) >= _METER_CACHE_LIMIT:
                self._meters.clear()
            meter = self._meters[device_key] = (_device_name(device_key), _address_of(device_key))
        return meter

    def uplink(
        self, batch: GroupedBatch, position: int, receptions: tuple[ReceptionInfo, ...]
    ) -> NetworkUplink:
        """The :class:`NetworkUplink` of ``batch``'s uplink number ``position``, heard in
        ``receptions``."""
        i = batch.openers[position]
        uid = batch.uplink_ids[position]
        first = (
            receptions[0].received_at if len(receptions) == 1 else min([r.received_at for r in receptions])
        )
        up = batch.decoded.get(i)
        if up is not None:
            return NetworkUplink(
                uplink_id=uid,
                radio=Radio.LORAWAN,
                device=up.dev_addr,
                frame=bytes(batch.receptions[i].payload),
                received_at=first,
                receptions=receptions,
                counter=up.fcnt,
                lorawan=up,
            )
        name, address = self.meter(batch.devices[i])
        return NetworkUplink(
            uplink_id=uid,
            radio=Radio.WMBUS,
            device=name,
            frame=batch.frames[i],
            received_at=first,
            receptions=receptions,
            counter=batch.counters[i],
            address=address,
        )

    def objects(self, batch: GroupedBatch) -> NetworkBatch:
        """The :class:`NetworkBatch` (uplinks and copies as objects) of a grouped batch."""
        receptions = batch.receptions
        infos: list[list[ReceptionInfo]] = [[] for _ in batch.openers]
        for row, position in zip(batch.copy_rows.tolist(), batch.copy_uplinks.tolist(), strict=True):
            infos[position].append(reception_info(receptions[row]))
        uplinks = [self.uplink(batch, position, tuple(copies)) for position, copies in enumerate(infos)]
        return NetworkBatch(
            uplinks=tuple(uplinks),
            late_receptions={
                uid: tuple(reception_info(receptions[i]) for i in indexes)
                for uid, indexes in batch.late.items()
            },
            rejected=batch.rejected,
            late_indexes={uid: tuple(indexes) for uid, indexes in batch.late.items()},
            joins=batch.joins,
        )

    # -- statistics, snapshot, restore -------------------------------------------------------

    def stats(self) -> NetworkStats:
        """Counters since creation (or carried over by :meth:`restore`)."""
        gateways: dict[str, GatewayStats] = {}
        for index, gateway in enumerate(self._gateway_ids):
            row = self._gateway_counts[index].tolist()
            gateways[gateway] = GatewayStats(
                received=sum(row),
                uplinks=row[Outcome.OPENED],
                merged=row[Outcome.MERGED],
                late=row[Outcome.LATE],
                rejected={_REASON_OF[c].value: row[c] for c in _REASON_OF if row[c]},
                joins=row[Outcome.JOINED],
                join_copies=row[Outcome.JOIN_COPY],
            )
        totals = self._gateway_counts.sum(axis=0).tolist()
        unknown_total = sum(self._unknown_gateways.values()) + self._unknown_other
        rejected = {_REASON_OF[c].value: totals[c] for c in _REASON_OF if totals[c]}
        if unknown_total:
            rejected[RejectReason.UNKNOWN_GATEWAY.value] = unknown_total
        unknown = dict(self._unknown_gateways)
        if self._unknown_other:
            unknown["<other>"] = self._unknown_other
        return NetworkStats(
            received=sum(totals) + unknown_total,
            uplinks=totals[Outcome.OPENED],
            merged=totals[Outcome.MERGED],
            late=totals[Outcome.LATE],
            rejected=rejected,
            gateways=gateways,
            unknown_gateways=unknown,
            joins=totals[Outcome.JOINED],
            join_copies=totals[Outcome.JOIN_COPY],
        )

    def snapshot(self) -> NetworkState:
        """The learned state (dedupe tables, counters, refusals, statistics, the OTAA join
        server's nonces and the joined devices' sessions), without keys."""
        return NetworkState(
            version=STATE_VERSION,
            key_check=self.key_check,
            wmbus_dedupe=self._wmbus_table.snapshot(),
            lorawan_dedupe=self._lorawan_table.snapshot(),
            wmbus_counters=dict(self._mcrs),
            lorawan_fcnts=dict(self._fcnts),
            refused_uplinks={
                uid: (_REASON_OF[code].value, t)
                for uid, (code, t) in self._refused.items()
                if code in _REASON_OF
            },
            stats=self.stats(),
            join_server=None if self._join_server is None else self._join_server.export_state(),
            joined=tuple(self._joined.values()),
            joined_uplinks={uid: t for uid, (code, t) in self._refused.items() if code == Outcome.JOIN_COPY},
        )

    @classmethod
    def restore(cls, state: NetworkState, **config: Any) -> NetworkServer:
        """A server with the given configuration (as for the constructor; the same
        ``fingerprint_key`` is required) in the state a :meth:`snapshot` captured."""
        if state.version not in _STATE_VERSIONS:
            raise ConfigError(f"network state version {state.version}, expected {STATE_VERSION}")
        server = cls(**config)
        if server.key_check != state.key_check:
            raise ConfigError("the fingerprint key differs from the one the state was taken with")
        reasons = set(RejectReason)
        named = [reason for reason, _ in state.refused_uplinks.values()]
        named += [reason for counts in state.stats.gateways.values() for reason in counts.rejected]
        strange = sorted({reason for reason in named if reason not in reasons})
        if strange:
            raise ConfigError(f"the network state names unknown reasons: {', '.join(map(repr, strange))}")
        server._wmbus_table = DedupeTable.restore(state.wmbus_dedupe)
        server._lorawan_table = DedupeTable.restore(state.lorawan_dedupe)
        server._mcrs = dict(state.wmbus_counters)
        server._fcnts.update(state.lorawan_fcnts)
        server._refused = {
            uid: (_OUTCOME_OF[RejectReason(reason)], t) for uid, (reason, t) in state.refused_uplinks.items()
        }
        if state.version < 2 and (state.join_server is not None or state.joined or state.joined_uplinks):
            raise ConfigError("a network state of version 1 holds no OTAA joins")
        if any(uid % 2 != 1 for uid in state.joined_uplinks):
            raise ConfigError("the network state names JoinRequests by ids that are no LoRaWAN uplink ids")
        server._refused.update((uid, (int(Outcome.JOIN_COPY), t)) for uid, t in state.joined_uplinks.items())
        server._restore_joins(state)
        for gateway, counts in state.stats.gateways.items():
            index = server._gateway_index.get(gateway)
            if index is None:
                continue
            row = server._gateway_counts[index]
            row[Outcome.OPENED] = counts.uplinks
            row[Outcome.MERGED] = counts.merged
            row[Outcome.LATE] = counts.late
            row[Outcome.JOINED] = counts.joins
            row[Outcome.JOIN_COPY] = counts.join_copies
            for reason, value in counts.rejected.items():
                row[_OUTCOME_OF[RejectReason(reason)]] = value
        unknown = dict(state.stats.unknown_gateways)
        server._unknown_other = unknown.pop("<other>", 0)
        server._unknown_gateways = unknown
        return server

    def _restore_joins(self, state: NetworkState) -> None:
        """The join server's nonces and the sessions of the joined devices, their keys
        derived again from the AppKeys this server's join server holds. A session whose
        device has no AppKey here now ends, with a warning; two sessions on one DevAddr, or
        one on an ABP device's, are a :class:`ConfigError`."""
        if state.join_server is None and not state.joined:
            return
        if self._join_server is None:
            logger.warning(
                "the network state holds OTAA joins and this server has no join server: their sessions end"
            )
            return
        if state.join_server is not None:
            self._join_server.restore_state(state.join_server)
        for joined in state.joined:
            try:
                session = self._join_server.rebuild_session(
                    joined.dev_eui, joined.dev_addr, dev_nonce=joined.dev_nonce, app_nonce=joined.app_nonce
                )
                eui = format_eui(parse_eui(joined.dev_eui))
            except UnknownDeviceError:
                # The device's AppKey is gone (it left the site): its session ends with it.
                logger.warning("the OTAA device %s in the network state has no AppKey now", joined.dev_eui)
                continue
            except (LoRaWANError, InputError) as error:
                raise ConfigError(f"the network state holds a bad OTAA session: {error}") from None
            restored = replace(joined, dev_eui=eui, dev_addr=session.dev_addr)
            holder = self._address_holder(restored)
            if holder is not None or eui in self._joined:
                raise ConfigError(
                    f"the network state gives DevAddr {restored.dev_addr} to the OTAA device {eui}, "
                    f"which {holder or 'has another session in it'}"
                )
            self._start_session(restored, session)
            fcnt = state.lorawan_fcnts.get(int(restored.dev_addr, 16))
            if fcnt is not None:
                self._fcnts[int(restored.dev_addr, 16)] = fcnt


def _acceptances(
    receptions: Sequence[Reception],
    uplink_ids: npt.NDArray[np.int64],
    outcome: npt.NDArray[np.uint8],
    accepted: Mapping[int, JoinResult],
) -> tuple[JoinAcceptance, ...]:
    """The answer to each JoinRequest accepted in a batch (``accepted`` by the position of
    its first copy among ``receptions``), through the copy of it heard best in the batch."""
    # The batch's copies of accepted requests, by uplink id: found in one pass.
    copies: dict[int, list[int]] = {}
    for i in np.flatnonzero((outcome == Outcome.JOINED) | (outcome == Outcome.JOIN_COPY)).tolist():
        copies.setdefault(int(uplink_ids[i]), []).append(i)
    out = []
    for row, result in accepted.items():
        best = max(
            (receptions[i] for i in copies[int(uplink_ids[row])]),
            key=lambda r: -math.inf if r.rssi is None else r.rssi,
        )
        out.append(
            JoinAcceptance(
                dev_eui=result.dev_eui,
                dev_addr=result.dev_addr,
                join_accept=result.join_accept,
                gateway_id=best.gateway_id,
                received_at=best.received_at,
                rssi=best.rssi,
                frequency=best.frequency,
                mode=best.mode,
                tmst=best.tmst,
            )
        )
    return tuple(out)


def reception_info(reception: Reception) -> ReceptionInfo:
    """The copy a reception makes of its uplink."""
    return ReceptionInfo(
        gateway_id=reception.gateway_id,
        received_at=reception.received_at,
        rssi=reception.rssi,
        snr=reception.snr,
        frequency=reception.frequency,
    )


def _to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def _times_ms(seconds: list[float]) -> npt.NDArray[np.int64]:
    """:func:`_to_ms` of each time (numpy rounds half to even, as ``round`` does)."""
    return np.rint(np.asarray(seconds, dtype=np.float64) * 1000).astype(np.int64)


def encode_state(state: NetworkState) -> bytes:
    """JSON bytes of a :class:`NetworkState`."""
    return msgspec.json.encode(state)


def decode_state(data: bytes) -> NetworkState:
    """A :class:`NetworkState` from :func:`encode_state` output; :class:`ConfigError` for
    bytes that are not one."""
    try:
        return msgspec.json.decode(data, type=NetworkState)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"not a network state: {exc}") from None
