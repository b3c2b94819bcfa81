"""OMS security: vectors, statuses, key redaction, encrypt/decrypt round trips, bit flips,
and the batch mode-5 path against the plain path."""

from __future__ import annotations

import pickle

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minolcore._native import crc16
from minolcore.errors import (
    HeaderTruncatedError,
    InputError,
    MACMismatchError,
    NoKeyError,
    SecurityError,
    UnsupportedSecurityError,
    WrongKeyError,
)
from minolcore.wmbus.builder import build_frame
from minolcore.wmbus.frame import parse_frame
from minolcore.wmbus.headers import Address, AFLHeader, ELLHeader, TPLHeader, TPLKind
from minolcore.wmbus.security import (
    Mode5Batch,
    OMSKey,
    afl_mac,
    as_key,
    decrypt_mode5_batch,
    derive_mode7_keys,
    ell_ctr_iv,
    encrypt_ell_ctr,
    encrypt_mode5,
    encrypt_mode7,
    mode5_iv,
    seal_frame,
    unseal,
)
from tests.vectors import (
    V1_FRAME,
    V1_IV,
    V1_KEY,
    V1_PLAINTEXT,
    V2_FRAME,
    V2_KENC,
    V2_KEY,
    V2_KMAC,
    V2_MAC,
    V2_MESSAGE_COUNTER,
    V3_FRAME,
    V3_KEY,
    V3_MAC,
    V3_MESSAGE_COUNTER,
    V4_FRAME,
    V4_IV,
    V4_KEY,
    V6_FRAME,
    V6_IV,
    V6_KEY,
    V7_FRAME,
    V7_KEY,
    V7_PLAINTEXT,
    V8_FRAME,
    V8_KEY,
    V10_FRAME,
)

KEY = bytes(range(16))
OTHER_KEY = bytes(range(1, 17))


def _short_tpl(mode: int, acc: int = 0x21, blocks: int = 0, cf_ext: int | None = None) -> TPLHeader:
    return TPLHeader(
        ci=0x7A, kind=TPLKind.SHORT, acc=acc, sts=0, cf=(mode << 8) | (blocks << 4), cf_ext=cf_ext
    )


def _long_tpl(mode: int, acc: int = 0x33) -> TPLHeader:
    address = Address(manufacturer_code=0x4493, id_value=0x55667788, version=0x55, device_type=0x08)
    return TPLHeader(ci=0x72, kind=TPLKind.LONG, acc=acc, sts=0, cf=mode << 8, address=address)


def _mode7_afl(auth_type: int = 5, counter: int = 2739, with_ml: bool = False) -> AFLHeader:
    mac_length = {3: 2, 4: 4, 5: 8, 6: 12, 7: 16}[auth_type]
    fcl = 0x2C00 | (0x1000 if with_ml else 0)
    return AFLHeader(
        afll=0,
        fcl=fcl,
        mcl=0x20 | auth_type,
        mcr=counter,
        mac=bytes(mac_length),
        ml=0x0030 if with_ml else None,
    )


def _seal(key: bytes, payload: bytes, **headers: object) -> bytes:
    return seal_frame(
        key,
        manufacturer="ELS",
        id="12345678",
        version=0x33,
        device_type=0x03,
        payload=payload,
        **headers,  # type: ignore[arg-type]
    )


# --- vectors -------------------------------------------------------------------------------------


def test_v1_mode5_iv_and_plaintext() -> None:
    frame = parse_frame(V1_FRAME)
    assert mode5_iv(frame.meter_address, frame.acc).hex().upper() == V1_IV
    result = unseal(frame, V1_KEY)
    assert (result.mode, result.status) == (5, "decrypted")
    assert result.apl.hex().upper() == V1_PLAINTEXT
    assert result.message_counter is None


def test_v2_mode7_kdf_mac_and_counter() -> None:
    frame = parse_frame(V2_FRAME)
    assert frame.afl is not None and frame.afl.mac is not None
    assert frame.afl.mac.hex().upper() == V2_MAC
    kenc, kmac = derive_mode7_keys(V2_KEY, V2_MESSAGE_COUNTER, frame.id_value)
    assert kenc.reveal().hex().upper() == V2_KENC
    assert kmac.reveal().hex().upper() == V2_KMAC
    assert afl_mac(kmac, frame.afl, frame.data[frame.tpl_offset :]).hex().upper() == V2_MAC
    result = unseal(frame, V2_KEY)
    assert (result.mode, result.status, result.message_counter) == (7, "decrypted", 2739)
    assert result.apl.hex().upper() == V1_PLAINTEXT


