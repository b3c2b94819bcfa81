"""Batch record walker: the C core equals its reference on every column, and the batch paths
give exactly what decode_records and decode give one at a time."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore._reference.records import walk_into
from minolcore.wmbus.frame import parse_frame
from minolcore.wmbus.record_batch import (
    RECORD_DTYPE,
    WALK_INFO_DTYPE,
    RecordFlag,
    WalkStatus,
    decode_record_columns,
    decode_records_batch,
    walk,
)
from minolcore.wmbus.records import decode_records
from minolcore.wmbus.scan import pack_frames
from minolcore.wmbus.telegram import decode, decode_batch
from tests.record_encoder import BCD_DIGITS, INT_WIDTH, REAL32, Spec, lvar_text
from tests.test_records import V1_PLAIN, V4_PLAIN, V10_APL, V11_APL, locate_apl


def reference_walk(apls: list[bytes], max_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    buffer, offsets, lengths = pack_frames(apls)
    capacity = int(lengths.sum()) if max_rows is None else max_rows
    rows = np.zeros(capacity, dtype=RECORD_DTYPE)
    info = np.zeros(len(apls), dtype=WALK_INFO_DTYPE)
    used = walk_into(buffer, offsets, lengths, rows, info)
    return rows[:used], info


def assert_same_as_reference(apls: list[bytes], max_rows: int | None = None) -> None:
    result = walk(*pack_frames(apls), max_rows=max_rows)
    rows, info = reference_walk(apls, max_rows)
    assert len(result.rows) == len(rows)
    for name in WALK_INFO_DTYPE.names or ():
        assert np.array_equal(result.info[name], info[name]), name
    for name in RECORD_DTYPE.names or ():
        # real is compared bit for bit (NaN never reaches a row; -0.0 must stay -0.0).
        got, want = result.rows[name], rows[name]
        if name == "real":
            got, want = got.view(np.uint64), want.view(np.uint64)
        assert np.array_equal(got, want), name


def corpus_apls(corpus: list[dict[str, Any]]) -> list[bytes]:
    apls = [bytes.fromhex(text) for text in (V1_PLAIN, V4_PLAIN, V10_APL, V11_APL)]
    for case in corpus:
        text = str(case["telegram_hex"])
        if len(text) % 2 or text.startswith("68"):
            continue
        apl = locate_apl(parse_frame(text).data)
        if apl is not None:
            apls.append(apl)
    return apls


# --- generated record sequences ---------------------------------------------------------------

CODINGS = sorted([*INT_WIDTH, *BCD_DIGITS, REAL32, 0x0, 0x8])


@st.composite
def vibs(draw: st.DrawFn) -> bytes:
    """A VIF and up to 11 VIFEs with their extension bits (one more than allowed: an error)."""
    vif = draw(st.integers(0, 0xFF))
    if not vif & 0x80:
        return bytes([vif])
    extensions = draw(st.lists(st.integers(0, 0x7F), min_size=1, max_size=11))
    return bytes([vif, *(e | 0x80 for e in extensions[:-1]), extensions[-1]])


@st.composite
def records(draw: st.DrawFn) -> bytes:
    choice = draw(st.sampled_from(["fixed", "fixed", "fixed", "raw_data", "lvar", "special", "fill"]))
    if choice == "fill":
        return b"\x2f" * draw(st.integers(1, 3))
    if choice == "special":
        return bytes([draw(st.sampled_from([0x0F, 0x1F, 0x7F, 0xFF, 0x3F]))]) + draw(st.binary(max_size=4))
    coding = draw(st.sampled_from(CODINGS))
    spec = Spec(
        coding=coding,
        vib=draw(vibs()),
        value=0,
        storage=draw(st.integers(0, (1 << 41) - 1)),
        tariff=draw(st.integers(0, (1 << 20) - 1)),
        subunit=draw(st.integers(0, (1 << 10) - 1)),
        function=draw(st.integers(0, 3)),
    )
    header = spec.header()
    if choice == "lvar":
        return bytes([header[0] | 0x0D]) + header[1:] + lvar_text(draw(st.text("ab1", max_size=5)))
    # Any data bytes of the right size: all-ones, non-decimal BCD, NaN reals, negative numbers.
    size = {**INT_WIDTH, **{k: v // 2 for k, v in BCD_DIGITS.items()}, REAL32: 4}.get(coding, 0)
    data = draw(st.one_of(st.binary(min_size=size, max_size=size), st.just(b"\xff" * size)))
    return header + data


record_sequences = st.lists(records(), max_size=8).map(b"".join)


@st.composite
def apl_batches(draw: st.DrawFn) -> list[bytes]:
    apls = draw(st.lists(record_sequences, max_size=6))
    cut = draw(st.booleans())
    if cut and apls:
        index = draw(st.integers(0, len(apls) - 1))
        apls[index] = apls[index][: draw(st.integers(0, len(apls[index])))]
    return apls


# --- the C core against the reference -----------------------------------------------------------


@pytest.mark.equivalence
@given(st.lists(st.binary(max_size=120), max_size=8))
def test_c_equals_reference_on_arbitrary_bytes(apls: list[bytes]) -> None:
    assert_same_as_reference(apls)


@pytest.mark.equivalence
@given(apl_batches())
def test_c_equals_reference_on_generated_records(apls: list[bytes]) -> None:
    assert_same_as_reference(apls)


@pytest.mark.equivalence
@given(apl_batches(), st.integers(0, 12))
def test_c_equals_reference_when_rows_run_out(apls: list[bytes], max_rows: int) -> None:
    assert_same_as_reference(apls, max_rows)


@pytest.mark.equivalence
def test_c_equals_reference_on_the_corpus(corpus: list[dict[str, Any]]) -> None:
    assert_same_as_reference(corpus_apls(corpus))


# --- rows -------------------------------------------------------------------------------------


def test_rows_of_a_known_application_layer() -> None:
    # 0C 14 27048502: volume 28504.27 m3 (BCD); 0F: manufacturer data to the end.
    apl = bytes.fromhex("2F2F0C1427048502" + "8440FD1700000080" + "0FAABB")
    result = walk(*pack_frames([apl]))
    (info,) = result.info
    assert info["status"] == WalkStatus.OK and info["record_count"] == 3 and info["stop_offset"] == len(apl)
    first, second, third = result.rows
    assert first["offset"] == 2 and first["value"] == 2850427 and first["coding"] == 3
    assert first["data_offset"] == 4 and first["data_length"] == 4 and first["flags"] == RecordFlag.NUMBER
    assert bytes(second["dib"][: second["dib_length"]]) == bytes.fromhex("8440")
    assert second["storage"] == 0 and second["tariff"] == 0 and second["subunit"] == 1
    assert second["value"] == -(1 << 31)  # two's complement; the unsigned reading is the caller's
    assert third["flags"] == RecordFlag.MANUFACTURER_DATA and third["data_length"] == 2
    assert info["signature"] == decode_records(apl).signature


def test_handover_and_malformed_name_the_record() -> None:
    lvar = bytes.fromhex("0C1427048502" + "0DFD1103414243")
    plain_text = bytes.fromhex("0C1427048502" + "04FC0341424301000000")
    truncated = bytes.fromhex("0C1427048502" + "0C14270485")
    reserved = bytes.fromhex("0C1427048502" + "3F")
    result = walk(*pack_frames([lvar, plain_text, truncated, reserved, b""]))
    assert result.info["status"].tolist() == [1, 1, 2, 2, 0]
    assert result.info["stop_offset"].tolist() == [6, 6, 6, 6, 0]
    assert result.info["record_count"].tolist() == [1, 1, 1, 1, 0]
    assert result.info["signature"][4] == decode_records(b"").signature


# --- the batch paths against the one-at-a-time paths ------------------------------------------------


def test_batch_records_equal_decode_records_over_the_corpus(corpus: list[dict[str, Any]]) -> None:
    apls = corpus_apls(corpus)
    batch = decode_records_batch(apls)
    assert batch == [decode_records(apl) for apl in apls]
    statuses = walk(*pack_frames(apls)).info["status"]
    assert int(np.count_nonzero(statuses == WalkStatus.OK)) > len(apls) // 2  # the C walker does most


@pytest.mark.equivalence
@given(apl_batches())
def test_batch_records_equal_decode_records_on_generated_records(apls: list[bytes]) -> None:
    assert decode_records_batch(apls) == [decode_records(apl) for apl in apls]


@given(st.lists(st.binary(max_size=80), max_size=6))
def test_batch_records_equal_decode_records_on_arbitrary_bytes(apls: list[bytes]) -> None:
    assert decode_records_batch(apls) == [decode_records(apl) for apl in apls]


def test_decode_batch_equals_single_decodes_over_the_corpus(corpus: list[dict[str, Any]]) -> None:
    frames = [str(case["telegram_hex"]) for case in corpus]
    keys = [None if str(case["key"]) in ("NOKEY", "") else str(case["key"]) for case in corpus]
    keys = [key if key is not None and len(key) == 32 else None for key in keys]
    batch = decode_batch(frames, keys)
    single = [decode(frame, key, strict=False) for frame, key in zip(frames, keys, strict=True)]
    assert batch == single
    assert sum(len(t.records) for t in batch) > 1000


def test_columns_match_the_record_objects(corpus: list[dict[str, Any]]) -> None:
    apls = corpus_apls(corpus)
    buffer, offsets, lengths = pack_frames(apls)
    columns = decode_record_columns(buffer, offsets, lengths)
    decoded = decode_records_batch(apls)
    by_record = {}
    for index, result in enumerate(decoded):
        for record in result.records:
            by_record[(index, record.offset)] = record
    assert len(columns) > 0
    for row in range(len(columns)):
        record = by_record[(int(columns.telegram[row]), int(columns.offset[row]))]
        assert int(columns.storage[row]) == record.storage and int(columns.tariff[row]) == record.tariff
        if columns.quantity[row] < 0:
            assert record.quantity in ("manufacturer_specific", "global_readout")
            continue
        assert columns.quantities[columns.quantity[row]] == record.quantity
        assert columns.units[columns.unit[row]] == record.unit
        if columns.timepoint[row]:
            assert not columns.valid[row] and math.isnan(columns.value[row])
        elif isinstance(record.value, int | float) and record.valid:
            assert bool(columns.valid[row])
            assert columns.value[row] == pytest.approx(float(record.value), rel=1e-12)
        else:
            assert not columns.valid[row]
    handed = [i for i, status in enumerate(columns.status) if status != WalkStatus.OK]
    assert not set(columns.telegram.tolist()) & set(handed)
