"""LoRaWAN 1.0.x frames, crypto, MAC commands, codecs and key hygiene."""

from __future__ import annotations

import contextlib
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore.errors import InputError, LoRaWANError, MinolcoreError
from minolcore.lorawan import (
    DOWNLINK_COMMANDS,
    UPLINK_COMMANDS,
    AesKey,
    CodecError,
    CodecNotFoundError,
    CodecRegistrationError,
    CodecRegistry,
    DataFrame,
    EncryptedJoinAccept,
    FCntOverflowError,
    FOptsOnPort0Error,
    FOptsOverrunError,
    FrameBuildError,
    JoinRequest,
    KeyFormatError,
    MACCommandEncodeError,
    MType,
    OpaqueFrame,
    PHYLengthError,
    PHYPayloadError,
    UnexpectedMTypeError,
    UnsupportedMajorError,
    build_data_frame,
    decode_downlink,
    decode_uplink,
    encode_mac_commands,
    parse_mac_commands,
    parse_phy,
    raw_codec,
    rebuild_fcnt,
    verify_mics,
)
from minolcore.lorawan.crypto import AI, B0, KEY_DERIVATION_BLOCK, compute_data_mic, crypt_frm_payload
from minolcore.lorawan.phy import FHDR, JOIN_ACCEPT_BODY, JOIN_REQUEST

# vectors.md section 2, from lora-packet __tests__/mic_test.ts and decrypt_test.ts.
NWK_S_KEY = bytes.fromhex("44024241ED4CE9A68C6A8BC055233FD3")
APP_S_KEY = bytes.fromhex("EC925802AE430CA77FD3DD73CB2CC588")
ROW1 = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")
ROW2 = bytes.fromhex("40F17DBE49000300012A3518AF")
ROW3 = bytes.fromhex(
    "40f17dbe490004000155332de41a11adc072553544429ce7787707d1c316e027e7e5e334263376affb8aa17ad30075293f28dea8a20af3c5e7"
)
ROW4 = bytes.fromhex("60f17dbe4920020001f9d65d27")
DEV_ADDR = "49BE7DF1"


class _Keys(TypedDict):
    nwk_s_key: bytes
    app_s_key: bytes


KEYS: _Keys = {"nwk_s_key": NWK_S_KEY, "app_s_key": APP_S_KEY}


# --- vectors.md section 2 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phy", "fcnt", "mic", "plaintext"),
    [
        (ROW1, 2, "2B11FF0D", b"test"),
        (ROW2, 3, "2A3518AF", b""),
        (ROW3, 4, "0AF3C5E7", b"The quick brown fox jumps over the lazy dog."),
    ],
)
def test_uplink_vectors(phy: bytes, fcnt: int, mic: str, plaintext: bytes) -> None:
    up = decode_uplink(phy, **KEYS)
    assert up.mic_valid
    assert up.mic == bytes.fromhex(mic)
    assert up.dev_addr == DEV_ADDR
    assert up.fcnt == fcnt
    assert up.fport == 1
    assert up.payload == plaintext
    assert up.mtype is MType.UNCONFIRMED_DATA_UP
    assert not up.confirmed
    assert up.mac_commands == ()


def test_downlink_vector_row4_uses_dir_1() -> None:
    down = decode_downlink(ROW4, **KEYS)
    assert down.mic_valid
    assert down.mic == bytes.fromhex("F9D65D27")
    assert down.dev_addr == DEV_ADDR
    assert down.fcnt == 2
    assert down.fport == 1
    assert down.ack
    assert down.payload == b""
    # The same bytes signed as an uplink (Dir=0) would carry another MIC.
    frame = parse_phy(ROW4)
    assert isinstance(frame, DataFrame)
    assert compute_data_mic(NWK_S_KEY, ROW4[:-4], dev_addr=0x49BE7DF1, fcnt32=2, uplink=True) != frame.mic


