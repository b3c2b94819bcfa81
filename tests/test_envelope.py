"""Sealed gateway envelopes: round trips, tampering, foreign keys, replays, state, key hygiene."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore.envelope import (
    ENVELOPE_VERSION,
    EnvelopeError,
    EnvelopeOpener,
    MalformedEnvelopeError,
    OpenedEnvelope,
    ReplayedEnvelopeError,
    TamperedEnvelopeError,
    UnknownGatewayError,
    seal,
)
from minolcore.errors import GatewayProtocolError, InputError, ReplayError

KEY_1 = bytes(range(16))
KEY_2 = bytes(range(100, 132))
BATCH = b'{"frame":"2E44"}\n2E4493\n'


def opener(window: int = 64) -> EnvelopeOpener:
    return EnvelopeOpener({"GW-1": KEY_1, "GW-2": KEY_2}, window=window)


def test_layout() -> None:
    envelope = seal(BATCH, gateway_id="GW-1", sequence=0x0102030405060708, key=KEY_1)
    assert envelope[0] == ENVELOPE_VERSION
    assert envelope[1] == 4
    assert envelope[2:6] == b"GW-1"
    assert envelope[6:14] == bytes.fromhex("0102030405060708")
    assert len(envelope) == 2 + 4 + 8 + 12 + len(BATCH) + 16
    assert BATCH not in envelope
    # a fresh nonce each time: sealing the same batch twice gives different bytes
    assert seal(BATCH, gateway_id="GW-1", sequence=1, key=KEY_1) != seal(
        BATCH, gateway_id="GW-1", sequence=1, key=KEY_1
    )


def test_open_round_trip() -> None:
    envelope = seal(BATCH, gateway_id="GW-2", sequence=7, key=KEY_2)
    assert opener().open(envelope) == OpenedEnvelope(gateway_id="GW-2", sequence=7, batch=BATCH)


keys = st.sampled_from([16, 24, 32]).flatmap(lambda size: st.binary(min_size=size, max_size=size))


@given(st.binary(max_size=2000), st.text(min_size=1, max_size=60), st.integers(0, 2**64 - 1), keys)
def test_round_trip_property(batch: bytes, gateway_id: str, sequence: int, key: bytes) -> None:
    if len(gateway_id.encode()) > 255:
        with pytest.raises(InputError):
            seal(batch, gateway_id=gateway_id, sequence=sequence, key=key)
        return
    envelope = seal(batch, gateway_id=gateway_id, sequence=sequence, key=key)
    opened = EnvelopeOpener({gateway_id: key}).open(envelope)
    assert opened == OpenedEnvelope(gateway_id=gateway_id, sequence=sequence, batch=batch)


def test_every_single_bit_flip_is_rejected() -> None:
    envelope = seal(BATCH, gateway_id="GW-1", sequence=42, key=KEY_1)
    reasons: set[str] = set()
    for bit in range(len(envelope) * 8):
        flipped = bytearray(envelope)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(EnvelopeError) as info:
            opener().open(bytes(flipped))
        reasons.add(info.value.reason)
    assert reasons <= {"malformed", "unknown_gateway", "tampered"}
    assert {"malformed", "unknown_gateway", "tampered"} <= reasons


def test_bit_flip_into_another_known_gateway_is_tampered() -> None:
    # "GW-1" -> "GW-2" differs in one bit of the last id byte; the key of GW-2 cannot open it.
    envelope = bytearray(seal(BATCH, gateway_id="GW-1", sequence=1, key=KEY_1))
    envelope[5] ^= ord("1") ^ ord("2")
    with pytest.raises(TamperedEnvelopeError) as info:
        opener().open(bytes(envelope))
    assert info.value.reason == "tampered"


def test_foreign_key_and_unknown_gateway() -> None:
    sealed_with_other_key = seal(BATCH, gateway_id="GW-1", sequence=1, key=KEY_2)
    with pytest.raises(TamperedEnvelopeError):
        opener().open(sealed_with_other_key)
    stranger = seal(BATCH, gateway_id="GW-9", sequence=1, key=KEY_1)
    with pytest.raises(UnknownGatewayError) as info:
        opener().open(stranger)
    assert info.value.reason == "unknown_gateway"
    assert info.value.gateway_id == "GW-9"


def test_replay_rejected_and_state_unchanged_by_failures() -> None:
    receiver = opener(window=1)
    first = seal(BATCH, gateway_id="GW-1", sequence=10, key=KEY_1)
    receiver.open(first)
    with pytest.raises(ReplayedEnvelopeError) as info:
        receiver.open(first)
    assert isinstance(info.value, ReplayError)
    assert isinstance(info.value, GatewayProtocolError)
    assert info.value.reason == "replayed"
    assert info.value.sequence == 10
    with pytest.raises(ReplayedEnvelopeError):
        receiver.open(seal(BATCH, gateway_id="GW-1", sequence=9, key=KEY_1))
    # a forged envelope with a huge sequence must not move the window
    forged = bytearray(seal(BATCH, gateway_id="GW-1", sequence=2**63, key=KEY_1))
    forged[-1] ^= 1
    with pytest.raises(TamperedEnvelopeError):
        receiver.open(bytes(forged))
    assert receiver.last_sequence("GW-1") == 10
    assert receiver.open(seal(BATCH, gateway_id="GW-1", sequence=11, key=KEY_1)).sequence == 11
    # gateways have independent counters
    assert receiver.open(seal(BATCH, gateway_id="GW-2", sequence=0, key=KEY_2)).sequence == 0


def test_out_of_order_window() -> None:
    receiver = opener(window=8)
    envelopes = {n: seal(BATCH, gateway_id="GW-1", sequence=n, key=KEY_1) for n in range(30)}
    for n in (20, 18, 19, 13, 21):
        assert receiver.open(envelopes[n]).sequence == n
    for n in (20, 18, 19, 13, 21, 12, 5):  # seen, or older than the window (21 - 8 = 13)
        with pytest.raises(ReplayedEnvelopeError):
            receiver.open(envelopes[n])
    assert receiver.open(envelopes[14]).sequence == 14
    assert receiver.open(envelopes[29]).sequence == 29  # jumps past the whole window
    with pytest.raises(ReplayedEnvelopeError):
        receiver.open(envelopes[21])


@settings(max_examples=50)
@given(st.lists(st.integers(0, 40), max_size=60), st.integers(1, 16))
def test_window_accepts_each_sequence_at_most_once(order: list[int], window: int) -> None:
    receiver = EnvelopeOpener({"GW": KEY_1}, window=window)
    accepted: list[int] = []
    for n in order:
        try:
            accepted.append(receiver.open(seal(b"", gateway_id="GW", sequence=n, key=KEY_1)).sequence)
        except ReplayedEnvelopeError:
            assert n in accepted or n <= max(accepted) - window
    assert len(accepted) == len(set(accepted))
    if order:
        assert receiver.last_sequence("GW") == max(order)


def test_state_export_restore_keeps_replay_protection() -> None:
    before = opener(window=8)
    sent = {n: seal(BATCH, gateway_id="GW-1", sequence=n, key=KEY_1) for n in (3, 5, 6)}
    for envelope in sent.values():
        before.open(envelope)
    before.open(seal(BATCH, gateway_id="GW-2", sequence=100, key=KEY_2))
    state = json.loads(json.dumps(before.export_state()))
    assert state == {
        "version": 1,
        "window": 8,
        "gateways": {"GW-1": {"highest": 6, "seen": 0b1011}, "GW-2": {"highest": 100, "seen": 1}},
    }
    after = opener(window=8)
    after.restore_state(state)
    for envelope in sent.values():
        with pytest.raises(ReplayedEnvelopeError):
            after.open(envelope)
    with pytest.raises(ReplayedEnvelopeError):
        after.open(seal(BATCH, gateway_id="GW-2", sequence=92, key=KEY_2))  # below the window
    assert after.open(seal(BATCH, gateway_id="GW-1", sequence=4, key=KEY_1)).sequence == 4
    assert after.export_state()["gateways"] == {
        "GW-1": {"highest": 6, "seen": 0b1111},
        "GW-2": {"highest": 100, "seen": 1},
    }


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"version": 2, "gateways": {}},
        {"version": 1, "gateways": []},
        {"version": 1, "gateways": {"GW-1": {"highest": -1, "seen": 1}}},
        {"version": 1, "gateways": {"GW-1": {"highest": 2**64, "seen": 1}}},
        {"version": 1, "gateways": {"GW-1": {"highest": True, "seen": 1}}},
        {"version": 1, "gateways": {"GW-1": {"highest": 5}}},
        {"version": 1, "gateways": {"GW-1": 5}},
    ],
)
def test_bad_state_rejected_without_changes(state: dict[str, object]) -> None:
    receiver = opener()
    receiver.open(seal(BATCH, gateway_id="GW-1", sequence=3, key=KEY_1))
    with pytest.raises(InputError):
        receiver.restore_state(state)
    assert receiver.last_sequence("GW-1") == 3


MALFORMED = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\xe1", id="one-byte"),
    pytest.param(b"\xe2\x04GW-1" + bytes(40), id="version"),
    pytest.param(b"\xe1\x00" + bytes(40), id="empty-id"),
    pytest.param(b"\xe1\x04GW-1" + bytes(8 + 12 + 15), id="no-room-for-tag"),
    pytest.param(b"\xe1\x02\xff\xfe" + bytes(40), id="id-not-utf8"),
]


@pytest.mark.parametrize("envelope", MALFORMED)
def test_malformed(envelope: bytes) -> None:
    with pytest.raises(MalformedEnvelopeError) as info:
        opener().open(envelope)
    assert info.value.reason == "malformed"
    assert str(info.value).startswith("malformed: ")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_envelope_errors(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        opener().open(data)


@given(st.binary(max_size=60))
def test_arbitrary_bytes_with_valid_prefix(tail: bytes) -> None:
    with pytest.raises(EnvelopeError):
        opener().open(b"\xe1\x04GW-1" + tail)


def test_seal_input_checks() -> None:
    with pytest.raises(InputError):
        seal(BATCH, gateway_id="", sequence=1, key=KEY_1)
    with pytest.raises(InputError):
        seal(BATCH, gateway_id="G" * 256, sequence=1, key=KEY_1)
    with pytest.raises(InputError):
        seal(BATCH, gateway_id="GW", sequence=-1, key=KEY_1)
    with pytest.raises(InputError):
        seal(BATCH, gateway_id="GW", sequence=2**64, key=KEY_1)
    with pytest.raises(InputError):
        EnvelopeOpener(window=0)


def test_keys_never_shown() -> None:
    secret = bytes.fromhex("8f3c6e11a2b4d5e6f708192a3b4c5d6e")
    bad_key = bytes.fromhex("c0ffee00c0ffee00c0ffee00c0ffee")  # 15 bytes
    receiver = EnvelopeOpener({"GW-1": secret})
    texts = [repr(receiver), str(receiver)]
    assert repr(receiver) == "EnvelopeOpener(gateways=['GW-1'], window=64)"
    errors: list[Exception] = []
    for attempt in (
        lambda: seal(BATCH, gateway_id="GW-1", sequence=1, key=bad_key),
        lambda: receiver.add_gateway("GW-2", bad_key),
        lambda: receiver.open(seal(BATCH, gateway_id="GW-1", sequence=1, key=KEY_1)),
        lambda: receiver.open(seal(BATCH, gateway_id="GW-3", sequence=1, key=secret)),
    ):
        with pytest.raises((InputError, EnvelopeError)) as info:
            attempt()
        errors.append(info.value)
    receiver.open(seal(BATCH, gateway_id="GW-1", sequence=1, key=secret))
    with pytest.raises(ReplayedEnvelopeError) as replay:
        receiver.open(seal(BATCH, gateway_id="GW-1", sequence=1, key=secret))
    errors.append(replay.value)
    texts += [str(error) for error in errors] + [repr(error) for error in errors]
    texts.append(json.dumps(receiver.export_state()))
    for key in (secret, bad_key):
        forms = {key.hex(), key.hex().upper(), repr(key), str(list(key)), key.decode("latin-1")}
        for text in texts:
            for form in forms:
                assert form not in text


def test_struct_layout_constants() -> None:
    envelope = seal(b"x", gateway_id="A", sequence=5, key=KEY_1)
    version, id_length = struct.unpack_from(">BB", envelope)
    sequence, nonce = struct.unpack_from(">Q12s", envelope, 3)
    assert (version, id_length, sequence, len(nonce)) == (ENVELOPE_VERSION, 1, 5, 12)
