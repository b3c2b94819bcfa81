"""OTAA join handling, device-side join, key derivation and sessions (LoRaWAN 1.0.x)."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from minolcore.errors import ConfigError, LoRaWANError, MICError, ReplayError
from minolcore.lorawan import (
    AesKey,
    DevAddrMismatchError,
    DevNonceReplayError,
    FCntReplayError,
    JoinAcceptMICError,
    JoinMICError,
    JoinServer,
    JoinServerState,
    Session,
    SessionMICError,
    UnexpectedMTypeError,
    UnknownDeviceError,
    build_data_frame,
    build_join_accept,
    build_join_request,
    cf_list_from_frequencies,
    compute_join_mic,
    decode_downlink,
    decrypt_join_accept,
    derive_session_keys,
    parse_phy,
    session_from_join_accept,
)

# Published OTAA exchange with known AppKey (a capture decoded in lora-packet issue #10,
# https://github.com/anthonykirby/lora-packet/issues/10, worked through in
# https://runkit.com/avbentem/deciphering-a-lorawan-otaa-join-accept): JoinRequest,
# the JoinAccept answering it, and the NwkSKey/AppSKey derived from them.
PUB_APP_KEY = bytes.fromhex("B6B53F4A168A7A88BDF7EA135CE9CFCA")
PUB_JOIN_REQUEST = bytes.fromhex("00DC0000D07ED5B3701E6FEDF57CEEAF0085CC587FE913")
PUB_JOIN_ACCEPT = bytes.fromhex("204DD85AE608B87FC4889970B7D2042C9E72959B0057AED6094B16003DF12DE145")
PUB_DEV_EUI = "00AFEE7CF5ED6F1E"
PUB_JOIN_EUI = "70B3D57ED00000DC"
PUB_DEV_NONCE = 0xCC85
PUB_APP_NONCE = 0xE5063A
PUB_NET_ID = 0x000013
PUB_DEV_ADDR = "26012E43"
PUB_CF_LIST = bytes.fromhex("184F84E85684B85E84886684586E8400")
PUB_NWK_S_KEY = bytes.fromhex("2C96F7028184BB0BE8AA49275290D4FC")
PUB_APP_S_KEY = bytes.fromhex("F3A5C8F0232A38C144029C165865802C")

APP_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DEV_EUI = "0004A30B001C0530"
JOIN_EUI = "70B3D57ED0000001"
NET_ID = 0x000013


def _spec_session_keys(app_key: bytes, app_nonce: int, net_id: int, dev_nonce: int) -> tuple[bytes, bytes]:
    """Written directly from LoRaWAN 1.0.x section 6.2.5, independent of the library."""
    tail = app_nonce.to_bytes(3, "little") + net_id.to_bytes(3, "little") + dev_nonce.to_bytes(2, "little")
    enc = Cipher(algorithms.AES(app_key), modes.ECB()).encryptor()
    nwk = enc.update(b"\x01" + tail + bytes(7))
    app = enc.update(b"\x02" + tail + bytes(7))
    return nwk, app


def _server(**kwargs: object) -> JoinServer:
    return JoinServer(net_id=NET_ID, app_keys={DEV_EUI: APP_KEY}, **kwargs)  # type: ignore[arg-type]


# --- published vectors ----------------------------------------------------------------------


def test_published_join_request_parses_and_verifies() -> None:
    frame = parse_phy(PUB_JOIN_REQUEST)
    assert frame.join_eui == PUB_JOIN_EUI  # type: ignore[union-attr]
    assert frame.dev_eui == PUB_DEV_EUI  # type: ignore[union-attr]
    assert frame.dev_nonce == PUB_DEV_NONCE  # type: ignore[union-attr]
    assert compute_join_mic(PUB_APP_KEY, PUB_JOIN_REQUEST[:-4]) == bytes.fromhex("587FE913")
    rebuilt = build_join_request(
        join_eui=PUB_JOIN_EUI, dev_eui=PUB_DEV_EUI, dev_nonce=PUB_DEV_NONCE, app_key=PUB_APP_KEY
    )
    assert rebuilt == PUB_JOIN_REQUEST


def test_published_join_accept_decrypts_to_the_published_fields() -> None:
    accept = decrypt_join_accept(PUB_JOIN_ACCEPT, PUB_APP_KEY)
    assert accept.app_nonce == PUB_APP_NONCE
    assert accept.net_id == PUB_NET_ID
    assert accept.dev_addr == PUB_DEV_ADDR
    assert accept.dl_settings == 0x03
    assert accept.rx2_data_rate == 3 and accept.rx1_dr_offset == 0
    assert accept.rx_delay == 1 and accept.rx1_delay_s == 1
    assert accept.cf_list == PUB_CF_LIST
    assert accept.cf_list_frequencies_hz == (867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000)
    assert accept.mic == bytes.fromhex("55121DE0")


def test_published_session_keys() -> None:
    accept = decrypt_join_accept(PUB_JOIN_ACCEPT, PUB_APP_KEY)
    session = session_from_join_accept(accept, app_key=PUB_APP_KEY, dev_nonce=PUB_DEV_NONCE)
    assert session.nwk_s_key.reveal() == PUB_NWK_S_KEY
    assert session.app_s_key.reveal() == PUB_APP_S_KEY
    assert session.dev_addr == PUB_DEV_ADDR


def test_join_server_reproduces_the_published_join_accept() -> None:
    # Same network parameters and AppNonce as the capture: the answer must be byte-identical.
    server = JoinServer(
        net_id=PUB_NET_ID,
        app_keys={PUB_DEV_EUI: PUB_APP_KEY},
        dl_settings=0x03,
        rx_delay=1,
        cf_list=cf_list_from_frequencies([867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000]),
        dev_addr_allocator=lambda _eui: PUB_DEV_ADDR,
        state=JoinServerState(
            net_id=PUB_NET_ID, last_app_nonce=PUB_APP_NONCE - 1, next_nwk_addr=1, used_dev_nonces={}
        ),
    )
    result = server.handle_join_request(PUB_JOIN_REQUEST)
    assert result.join_accept == PUB_JOIN_ACCEPT
    assert result.app_nonce == PUB_APP_NONCE
    assert result.session.nwk_s_key.reveal() == PUB_NWK_S_KEY
    assert result.session.app_s_key.reveal() == PUB_APP_S_KEY


def test_key_derivation_matches_lora_packet_vector() -> None:
    # lora-packet __tests__/key_gen_test.ts (values written big-endian there).
    nwk, app = derive_session_keys(
        bytes.fromhex("98929b92c49edba9676d646d3b612456"),
        app_nonce=0x376338,
        net_id=0xAABBCC,
        dev_nonce=0xF18E,
    )
    assert nwk.reveal().hex() == "4e3d6e6afbcc67af2ba3c8e8ec4acf4b"
    assert app.reveal().hex() == "610897aa6f1460623443b527d3ac6a9d"


def test_all_zero_join_accept_vector() -> None:
    # lora-packet __tests__/join_accept_encrypt.ts: zero AppKey and fields, RxDelay 0.
    phy = build_join_accept(app_key=bytes(16), app_nonce=0, net_id=0, dev_addr=0, rx_delay=0)
    assert phy == bytes.fromhex("20e3de108795f776b8037610ef7869b5b3")
    accept = decrypt_join_accept(phy, bytes(16))
    assert accept.mic == bytes.fromhex("f86f0a91")
    assert accept.cf_list is None


@given(
    st.binary(min_size=16, max_size=16),
    st.integers(0, 0xFFFFFF),
    st.integers(0, 0xFFFFFF),
    st.integers(0, 0xFFFF),
)
def test_key_derivation_matches_the_spec_formula(
    app_key: bytes, app_nonce: int, net_id: int, dev_nonce: int
) -> None:
    nwk, app = derive_session_keys(app_key, app_nonce=app_nonce, net_id=net_id, dev_nonce=dev_nonce)
    assert (nwk.reveal(), app.reveal()) == _spec_session_keys(app_key, app_nonce, net_id, dev_nonce)


# --- join server ----------------------------------------------------------------------------


def test_join_round_trip_device_and_server_agree() -> None:
    server = _server(cf_list=cf_list_from_frequencies([867_100_000]))
    request = build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=0x1234, app_key=APP_KEY)
    result = server.handle_join_request(request)
    assert result.dev_eui == DEV_EUI and result.join_eui == JOIN_EUI and result.dev_nonce == 0x1234
    assert isinstance(parse_phy(result.join_accept), type(parse_phy(PUB_JOIN_ACCEPT)))

    accept = decrypt_join_accept(result.join_accept, APP_KEY)
    assert accept.dev_addr == result.dev_addr
    assert accept.app_nonce == result.app_nonce
    assert accept.net_id == NET_ID
    assert accept.cf_list_frequencies_hz == (867_100_000,)
    # DevAddr carries the NwkID (7 low bits of NetID) in its top 7 bits.
    assert int(accept.dev_addr, 16) >> 25 == NET_ID & 0x7F

    device = session_from_join_accept(accept, app_key=APP_KEY, dev_nonce=0x1234)
    assert device.nwk_s_key == result.session.nwk_s_key
    assert device.app_s_key == result.session.app_s_key
    expected = _spec_session_keys(APP_KEY, result.app_nonce, NET_ID, 0x1234)
    assert (device.nwk_s_key.reveal(), device.app_s_key.reveal()) == expected

    # The new session carries traffic both ways.
    up = build_data_frame(
        dev_addr=device.dev_addr,
        fcnt=0,
        fport=2,
        payload=b"joined",
        nwk_s_key=device.nwk_s_key,
        app_s_key=device.app_s_key,
    )
    assert result.session.decode_uplink(up).payload == b"joined"
    down = result.session.build_downlink(fport=2, payload=b"ok", ack=True)
    got = decode_downlink(down, nwk_s_key=device.nwk_s_key, app_s_key=device.app_s_key)
    assert got.mic_valid and got.payload == b"ok" and got.ack and got.fcnt == 0
    assert result.session.fcnt_down == 1


def test_dev_nonce_reuse_is_refused() -> None:
    server = _server()
    request = build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=7, app_key=APP_KEY)
    first = server.handle_join_request(request)
    with pytest.raises(DevNonceReplayError) as err:
        server.handle_join_request(request)
    assert isinstance(err.value, ReplayError)
    assert err.value.dev_eui == DEV_EUI and err.value.dev_nonce == 7
    second = server.handle_join_request(
        build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=8, app_key=APP_KEY)
    )
    assert second.app_nonce == first.app_nonce + 1
    assert second.dev_addr != first.dev_addr


def test_wrong_app_key_fails_the_mic_and_burns_no_nonce() -> None:
    server = _server()
    forged = build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=9, app_key=bytes(16))
    with pytest.raises(JoinMICError) as err:
        server.handle_join_request(forged)
    assert isinstance(err.value, MICError)
    assert server.export_state().used_dev_nonces.get(DEV_EUI, ()) == ()
    genuine = build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=9, app_key=APP_KEY)
    server.handle_join_request(genuine)


def test_device_with_wrong_app_key_rejects_the_join_accept() -> None:
    result = _server().handle_join_request(
        build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=1, app_key=APP_KEY)
    )
    with pytest.raises(JoinAcceptMICError):
        decrypt_join_accept(result.join_accept, bytes(16))
    tampered = bytearray(result.join_accept)
    tampered[5] ^= 0x01
    with pytest.raises(JoinAcceptMICError):
        decrypt_join_accept(bytes(tampered), APP_KEY)


def test_unknown_device_and_join_eui_filter() -> None:
    server = _server(join_eui=JOIN_EUI)
    other_dev = build_join_request(
        join_eui=JOIN_EUI, dev_eui="0000000000000001", dev_nonce=1, app_key=APP_KEY
    )
    with pytest.raises(UnknownDeviceError) as err:
        server.handle_join_request(other_dev)
    assert err.value.dev_eui == "0000000000000001"
    other_app = build_join_request(join_eui="0000000000000002", dev_eui=DEV_EUI, dev_nonce=1, app_key=APP_KEY)
    with pytest.raises(UnknownDeviceError):
        server.handle_join_request(other_app)
    server.remove_device(DEV_EUI)
    with pytest.raises(UnknownDeviceError):
        server.handle_join_request(
            build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=1, app_key=APP_KEY)
        )


def test_join_server_refuses_non_join_frames() -> None:
    with pytest.raises(UnexpectedMTypeError):
        _server().handle_join_request(PUB_JOIN_ACCEPT)
    with pytest.raises(LoRaWANError):
        _server().handle_join_request(b"\x00\x01")
    with pytest.raises(UnexpectedMTypeError):
        decrypt_join_accept(PUB_JOIN_REQUEST, APP_KEY)


def test_state_export_and_restore_keeps_refusing_nonces() -> None:
    server = _server()
    for nonce in (3, 1, 2):
        server.handle_join_request(
            build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=nonce, app_key=APP_KEY)
        )
    state = server.export_state()
    assert state.used_dev_nonces == {DEV_EUI: (1, 2, 3)}
    assert state.last_app_nonce == 3

    encoded = msgspec.json.encode(state)
    assert APP_KEY.hex() not in encoded.decode().lower()
    restored_state = msgspec.json.decode(encoded, type=JoinServerState)
    assert restored_state == state

    fresh = _server(state=restored_state)
    with pytest.raises(DevNonceReplayError):
        fresh.handle_join_request(
            build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=2, app_key=APP_KEY)
        )
    nxt = fresh.handle_join_request(
        build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=4, app_key=APP_KEY)
    )
    assert nxt.app_nonce == 4
    with pytest.raises(ConfigError):
        JoinServer(net_id=0x000001, state=state)


# --- sessions -------------------------------------------------------------------------------

NWK = bytes.fromhex("44024241ED4CE9A68C6A8BC055233FD3")
APP = bytes.fromhex("EC925802AE430CA77FD3DD73CB2CC588")


def _uplink(fcnt: int, payload: bytes = b"x", dev_addr: str = "26011234") -> bytes:
    return build_data_frame(
        dev_addr=dev_addr, fcnt=fcnt, fport=1, payload=payload, nwk_s_key=NWK, app_s_key=APP
    )


def test_abp_session_tracks_counters_across_rollover() -> None:
    session = Session("26011234", NWK, APP, fcnt_up=0xFFFD)
    for fcnt in (0xFFFE, 0xFFFF, 0x1_0000, 0x1_0001):
        up = session.decode_uplink(_uplink(fcnt))
        assert up.fcnt == fcnt
    assert session.fcnt_up == 0x1_0001
    assert session.state().fcnt_up == 0x1_0001


def test_session_refuses_repeats_and_replays() -> None:
    session = Session("26011234", NWK, APP)
    session.decode_uplink(_uplink(5))
    with pytest.raises(FCntReplayError) as repeat:
        session.decode_uplink(_uplink(5))
    assert repeat.value.retransmission
    with pytest.raises(FCntReplayError) as replay:
        session.decode_uplink(_uplink(3))
    assert not replay.value.retransmission
    assert replay.value.fcnt == 3 and replay.value.last_fcnt == 5
    assert session.fcnt_up == 5


def test_session_bad_mic_and_wrong_dev_addr() -> None:
    session = Session("26011234", NWK, APP)
    bad = bytearray(_uplink(1))
    bad[-1] ^= 0xFF
    with pytest.raises(SessionMICError):
        session.decode_uplink(bytes(bad))
    assert session.fcnt_up is None
    with pytest.raises(DevAddrMismatchError):
        session.decode_uplink(_uplink(1, dev_addr="26019999"))


# --- no key material in reprs, strings or errors --------------------------------------------


def _assert_no_key(text: str, *keys: bytes) -> None:
    for key in keys:
        assert key.hex() not in text.lower()
        assert repr(key) not in text


def test_reprs_and_errors_hide_keys() -> None:
    server = _server()
    result = server.handle_join_request(
        build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=1, app_key=APP_KEY)
    )
    session = result.session
    texts = [repr(server), str(server), repr(result), str(result), repr(session), str(session)]
    texts += [repr(session.nwk_s_key), str(session.app_s_key), repr(AesKey(APP_KEY))]
    errors: list[Exception] = []
    for action in (
        lambda: server.handle_join_request(
            build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=1, app_key=APP_KEY)
        ),
        lambda: server.handle_join_request(
            build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=2, app_key=bytes(16))
        ),
        lambda: decrypt_join_accept(result.join_accept, bytes(16)),
        lambda: session.decode_uplink(b"\x40" + bytes(15)),
    ):
        with pytest.raises((LoRaWANError, ReplayError)) as err:
            action()
        errors.append(err.value)
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    secrets = (APP_KEY, session.nwk_s_key.reveal(), session.app_s_key.reveal())
    for text in texts:
        _assert_no_key(text, *secrets)
    assert "redacted" in repr(session) and "redacted" in repr(result) and "redacted" in repr(server)