def test_mode7_never_decrypts_blocks_beyond_l() -> None:
    # V2 with its CF claiming a third encrypted block that lies beyond L, and a MAC that is
    # valid over everything inside L: the third block is not covered by the MAC, so it must
    # not come out as plaintext (mode 5 may read it; mode 7 refuses).
    frame = parse_frame(V2_FRAME)
    data = bytearray(frame.data)
    cf_low = frame.tpl_offset + 3  # CI, ACC, STS, then CF (LE): low byte holds the block count
    data[cf_low] = (data[cf_low] & 0x0F) | (3 << 4)
    edited = parse_frame(bytes(data) + bytes(range(16)), crc="absent")
    assert edited.afl is not None and edited.afl.mcr is not None and edited.afl.mac is not None
    _, kmac = derive_mode7_keys(V2_KEY, edited.afl.mcr, edited.id_value)
    mac = afl_mac(kmac, edited.afl, edited.data[edited.tpl_offset :])
    mac_at = bytes(data).index(edited.afl.mac)
    data[mac_at : mac_at + len(mac)] = mac
    forged = parse_frame(bytes(data) + bytes(range(16)), crc="absent")
    assert len(forged.trailing) == 16 and forged.tpl is not None and forged.tpl.encrypted_blocks == 3
    with pytest.raises(HeaderTruncatedError):
        unseal(forged, V2_KEY)


def test_v3_mode7_uses_the_long_header_id() -> None:
    frame = parse_frame(V3_FRAME)
    assert frame.id == "11223344" and frame.meter_address.id == "12345678"
    assert frame.afl is not None and frame.afl.mac is not None
    assert frame.afl.mac.hex().upper() == V3_MAC
    kenc, kmac = derive_mode7_keys(V3_KEY, V3_MESSAGE_COUNTER, frame.meter_address.id_value)
    assert (kenc.reveal().hex().upper(), kmac.reveal().hex().upper()) == (V2_KENC, V2_KMAC)
    result = unseal(frame, V3_KEY)
    assert (result.status, result.message_counter) == ("decrypted", 2739)
    assert result.apl.hex().upper() == V1_PLAINTEXT


def test_v4_partial_encryption_iv_from_long_header() -> None:
    frame = parse_frame(V4_FRAME)
    assert mode5_iv(frame.meter_address, frame.acc).hex().upper() == V4_IV
    result = unseal(frame, V4_KEY)
    assert result.status == "decrypted"
    # One encrypted block, then the plaintext customer-location record unchanged.
    assert result.apl.hex().upper() == "2F2F0B6E341200426CFE044B6E5634020CFD1078563412"


def test_v6_ell_ctr_iv_crc_and_layers() -> None:
    frame = parse_frame(V6_FRAME)
    assert frame.hidden and frame.ell is not None and frame.ell.sn is not None
    assert ell_ctr_iv(frame.link_address, frame.ell.cc, frame.ell.sn).hex().upper() == V6_IV
    result = unseal(frame, V6_KEY)
    assert (result.mode, result.status, result.ell_encrypted) == ("ell_ctr", "decrypted", True)
    assert result.frame.tpl_ci == 0x78 and not result.frame.hidden
    # The decrypted payload starts with its CRC (LE) over the rest: 0x2B13 here. (On the air,
    # the first ciphertext bytes read B0 06; vectors.md lists those as the decrypted CRC.)
    assert result.frame.ell is not None and result.frame.ell.payload_crc == 0x2B13
    assert crc16(result.frame.data[result.frame.payload_offset - 1 :]) == 0x2B13
    assert result.apl.hex().upper() == "02FF2000000413803C070044139F380700"


def test_v6_fails_if_hop_bit_were_kept_in_the_iv() -> None:
    frame = parse_frame(V6_FRAME)
    assert frame.ell is not None and frame.ell.sn is not None
    iv = ell_ctr_iv(frame.link_address, frame.ell.cc, frame.ell.sn)
    wrong_iv = iv[:8] + bytes((frame.ell.cc,)) + iv[9:]
    assert wrong_iv != iv
    ctr = Cipher(algorithms.AES(bytes.fromhex(V6_KEY)), modes.CTR(wrong_iv)).encryptor()
    plain = ctr.update(frame.data[frame.payload_offset :])
    assert plain[2] != 0x78


def test_v7_radio_converter_mode5() -> None:
    result = unseal(parse_frame(V7_FRAME), V7_KEY)
    assert result.apl.hex().upper() == V7_PLAINTEXT


