"""LoRaWAN 1.0.x for minolcore, sans-IO: frames, crypto, activation, MAC commands, codecs.

The entry point most callers need is :func:`decode_uplink`::

    up = decode_uplink(phy, nwk_s_key=nwk, app_s_key=app, last_fcnt=prev)
    if up.mic_valid:
        use(up.dev_addr, up.fcnt, up.fport, up.payload)

A bad MIC does not raise there: ``mic_valid`` is False and nothing is decrypted
(``payload == b""``). Malformed bytes raise :class:`PHYPayloadError` subclasses, which
are :class:`~minolcore.errors.LoRaWANError`. Stateful replay protection lives in
:class:`Session`; OTAA in :class:`JoinServer`; batch MIC checks in :func:`verify_mics`.
Keys are :class:`AesKey` objects (or 16 raw bytes) and never appear in reprs.
"""

from __future__ import annotations

from minolcore.lorawan.codecs import (
    CodecError,
    CodecNotFoundError,
    CodecRegistrationError,
    CodecRegistry,
    default_registry,
    raw_codec,
)
from minolcore.lorawan.crypto import (
    FRMPayloadSizeError,
    compute_data_mic,
    compute_join_mic,
    crypt_frm_payload,
    derive_session_keys,
)
from minolcore.lorawan.join import (
    DevAddrMismatchError,
    DevNonceReplayError,
    FCntReplayError,
    JoinAcceptMICError,
    JoinMICError,
    JoinResult,
    JoinServer,
    JoinServerState,
    Session,
    SessionMICError,
    SessionState,
    UnknownDeviceError,
    decrypt_join_accept,
    session_from_join_accept,
)
from minolcore.lorawan.keys import AesKey, KeyFormatError, as_key
from minolcore.lorawan.mac import (
    DOWNLINK_COMMANDS,
    UPLINK_COMMANDS,
    MACCommand,
    MACCommandEncodeError,
    MACCommandSpec,
    encode_mac_commands,
    parse_mac_commands,
)
from minolcore.lorawan.phy import (
    DataFrame,
    Downlink,
    EncryptedJoinAccept,
    FCntOverflowError,
    FCtrl,
    FOptsOnPort0Error,
    FOptsOverrunError,
    Frame,
    FrameBuildError,
    JoinAccept,
    JoinRequest,
    MType,
    OpaqueFrame,
    PHYLengthError,
    PHYPayloadError,
    UnexpectedMTypeError,
    UnsupportedMajorError,
    Uplink,
    build_data_frame,
    build_join_accept,
    build_join_request,
    cf_list_from_frequencies,
    decode_downlink,
    decode_uplink,
    parse_phy,
    rebuild_fcnt,
    verify_mics,
)

__all__ = [
    "DOWNLINK_COMMANDS",
    "UPLINK_COMMANDS",
    "AesKey",
    "CodecError",
    "CodecNotFoundError",
    "CodecRegistrationError",
    "CodecRegistry",
    "DataFrame",
    "DevAddrMismatchError",
    "DevNonceReplayError",
    "Downlink",
    "EncryptedJoinAccept",
    "FCntOverflowError",
    "FCntReplayError",
    "FCtrl",
    "FOptsOnPort0Error",
    "FOptsOverrunError",
    "FRMPayloadSizeError",
    "Frame",
    "FrameBuildError",
    "JoinAccept",
    "JoinAcceptMICError",
    "JoinMICError",
    "JoinRequest",
    "JoinResult",
    "JoinServer",
    "JoinServerState",
    "KeyFormatError",
    "MACCommand",
    "MACCommandEncodeError",
    "MACCommandSpec",
    "MType",
    "OpaqueFrame",
    "PHYLengthError",
    "PHYPayloadError",
    "Session",
    "SessionMICError",
    "SessionState",
    "UnexpectedMTypeError",
    "UnknownDeviceError",
    "UnsupportedMajorError",
    "Uplink",
    "as_key",
    "build_data_frame",
    "build_join_accept",
    "build_join_request",
    "cf_list_from_frequencies",
    "compute_data_mic",
    "compute_join_mic",
    "crypt_frm_payload",
    "decode_downlink",
    "decode_uplink",
    "decrypt_join_accept",
    "default_registry",
    "derive_session_keys",
    "encode_mac_commands",
    "parse_mac_commands",
    "parse_phy",
    "raw_codec",
    "rebuild_fcnt",
    "session_from_join_accept",
    "verify_mics",
]
