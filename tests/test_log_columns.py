"""The bulk log reader: the C core equals its twin on any bytes, every line it reads gives
what the line reader gives, and a file read in batches gives what it gives line by line."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore import _native
from minolcore._reference.lines import read_collector_lines_into
from minolcore.adapters import gateway_log
from minolcore.adapters.collector import (
    COLLECTOR_LINE_DTYPE,
    GATEWAY_DEFAULT,
    GATEWAY_UNKNOWN,
    LINE_FOR_PYTHON,
    LINE_READ,
    RejectedLine,
    read_collector_block,
    read_numbered_line,
)
from minolcore.adapters.gateway_log import iter_gateway_log_file, iter_log_batches
from minolcore.errors import InputError
from minolcore.reception import Reception, ReceptionColumns
from tests.test_gateway_log import FRAME_HEX, NOON, rxpk

GATEWAYS = ("GW-1", "GW-2", "GW-\u00e4")
# Whether the C reader reads numbers of 16 to 40 digits with a fraction (its twin alone does).
LONG_NUMBERS = _native.BACKEND != "cffi" or bool(_native.lib.mc_long_numbers())
LONG_READ = -1  # expected: read where LONG_NUMBERS, else left to Python
DEFAULT_GATEWAY, DEFAULT_TIME = "file.jsonl", 1_700_000_000.0

# Values a collector line may hold, near the edges of what the bulk reader takes.
NUMBERS = st.one_of(
    st.sampled_from(
        ["0", "-0", "1704081572.337", "-68.2", "253402300799.999", "253402300800", "1e3", "01", "1."]
    ),
    st.integers(-(10**16), 10**16).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
)
TEXTS = st.one_of(
    st.sampled_from(
        ["GW-1", "GW-2", "GW-\u00e4", "GW-3", "", "T1", FRAME_HEX, FRAME_HEX[:-1], FRAME_HEX.lower()]
    ),
    st.text(max_size=8),
    st.binary(max_size=12).map(bytes.hex),
)


def _iso(moment: dt.datetime, digits: int, zone: str, separator: str) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S").replace("T", separator)
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + zone


# Time texts: the UTC forms the bulk reader reads, and their neighbours it leaves to Python.
TIME_TEXTS = st.one_of(
    st.builds(
        _iso,
        st.datetimes(min_value=dt.datetime(1960, 1, 1), max_value=dt.datetime(2300, 12, 31)),
        st.integers(0, 7),
        st.sampled_from(["", "Z", "+00:00", "+01:00", "z", "-00:00", "+0000"]),
        st.sampled_from(["T", "T", " "]),
    ),
    st.sampled_from(
        [
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-12-31T23:59:60Z",
            "2024-12-31T24:00:00Z",
            "2254-12-31T23:59:59.999999Z",
            "2255-06-05T23:47:34.740992Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z",
            "2024-1-01T00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "\u0032024-01-01T00:00:00Z",
            "1704081572.337",
        ]
    ),
)
KEYS = st.sampled_from(
    [
        "frame",
        "telegram",
        "hex",
        "gateway",
        "gateway_id",
        "received_at",
        "time",
        "ts",
        "rssi",
        "mode",
        "x",
        "Frame",
    ]
)
VALUES = st.one_of(
    NUMBERS.map(lambda text: text),
    TEXTS.map(json.dumps),
    TIME_TEXTS.map(json.dumps),
    st.sampled_from(["null", "true", "[]", "{}"]),
)


@st.composite
def json_lines(draw: st.DrawFn) -> bytes:
    """A JSON object line of collector keys (repeated, missing, of the wrong kind) with
    whitespace here and there, or bytes around one."""
    members = draw(st.lists(st.tuples(KEYS, VALUES), max_size=7))
    if draw(st.booleans()):
        members.append(("frame", json.dumps(draw(st.sampled_from([FRAME_HEX, "2E44", "00"])))))
    space = st.sampled_from(["", " ", "\t", "\r", "  "])
    body = ",".join(
        f"{draw(space)}{json.dumps(key)}{draw(space)}:{draw(space)}{value}" for key, value in members
    )
    line = f"{draw(space)}{{{body}{draw(space)}}}{draw(space)}".encode()
    return draw(
        st.sampled_from(
            [line, line[: draw(st.integers(0, len(line)))], b"\xef\xbb\xbf" + line, line + b"\x0c"]
        )
    )


@st.composite
def collector_lines(draw: st.DrawFn) -> bytes:
    """A line of the common shape, with its keys under any alias, in any order, some left out
    or doubled, its numbers and texts near the edges."""
    frame_key = draw(st.sampled_from(["frame", "telegram", "hex"]))
    members = [
        (frame_key, json.dumps(draw(st.sampled_from([FRAME_HEX, FRAME_HEX.lower(), "2E44", "0", ""]))))
    ]
    if draw(st.booleans()):
        gateway = draw(st.sampled_from([*GATEWAYS, "GW-3", "gw-1", ""]))
        members.append((draw(st.sampled_from(["gateway", "gateway_id"])), json.dumps(gateway)))
    for key in draw(st.lists(st.sampled_from(["received_at", "time", "ts", "rssi"]), max_size=3)):
        members.append((key, draw(st.one_of(NUMBERS, TIME_TEXTS.map(json.dumps)))))
    if draw(st.booleans()):
        members.append(("mode", json.dumps(draw(st.sampled_from(["T1", "C1", ""])))))
    members = draw(st.permutations(members))
    return ("{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in members) + "}").encode()


LINES = st.one_of(
    collector_lines(), json_lines(), st.binary(max_size=40), st.just(FRAME_HEX.encode()), st.just(b"")
)


def block_of(lines: list[bytes], final_newline: bool) -> bytes:
    return b"\n".join(lines) + (b"\n" if final_newline and lines else b"")


def twin(block: bytes) -> tuple[npt.NDArray[np.void], npt.NDArray[np.uint8]]:
    rows = np.zeros(block.count(b"\n") + 1, dtype=COLLECTOR_LINE_DTYPE)
    out = np.zeros(len(block) // 2, dtype=np.uint8)
    count = read_collector_lines_into(block, [name.encode() for name in GATEWAYS], rows, out, LONG_NUMBERS)
    return rows[:count], out


def same_rows(one: npt.NDArray[np.void], other: npt.NDArray[np.void]) -> None:
    assert len(one) == len(other)
    for name in COLLECTOR_LINE_DTYPE.names or ():
        assert np.array_equal(one[name], other[name], equal_nan=one[name].dtype.kind == "f"), name


@pytest.mark.equivalence
@settings(max_examples=300)
@given(st.lists(LINES, max_size=6), st.booleans())
def test_c_reader_equals_its_twin_on_any_lines(lines: list[bytes], final_newline: bool) -> None:
    block = block_of(lines, final_newline)
    rows, out = read_collector_block(block, GATEWAYS)
    expected, expected_out = twin(block)
    same_rows(rows, expected)
    for row in rows[rows["status"] == LINE_READ]:
        start, end = int(row["payload_offset"]), int(row["payload_offset"] + row["payload_length"])
        assert out[start:end].tobytes() == expected_out[start:end].tobytes()


# Strings near what the C reader reads eight bytes at a time: hex digits of both cases and
# the bytes that end or spoil a string (quote, backslash, controls, DEL, non-ASCII).
STRING_BYTES = st.lists(
    st.sampled_from(list(b'0123456789abcdefABCDEFgG- "\\\x7f\x1f\x00\x80\xc3\xa9')), max_size=40
).map(bytes)


@pytest.mark.equivalence
@settings(max_examples=300)
@given(st.sampled_from([b"frame", b"telegram", b"hex", b"gateway", b"mode"]), STRING_BYTES, STRING_BYTES)
def test_c_reader_equals_its_twin_on_any_string_bytes(key: bytes, value: bytes, other: bytes) -> None:
    line = b'{"' + key + b'": "' + value + b'", "x": "' + other + b'", "frame": "2E44"}'
    rows, out = read_collector_block(line, GATEWAYS)
    expected, expected_out = twin(line)
    same_rows(rows, expected)
    if rows["status"][0] == LINE_READ:
        length = int(rows["payload_length"][0])
        assert out[:length].tobytes() == expected_out[:length].tobytes()


@pytest.mark.equivalence
def test_c_reader_equals_its_twin_for_every_byte_at_every_place_of_a_frame() -> None:
    # Every byte value at each place of an 8-digit group, and in the digits after the last group.
    for place in range(11):
        lines = []
        for byte in range(256):
            digits = bytearray(b"0123456789abcdefABCD"[:20])
            digits[place] = byte
            lines.append(b'{"frame": "' + bytes(digits) + b'", "gateway": "GW-1"}')
        block = b"\n".join(lines)
        rows, out = read_collector_block(block, GATEWAYS)
        expected, expected_out = twin(block)
        same_rows(rows, expected)
        read = rows[rows["status"] == LINE_READ]
        assert len(read) == 22  # the hex digits (16 values, 6 of them twice), and nothing else
        for row in read:
            start, end = int(row["payload_offset"]), int(row["payload_offset"] + row["payload_length"])
            assert out[start:end].tobytes() == expected_out[start:end].tobytes()


def test_a_block_whose_later_lines_are_shorter_has_a_row_for_every_line() -> None:
    # 90 KB of long lines, then many short ones: far more lines than the first 64 KB promise.
    long_line = b'{"gateway":"GW-2","received_at":2.5,"frame":"' + b"AB" * 200 + b'"}'
    short_line = b'{"gateway":"GW-1","received_at":1.5,"frame":"0102"}'
    lines = [long_line] * 200 + [b"", b"x", short_line] * 3000
    block = b"\n".join(lines) + b"\nlast"
    rows, out = read_collector_block(block, GATEWAYS)
    assert len(rows) == len(lines) + 1
    assert rows["line_offset"][-1] + rows["line_length"][-1] == len(block)
    read = rows[rows["status"] == LINE_READ]
    assert len(read) == 3200
    assert out[read["payload_offset"][0] : read["payload_offset"][0] + 200].tobytes() == b"\xab" * 200
    assert out[read["payload_offset"][-1] : read["payload_offset"][-1] + 2].tobytes() == b"\x01\x02"
    expected, expected_out = twin(block)
    same_rows(rows, expected)
    end = read["payload_offset"][-1] + 2
    assert out[:end].tobytes() == expected_out[:end].tobytes()


@settings(max_examples=500)
@given(st.one_of(collector_lines(), json_lines()))
def test_a_line_read_in_bulk_gives_the_line_readers_reception(line: bytes) -> None:
    rows, out = read_collector_block(line + b"\n", GATEWAYS)
    (row,) = rows
    assert row["line_length"] == len(line) + 1
    if row["status"] == LINE_FOR_PYTHON:
        return
    expected = read_numbered_line(line + b"\n", 2, DEFAULT_GATEWAY, DEFAULT_TIME)
    assert isinstance(expected, Reception)
    start = int(row["payload_offset"])
    assert out[start : start + int(row["payload_length"])].tobytes() == expected.payload
    gateway = int(row["gateway"])
    if gateway == GATEWAY_DEFAULT:
        assert expected.gateway_id == DEFAULT_GATEWAY
    elif gateway == GATEWAY_UNKNOWN:
        name_at = int(row["gateway_offset"])
        assert line[name_at : name_at + int(row["gateway_length"])].decode() == expected.gateway_id
        assert expected.gateway_id not in GATEWAYS
    else:
        assert GATEWAYS[gateway] == expected.gateway_id
    when = float(row["received_at"])
    # repr tells -0.0 from 0.0, which == does not.
    assert repr(DEFAULT_TIME if math.isnan(when) else when) == repr(expected.received_at)
    rssi = float(row["rssi"])
    assert repr(None if math.isnan(rssi) else rssi) == repr(expected.rssi)


def test_the_common_line_is_read_in_bulk() -> None:
    line = json.dumps({"gateway": "GW-2", "received_at": 1704081572.337, "frame": FRAME_HEX, "rssi": -68.2})
    rows, out = read_collector_block(line.encode(), GATEWAYS)
    assert rows["status"].tolist() == [LINE_READ]
    assert (rows["gateway"][0], rows["received_at"][0], rows["rssi"][0]) == (1, 1704081572.337, -68.2)
    assert out[: rows["payload_length"][0]].tobytes() == bytes.fromhex(FRAME_HEX)


@pytest.mark.parametrize(
    ("number", "status", "value"),
    [
        ("-0", LINE_READ, "0.0"),  # the integer 0 for the line reader: +0.0
        ("-0.0", LINE_READ, "-0.0"),
        ("-70.12345678901", LINE_READ, "-70.12345678901"),  # 13 digits: read exactly here
        ("-70.1234567890123", LINE_READ, "-70.1234567890123"),  # 15
        # 16 and more digits with a fraction: read by the C library in the "C" locale, where
        # it can, correctly rounded as by Python; longer integers are Python's.
        ("-70.12345678901234", LONG_READ, "-70.12345678901234"),
        ("1704081572.3370473", LONG_READ, "1704081572.3370473"),  # json.dumps(time.time())
        ("-70.00000000000000000000000000000000000001", LONG_READ, "-70.0"),  # 40 digits
        ("-70.000000000000000000000000000000000000001", LINE_FOR_PYTHON, None),  # 41
        ("-7012345678901234", LINE_FOR_PYTHON, None),
    ],
)
def test_numbers_the_bulk_reader_reads_and_leaves(number: str, status: int, value: str | None) -> None:
    if status == LONG_READ:
        status = LINE_READ if LONG_NUMBERS else LINE_FOR_PYTHON
    line = f'{{"frame": "00", "rssi": {number}}}'.encode()
    rows, _ = read_collector_block(line, GATEWAYS)
    assert rows["status"].tolist() == [status]
    if status == LINE_READ and value is not None:
        assert repr(float(rows["rssi"][0])) == value
        expected = read_numbered_line(line, 1, DEFAULT_GATEWAY, DEFAULT_TIME)
        assert isinstance(expected, Reception) and repr(expected.rssi) == value


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("2026-01-01T12:00:00Z", LINE_READ),
        ("2026-01-01T12:00:00", LINE_READ),  # no offset: UTC
        ("2026-01-01T12:00:00.5+00:00", LINE_READ),
        ("2024-02-29T23:59:59.123456Z", LINE_READ),
        ("2254-12-31T23:59:59.999999Z", LINE_READ),  # the last microseconds exact in a double
        ("2026-01-01T12:00:00.1234567Z", LINE_FOR_PYTHON),  # Python drops the 7th digit
        ("2026-01-01T13:00:00+01:00", LINE_FOR_PYTHON),
        ("2026-01-01 12:00:00Z", LINE_FOR_PYTHON),
        ("2300-01-01T00:00:00Z", LINE_FOR_PYTHON),
        ("2023-02-29T00:00:00Z", LINE_FOR_PYTHON),  # refused by Python, with its reason
        ("1704081572.337", LINE_FOR_PYTHON),  # seconds as text
    ],
)
def test_time_texts_the_bulk_reader_reads_and_leaves(text: str, status: int) -> None:
    line = json.dumps({"frame": "00", "received_at": text}).encode()
    rows, _ = read_collector_block(line, GATEWAYS)
    assert rows["status"].tolist() == [status]
    expected = read_numbered_line(line, 1, DEFAULT_GATEWAY, DEFAULT_TIME)
    if status == LINE_READ:
        assert isinstance(expected, Reception)
        assert repr(float(rows["received_at"][0])) == repr(expected.received_at)


def write_log(tmp_path: Path, lines: list[bytes], final_newline: bool = True) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_bytes(block_of(lines, final_newline))
    return path


def items_in_batches(
    path: Path, batch_lines: int
) -> tuple[int, list[Reception], list[Reception], list[RejectedLine]]:
    count, wmbus, lorawan, rejected = 0, [], [], []
    for batch in iter_log_batches(
        path,
        gateway_ids=GATEWAYS,
        default_gateway=DEFAULT_GATEWAY,
        default_time=DEFAULT_TIME,
        batch_lines=batch_lines,
    ):
        count += batch.lines
        wmbus.extend(batch.wmbus[i] for i in range(len(batch.wmbus)))
        lorawan.extend(batch.lorawan)
        rejected.extend(batch.rejected)
    return count, wmbus, lorawan, rejected


def items_line_by_line(path: Path) -> tuple[int, list[Reception], list[Reception], list[RejectedLine]]:
    count, wmbus, lorawan, rejected = 0, [], [], []
    for items in iter_gateway_log_file(path, default_gateway=DEFAULT_GATEWAY, default_time=DEFAULT_TIME):
        count += 1
        for item in items:
            if isinstance(item, RejectedLine):
                rejected.append(item)
            elif item.radio.value == "lorawan":
                lorawan.append(item)
            else:
                # The columns keep what is stored of a collector reception: not its radio mode.
                wmbus.append(
                    Reception(
                        gateway_id=item.gateway_id,
                        received_at=item.received_at,
                        payload=item.payload,
                        rssi=item.rssi,
                    )
                )
    return count, wmbus, lorawan, rejected


MIXED = [
    json.dumps(
        {"gateway": "GW-1", "received_at": NOON, "frame": FRAME_HEX, "rssi": -70, "mode": "T1"}
    ).encode(),
    json.dumps({"gateway_id": "GW-\u00e4", "time": "2026-01-01T12:00:00Z", "telegram": FRAME_HEX}).encode(),
    json.dumps({"gateway": "GW-9", "ts": NOON, "hex": FRAME_HEX}).encode(),
    json.dumps({"received_at": NOON, "frame": FRAME_HEX}).encode(),
    json.dumps({"gateway": "LGW-1", "received_at": NOON, "rxpk": [rxpk(), rxpk(stat=-1)]}).encode(),
    FRAME_HEX.encode(),
    b"",
    b"garbage",
    json.dumps({"gateway": "GW-1", "received_at": 1e30, "frame": FRAME_HEX}).encode(),
    json.dumps({"gateway": "GW-1", "frame": "ABC"}).encode(),
    b'{"gateway": "GW-1", "frame": "' + FRAME_HEX.encode() + b'"}\r',
]


@pytest.mark.parametrize("batch_lines", [1, 3, 20_000])
@pytest.mark.parametrize("final_newline", [True, False])
def test_a_file_read_in_batches_gives_what_it_gives_line_by_line(
    tmp_path: Path, batch_lines: int, final_newline: bool
) -> None:
    path = write_log(tmp_path, [b"\xef\xbb\xbf" + MIXED[0], *MIXED[1:]], final_newline)
    assert items_in_batches(path, batch_lines) == items_line_by_line(path)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(LINES, st.sampled_from(MIXED)), max_size=12), st.booleans(), st.integers(1, 5))
def test_any_file_read_in_batches_gives_what_it_gives_line_by_line(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], final_newline: bool, batch_lines: int
) -> None:
    lines = [line.replace(b"\n", b" ") for line in lines]
    path = write_log(tmp_path_factory.mktemp("log"), lines, final_newline)
    assert items_in_batches(path, batch_lines) == items_line_by_line(path)


def test_lines_longer_than_a_block_are_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_log, "_BLOCK_BYTES", 64)
    path = write_log(tmp_path, MIXED * 3)
    assert items_in_batches(path, 4) == items_line_by_line(path)


def test_a_bad_batch_size_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="batch_lines"):
        iter_log_batches(
            write_log(tmp_path, MIXED),
            gateway_ids=GATEWAYS,
            default_gateway="g",
            default_time=1.0,
            batch_lines=0,
        )


@pytest.mark.parametrize(
    ("block", "gateway_ids", "message"),
    [
        ("{}", GATEWAYS, "must be bytes"),
        (b"{}", (b"GW-1",), "strings"),
        (b"{}", ("GW-\ud800",), "not Unicode"),
    ],
)
def test_a_block_or_table_of_the_wrong_kind_is_an_input_error(
    block: object, gateway_ids: tuple[object, ...], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        read_collector_block(block, gateway_ids)  # type: ignore[arg-type]


def test_reception_columns_index_like_a_sequence() -> None:
    columns = ReceptionColumns(
        gateway_table=GATEWAYS,
        gateway=np.array([1, -1]),
        other_gateways={1: "GW-9"},
        received_at=np.array([5.0, 6.5]),
        rssi=np.array([np.nan, -70.25]),
        buffer=b"\x01\x02\x03",
        offsets=np.array([0, 1]),
        lengths=np.array([1, 2], dtype=np.int32),
    )
    first = Reception(gateway_id="GW-2", received_at=5.0, payload=b"\x01")
    second = Reception(gateway_id="GW-9", received_at=6.5, payload=b"\x02\x03", rssi=-70.25)
    assert (len(columns), columns[0], columns[-1], columns[:]) == (2, first, second, [first, second])
    assert list(columns) == [first, second]
    with pytest.raises(IndexError):
        columns[2]


def columns_of(table: tuple[str, ...], payloads: list[bytes], other: dict[int, str]) -> ReceptionColumns:
    return ReceptionColumns(
        gateway_table=table,
        gateway=np.array([-1 if i in other else 0 for i in range(len(payloads))], dtype=np.int64),
        other_gateways=other,
        received_at=np.arange(len(payloads), dtype=np.float64) + 5.0,
        rssi=np.full(len(payloads), -70.0),
        buffer=b"".join(payloads),
        offsets=np.cumsum([0, *map(len, payloads)])[:-1].astype(np.int64),
        lengths=np.array([len(p) for p in payloads], dtype=np.int32),
    )


def test_reception_columns_join_row_after_row() -> None:
    one = columns_of(GATEWAYS, [b"\x01", b"\x02\x03"], {1: "GW-9"})
    two = columns_of(GATEWAYS, [b"\x04\x05\x06"], {0: "GW-8"})
    joined = ReceptionColumns.joined([one, two])
    assert list(joined) == [*one, *two]
    assert len(ReceptionColumns.joined([])) == 0
    with pytest.raises(InputError, match="gateway tables"):
        ReceptionColumns.joined([one, columns_of(("GW-1",), [b"\x07"], {})])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"buffer": b"\x01"}, "not there"),  # the second frame reaches beyond it
        ({"offsets": np.array([0, -1])}, "not there"),
        ({"gateway": np.array([0, 5])}, "not there"),
        ({"gateway": np.array([-1, 0])}, "named"),  # row 0 has no name, row 1 has one
        ({"other_gateways": {}}, "named"),
        ({"rssi": np.zeros(3)}, "one value per reception"),
        ({"received_at": ["soon", "later"]}, "reception columns"),
        ({"buffer": "\x01\x02\x03"}, "bytes buffer"),
    ],
)
def test_reception_columns_that_describe_no_batch_are_refused(
    change: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {
        "gateway_table": GATEWAYS,
        "gateway": np.array([0, -1]),
        "other_gateways": {1: "GW-9"},
        "received_at": np.array([5.0, 6.0]),
        "rssi": np.full(2, np.nan),
        "buffer": b"\x01\x02\x03",
        "offsets": np.array([0, 1]),
        "lengths": np.array([1, 2], dtype=np.int32),
    }
    ReceptionColumns(**fields)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=message):
        ReceptionColumns(**{**fields, **change})  # type: ignore[arg-type]


_COMMA_LOCALE_CHILD = """
import json, locale, sys
for name in ("de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "de_DE"):
    try:
        locale.setlocale(locale.LC_NUMERIC, name)
        break
    except locale.Error:
        continue
else:
    sys.exit(3)
assert locale.localeconv()["decimal_point"] == ","
from minolcore.adapters.collector import read_collector_block
line = b'{"frame": "00", "received_at": 1704081572.3370473, "rssi": -70.12345678901234}'
rows, _ = read_collector_block(line, ["GW-1"])
print(json.dumps([int(rows["status"][0]), repr(float(rows["received_at"][0])), repr(float(rows["rssi"][0]))]))
"""


def test_long_numbers_are_read_with_a_point_under_a_comma_locale(tmp_path: Path) -> None:
    # A locale whose decimal point is a comma: the C library's strtod would stop at the
    # point there (1704081572.0); the reader's numbers must not depend on it.
    env = {**os.environ, "LOCPATH": str(tmp_path)}
    made = (
        subprocess.run(
            ["localedef", "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
            capture_output=True,
            check=False,
        )
        if shutil.which("localedef")
        else None
    )
    child = subprocess.run(
        [sys.executable, "-c", _COMMA_LOCALE_CHILD], env=env, capture_output=True, text=True, check=False
    )
    if child.returncode == 3:
        pytest.skip(f"no locale with a decimal comma here (localedef: {made and made.returncode})")
    assert child.returncode == 0, child.stderr
    status, when, rssi = json.loads(child.stdout)
    if LONG_NUMBERS:
        assert (status, when, rssi) == (LINE_READ, "1704081572.3370473", "-70.12345678901234")
    else:
        assert status == LINE_FOR_PYTHON