def test_v8_missing_ciphertext_is_read_beyond_l() -> None:
    frame = parse_frame(V8_FRAME)
    assert frame.tpl is not None and frame.tpl.encrypted_blocks == 4
    inside = len(frame.data) - frame.payload_offset
    assert inside == 63 and len(frame.trailing) >= 1
    result = unseal(frame, V8_KEY)
    assert result.status == "decrypted"
    assert result.apl[:2] == b"\x2f\x2f" and len(result.apl) >= 64
    # The plaintext frame covers the byte taken from beyond L and its L grew to match.
    assert result.frame.data[0] == len(result.frame.data) - 1
    assert len(result.frame.data) == len(frame.data) + 1


def test_v8_cut_at_l_is_a_truncation_not_garbage() -> None:
    canonical = parse_frame(V8_FRAME).data
    with pytest.raises(HeaderTruncatedError):
        unseal(parse_frame(canonical), V8_KEY)


# --- statuses ------------------------------------------------------------------------------------


def test_wrong_key_mode5() -> None:
    with pytest.raises(WrongKeyError) as info:
        unseal(parse_frame(V1_FRAME), OTHER_KEY)
    assert info.value.status == "wrong_key"


def test_wrong_key_ell_ctr() -> None:
    with pytest.raises(WrongKeyError):
        unseal(parse_frame(V6_FRAME), OTHER_KEY)


def test_corrupted_mac_mode7() -> None:
    data = bytearray(parse_frame(V2_FRAME).data)
    frame = parse_frame(bytes(data))
    assert frame.afl is not None and frame.afl.mac is not None
    mac_at = bytes(data).index(frame.afl.mac)
    data[mac_at] ^= 0x01
    with pytest.raises(MACMismatchError) as info:
        unseal(parse_frame(bytes(data)), V2_KEY)
    assert info.value.status == "mac_mismatch"


def test_wrong_key_mode7_is_a_mac_mismatch() -> None:
    with pytest.raises(MACMismatchError):
        unseal(parse_frame(V2_FRAME), OTHER_KEY)


@pytest.mark.parametrize("vector", [V1_FRAME, V2_FRAME, V6_FRAME])
def test_no_key(vector: str) -> None:
    with pytest.raises(NoKeyError) as info:
        unseal(parse_frame(vector), None)
    assert info.value.status == "no_key"


def test_already_decrypted_mode5_with_and_without_key() -> None:
    frame = parse_frame(V10_FRAME)
    assert unseal(frame, None).status == "already_decrypted"
    assert unseal(frame, KEY).status == "already_decrypted"
    with pytest.raises(NoKeyError):
        unseal(frame, None, allow_plaintext=False)
    with pytest.raises(WrongKeyError):
        unseal(frame, KEY, allow_plaintext=False)


def test_already_decrypted_mode7_and_ell() -> None:
    plain7 = unseal(parse_frame(V2_FRAME), V2_KEY).frame.data
    result = unseal(parse_frame(plain7), V2_KEY)
    assert (result.status, result.message_counter) == ("already_decrypted", 2739)
    assert unseal(parse_frame(plain7), None).status == "already_decrypted"
    with pytest.raises(MACMismatchError):
        unseal(parse_frame(plain7), V2_KEY, allow_plaintext=False)
    stored = unseal(parse_frame(V6_FRAME), V6_KEY).frame.data
    assert unseal(parse_frame(stored), None).status == "already_decrypted"
    assert unseal(parse_frame(stored), V6_KEY).status == "already_decrypted"


def test_not_encrypted() -> None:
    frame = parse_frame(
        build_frame(
            manufacturer="ELS",
            id=1,
            version=1,
            device_type=7,
            tpl=_short_tpl(0),
            payload=b"\x0b\x13\x43\x65\x87",
            shape="none",
        )
    )
    result = unseal(frame, KEY)
    assert (result.mode, result.status) == (0, "not_encrypted")


@pytest.mark.parametrize("mode", [1, 3, 6, 8, 13, 31])
def test_unsupported_tpl_mode(mode: int) -> None:
    raw = build_frame(
        manufacturer="ELS",
        id=1,
        version=1,
        device_type=7,
        tpl=_short_tpl(mode, blocks=1),
        payload=bytes(16),
        shape="none",
    )
    with pytest.raises(UnsupportedSecurityError) as info:
        unseal(parse_frame(raw), KEY)
    assert info.value.status == "unsupported"