def test_row1_b0_block_and_mic_from_the_spec_formula() -> None:
    # B0 exactly as vectors.md writes it, CMAC straight from cryptography.
    b0 = bytes.fromhex("49 00000000 00 F17DBE49 02000000 00 0D".replace(" ", ""))
    mac = CMAC(algorithms.AES(NWK_S_KEY))
    mac.update(b0 + ROW1[:-4])
    assert mac.finalize()[:4] == bytes.fromhex("2B11FF0D")


def test_row1_keystream_from_the_spec_formula() -> None:
    a1 = bytes.fromhex("01 00000000 00 F17DBE49 02000000 00 01".replace(" ", ""))
    s1 = Cipher(algorithms.AES(APP_S_KEY), modes.ECB()).encryptor().update(a1)
    cipher = ROW1[9:-4]
    assert bytes(c ^ s for c, s in zip(cipher, s1, strict=False)) == b"test"


def test_vector_rows_verify_in_batch() -> None:
    phys = [ROW1, ROW2, ROW3, ROW4]
    ok = verify_mics(phys, NWK_S_KEY)
    assert ok.dtype == np.bool_
    assert ok.tolist() == [True, True, True, True]


def test_parse_row1_fields() -> None:
    frame = parse_phy(ROW1)
    assert isinstance(frame, DataFrame)
    assert frame.dev_addr == DEV_ADDR
    assert frame.dev_addr_int == 0x49BE7DF1
    assert frame.fcnt16 == 2
    assert frame.fopts == b""
    assert frame.fport == 1
    assert frame.frm_payload == bytes.fromhex("95437876")
    assert frame.mic == bytes.fromhex("2B11FF0D")
    assert frame.uplink and not frame.confirmed


# --- authentication before decryption -------------------------------------------------------


def test_bad_mic_does_not_decrypt() -> None:
    tampered = ROW1[:-1] + bytes([ROW1[-1] ^ 1])
    up = decode_uplink(tampered, **KEYS)
    assert not up.mic_valid
    assert up.payload == b""
    assert up.mac_commands == ()


def test_wrong_key_gives_invalid_mic() -> None:
    up = decode_uplink(ROW1, nwk_s_key=APP_S_KEY, app_s_key=APP_S_KEY)
    assert not up.mic_valid
    assert up.payload == b""


def test_decode_uplink_accepts_aeskey_objects() -> None:
    up = decode_uplink(ROW3, nwk_s_key=AesKey(NWK_S_KEY), app_s_key=AesKey.from_hex(APP_S_KEY.hex()))
    assert up.payload.startswith(b"The quick")


def test_decode_uplink_refuses_other_mtypes() -> None:
    with pytest.raises(UnexpectedMTypeError) as err:
        decode_uplink(ROW4, **KEYS)
    assert err.value.mtype is MType.UNCONFIRMED_DATA_DOWN
    with pytest.raises(UnexpectedMTypeError):
        decode_downlink(ROW1, **KEYS)


def test_last_fcnt_is_used_for_the_mic() -> None:
    phy = build_data_frame(dev_addr=DEV_ADDR, fcnt=0x1_0005, fport=2, payload=b"hi", **KEYS)
    # Without the high half the MIC cannot verify; with it, it does.
    assert not decode_uplink(phy, **KEYS).mic_valid
    up = decode_uplink(phy, last_fcnt=0xFFF0, **KEYS)
    assert up.mic_valid
    assert up.fcnt == 0x1_0005
    assert up.payload == b"hi"


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phy", "error"),
    [
        (b"", PHYLengthError),
        (bytes.fromhex("40F17DBE4900"), PHYLengthError),
        (bytes(256), PHYLengthError),
        (bytes.fromhex("00") + bytes(10), PHYLengthError),  # JoinRequest must be 23 bytes
        (bytes.fromhex("20") + bytes(20), PHYLengthError),  # JoinAccept must be 17 or 33 bytes
        (bytes.fromhex("40F17DBE49 05 0200 0102 AABBCCDD".replace(" ", "")), FOptsOverrunError),
        (bytes.fromhex("40F17DBE49 01 0200 02 00 AABBCCDD".replace(" ", "")), FOptsOnPort0Error),
        (bytes.fromhex("41F17DBE4900020001954378762B11FF0D"), UnsupportedMajorError),
    ],
)
def test_malformed_frames_raise_typed_errors(phy: bytes, error: type[PHYPayloadError]) -> None:
    with pytest.raises(error) as err:
        parse_phy(phy)
    assert isinstance(err.value, LoRaWANError)


