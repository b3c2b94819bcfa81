"""Reading by layout plan gives, telegram by telegram, what the per-record path gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore._layout_plans import ReadingTimes, read_by_layout, telegram_rows
from minolcore.pipeline_fast import _entries, _minute_of, _read
from minolcore.wmbus.dates import (
    NO_MINUTE,
    minute_text,
    type_f,
    type_f_column,
    type_f_minutes,
    type_g,
    type_g_column,
    type_g_minutes,
)
from minolcore.wmbus.record_batch import WalkStatus, walk
from minolcore.wmbus.scan import pack_frames
from tests.record_encoder import BCD_DIGITS, INT_WIDTH, REAL32, Spec, date_g, datetime_f
from tests.test_records_native import corpus_apls, vibs

SIZES = {**INT_WIDTH, **{k: v // 2 for k, v in BCD_DIGITS.items()}, REAL32: 4, 0x0: 0, 0x8: 0}
# VIBs of the quantities the plans treat specially, beside arbitrary ones.
KNOWN_VIBS = [
    b"\x13",  # volume, litres
    b"\x16",  # volume, m3
    b"\x06",  # energy, kWh
    b"\x2b",  # power, W
    b"\x5b",  # flow temperature
    b"\x6e",  # HCA units
    b"\x6c",  # date (type G)
    b"\x6d",  # date and time (type F)
    b"\xfd\x17",  # error flags
    b"\xff\x2c",  # manufacturer specific (the EI head record with subunit 1)
    b"\x93\x3c",  # volume, with a VIFE
    b"\x86\x3d",  # energy, with a VIFE
]


@st.composite
def layouts(draw: st.DrawFn) -> list[tuple[bytes, int]]:
    """Record headers and their data sizes; a manufacturer data record may end the layout."""
    layout = []
    for _ in range(draw(st.integers(1, 7))):
        coding = draw(st.sampled_from(sorted(SIZES)))
        vib = draw(st.one_of(st.sampled_from(KNOWN_VIBS), vibs()))
        if vib in (b"\x6c", b"\x6d") and draw(st.booleans()):
            coding = 0x2 if vib == b"\x6c" else 0x4
        spec = Spec(
            coding=coding,
            vib=vib,
            value=0,
            storage=draw(st.sampled_from([0, 0, 1, 2, 8, 17])),
            tariff=draw(st.sampled_from([0, 0, 1])),
            subunit=draw(st.sampled_from([0, 0, 1])),
            function=draw(st.sampled_from([0, 0, 1, 3])),
        )
        layout.append((spec.header(), SIZES[coding]))
    if draw(st.booleans()):
        layout.append((b"\x0f", -1))
    return layout


@st.composite
def data_of(draw: st.DrawFn, size: int) -> bytes:
    if size == -1:
        return draw(st.binary(max_size=4))
    choices = [st.binary(min_size=size, max_size=size), st.just(b"\xff" * size), st.just(b"\x00" * size)]
    if size == 2:
        choices.append(st.dates().map(lambda d: date_g(2000 + d.year % 100, d.month, d.day)))
    if size == 4:
        choices.append(
            st.datetimes().map(lambda t: datetime_f(2000 + t.year % 100, t.month, t.day, t.hour, t.minute))
        )
    return draw(st.one_of(choices))


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[bytes], list[float]]:
    """Telegrams of a few layouts, each layout repeated with other data."""
    apls = []
    for layout in draw(st.lists(layouts(), min_size=1, max_size=3)):
        for _ in range(draw(st.integers(1, 4))):
            apls.append(b"".join(header + draw(data_of(size)) for header, size in layout))
    order = draw(st.permutations(range(len(apls))))
    times = draw(st.lists(st.floats(1.5e9, 2.0e9), min_size=len(apls), max_size=len(apls)))
    return [apls[i] for i in order], times


def both_paths(apls: list[bytes], received: list[float]) -> tuple[dict[int, Any], dict[int, Any]]:
    buffer, offsets, lengths = pack_frames(apls)
    walked = walk(buffer, offsets, lengths)
    ok = walked.info["status"] == WalkStatus.OK
    firsts = walked.info["first_record"].tolist()
    counts = walked.info["record_count"].tolist()
    chosen = np.flatnonzero(ok).tolist()
    times = ReadingTimes()
    read, columns = read_by_layout(
        buffer, offsets, walked.rows, firsts, counts, chosen, received, _minute_of, times
    )
    found = telegram_rows(columns, times)
    planned = {
        position: (found.get(position, []), times.text(moment), (errors, head), group.layout)
        for group in read
        for position, moment, errors, head in zip(
            group.positions, group.event_minutes, group.error_flags, group.heads, strict=True
        )
    }
    entries = _entries(buffer.tobytes(), offsets, walked.rows, ok[walked.rows["telegram"]])
    expected = {}
    for position in chosen:
        found = _read(
            apls[position],
            0,
            len(apls[position]),
            entries[firsts[position] : firsts[position] + counts[position]],
            received[position],
            0,
            0,
            times,
        )
        expected[position] = (
            found.readings,
            times.text(found.event_minute),
            found.status_key[1:],
            found.layout,
        )
    return planned, expected


def assert_same(planned: dict[int, Any], expected: dict[int, Any]) -> None:
    for position, read in planned.items():
        # repr: a NaN value equals itself only as text
        assert repr(read) == repr(expected[position])


@pytest.mark.equivalence
@given(batches())
def test_plans_read_what_the_record_path_reads(batch: tuple[list[bytes], list[float]]) -> None:
    apls, received = batch
    planned, expected = both_paths(apls, received)
    assert_same(planned, expected)


def test_plans_cover_and_equal_the_corpus(corpus: list[dict[str, Any]]) -> None:
    apls = corpus_apls(corpus)
    apls = apls + apls[::-1]  # every layout at least twice
    received = [1.7e9 + 977.25 * i for i in range(len(apls))]
    planned, expected = both_paths(apls, received)
    assert_same(planned, expected)
    assert len(planned) > 0.8 * len(expected)


def test_a_layout_with_a_number_beyond_float_precision_takes_the_record_path() -> None:
    volume = Spec(coding=0x7, vib=b"\x13", value=0).header()  # 8-byte integer, litres
    small = volume + (5).to_bytes(8, "little")
    large = volume + (2**60 + 1).to_bytes(8, "little")
    planned, expected = both_paths([small, large], [1.7e9, 1.7e9])
    assert planned == {}
    assert expected[1][0][0][6] == (2**60 + 1) / 1000


@given(st.lists(st.binary(min_size=4, max_size=4), min_size=1, max_size=40))
def test_date_columns_equal_the_date_readers(rows: list[bytes]) -> None:
    data = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 4)
    assert type_f_column(data) == [type_f(row) for row in rows]
    assert type_g_column(np.ascontiguousarray(data[:, 2:])) == [type_g(row[2:]) for row in rows]


@given(st.lists(st.datetimes(), min_size=1, max_size=20), st.integers(0, 3))
def test_date_columns_equal_the_date_readers_on_real_dates(moments: list[Any], hundred: int) -> None:
    rows = [
        bytes([t.minute, t.hour | hundred << 5]) + date_g(2000 + t.year % 100, t.month, t.day)
        for t in moments
    ]
    data = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 4)
    assert type_f_column(data) == [type_f(row) for row in rows]
    assert all(text is not None for text in type_g_column(np.ascontiguousarray(data[:, 2:])))


def test_every_type_g_date() -> None:
    rows = [bytes([lo, hi]) for lo in range(256) for hi in range(256)]
    data = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 2)
    assert type_g_column(data) == [type_g(row) for row in rows]
    # As reading times: the date's midnight.
    assert as_stamps(type_g_minutes(data)) == [None if d is None else d + "T00:00" for d in map(type_g, rows)]


def as_stamps(minutes: np.ndarray[Any, Any]) -> list[str | None]:
    return [None if m == NO_MINUTE else minute_text(m) for m in minutes.tolist()]


@given(st.lists(st.binary(min_size=4, max_size=4), min_size=1, max_size=50))
def test_type_f_minutes_are_the_type_f_times(rows: list[bytes]) -> None:
    data = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 4)
    assert as_stamps(type_f_minutes(data)) == [type_f(row) for row in rows]