def test_unsupported_ell_encryption_and_kdf() -> None:
    ell = ELLHeader(ci=0x8D, cc=0x20, acc=1, sn=2 << 29)
    raw = build_frame(
        manufacturer="KAM", id=1, version=1, device_type=7, ell=ell, payload=bytes(20), shape="none"
    )
    with pytest.raises(UnsupportedSecurityError):
        unseal(parse_frame(raw), KEY)
    tpl = _short_tpl(7, cf_ext=0x00)  # KDF selection 0
    sealed = _seal(KEY, b"\x0b\x13\x43\x65\x87", tpl=_short_tpl(7, cf_ext=0x10), afl=_mode7_afl())
    frame = parse_frame(sealed)
    assert frame.tpl is not None
    patched = bytearray(frame.data)
    patched[frame.payload_offset - 1] = tpl.cf_ext or 0
    with pytest.raises(UnsupportedSecurityError):
        unseal(parse_frame(bytes(patched)), KEY)


def test_mode7_without_afl_is_unsupported() -> None:
    raw = build_frame(
        manufacturer="ELS",
        id=1,
        version=1,
        device_type=7,
        tpl=_short_tpl(7, blocks=1, cf_ext=0x10),
        payload=bytes(16),
        shape="none",
    )
    with pytest.raises(UnsupportedSecurityError):
        unseal(parse_frame(raw), KEY)


# --- keys ----------------------------------------------------------------------------------------


def test_key_never_shows_its_bytes() -> None:
    key = OMSKey.from_hex(V1_KEY)
    texts = [repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})]
    for text in texts:
        assert V1_KEY.lower() not in text.lower()
        assert "0102" not in text
        assert "redacted" in text
    assert key == as_key(bytes.fromhex(V1_KEY)) and hash(key) == hash(as_key(V1_KEY))
    assert pickle.loads(pickle.dumps(key)) == key
    assert len(key.fingerprint) == 8


def test_key_errors_do_not_echo_the_text() -> None:
    secret = "ZZ02030405060708090A0B0C0D0E0F11"
    with pytest.raises(InputError) as info:
        OMSKey.from_hex(secret)
    assert secret not in str(info.value) and "0A0B" not in str(info.value)
    with pytest.raises(InputError) as info:
        OMSKey.from_hex(V1_KEY[:-2])
    assert V1_KEY[:-2] not in str(info.value)
    with pytest.raises(InputError):
        OMSKey(b"short")


def test_security_errors_never_carry_key_material() -> None:
    for vector, key in ((V1_FRAME, OTHER_KEY), (V2_FRAME, OTHER_KEY), (V6_FRAME, OTHER_KEY)):
        with pytest.raises(SecurityError) as info:
            unseal(parse_frame(vector), key)
        assert OTHER_KEY.hex() not in str(info.value).lower()


# --- round trips ---------------------------------------------------------------------------------

keys = st.binary(min_size=16, max_size=16)
payloads = st.binary(min_size=0, max_size=120)
accs = st.integers(0, 255)


def _expected_apl(payload: bytes) -> bytes:
    body = payload if payload[:2] == b"\x2f\x2f" else b"\x2f\x2f" + payload
    return body + b"\x2f" * (-len(body) % 16)


@given(
    key=keys, payload=payloads, acc=accs, long_header=st.booleans(), shape=st.sampled_from(["none", "A", "B"])
)
def test_mode5_round_trip(key: bytes, payload: bytes, acc: int, long_header: bool, shape: str) -> None:
    tpl = _long_tpl(5, acc) if long_header else _short_tpl(5, acc)
    sealed = _seal(key, payload, tpl=tpl, shape=shape)
    result = unseal(parse_frame(sealed), key)
    assert result.status == "decrypted" and result.mode == 5
    assert result.apl == _expected_apl(payload)


@given(
    key=keys,
    payload=payloads,
    auth_type=st.sampled_from([3, 4, 5, 6, 7]),
    counter=st.integers(0, 2**32 - 1),
    with_ml=st.booleans(),
    long_header=st.booleans(),
    with_ell=st.booleans(),
)
def test_mode7_round_trip(
    key: bytes, payload: bytes, auth_type: int, counter: int, with_ml: bool, long_header: bool, with_ell: bool
) -> None:
    tpl = _long_tpl(7) if long_header else _short_tpl(7)
    tpl = TPLHeader(ci=tpl.ci, kind=tpl.kind, acc=tpl.acc, sts=0, cf=tpl.cf, cf_ext=0x10, address=tpl.address)
    ell = ELLHeader(ci=0x8C, cc=0x20, acc=tpl.acc) if with_ell else None
    sealed = _seal(key, payload, tpl=tpl, afl=_mode7_afl(auth_type, counter, with_ml), ell=ell)
    frame = parse_frame(sealed)
    assert frame.afl is not None and frame.afl.mac is not None
    assert len(frame.afl.mac) == {3: 2, 4: 4, 5: 8, 6: 12, 7: 16}[auth_type]
    result = unseal(frame, key)
    assert (result.status, result.mode, result.message_counter) == ("decrypted", 7, counter)
    assert result.apl == _expected_apl(payload)