def test_error_data_fields() -> None:
    with pytest.raises(FOptsOverrunError) as overrun:
        parse_phy(bytes.fromhex("40F17DBE4905020001AABBCCDD"))
    assert overrun.value.fopts_len == 5
    assert overrun.value.available == 1
    with pytest.raises(PHYLengthError) as short:
        parse_phy(b"\x40\x00")
    assert short.value.length == 2


def test_non_bytes_input_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_phy("40F17DBE49")  # type: ignore[arg-type]


@given(st.binary(max_size=300))
@settings(max_examples=2000)
def test_parser_raises_only_lorawan_errors(data: bytes) -> None:
    with contextlib.suppress(LoRaWANError):
        parse_phy(data)


@given(st.binary(max_size=300))
@settings(max_examples=1000)
def test_decode_uplink_raises_only_lorawan_errors(data: bytes) -> None:
    try:
        up = decode_uplink(data, **KEYS, last_fcnt=0xFFFF_FFF0)
    except LoRaWANError:
        return
    assert up.mic_valid is False
    assert up.payload == b""


@given(st.binary(min_size=12, max_size=64))
def test_data_frames_of_random_bytes_parse(body: bytes) -> None:
    # With FOptsLen 0 every byte string of at least 12 bytes is a well-formed data frame.
    phy = b"\x40" + body[:4] + b"\x00" + body[4:]
    frame = parse_phy(phy)
    assert isinstance(frame, DataFrame)
    assert frame.phy == phy


def test_other_mtypes_parse() -> None:
    jr = parse_phy(bytes.fromhex("00DC0000D07ED5B3701E6FEDF57CEEAF0085CC587FE913"))
    assert isinstance(jr, JoinRequest)
    assert jr.join_eui == "70B3D57ED00000DC"
    assert jr.dev_eui == "00AFEE7CF5ED6F1E"
    assert jr.dev_nonce == 0xCC85
    ja = parse_phy(bytes.fromhex("20e3de108795f776b8037610ef7869b5b3"))
    assert isinstance(ja, EncryptedJoinAccept)
    assert len(ja.ciphertext) == 16
    rfu = parse_phy(b"\xc0\x01\x02")
    assert isinstance(rfu, OpaqueFrame) and rfu.mtype is MType.RFU and rfu.payload == b"\x01\x02"
    prop = parse_phy(b"\xe3")
    assert isinstance(prop, OpaqueFrame) and prop.mtype is MType.PROPRIETARY and prop.major == 3


# --- builder / parser round trips ------------------------------------------------------------

_uplink_fopts = st.lists(
    st.sampled_from(
        [(spec.cid, spec.length) for spec in UPLINK_COMMANDS.values()],
    ),
    max_size=6,
).map(lambda cmds: encode_mac_commands([(cid, bytes(range(n))) for cid, n in cmds], uplink=True)[:15])


@st.composite
def data_frames(draw: st.DrawFn) -> dict[str, object]:
    uplink = draw(st.booleans())
    fport = draw(st.none() | st.integers(0, 255))
    fopts = b"" if fport == 0 else draw(_uplink_fopts if uplink else st.binary(max_size=15))
    payload = b"" if fport is None else draw(st.binary(max_size=200))
    return {
        "dev_addr": draw(st.integers(0, 0xFFFFFFFF)),
        "fcnt": draw(st.integers(0, 0xFFFFFFFF)),
        "uplink": uplink,
        "confirmed": draw(st.booleans()),
        "fport": fport,
        "payload": payload,
        "fopts": fopts,
        "adr": draw(st.booleans()),
        "ack": draw(st.booleans()),
        "adr_ack_req": uplink and draw(st.booleans()),
        "class_b": uplink and draw(st.booleans()),
        "f_pending": (not uplink) and draw(st.booleans()),
    }


