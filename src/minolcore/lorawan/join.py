"""Activation and sessions, sans-IO: OTAA join handling and ABP sessions.

:class:`JoinServer` turns a JoinRequest PHYPayload into the JoinAccept PHYPayload to
send back plus a :class:`Session` with the derived keys; it performs no I/O and keeps
its only mutable state (used DevNonces, the last AppNonce, the DevAddr counter) in
memory, exportable as plain data with :meth:`JoinServer.export_state`. AppKeys are
configuration and are never part of that state.

An ABP session is simply ``Session(dev_addr, nwk_s_key, app_s_key)``.

Objects here hold key material, so they are plain classes with redacted reprs rather
than records; none of them is thread-safe (serialise calls per server/session).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn

from minolcore._model import Record
from minolcore.errors import ConfigError, InputError, LoRaWANError, MICError, ReplayError
from minolcore.lorawan.crypto import (
    MIC_SIZE,
    KeyLike,
    compute_join_mic,
    derive_session_keys,
    join_accept_decrypt,
)
from minolcore.lorawan.keys import AesKey, as_key
from minolcore.lorawan.phy import (
    EncryptedJoinAccept,
    JoinAccept,
    JoinRequest,
    UnexpectedMTypeError,
    Uplink,
    build_data_frame,
    build_join_accept,
    decode_uplink,
    format_dev_addr,
    format_eui,
    frame_mtype,
    join_accept_from_plaintext,
    parse_dev_addr,
    parse_eui,
    parse_phy,
)

__all__ = [
    "DevAddrMismatchError",
    "DevNonceReplayError",
    "FCntReplayError",
    "JoinAcceptMICError",
    "JoinMICError",
    "JoinResult",
    "JoinServer",
    "JoinServerState",
    "Session",
    "SessionMICError",
    "SessionState",
    "UnknownDeviceError",
    "decrypt_join_accept",
    "session_from_join_accept",
]

_NONCE_MASK = 0xFFFFFF
_FCNT16_SPAN = 0x1_0000
_NWK_ADDR_BITS = 25
_NWK_ADDR_MASK = (1 << _NWK_ADDR_BITS) - 1
_NWK_ID_MASK = 0x7F


# --- errors ---------------------------------------------------------------------------------


class UnknownDeviceError(LoRaWANError):
    """A JoinRequest from a DevEUI (or for a JoinEUI) this join server has no AppKey for."""

    def __init__(self, dev_eui: str, join_eui: str) -> None:
        super().__init__(f"no AppKey for DevEUI {dev_eui} (JoinEUI {join_eui})")
        self.dev_eui = dev_eui
        self.join_eui = join_eui


class JoinMICError(MICError):
    """A JoinRequest whose MIC does not verify with the device's AppKey."""

    def __init__(self, dev_eui: str, dev_nonce: int) -> None:
        super().__init__(f"JoinRequest MIC of DevEUI {dev_eui} (DevNonce {dev_nonce:#06x}) does not verify")
        self.dev_eui = dev_eui
        self.dev_nonce = dev_nonce


class JoinAcceptMICError(MICError):
    """A JoinAccept whose MIC does not verify after decryption: wrong AppKey or damaged frame."""


class DevNonceReplayError(ReplayError):
    """A JoinRequest reusing a DevNonce the device already used (LoRaWAN 1.0.x replay guard)."""

    def __init__(self, dev_eui: str, dev_nonce: int) -> None:
        super().__init__(f"DevNonce {dev_nonce:#06x} of DevEUI {dev_eui} was used before")
        self.dev_eui = dev_eui
        self.dev_nonce = dev_nonce


class FCntReplayError(ReplayError):
    """An uplink whose 32-bit FCnt does not increase. ``fcnt == last_fcnt`` is a repeat."""

    def __init__(self, dev_addr: str, fcnt: int, last_fcnt: int) -> None:
        super().__init__(f"DevAddr {dev_addr}: FCnt {fcnt} after {last_fcnt}")
        self.dev_addr = dev_addr
        self.fcnt = fcnt
        self.last_fcnt = last_fcnt
        self.retransmission = fcnt == last_fcnt


class SessionMICError(MICError):
    """A data frame whose MIC does not verify with the session's NwkSKey."""

    def __init__(self, dev_addr: str, fcnt: int) -> None:
        super().__init__(f"DevAddr {dev_addr}: MIC of FCnt {fcnt} does not verify")
        self.dev_addr = dev_addr
        self.fcnt = fcnt