@given(
    key=keys,
    payload=payloads,
    sn=st.integers(0, 2**29 - 1),
    cc=st.integers(0, 255),
    ell_ci=st.sampled_from([0x8D, 0x8F]),
    inner=st.sampled_from(["none", "tpl0", "mode5"]),
)
def test_ell_ctr_round_trip(key: bytes, payload: bytes, sn: int, cc: int, ell_ci: int, inner: str) -> None:
    address = (
        Address(manufacturer_code=0x0907, id_value=0x33445566, version=1, device_type=7)
        if ell_ci == 0x8F
        else None
    )
    ell = ELLHeader(ci=ell_ci, cc=cc, acc=7, address=address, sn=(1 << 29) | sn)
    if inner == "none":
        sealed = _seal(key, payload, ell=ell, ci=0x78)
        expected = payload
    elif inner == "tpl0":
        sealed = _seal(key, payload, ell=ell, tpl=_short_tpl(0))
        expected = payload
    else:
        sealed = _seal(key, payload, ell=ell, tpl=_short_tpl(5))
        expected = _expected_apl(payload)
    frame = parse_frame(sealed)
    assert frame.hidden
    result = unseal(frame, key)
    assert result.status == "decrypted" and result.ell_encrypted
    assert result.mode == ("ell_ctr" if inner != "mode5" else 5)
    assert result.apl == expected


def test_encrypt_functions_invert_the_vectors() -> None:
    for vector, key, encrypt in (
        (V1_FRAME, V1_KEY, encrypt_mode5),
        (V4_FRAME, V4_KEY, encrypt_mode5),
        (V2_FRAME, V2_KEY, encrypt_mode7),
        (V3_FRAME, V3_KEY, encrypt_mode7),
        (V6_FRAME, V6_KEY, encrypt_ell_ctr),
    ):
        frame = parse_frame(vector)
        plain = unseal(frame, key).frame
        assert encrypt(plain.data, key) == frame.data


def test_encrypt_rejects_plaintext_without_key_check() -> None:
    raw = build_frame(
        manufacturer="ELS",
        id=1,
        version=1,
        device_type=7,
        tpl=_short_tpl(5, blocks=1),
        payload=bytes(16),
        shape="none",
    )
    with pytest.raises(InputError):
        encrypt_mode5(raw, KEY)


# --- bit flips -----------------------------------------------------------------------------------


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, payload=payloads, auth_type=st.sampled_from([3, 4, 5, 6, 7]), data=st.data())
def test_mode7_any_bit_flip_in_ciphertext_or_mac_fails(
    key: bytes, payload: bytes, auth_type: int, data: st.DataObject
) -> None:
    sealed = _seal(key, payload, tpl=_short_tpl(7, cf_ext=0x10), afl=_mode7_afl(auth_type))
    frame = parse_frame(sealed)
    assert frame.afl is not None and frame.afl.mac is not None and frame.tpl is not None
    mac_at = 10 + 2 + 2 + 1 + 4  # link header, CI+AFLL, FCL, MCL, MCR
    assert frame.data[mac_at : mac_at + len(frame.afl.mac)] == frame.afl.mac
    cipher_bits = (frame.tpl.encrypted_blocks * 16) * 8
    region = data.draw(st.sampled_from(["mac", "cipher"]))
    if region == "mac":
        bit = mac_at * 8 + data.draw(st.integers(0, len(frame.afl.mac) * 8 - 1))
    else:
        bit = frame.payload_offset * 8 + data.draw(st.integers(0, cipher_bits - 1))
    with pytest.raises(MACMismatchError):
        unseal(parse_frame(_flip(sealed, bit)), key, allow_plaintext=False)