@given(data_frames())
def test_build_then_decode_round_trip(fields: dict[str, object]) -> None:
    phy = build_data_frame(nwk_s_key=NWK_S_KEY, app_s_key=APP_S_KEY, **fields)  # type: ignore[arg-type]
    fcnt = fields["fcnt"]
    assert isinstance(fcnt, int)
    last = fcnt - 1 if fcnt > 0 else None
    decode = decode_uplink if fields["uplink"] else decode_downlink
    msg = decode(phy, last_fcnt=last, **KEYS)
    assert msg.mic_valid
    assert msg.fcnt == fcnt
    assert msg.dev_addr == f"{fields['dev_addr']:08X}"
    assert msg.fport == fields["fport"]
    assert msg.payload == fields["payload"]
    assert msg.confirmed == fields["confirmed"]
    assert msg.fctrl.adr == fields["adr"]
    assert msg.fctrl.ack == fields["ack"]
    assert msg.fctrl.fopts_len == len(fields["fopts"])  # type: ignore[arg-type]
    frame = parse_phy(phy)
    assert isinstance(frame, DataFrame)
    assert frame.fopts == fields["fopts"]
    assert frame.fcnt16 == fcnt & 0xFFFF
    if fields["fport"] == 0:
        assert msg.mac_commands == parse_mac_commands(fields["payload"], uplink=bool(fields["uplink"]))
    else:
        assert msg.mac_commands == parse_mac_commands(fields["fopts"], uplink=bool(fields["uplink"]))


