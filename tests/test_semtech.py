"""Semtech UDP packet-forwarder codec: datagram layouts, receptions, rejections, properties."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore.adapters import parse_event_time, semtech
from minolcore.adapters.semtech import (
    BadBase64Error,
    BadFieldError,
    BadJSONError,
    BadLengthError,
    BadTimeError,
    DatagramTooShortError,
    GatewayIngest,
    NotAnObjectError,
    PullAck,
    PullData,
    PullResp,
    PushAck,
    PushData,
    Reason,
    Rxpk,
    SizeMismatchError,
    Stat,
    TxAck,
    Txpk,
    UnknownIdentifierError,
    UnsupportedVersionError,
    parse_datagram,
    to_receptions,
)
from minolcore.errors import GatewayProtocolError, InputError
from minolcore.reception import Radio

EUI_BYTES = bytes([0xAA, 0x55, 0x5A, 0x00, 0x00, 0x00, 0x00, 0x00])
EUI = "AA555A0000000000"
SERVER_TIME = 1_767_268_800.0  # 2026-01-01T12:00:00Z

FRAME_1 = bytes.fromhex("40f17dbe4900020001954378762b11ff0d")
FRAME_2 = bytes.fromhex("40f17dbe4900030001")
FRAME_BAD = bytes.fromhex("deadbeef")


def gateway_datagram(identifier: int, token: bytes = b"\x3a\x7f", body: bytes = b"") -> bytes:
    """Version 2, token, identifier, gateway EUI, body: the layout the spec gives, byte by byte."""
    return bytes([0x02]) + token + bytes([identifier]) + EUI_BYTES + body


def rxpk_json(frame: bytes, **fields: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "tmst": 3512348611,
        "chan": 2,
        "rfch": 0,
        "freq": 868.1,
        "stat": 1,
        "modu": "LORA",
        "datr": "SF7BW125",
        "codr": "4/5",
        "rssi": -35,
        "lsnr": 5.1,
        "size": len(frame),
        "data": base64.b64encode(frame).decode(),
    }
    entry.update(fields)
    return entry


def push(body: object, token: bytes = b"\x3a\x7f") -> bytes:
    return gateway_datagram(0x00, token, json.dumps(body).encode())


# --- PUSH_DATA -> receptions -----------------------------------------------------------------


def three_packet_push() -> bytes:
    return push(
        {
            "rxpk": [
                rxpk_json(FRAME_1, time="2026-01-01T11:59:59.250000Z"),
                rxpk_json(FRAME_BAD, stat=-1, time="2026-01-01T11:59:59.500000Z"),
                # no time: the gateway has no GPS, so the server receive time is the event time
                rxpk_json(FRAME_2, modu="FSK", datr=50000, rssi=-80, lsnr=None, codr=None, stat=0),
            ],
            "stat": {"time": "2026-01-01 11:59:59 GMT", "rxnb": 3, "rxok": 2, "ackr": 100.0, "alti": 145},
        }
    )


def test_push_data_parsed_field_by_field() -> None:
    event = parse_datagram(three_packet_push(), received_at=SERVER_TIME)
    assert isinstance(event, PushData)
    assert event.token == 0x3A7F
    assert event.gateway_eui == EUI
    assert event.received_at == SERVER_TIME
    assert len(event.rxpk) == 3
    first = event.rxpk[0]
    assert first.data == FRAME_1
    assert first.size == len(FRAME_1)
    assert first.tmst == 3512348611
    assert first.chan == 2
    assert first.rfch == 0
    assert first.freq == 868.1
    assert first.stat == 1
    assert first.modu == "LORA"
    assert first.datr == "SF7BW125"
    assert first.codr == "4/5"
    assert first.rssi == -35
    assert first.lsnr == 5.1
    assert first.time == "2026-01-01T11:59:59.250000Z"
    assert first.time_unix == SERVER_TIME - 0.75
    assert event.rxpk[2].datr == 50000
    assert event.rxpk[2].time_unix is None
    assert event.stat == Stat(time="2026-01-01 11:59:59 GMT", rxnb=3, rxok=2, ackr=100.0, alti=145.0)


def test_push_data_to_receptions_drops_crc_failed() -> None:
    event = parse_datagram(three_packet_push(), received_at=SERVER_TIME)
    assert isinstance(event, PushData)
    batch = to_receptions(event)
    assert batch.crc_failed == 1
    assert batch.no_crc == 1
    assert [r.payload for r in batch.receptions] == [FRAME_1, FRAME_2]
    first, second = batch.receptions
    assert first.radio is Radio.LORAWAN
    assert first.gateway_id == EUI
    assert first.received_at == SERVER_TIME - 0.75
    assert first.tmst == 3512348611  # a downlink answering it is timed from here
    assert first.rssi == -35
    assert first.snr == 5.1
    assert first.frequency == 868.1
    assert first.mode == "SF7BW125"
    assert second.received_at == SERVER_TIME
    assert second.snr is None
    assert second.mode == "FSK50000"


def test_to_receptions_needs_some_time() -> None:
    event = parse_datagram(push({"rxpk": [rxpk_json(FRAME_1)]}))
    assert isinstance(event, PushData)
    with pytest.raises(InputError):
        to_receptions(event)
    assert to_receptions(event, received_at=5.0).receptions[0].received_at == 5.0


def test_ingest_counts_and_acks() -> None:
    ingest = GatewayIngest()
    outcome = ingest.receive(three_packet_push(), received_at=SERVER_TIME)
    assert outcome.reply == bytes([0x02, 0x3A, 0x7F, 0x01])
    assert outcome.rejected is None
    assert [r.payload for r in outcome.receptions] == [FRAME_1, FRAME_2]
    stats = ingest.stats()
    assert (stats.datagrams, stats.push_data, stats.rxpk_ok, stats.rxpk_no_crc, stats.crc_failed) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert stats.malformed == {}


def test_stat_only_push_data() -> None:
    event = parse_datagram(push({"stat": {"rxnb": 0}}))
    assert isinstance(event, PushData)
    assert event.rxpk == ()
    assert event.stat == Stat(rxnb=0)


def test_unpadded_base64_and_trailing_nul_accepted() -> None:
    entry = rxpk_json(b"\x01\x02", data="AQI")
    event = parse_datagram(push({"rxpk": [entry]}) + b"\x00")
    assert isinstance(event, PushData)
    assert event.rxpk[0].data == b"\x01\x02"


def test_nanosecond_time_accepted() -> None:
    event = parse_datagram(push({"rxpk": [rxpk_json(FRAME_1, time="2026-01-01T12:00:00.123456789Z")]}))
    assert isinstance(event, PushData)
    assert event.rxpk[0].time_unix == pytest.approx(SERVER_TIME + 0.123456, abs=1e-6)


# --- acknowledgements and downlink -----------------------------------------------------------


def test_push_ack_bytes_exact() -> None:
    assert semtech.push_ack(0x3A7F) == b"\x02\x3a\x7f\x01"
    assert semtech.push_ack(0) == b"\x02\x00\x00\x01"


def test_pull_data_and_pull_ack() -> None:
    event = parse_datagram(gateway_datagram(0x02, b"\xbe\xef"))
    assert event == PullData(token=0xBEEF, gateway_eui=EUI)
    assert semtech.pull_ack(0xBEEF) == b"\x02\xbe\xef\x04"
    ingest = GatewayIngest()
    outcome = ingest.receive(gateway_datagram(0x02, b"\xbe\xef"), received_at=SERVER_TIME)
    assert outcome.reply == b"\x02\xbe\xef\x04"
    assert outcome.receptions == ()
    assert ingest.stats().pull_data == 1


def test_pull_resp_layout() -> None:
    txpk = Txpk(
        imme=True, freq=869.525, rfch=0, powe=14, modu="LORA", datr="SF9BW125", codr="4/5", data=b"\xa0"
    )
    datagram = semtech.pull_resp(0x0102, txpk)
    assert datagram[:4] == b"\x02\x01\x02\x03"
    body = json.loads(datagram[4:])
    assert body == {
        "txpk": {
            "imme": True,
            "freq": 869.525,
            "rfch": 0,
            "powe": 14,
            "modu": "LORA",
            "datr": "SF9BW125",
            "codr": "4/5",
            "size": 1,
            "data": "oA==",
        }
    }
    assert parse_datagram(datagram) == PullResp(token=0x0102, txpk=txpk)


def test_tx_ack_with_and_without_json() -> None:
    assert parse_datagram(gateway_datagram(0x05, b"\x00\x09")) == TxAck(token=9, gateway_eui=EUI)
    body = b'{"txpk_ack":{"error":"TOO_LATE"}}'
    assert parse_datagram(gateway_datagram(0x05, b"\x00\x09", body)) == TxAck(
        token=9, gateway_eui=EUI, error="TOO_LATE"
    )
    ingest = GatewayIngest()
    outcome = ingest.receive(gateway_datagram(0x05, b"\x00\x09", body), received_at=SERVER_TIME)
    assert outcome.reply == b""
    assert ingest.stats().tx_ack == 1
    assert ingest.stats().tx_errors == 1


def test_server_datagrams_sent_to_server_are_rejected_by_ingest() -> None:
    ingest = GatewayIngest()
    outcome = ingest.receive(semtech.push_ack(1), received_at=SERVER_TIME)
    assert isinstance(outcome.event, PushAck)
    assert outcome.rejected == Reason.WRONG_DIRECTION
    assert outcome.reply == b""
    assert ingest.stats().malformed == {"wrong_direction": 1}


def test_builders_validate_input() -> None:
    with pytest.raises(InputError):
        semtech.push_ack(0x10000)
    with pytest.raises(InputError):
        semtech.pull_data(1, "AA55")
    with pytest.raises(InputError):
        semtech.pull_data(1, "not hex at all!!")


# --- malformed datagrams ---------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"", DatagramTooShortError, "too_short", id="empty"),
    pytest.param(b"\x02\x00\x01", DatagramTooShortError, "too_short", id="short-header"),
    pytest.param(b"\x02\x00\x01\x00" + EUI_BYTES[:5], DatagramTooShortError, "too_short", id="short-eui"),
    pytest.param(b"\x01\x00\x01\x02" + EUI_BYTES, UnsupportedVersionError, "bad_version", id="version-1"),
    pytest.param(b"\x03\x00\x01\x02" + EUI_BYTES, UnsupportedVersionError, "bad_version", id="version-3"),
    pytest.param(b"\x02\x00\x01\x06" + EUI_BYTES, UnknownIdentifierError, "unknown_identifier", id="ident-6"),
    pytest.param(b"\x02\x00\x01\xff", UnknownIdentifierError, "unknown_identifier", id="ident-ff"),
    pytest.param(gateway_datagram(0x02, body=b"x"), BadLengthError, "bad_length", id="pull-data-extra"),
    pytest.param(b"\x02\x00\x01\x01\x00", BadLengthError, "bad_length", id="push-ack-extra"),
    pytest.param(gateway_datagram(0x00), BadJSONError, "bad_json", id="no-json"),
    pytest.param(gateway_datagram(0x00, body=b'{"rxpk":['), BadJSONError, "bad_json", id="truncated-json"),
    pytest.param(gateway_datagram(0x00, body=b"\xff\xfe{}"), BadJSONError, "bad_json", id="not-utf8"),
    pytest.param(gateway_datagram(0x00, body=b"[" * 50_000), BadJSONError, "bad_json", id="deep-nesting"),
    pytest.param(gateway_datagram(0x00, body=b"[1, 2]"), NotAnObjectError, "not_object", id="array"),
    pytest.param(gateway_datagram(0x00, body=b'"rxpk"'), NotAnObjectError, "not_object", id="string"),
    pytest.param(push({"rxpk": {}}), BadFieldError, "bad_field", id="rxpk-not-list"),
    pytest.param(push({"rxpk": [rxpk_json(FRAME_1, tmst="1")]}), BadFieldError, "bad_field", id="tmst-str"),
    pytest.param(
        push({"rxpk": [rxpk_json(FRAME_1, tmst=2**32)]}), BadFieldError, "bad_field", id="tmst-33bit"
    ),
    pytest.param(push({"rxpk": [rxpk_json(FRAME_1, stat=2)]}), BadFieldError, "bad_field", id="stat-2"),
    pytest.param(push({"rxpk": [rxpk_json(FRAME_1, freq=-1)]}), BadFieldError, "bad_field", id="freq-neg"),
    pytest.param(push({"rxpk": [rxpk_json(FRAME_1, data=5)]}), BadFieldError, "bad_field", id="data-int"),
    pytest.param(push({"rxpk": [{"data": "AA=="}]}), BadFieldError, "bad_field", id="missing-fields"),
    pytest.param(push({"rxpk": [5]}), BadFieldError, "bad_field", id="rxpk-entry-int"),
    pytest.param(push({"stat": {"rxnb": "x"}}), BadFieldError, "bad_field", id="stat-type"),
    pytest.param(
        push({"rxpk": [rxpk_json(FRAME_1, data="!!!!")]}), BadBase64Error, "bad_base64", id="b64-char"
    ),
    pytest.param(
        push({"rxpk": [rxpk_json(FRAME_1, data="AAAAA")]}), BadBase64Error, "bad_base64", id="b64-len"
    ),
    pytest.param(push({"rxpk": [rxpk_json(FRAME_1, size=3)]}), SizeMismatchError, "size_mismatch", id="size"),
    pytest.param(push({"rxpk": [rxpk_json(FRAME_1, time="yesterday")]}), BadTimeError, "bad_time", id="time"),
    pytest.param(gateway_datagram(0x05, body=b"{oops"), BadJSONError, "bad_json", id="tx-ack-json"),
    pytest.param(b"\x02\x00\x01\x03", BadJSONError, "bad_json", id="pull-resp-empty"),
]


@pytest.mark.parametrize(("datagram", "error", "reason"), MALFORMED)
def test_malformed_datagram_reason(datagram: bytes, error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as info:
        parse_datagram(datagram)
    assert isinstance(info.value, GatewayProtocolError)
    assert info.value.reason == reason  # type: ignore[attr-defined]
    assert str(info.value).startswith(reason)


def test_ingest_counts_each_malformed_reason_and_keeps_going() -> None:
    ingest = GatewayIngest()
    for param in MALFORMED:
        datagram = param.values[0]
        assert isinstance(datagram, bytes)
        outcome = ingest.receive(datagram, received_at=SERVER_TIME)
        assert outcome.reply == b""
        assert outcome.rejected == param.values[2]
        assert outcome.detail
    after = ingest.receive(three_packet_push(), received_at=SERVER_TIME)
    assert after.reply == semtech.push_ack(0x3A7F)
    stats = ingest.stats()
    assert sum(stats.malformed.values()) == len(MALFORMED)
    assert stats.malformed["bad_field"] == 9
    assert stats.datagrams == len(MALFORMED) + 1


def test_error_details_carry_data() -> None:
    with pytest.raises(SizeMismatchError) as size_info:
        parse_datagram(push({"rxpk": [rxpk_json(FRAME_1), rxpk_json(FRAME_1, size=3)]}))
    assert (size_info.value.index, size_info.value.size, size_info.value.actual) == (1, 3, len(FRAME_1))
    with pytest.raises(BadFieldError) as field_info:
        parse_datagram(push({"rxpk": [rxpk_json(FRAME_1), rxpk_json(FRAME_1, chan="x")]}))
    assert "$.rxpk[1].chan" in field_info.value.detail
    with pytest.raises(UnsupportedVersionError) as version_info:
        parse_datagram(b"\x01\x00\x00\x00")
    assert version_info.value.version == 1


# --- properties ------------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_gateway_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(GatewayProtocolError):
        parse_datagram(data, received_at=SERVER_TIME)


@given(st.binary(max_size=200))
def test_arbitrary_body_after_valid_header(body: bytes) -> None:
    for identifier in range(6):
        with contextlib.suppress(GatewayProtocolError):
            parse_datagram(gateway_datagram(identifier, body=body))


@given(st.binary(max_size=12))
def test_bytes_that_are_not_utf8_inside_the_json_are_bad_json(inside: bytes) -> None:
    body = b'{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA' + inside + b'","data":"QAE="}]}'
    with contextlib.suppress(GatewayProtocolError):
        parse_datagram(gateway_datagram(0, body=body), received_at=SERVER_TIME)
    line = b'{"gateway":"AA555A0000000000","received_at":1700000000,' + body[1:]
    with contextlib.suppress(GatewayProtocolError):
        semtech.parse_log_line(line, default_gateway="GW", default_time=1_700_000_000.0)


@given(st.binary(max_size=120))
def test_ingest_never_raises(data: bytes) -> None:
    ingest = GatewayIngest()
    outcome = ingest.receive(b"\x02" + data, received_at=SERVER_TIME)
    server_bound = (PushData, PullData, TxAck)
    assert (outcome.rejected is None) == isinstance(outcome.event, server_bound)
    if outcome.rejected is not None:
        assert outcome.reply == b""
        assert outcome.receptions == ()


tokens = st.integers(0, 0xFFFF)
euis = st.binary(min_size=8, max_size=8).map(lambda raw: raw.hex().upper())
small_text = st.text(st.characters(codec="utf-8"), max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
times = st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)).map(
    lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
)


@st.composite
def rxpks(draw: st.DrawFn) -> Rxpk:
    time = draw(st.none() | times)
    return Rxpk(
        data=draw(st.binary(max_size=255)),
        tmst=draw(st.integers(0, 0xFFFFFFFF)),
        freq=draw(st.floats(0, 2500, allow_nan=False)),
        stat=draw(st.sampled_from([-1, 0, 1])),
        modu=draw(st.sampled_from(["LORA", "FSK"])),
        datr=draw(st.sampled_from(["SF7BW125", "SF12BW125"]) | st.integers(0, 300_000)),
        time=time,
        time_unix=None if time is None else parse_event_time(time),
        chan=draw(st.none() | st.integers(0, 15)),
        rfch=draw(st.none() | st.integers(0, 1)),
        codr=draw(st.none() | st.sampled_from(["4/5", "4/8"])),
        rssi=draw(st.none() | finite),
        lsnr=draw(st.none() | finite),
    )


stats = st.none() | st.builds(
    Stat,
    time=st.none() | small_text,
    lati=st.none() | finite,
    long=st.none() | finite,
    alti=st.none() | finite,
    rxnb=st.none() | st.integers(0, 2**40),
    ackr=st.none() | finite,
)


@given(tokens, euis, st.lists(rxpks(), max_size=4).map(tuple), stats)
def test_push_data_round_trip(token: int, eui: str, packets: tuple[Rxpk, ...], stat: Stat | None) -> None:
    event = parse_datagram(semtech.push_data(token, eui, packets, stat), received_at=1.5)
    assert event == PushData(token=token, gateway_eui=eui, rxpk=packets, stat=stat, received_at=1.5)


@given(tokens, euis)
def test_pull_data_round_trip(token: int, eui: str) -> None:
    assert parse_datagram(semtech.pull_data(token, eui)) == PullData(token=token, gateway_eui=eui)


@given(tokens)
def test_ack_round_trips(token: int) -> None:
    assert parse_datagram(semtech.push_ack(token)) == PushAck(token=token)
    assert parse_datagram(semtech.pull_ack(token)) == PullAck(token=token)


@given(tokens, euis, small_text)
def test_tx_ack_round_trip(token: int, eui: str, error: str) -> None:
    assert parse_datagram(semtech.tx_ack(token, eui, error)) == TxAck(
        token=token, gateway_eui=eui, error=error
    )


@given(
    tokens,
    st.builds(
        Txpk,
        freq=st.floats(0, 2500, allow_nan=False),
        data=st.binary(max_size=64),
        imme=st.none() | st.booleans(),
        tmst=st.none() | st.integers(0, 0xFFFFFFFF),
        powe=st.none() | st.integers(0, 30),
        datr=st.none() | st.sampled_from(["SF9BW125"]) | st.integers(0, 300_000),
        ipol=st.none() | st.booleans(),
    ),
)
def test_pull_resp_round_trip(token: int, txpk: Txpk) -> None:
    assert parse_datagram(semtech.pull_resp(token, txpk)) == PullResp(token=token, txpk=txpk)