@settings(derandomize=True)
@given(key=keys, payload=payloads, data=st.data())
def test_mode7_bit_flip_never_gives_values_by_default(
    key: bytes, payload: bytes, data: st.DataObject
) -> None:
    sealed = _seal(key, payload, tpl=_short_tpl(7, cf_ext=0x10), afl=_mode7_afl())
    frame = parse_frame(sealed)
    assert frame.tpl is not None
    bit = frame.payload_offset * 8 + data.draw(st.integers(0, frame.tpl.encrypted_blocks * 128 - 1))
    with pytest.raises(MACMismatchError):
        unseal(parse_frame(_flip(sealed, bit)), key)


@given(key=keys, payload=payloads, sn=st.integers(0, 2**29 - 1), data=st.data())
def test_ell_ctr_any_bit_flip_in_ciphertext_fails(
    key: bytes, payload: bytes, sn: int, data: st.DataObject
) -> None:
    sealed = _seal(key, payload, ell=ELLHeader(ci=0x8D, cc=0x20, acc=1, sn=(1 << 29) | sn), ci=0x78)
    frame = parse_frame(sealed)
    bit = frame.payload_offset * 8 + data.draw(st.integers(0, (len(sealed) - frame.payload_offset) * 8 - 1))
    with pytest.raises(WrongKeyError):
        unseal(parse_frame(_flip(sealed, bit)), key, allow_plaintext=False)


@settings(derandomize=True)
@given(key=keys, payload=payloads, data=st.data())
def test_mode5_bit_flip_in_first_block_fails(key: bytes, payload: bytes, data: st.DataObject) -> None:
    sealed = _seal(key, payload, tpl=_short_tpl(5))
    frame = parse_frame(sealed)
    bit = frame.payload_offset * 8 + data.draw(st.integers(0, 127))
    with pytest.raises(WrongKeyError):
        unseal(parse_frame(_flip(sealed, bit)), key)


def test_mode5_has_no_integrity_beyond_the_first_block() -> None:
    # Mode 5 is CBC without a MAC: a flip in block 2 garbles block 2 and flips one bit of
    # block 3, while block 1 (and its 2F2F key check) is untouched. Nobody can detect it;
    # this test pins the documented limitation.
    sealed = _seal(KEY, bytes(40), tpl=_short_tpl(5))
    frame = parse_frame(sealed)
    flipped = _flip(sealed, (frame.payload_offset + 16) * 8)
    result = unseal(parse_frame(flipped), KEY)
    assert result.status == "decrypted"
    assert result.apl[:16] == unseal(frame, KEY).apl[:16]
    assert result.apl[16:32] != unseal(frame, KEY).apl[16:32]


# --- batch path ----------------------------------------------------------------------------------

items = st.lists(
    st.tuples(
        st.sampled_from([KEY, OTHER_KEY, bytes(16)]),
        st.binary(min_size=16, max_size=16),
        st.integers(0, 15).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
    ),
    max_size=30,
)


@given(batch_items=items)
def test_batch_mode5_equals_plain_cbc(batch_items: list[tuple[bytes, bytes, bytes]]) -> None:
    expected = [
        Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor().update(cipher)
        for key, iv, cipher in batch_items
    ]
    assert decrypt_mode5_batch(batch_items) == expected
    batch = Mode5Batch()
    for key, iv, cipher in batch_items:
        batch.add(as_key(key), iv, cipher)
    assert len(batch) == len(batch_items)
    assert batch.run() == expected


def test_batch_rejects_partial_blocks() -> None:
    with pytest.raises(InputError):
        Mode5Batch().add(as_key(KEY), bytes(16), bytes(15))


def test_ciphertext_beyond_l_never_grows_the_frame_past_255() -> None:
    # L = 255 and a long TPL: the 15 announced blocks end 7 bytes past the largest frame an
    # L-field can describe. The bytes are there (beyond L), but no frame can hold them.
    key = bytes(range(16))
    address = Address(manufacturer_code=0x1593, id_value=0x12345678, version=1, device_type=7)
    tpl = bytes.fromhex("72785634129315010701" + "00F005")  # ACC 1, STS 0, CF 0x05F0: mode 5, 15 blocks
    plain = b"\x2f\x2f" + bytes.fromhex("041301000000") * 39 + b"\x2f" * 4
    cipher = Cipher(algorithms.AES(key), modes.CBC(mode5_iv(address, 1))).encryptor().update(plain)
    data = bytes((255,)) + bytes.fromhex("449315785634120107") + tpl + cipher
    frame = parse_frame(data, crc="absent")
    assert len(frame.data) == 256 and len(frame.trailing) == 7
    with pytest.raises(HeaderTruncatedError):
        unseal(frame, key)