@given(data_frames(), st.data())
def test_any_changed_byte_breaks_the_mic(fields: dict[str, object], data: st.DataObject) -> None:
    phy = build_data_frame(nwk_s_key=NWK_S_KEY, app_s_key=APP_S_KEY, **fields)  # type: ignore[arg-type]
    fcnt = fields["fcnt"]
    assert isinstance(fcnt, int)
    pos = data.draw(st.integers(0, len(phy) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(phy)
    tampered[pos] ^= flip
    assert verify_mics([phy], NWK_S_KEY, [fcnt - 1 if fcnt else None]).tolist() == [True]
    assert verify_mics([bytes(tampered)], NWK_S_KEY, [fcnt - 1 if fcnt else None]).tolist() == [False]


def test_fopts_mac_commands_are_listed() -> None:
    fopts = encode_mac_commands(
        [("LinkADRAns", b"\x07"), ("DevStatusAns", b"\xfe\x05"), (0x02, b"")], uplink=True
    )
    phy = build_data_frame(dev_addr=DEV_ADDR, fcnt=10, fopts=fopts, **KEYS)
    up = decode_uplink(phy, **KEYS)
    assert [c.name for c in up.mac_commands] == ["LinkADRAns", "DevStatusAns", "LinkCheckReq"]
    assert up.mac_commands[1].payload == b"\xfe\x05"
    assert up.fport is None and up.payload == b""


def test_fport0_payload_is_encrypted_with_nwk_s_key_and_parsed() -> None:
    cmds = encode_mac_commands([("LinkADRReq", b"\x50\xff\x00\x01"), ("DevStatusReq", b"")], uplink=False)
    phy = build_data_frame(
        dev_addr=DEV_ADDR, fcnt=7, uplink=False, fport=0, payload=cmds, nwk_s_key=NWK_S_KEY
    )
    frame = parse_phy(phy)
    assert isinstance(frame, DataFrame)
    assert frame.frm_payload == crypt_frm_payload(
        NWK_S_KEY, cmds, dev_addr=0x49BE7DF1, fcnt32=7, uplink=False
    )
    # A wrong AppSKey must not matter on FPort 0.
    down = decode_downlink(phy, nwk_s_key=NWK_S_KEY, app_s_key=bytes(16))
    assert [c.name for c in down.mac_commands] == ["LinkADRReq", "DevStatusReq"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fport": None, "payload": b"x"},
        {"fport": 0, "fopts": b"\x02"},
        {"fport": 256},
        {"fopts": bytes(16)},
        {"fcnt": 1 << 32},
        {"fport": 1, "payload": bytes(250)},
        {"uplink": True, "f_pending": True},
        {"uplink": False, "class_b": True},
    ],
)
def test_builder_rejects_invalid_frames(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"dev_addr": DEV_ADDR, "fcnt": 1, **KEYS}
    args.update(kwargs)
    with pytest.raises(FrameBuildError):
        build_data_frame(**args)  # type: ignore[arg-type]


def test_builder_needs_app_s_key_for_application_ports() -> None:
    with pytest.raises(FrameBuildError):
        build_data_frame(dev_addr=DEV_ADDR, fcnt=1, fport=1, payload=b"x", nwk_s_key=NWK_S_KEY)


def test_builder_reproduces_vector_row1() -> None:
    assert build_data_frame(dev_addr=DEV_ADDR, fcnt=2, fport=1, payload=b"test", **KEYS) == ROW1
    assert build_data_frame(dev_addr=DEV_ADDR, fcnt=2, fport=1, uplink=False, ack=True, **KEYS) == ROW4


# --- frame counter --------------------------------------------------------------------------


def test_rebuild_fcnt_examples() -> None:
    assert rebuild_fcnt(5, None) == 5
    assert rebuild_fcnt(5, 4) == 5
    assert rebuild_fcnt(4, 4) == 4  # a repeat stays equal
    assert rebuild_fcnt(0x0001, 0xFFFF) == 0x1_0001
    assert rebuild_fcnt(0x0000, 0x1_FFFF) == 0x2_0000
    assert rebuild_fcnt(0x8000, 0x3_0010) == 0x3_8000
    with pytest.raises(FCntOverflowError):
        rebuild_fcnt(0, 0xFFFF_FFFF)
    with pytest.raises(InputError):
        rebuild_fcnt(0x1_0000, None)
    with pytest.raises(InputError):
        rebuild_fcnt(1, -1)


@given(st.integers(0, 0xFFFF_0000), st.integers(1, 0xFFFF))
def test_rebuild_fcnt_recovers_counters_across_rollover(last: int, step: int) -> None:
    # Any true counter within 65535 of the last one is recovered from its low 16 bits.
    true = last + step
    assert rebuild_fcnt(true & 0xFFFF, last) == true


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF))
def test_rebuild_fcnt_never_goes_backwards(fcnt16: int, last: int) -> None:
    try:
        value = rebuild_fcnt(fcnt16, last)
    except FCntOverflowError:
        assert last > 0xFFFF_0000
        return
    assert last <= value < last + 0x1_0000
    assert value & 0xFFFF == fcnt16


# --- batch MIC verification -----------------------------------------------------------------


def test_verify_mics_per_frame_keys_and_malformed_frames() -> None:
    other = bytes(range(16))
    phy_other = build_data_frame(
        dev_addr="01020304", fcnt=9, fport=3, payload=b"abc", nwk_s_key=other, app_s_key=other
    )
    phys = [
        ROW1,
        phy_other,
        b"\x40\x01",
        ROW2,
        bytes.fromhex("00DC0000D07ED5B3701E6FEDF57CEEAF0085CC587FE913"),
    ]
    keys: list[bytes | AesKey] = [NWK_S_KEY, AesKey(other), NWK_S_KEY, other, NWK_S_KEY]
    assert verify_mics(phys, keys).tolist() == [True, True, False, False, False]
    assert verify_mics([], NWK_S_KEY).shape == (0,)
    with pytest.raises(InputError):
        verify_mics([ROW1, ROW2], [NWK_S_KEY])
    with pytest.raises(InputError):
        verify_mics([ROW1], NWK_S_KEY, [None, None])