class DevAddrMismatchError(LoRaWANError):
    """A frame handed to the session of another DevAddr."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"frame for DevAddr {actual} given to the session of {expected}")
        self.expected = expected
        self.actual = actual


# --- sessions -------------------------------------------------------------------------------


class SessionState(Record, frozen=True, gc=False, kw_only=True):
    """The counters of a session as plain data (no keys)."""

    dev_addr: str
    fcnt_up: int | None
    fcnt_down: int


class Session:
    """A LoRaWAN 1.0.x session on the network side (ABP, or the result of a join).

    ``fcnt_up`` is the last accepted 32-bit uplink counter (``None`` before the first
    uplink); ``fcnt_down`` the counter the next downlink will use.
    """

    __slots__ = ("_app_s_key", "_nwk_s_key", "dev_addr", "fcnt_down", "fcnt_up")

    def __init__(
        self,
        dev_addr: str | int,
        nwk_s_key: KeyLike,
        app_s_key: KeyLike,
        *,
        fcnt_up: int | None = None,
        fcnt_down: int = 0,
    ) -> None:
        """Create a session from DevAddr and the two session keys (this is ABP)."""
        self.dev_addr = format_dev_addr(parse_dev_addr(dev_addr))
        self._nwk_s_key = as_key(nwk_s_key)
        self._app_s_key = as_key(app_s_key)
        self.fcnt_up = fcnt_up
        self.fcnt_down = fcnt_down

    @property
    def nwk_s_key(self) -> AesKey:
        """The network session key (MICs, FPort-0 payloads)."""
        return self._nwk_s_key

    @property
    def app_s_key(self) -> AesKey:
        """The application session key (FRMPayload on FPort 1..255)."""
        return self._app_s_key

    def decode_uplink(self, phy: bytes) -> Uplink:
        """Authenticate, replay-check and decrypt an uplink; advances ``fcnt_up``.

        Raises :class:`SessionMICError` for a bad MIC and :class:`FCntReplayError` for a
        counter that does not increase (``retransmission`` is set when it equals the last
        one; an older frame that verifies at its own, lower counter is reported as a
        replay too); in every case the session is left unchanged.
        """
        up = decode_uplink(phy, nwk_s_key=self._nwk_s_key, app_s_key=self._app_s_key, last_fcnt=self.fcnt_up)
        if up.dev_addr != self.dev_addr:
            raise DevAddrMismatchError(self.dev_addr, up.dev_addr)
        if not up.mic_valid:
            self._raise_for_bad_mic(phy, up.fcnt)
        if self.fcnt_up is not None and up.fcnt <= self.fcnt_up:
            raise FCntReplayError(self.dev_addr, up.fcnt, self.fcnt_up)
        self.fcnt_up = up.fcnt
        return up

    def _raise_for_bad_mic(self, phy: bytes, fcnt: int) -> NoReturn:
        # A replayed older frame is rebuilt past the 16-bit rollover and so fails the MIC;
        # if it verifies at the counter it really had, report it as the replay it is.
        last = self.fcnt_up
        if last is not None and fcnt > last:
            older = fcnt - (_FCNT16_SPAN)
            if older >= 0:
                replay = decode_uplink(
                    phy, nwk_s_key=self._nwk_s_key, app_s_key=self._app_s_key, last_fcnt=older
                )
                if replay.mic_valid:
                    raise FCntReplayError(self.dev_addr, replay.fcnt, last)
        raise SessionMICError(self.dev_addr, fcnt)

    def build_downlink(
        self,
        *,
        fport: int | None = None,
        payload: bytes = b"",
        fopts: bytes = b"",
        confirmed: bool = False,
        ack: bool = False,
        adr: bool = False,
        f_pending: bool = False,
    ) -> bytes:
        """Build a signed, encrypted downlink with the next ``fcnt_down`` and advance it."""
        phy = build_data_frame(
            dev_addr=self.dev_addr,
            fcnt=self.fcnt_down,
            nwk_s_key=self._nwk_s_key,
            app_s_key=self._app_s_key,
            uplink=False,
            confirmed=confirmed,
            fport=fport,
            payload=payload,
            fopts=fopts,
            ack=ack,
            adr=adr,
            f_pending=f_pending,
        )
        self.fcnt_down += 1
        return phy

    def state(self) -> SessionState:
        """The counters as plain data (keys excluded)."""
        return SessionState(dev_addr=self.dev_addr, fcnt_up=self.fcnt_up, fcnt_down=self.fcnt_down)

    def __repr__(self) -> str:
        return (
            f"Session(dev_addr={self.dev_addr!r}, fcnt_up={self.fcnt_up!r}, "
            f"fcnt_down={self.fcnt_down!r}, keys=<redacted>)"
        )


# --- OTAA -----------------------------------------------------------------------------------


class JoinServerState(Record, frozen=True, gc=False, kw_only=True):
    """Everything a :class:`JoinServer` learns while running, as plain data (no keys).

    ``used_dev_nonces`` maps DevEUI to the sorted DevNonces already accepted.
    """

    net_id: int
    last_app_nonce: int
    next_nwk_addr: int
    used_dev_nonces: dict[str, tuple[int, ...]]


class JoinResult:
    """The outcome of an accepted JoinRequest: the JoinAccept to send and the new session."""

    __slots__ = (
        "app_nonce",
        "dev_addr",
        "dev_eui",
        "dev_nonce",
        "join_accept",
        "join_eui",
        "net_id",
        "session",
    )

    def __init__(
        self,
        *,
        dev_eui: str,
        join_eui: str,
        dev_nonce: int,
        app_nonce: int,
        net_id: int,
        dev_addr: str,
        join_accept: bytes,
        session: Session,
    ) -> None:
        """Bundle the join outcome; ``join_accept`` is the encrypted PHYPayload."""
        self.dev_eui = dev_eui
        self.join_eui = join_eui
        self.dev_nonce = dev_nonce
        self.app_nonce = app_nonce
        self.net_id = net_id
        self.dev_addr = dev_addr
        self.join_accept = join_accept
        self.session = session

    def __repr__(self) -> str:
        return (
            f"JoinResult(dev_eui={self.dev_eui!r}, dev_addr={self.dev_addr!r}, "
            f"dev_nonce={self.dev_nonce:#06x}, app_nonce={self.app_nonce:#08x}, keys=<redacted>)"
        )


def _norm_eui(eui: str | int) -> str:
    return format_eui(parse_eui(eui))


class JoinServer:
    """A sans-IO LoRaWAN 1.0.x join server for one network (NetID).

    ``app_keys`` maps DevEUI to AppKey; ``join_eui`` restricts accepted JoinEUIs
    (``None``: any). DevAddrs are allocated as NwkID (the 7 low bits of NetID) followed
    by a 25-bit counter, skipping ``reserved_dev_addrs`` (those of ABP devices), unless
    ``dev_addr_allocator(dev_eui)`` is given. ``dl_settings``,
    ``rx_delay`` (seconds) and ``cf_list`` (16 bytes or None) go into every JoinAccept.
    """

    __slots__ = (
        "_allocator",
        "_app_keys",
        "_cf_list",
        "_dl_settings",
        "_join_eui",
        "_last_app_nonce",
        "_next_nwk_addr",
        "_reserved",
        "_rx_delay",
        "_used",
        "net_id",
    )

    def __init__(
        self,
        *,
        net_id: int,
        app_keys: Mapping[str, KeyLike] | None = None,
        join_eui: str | None = None,
        dl_settings: int = 0,
        rx_delay: int = 1,
        cf_list: bytes | None = None,
        dev_addr_allocator: Callable[[str], str | int] | None = None,
        reserved_dev_addrs: Iterable[str | int] = (),
        state: JoinServerState | None = None,
    ) -> None:
        """Configure the server; ``net_id`` is the 24-bit NetID."""
        if not 0 <= net_id <= _NONCE_MASK:
            raise ConfigError(f"NetID {net_id} is not a 24-bit value", "net_id")
        self.net_id = net_id
        self._app_keys: dict[str, AesKey] = {}
        self._join_eui = None if join_eui is None else _norm_eui(join_eui)
        self._dl_settings = dl_settings
        self._rx_delay = rx_delay
        self._cf_list = cf_list
        self._allocator = dev_addr_allocator
        self._last_app_nonce = 0
        self._next_nwk_addr = 1
        self._used: dict[str, set[int]] = {}
        self._reserved = set(map(parse_dev_addr, reserved_dev_addrs))
        for dev_eui, key in (app_keys or {}).items():
            self.add_device(dev_eui, key)
        if state is not None:
            self.restore_state(state)

    def add_device(self, dev_eui: str | int, app_key: KeyLike) -> None:
        """Register (or replace) the AppKey of a device."""
        self._app_keys[_norm_eui(dev_eui)] = as_key(app_key)

    def has_device(self, dev_eui: str | int) -> bool:
        """Whether the server holds an AppKey for ``dev_eui`` (16 hex digits or the 64-bit value)."""
        return _norm_eui(dev_eui) in self._app_keys

    def rebuild_session(
        self, dev_eui: str | int, dev_addr: str | int, *, dev_nonce: int, app_nonce: int
    ) -> Session:
        """The session a join of ``dev_eui`` gave it (DevAddr, DevNonce and AppNonce of that
        join, with this server's NetID), its keys derived again from the AppKey: how a
        restarted server resumes the sessions it handed out without storing keys.

        Raises :class:`UnknownDeviceError` when the server holds no AppKey for the device,
        :class:`ConfigError` for a nonce out of range and :class:`InputError` for a DevEUI
        or DevAddr that is not one."""
        eui = _norm_eui(dev_eui)
        key = self._app_keys.get(eui)
        if key is None:
            raise UnknownDeviceError(eui, self._join_eui or "")
        if not 0 <= dev_nonce <= 0xFFFF or not 0 <= app_nonce <= _NONCE_MASK:
            raise ConfigError(f"DevNonce {dev_nonce} or AppNonce {app_nonce} out of range", "session")
        nwk_s_key, app_s_key = derive_session_keys(
            key, app_nonce=app_nonce, net_id=self.net_id, dev_nonce=dev_nonce
        )
        return Session(dev_addr, nwk_s_key, app_s_key)

    def remove_device(self, dev_eui: str | int) -> None:
        """Forget a device's AppKey (its used DevNonces stay, so they stay refused)."""
        self._app_keys.pop(_norm_eui(dev_eui), None)

    def handle_join_request(self, phy: bytes) -> JoinResult:
        """Verify a JoinRequest and answer it.

        Raises :class:`UnknownDeviceError`, :class:`JoinMICError` or
        :class:`DevNonceReplayError` (checked in that order), or a PHYPayload error.
        The DevNonce is recorded only once the MIC has verified, so forged requests
        cannot burn a device's nonces.
        """
        frame = parse_phy(phy)
        if not isinstance(frame, JoinRequest):
            raise UnexpectedMTypeError(frame_mtype(frame), "a JoinRequest")
        key = self._app_keys.get(frame.dev_eui)
        if key is None or (self._join_eui is not None and frame.join_eui != self._join_eui):
            raise UnknownDeviceError(frame.dev_eui, frame.join_eui)
        expected = compute_join_mic(key, frame.phy[:-MIC_SIZE])
        if not hmac.compare_digest(expected, frame.mic):
            raise JoinMICError(frame.dev_eui, frame.dev_nonce)
        used = self._used.setdefault(frame.dev_eui, set())
        if frame.dev_nonce in used:
            raise DevNonceReplayError(frame.dev_eui, frame.dev_nonce)

        app_nonce = (self._last_app_nonce + 1) & _NONCE_MASK
        dev_addr, next_nwk_addr = self._allocate(frame.dev_eui)
        join_accept = build_join_accept(
            app_key=key,
            app_nonce=app_nonce,
            net_id=self.net_id,
            dev_addr=dev_addr,
            dl_settings=self._dl_settings,
            rx_delay=self._rx_delay,
            cf_list=self._cf_list,
        )
        nwk_s_key, app_s_key = derive_session_keys(
            key, app_nonce=app_nonce, net_id=self.net_id, dev_nonce=frame.dev_nonce
        )
        # Commit state only after everything that can fail has run.
        used.add(frame.dev_nonce)
        self._last_app_nonce = app_nonce
        self._next_nwk_addr = next_nwk_addr
        return JoinResult(
            dev_eui=frame.dev_eui,
            join_eui=frame.join_eui,
            dev_nonce=frame.dev_nonce,
            app_nonce=app_nonce,
            net_id=self.net_id,
            dev_addr=dev_addr,
            join_accept=join_accept,
            session=Session(dev_addr, nwk_s_key, app_s_key),
        )

    def _allocate(self, dev_eui: str) -> tuple[str, int]:
        """(the DevAddr for a join of ``dev_eui``, the address counter after it)."""
        if self._allocator is not None:
            return format_dev_addr(parse_dev_addr(self._allocator(dev_eui))), self._next_nwk_addr
        # The counter skips the addresses reserved for other devices (ABP sessions).
        nwk_addr = self._next_nwk_addr
        for _ in range(len(self._reserved) + 1):
            dev_addr = ((self.net_id & _NWK_ID_MASK) << _NWK_ADDR_BITS) | nwk_addr
            nwk_addr = (nwk_addr + 1) & _NWK_ADDR_MASK or 1
            if dev_addr not in self._reserved:
                break
        return format_dev_addr(dev_addr), nwk_addr

    def reserve_dev_addrs(self, dev_addrs: Iterable[str | int]) -> None:
        """Keep the counter off these DevAddrs (8 hex digits or 32-bit values): the
        addresses of devices activated by personalisation."""
        self._reserved |= set(map(parse_dev_addr, dev_addrs))

    def export_state(self) -> JoinServerState:
        """The used DevNonces and counters as plain data, for persistence (no keys)."""
        return JoinServerState(
            net_id=self.net_id,
            last_app_nonce=self._last_app_nonce,
            next_nwk_addr=self._next_nwk_addr,
            used_dev_nonces={eui: tuple(sorted(nonces)) for eui, nonces in self._used.items()},
        )

    def restore_state(self, state: JoinServerState) -> None:
        """Load state exported earlier (by this or another instance with the same NetID).

        Raises :class:`ConfigError` for a state of another NetID or with values out of
        range (an AppNonce beyond 24 bits, an address counter outside 1 to 2**25 - 1, a
        DevNonce beyond 16 bits, a DevEUI that is not one)."""
        if state.net_id != self.net_id:
            raise ConfigError(
                f"state of NetID {state.net_id:#08x} given to NetID {self.net_id:#08x}", "state"
            )
        if not 0 <= state.last_app_nonce <= _NONCE_MASK or not 1 <= state.next_nwk_addr <= _NWK_ADDR_MASK:
            raise ConfigError("the join server state's AppNonce or address counter is out of range", "state")
        used: dict[str, set[int]] = {}
        for eui, nonces in state.used_dev_nonces.items():
            try:
                normal = _norm_eui(eui)
            except InputError:
                raise ConfigError(
                    f"the join server state names {eui!r}, which is no DevEUI", "state"
                ) from None
            if not all(0 <= nonce <= _FCNT16_SPAN - 1 for nonce in nonces):
                raise ConfigError(f"a DevNonce of {normal} in the join server state is not 16 bits", "state")
            used[normal] = set(nonces)
        self._last_app_nonce = state.last_app_nonce
        self._next_nwk_addr = state.next_nwk_addr
        self._used = used

    def __repr__(self) -> str:
        return f"JoinServer(net_id={self.net_id:#08x}, devices={len(self._app_keys)}, keys=<redacted>)"


# --- device side ----------------------------------------------------------------------------


def decrypt_join_accept(phy: bytes, app_key: KeyLike) -> JoinAccept:
    """Decrypt a JoinAccept PHYPayload with the AppKey and verify its MIC (device side).

    Raises :class:`JoinAcceptMICError` when the MIC does not verify (wrong AppKey).
    """
    frame = parse_phy(phy)
    if not isinstance(frame, EncryptedJoinAccept):
        raise UnexpectedMTypeError(frame_mtype(frame), "a JoinAccept")
    key = as_key(app_key)
    plaintext = join_accept_decrypt(key, frame.ciphertext)
    expected = compute_join_mic(key, frame.phy[:1] + plaintext[:-MIC_SIZE])
    if not hmac.compare_digest(expected, plaintext[-MIC_SIZE:]):
        raise JoinAcceptMICError("JoinAccept MIC does not verify (wrong AppKey or damaged frame)")
    return join_accept_from_plaintext(frame.phy[0], plaintext)


def session_from_join_accept(accept: JoinAccept, *, app_key: KeyLike, dev_nonce: int) -> Session:
    """The session a device derives from a decrypted JoinAccept and its own DevNonce."""
    nwk_s_key, app_s_key = derive_session_keys(
        app_key, app_nonce=accept.app_nonce, net_id=accept.net_id, dev_nonce=dev_nonce
    )
    return Session(accept.dev_addr, nwk_s_key, app_s_key)
