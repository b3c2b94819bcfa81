"""Wireless M-Bus collector upload lines: both formats, every rejection, order, properties."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore.adapters.collector import (
    CollectorLineError,
    RejectedLine,
    RejectReason,
    iter_collector_file,
    iter_collector_lines,
    parse_collector_line,
)
from minolcore.errors import GatewayProtocolError, InputError
from minolcore.reception import Radio, Reception

FRAME_HEX = "2E4493157856341233037A2A0000002F2F0C1427048502046D32371F1502FD1700002F2F2F2F2F2F2F2F"
FRAME = bytes.fromhex(FRAME_HEX)
NOON = 1_767_268_800.0  # 2026-01-01T12:00:00Z
DEFAULT_TIME = 1_700_000_000.0


def parse(lines: list[str] | list[bytes]) -> list[Reception | RejectedLine]:
    return list(iter_collector_lines(lines, default_gateway="GW-0", default_time=DEFAULT_TIME))


def test_json_line_all_fields() -> None:
    line = json.dumps(
        {
            "gateway": "GW-1",
            "received_at": "2026-01-01T12:00:00Z",
            "rssi": -70,
            "mode": "T1",
            "frame": FRAME_HEX,
        }
    )
    assert parse([line]) == [
        Reception(
            gateway_id="GW-1", received_at=NOON, payload=FRAME, radio=Radio.WMBUS, rssi=-70.0, mode="T1"
        )
    ]


@pytest.mark.parametrize(
    "obj",
    [
        {"gateway_id": "GW-1", "time": NOON, "telegram": FRAME_HEX},
        {"gateway_id": "GW-1", "ts": int(NOON), "hex": FRAME_HEX.lower()},
        {"gateway": "GW-1", "time": "2026-01-01T13:00:00+01:00", "frame": FRAME_HEX},
        {"gateway": "GW-1", "ts": "2026-01-01 12:00:00", "frame": FRAME_HEX},  # no offset: UTC
        {"gateway": "GW-1", "received_at": "1767268800", "frame": FRAME_HEX},
        {"gateway": "GW-1", "received_at": NOON, "frame": FRAME_HEX, "extra": [1, {"x": None}]},
    ],
)
def test_json_line_aliases(obj: dict[str, object]) -> None:
    (item,) = parse([json.dumps(obj)])
    assert item == Reception(gateway_id="GW-1", received_at=NOON, payload=FRAME)


def test_alias_priority_and_defaults() -> None:
    line = json.dumps({"frame": "01", "telegram": "02", "hex": "03", "received_at": NOON, "time": 5, "ts": 6})
    (item,) = parse([line])
    assert isinstance(item, Reception)
    assert (item.payload, item.received_at, item.gateway_id, item.mode, item.rssi) == (
        b"\x01",
        NOON,
        "GW-0",
        "",
        None,
    )
    (bare,) = parse(['{"frame": "0102"}'])
    assert bare == Reception(gateway_id="GW-0", received_at=DEFAULT_TIME, payload=b"\x01\x02")


def test_hex_lines_use_defaults() -> None:
    assert parse([FRAME_HEX, FRAME_HEX.lower() + "\n", "  2e 44 93  \r\n"]) == [
        Reception(gateway_id="GW-0", received_at=DEFAULT_TIME, payload=FRAME),
        Reception(gateway_id="GW-0", received_at=DEFAULT_TIME, payload=FRAME),
        Reception(gateway_id="GW-0", received_at=DEFAULT_TIME, payload=b"\x2e\x44\x93"),
    ]


def test_bytes_lines_and_str_lines_agree() -> None:
    lines = [FRAME_HEX, json.dumps({"frame": FRAME_HEX, "ts": NOON, "mode": "C1"}), "zz", ""]
    from_str = parse(lines)
    from_bytes = parse([line.encode() for line in lines])
    assert from_str[:2] == from_bytes[:2]
    assert [(r.line_no, r.reason) for r in from_str[2:] if isinstance(r, RejectedLine)] == [
        (3, "non_hex"),
        (4, "empty"),
    ]
    assert [(r.line_no, r.reason) for r in from_bytes[2:] if isinstance(r, RejectedLine)] == [
        (3, "non_hex"),
        (4, "empty"),
    ]


REJECTIONS = [
    pytest.param("", RejectReason.EMPTY, id="empty"),
    pytest.param("   \t", RejectReason.EMPTY, id="whitespace"),
    pytest.param('{"frame": "2E44"', RejectReason.BAD_JSON, id="truncated-json"),
    pytest.param("{frame: 2E44}", RejectReason.BAD_JSON, id="unquoted"),
    pytest.param("[1, 2]", RejectReason.BAD_JSON, id="array"),
    pytest.param('"2E44"', RejectReason.BAD_JSON, id="json-string"),
    pytest.param('{"frame": "2E44", "gateway": "\udc80"}', RejectReason.BAD_JSON, id="lone-surrogate"),
    pytest.param('{"frame": "2E44", "rssi": "strong"}', RejectReason.BAD_FIELD, id="rssi-type"),
    pytest.param('{"frame": 2044}', RejectReason.BAD_FIELD, id="frame-number"),
    pytest.param('{"frame": "2E44", "gateway": 7}', RejectReason.BAD_FIELD, id="gateway-type"),
    pytest.param('{"gateway": "GW-1", "rssi": -70}', RejectReason.MISSING_FRAME, id="no-frame"),
    pytest.param('{"frame": ""}', RejectReason.MISSING_FRAME, id="empty-frame"),
    pytest.param('{"frame": "\\r"}', RejectReason.MISSING_FRAME, id="whitespace-frame"),
    pytest.param('{"frame": " \\t "}', RejectReason.MISSING_FRAME, id="blank-frame"),
    pytest.param('{"frame": null, "hex": null}', RejectReason.MISSING_FRAME, id="null-frame"),
    pytest.param("2E4", RejectReason.ODD_HEX, id="odd"),
    pytest.param('{"frame": "2E449"}', RejectReason.ODD_HEX, id="json-odd"),
    pytest.param("2E4G", RejectReason.NON_HEX, id="non-hex"),
    pytest.param("2E44 HEX KEY", RejectReason.NON_HEX, id="hex-and-key"),
    pytest.param("0x2E44", RejectReason.NON_HEX, id="0x-prefix"),
    pytest.param("2E4 4", RejectReason.NON_HEX, id="space-in-byte"),
    pytest.param("2E44ü", RejectReason.NON_HEX, id="non-ascii"),
    pytest.param('{"frame": "2E-44"}', RejectReason.NON_HEX, id="json-non-hex"),
    pytest.param('{"frame": "2E44", "received_at": "yesterday"}', RejectReason.BAD_TIME, id="time-text"),
    pytest.param('{"frame": "2E44", "time": true}', RejectReason.BAD_TIME, id="time-bool"),
    pytest.param('{"frame": "2E44", "ts": -5}', RejectReason.BAD_TIME, id="time-negative"),
    pytest.param('{"frame": "2E44", "ts": 1767268800000}', RejectReason.BAD_TIME, id="time-millis"),
    pytest.param('{"frame": "2E44", "ts": "nan"}', RejectReason.BAD_TIME, id="time-nan"),
    pytest.param('{"frame": "2E44", "ts": "2026-13-01T00:00:00Z"}', RejectReason.BAD_TIME, id="month-13"),
]


@pytest.mark.parametrize(("line", "reason"), REJECTIONS)
def test_rejection_reason(line: str, reason: RejectReason) -> None:
    (item,) = parse([line])
    assert isinstance(item, RejectedLine)
    assert item.reason == reason
    assert item.line_no == 1
    assert item.raw == line
    assert item.detail
    with pytest.raises(CollectorLineError) as info:
        parse_collector_line(line, default_gateway="GW-0", default_time=DEFAULT_TIME)
    assert isinstance(info.value, GatewayProtocolError)
    assert info.value.reason == reason


def test_millisecond_hint_in_detail() -> None:
    (item,) = parse(['{"frame": "2E44", "ts": 1767268800000}'])
    assert isinstance(item, RejectedLine)
    assert "milliseconds" in item.detail


def test_mixed_stream_keeps_order_and_line_numbers() -> None:
    good = [json.dumps({"frame": f"{i:02X}", "ts": NOON + i}) for i in range(5)]
    bad = [param.values[0] for param in REJECTIONS]
    lines: list[str] = []
    for index, bad_line in enumerate(bad):
        lines.append(good[index % 5])
        lines.append(str(bad_line))
    items = parse(lines)
    assert len(items) == len(lines)
    for index, item in enumerate(items):
        if index % 2 == 0:
            assert isinstance(item, Reception)
            assert item.payload == bytes([index // 2 % 5])
        else:
            assert isinstance(item, RejectedLine)
            assert item.line_no == index + 1
            assert item.raw == lines[index]
            assert item.reason == REJECTIONS[index // 2].values[1]


def test_byte_order_mark_on_first_line(tmp_path: Path) -> None:
    path = tmp_path / "upload.txt"
    path.write_bytes(
        b"\xef\xbb\xbf" + FRAME_HEX.encode() + b"\r\n" + b'{"frame":"01","ts":1767268800}\n\nzz\n'
    )
    items = list(iter_collector_file(path, default_gateway="GW-9", default_time=DEFAULT_TIME))
    assert items[0] == Reception(gateway_id="GW-9", received_at=DEFAULT_TIME, payload=FRAME)
    assert items[1] == Reception(gateway_id="GW-9", received_at=NOON, payload=b"\x01")
    assert [(i.line_no, i.reason) for i in items[2:] if isinstance(i, RejectedLine)] == [
        (3, "empty"),
        (4, "non_hex"),
    ]
    assert parse(["\ufeff" + FRAME_HEX])[0] == Reception(
        gateway_id="GW-0", received_at=DEFAULT_TIME, payload=FRAME
    )


def test_bad_defaults_raise_at_call_time() -> None:
    with pytest.raises(InputError):
        iter_collector_lines([], default_gateway="", default_time=0.0)
    with pytest.raises(InputError):
        iter_collector_lines([], default_gateway="GW", default_time=float("nan"))
    with pytest.raises(InputError):
        iter_collector_file("/nonexistent", default_gateway="GW", default_time=-1.0)


def test_stream_is_lazy() -> None:
    def lines() -> object:
        yield FRAME_HEX
        raise AssertionError("read past the first line")

    stream = iter_collector_lines(lines(), default_gateway="GW-0", default_time=DEFAULT_TIME)  # type: ignore[arg-type]
    assert isinstance(next(stream), Reception)


line_texts = st.text(max_size=80) | st.builds(
    json.dumps,
    st.dictionaries(
        st.sampled_from(
            ["frame", "telegram", "hex", "gateway", "gateway_id", "received_at", "time", "ts", "rssi"]
        ),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.just(FRAME_HEX),
    ),
)


@given(st.lists(line_texts, max_size=20))
def test_arbitrary_text_lines_never_raise(lines: list[str]) -> None:
    items = parse(lines)
    assert len(items) == len(lines)
    for line_no, (line, item) in enumerate(zip(lines, items, strict=True), 1):
        if isinstance(item, RejectedLine):
            assert item.line_no == line_no
            assert item.raw == line
            assert item.reason in RejectReason
        else:
            assert isinstance(item, Reception)
            assert item.payload


@given(st.lists(st.binary(max_size=60), max_size=20))
def test_arbitrary_byte_lines_never_raise(lines: list[bytes]) -> None:
    items = parse(lines)
    assert len(items) == len(lines)
    assert all(isinstance(item, Reception | RejectedLine) for item in items)


@given(st.binary(min_size=1, max_size=300), st.floats(0, 4e9), st.text(min_size=1, max_size=20))
def test_json_and_hex_round_trip(frame: bytes, when: float, gateway: str) -> None:
    line = json.dumps({"gateway": gateway, "received_at": when, "frame": frame.hex()})
    assert parse([line, frame.hex().upper()]) == [
        Reception(gateway_id=gateway, received_at=when, payload=frame),
        Reception(gateway_id="GW-0", received_at=DEFAULT_TIME, payload=frame),
    ]


@pytest.mark.parametrize(
    "line",
    [b'{"frame": "2E44", "gateway": "\xff"}', b'{"frame": "2E\xc3", "gateway": "GW-1"}'],
)
def test_bytes_that_are_not_utf8_inside_json_are_bad_json(line: bytes) -> None:
    (item,) = parse([line])
    assert isinstance(item, RejectedLine) and item.reason == RejectReason.BAD_JSON