def test_verify_mics_with_counters() -> None:
    phy = build_data_frame(dev_addr=DEV_ADDR, fcnt=0x2_0001, fport=1, payload=b"x", **KEYS)
    assert verify_mics([phy, phy], NWK_S_KEY, [None, 0x1_FFFF]).tolist() == [False, True]
    # A counter that would wrap 32 bits is a failure, not an exception.
    assert verify_mics([phy], NWK_S_KEY, [0xFFFF_FFFF]).tolist() == [False]


# --- MAC commands ---------------------------------------------------------------------------


def test_mac_tables_cover_lorawan_10x() -> None:
    up = {spec.name: (cid, spec.length) for cid, spec in UPLINK_COMMANDS.items()}
    down = {spec.name: (cid, spec.length) for cid, spec in DOWNLINK_COMMANDS.items()}
    assert up == {
        "LinkCheckReq": (0x02, 0),
        "LinkADRAns": (0x03, 1),
        "DutyCycleAns": (0x04, 0),
        "RXParamSetupAns": (0x05, 1),
        "DevStatusAns": (0x06, 2),
        "NewChannelAns": (0x07, 1),
        "RXTimingSetupAns": (0x08, 0),
        "TxParamSetupAns": (0x09, 0),
        "DlChannelAns": (0x0A, 1),
        "DeviceTimeReq": (0x0D, 0),
    }
    assert down == {
        "LinkCheckAns": (0x02, 2),
        "LinkADRReq": (0x03, 4),
        "DutyCycleReq": (0x04, 1),
        "RXParamSetupReq": (0x05, 4),
        "DevStatusReq": (0x06, 0),
        "NewChannelReq": (0x07, 5),
        "RXTimingSetupReq": (0x08, 1),
        "TxParamSetupReq": (0x09, 1),
        "DlChannelReq": (0x0A, 4),
        "DeviceTimeAns": (0x0D, 5),
    }


def test_mac_split_uses_direction() -> None:
    data = bytes.fromhex("02 0A03 06".replace(" ", ""))
    down = parse_mac_commands(data, uplink=False)
    assert [(c.name, c.payload) for c in down] == [("LinkCheckAns", b"\x0a\x03"), ("DevStatusReq", b"")]
    up = parse_mac_commands(bytes.fromhex("02 03 07 06 FF 0A".replace(" ", "")), uplink=True)
    assert [(c.name, c.payload) for c in up] == [
        ("LinkCheckReq", b""),
        ("LinkADRAns", b"\x07"),
        ("DevStatusAns", b"\xff\x0a"),
    ]


def test_unknown_and_truncated_mac_commands_are_reported() -> None:
    cmds = parse_mac_commands(bytes.fromhex("02 80 01 02".replace(" ", "")), uplink=True)
    assert cmds[0].name == "LinkCheckReq"
    assert cmds[1].cid == 0x80 and cmds[1].name is None and not cmds[1].known
    assert cmds[1].payload == b"\x01\x02"
    cut = parse_mac_commands(bytes.fromhex("0350".replace(" ", "")), uplink=False)
    assert cut[0].name == "LinkADRReq" and cut[0].truncated and cut[0].payload == b"\x50"


@given(st.binary(max_size=40), st.booleans())
def test_mac_parser_never_raises_and_keeps_every_byte(data: bytes, uplink: bool) -> None:
    cmds = parse_mac_commands(data, uplink=uplink)
    assert b"".join(bytes((c.cid,)) + c.payload for c in cmds) == data


def test_encode_mac_commands_checks_lengths() -> None:
    with pytest.raises(MACCommandEncodeError):
        encode_mac_commands([("LinkADRReq", b"\x00")], uplink=False)
    with pytest.raises(MACCommandEncodeError):
        encode_mac_commands([("LinkADRReq", bytes(4))], uplink=True)
    with pytest.raises(MACCommandEncodeError):
        encode_mac_commands([(0x42, b"")], uplink=True)


# --- codecs ---------------------------------------------------------------------------------


def test_codec_registry() -> None:
    reg = CodecRegistry()
    reg.register("minol-lora-v1", 1, raw_codec)
    reg.register("minol-lora-v1", 2, lambda b: int.from_bytes(b, "little"))
    assert reg.decode("minol-lora-v1", 1, b"\x01\x02") == b"\x01\x02"
    assert reg.decode("minol-lora-v1", 2, b"\x01\x02") == 0x0201
    assert ("minol-lora-v1", 2) in reg
    assert dict(reg.profiles()) == {"minol-lora-v1": (1, 2)}
    with pytest.raises(CodecNotFoundError) as err:
        reg.decode("minol-lora-v1", 3, b"")
    assert err.value.known_fports == (1, 2)
    assert "FPort 1, 2" in str(err.value)
    with pytest.raises(CodecNotFoundError):
        reg.decode("unknown-profile", 1, b"")
    with pytest.raises(CodecRegistrationError):
        reg.register("minol-lora-v1", 1, raw_codec)
    reg.register("minol-lora-v1", 1, bytes.hex, replace=True)
    assert reg.decode("minol-lora-v1", 1, b"\xab") == "ab"
    for bad_port in (0, 224, 256):
        with pytest.raises(CodecRegistrationError):
            reg.register("p", bad_port, raw_codec)
    reg.unregister("minol-lora-v1", 2)
    assert ("minol-lora-v1", 2) not in reg


def test_codec_failures_are_wrapped() -> None:
    reg = CodecRegistry()

    def broken(payload: bytes) -> int:
        return payload[10]

    reg.register("p", 5, broken)
    with pytest.raises(CodecError) as err:
        reg.decode("p", 5, b"")
    assert isinstance(err.value.__cause__, IndexError)
    assert err.value.fport == 5


# --- key hygiene ----------------------------------------------------------------------------


def test_key_repr_never_shows_bytes() -> None:
    key = AesKey(NWK_S_KEY)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        assert "redacted" in text
        assert NWK_S_KEY.hex() not in text.lower()
        assert NWK_S_KEY.hex().upper() not in text
    assert key.reveal() == NWK_S_KEY
    assert key == AesKey(NWK_S_KEY) and key != AesKey(APP_S_KEY)
    assert len(key.fingerprint) == 8 and key.fingerprint not in NWK_S_KEY.hex()


def test_key_errors_never_echo_the_key() -> None:
    almost = NWK_S_KEY.hex()[:-2]
    with pytest.raises(KeyFormatError) as err:
        AesKey.from_hex(almost)
    assert almost not in str(err.value)
    with pytest.raises(InputError) as err2:
        AesKey.from_hex(NWK_S_KEY.hex()[:-1] + "z")
    assert NWK_S_KEY.hex()[:-1] not in str(err2.value)
    with pytest.raises(KeyFormatError) as err3:
        AesKey(NWK_S_KEY[:-1])
    assert NWK_S_KEY[:-1].hex() not in str(err3.value).lower()
    assert repr(NWK_S_KEY[:-1]) not in str(err3.value)


def test_all_errors_are_minolcore_errors() -> None:
    for exc in (PHYLengthError("x", 1, "2"), FOptsOverrunError(1, 0), FrameBuildError("x")):
        assert isinstance(exc, MinolcoreError)


def test_struct_layouts() -> None:
    sizes = {s: s.size for s in (B0, AI, KEY_DERIVATION_BLOCK, FHDR, JOIN_REQUEST, JOIN_ACCEPT_BODY)}
    assert list(sizes.values()) == [16, 16, 16, 8, 23, 12]
    assert all(isinstance(s, struct.Struct) for s in sizes)


def test_shared_key_contexts_under_threads() -> None:
    key = AesKey(APP_S_KEY)
    blocks = [bytes([i]) * 32 for i in range(64)]
    expected = [Cipher(algorithms.AES(APP_S_KEY), modes.ECB()).encryptor().update(b) for b in blocks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(20):
            assert list(pool.map(key.ecb_encrypt, blocks)) == expected
    # While another caller holds the cached context, a private one is used instead of waiting.
    key._lock.acquire()
    try:
        assert key.ecb_encrypt(blocks[1]) == expected[1]
    finally:
        key._lock.release()
