"""Batch scan: the C core equals the pure-Python reference on every column and status."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore import _native
from minolcore._native import crc16
from minolcore._reference.scan import scan_into
from minolcore.errors import InputError, MinolcoreError
from minolcore.wmbus import (
    FRAME_INFO_DTYPE,
    CRCMode,
    CRCShape,
    Flag,
    FrameStatus,
    parse_frame,
    scan,
    scan_frames,
)
from minolcore.wmbus.builder import build_frame
from minolcore.wmbus.scan import pack_frames
from tests.test_frame import V1, V2, V3, V4, V5_B_WITH_CRC, V6, V8, frames

KEY = bytes(range(16))
MODES = {"auto": CRCMode.AUTO, "present": CRCMode.PRESENT, "absent": CRCMode.ABSENT}


def reference_scan(frame_list: list[bytes], crc: str | list[str]) -> tuple[np.ndarray, np.ndarray]:
    buffer, offsets, lengths = pack_frames(frame_list)
    info = np.zeros(len(frame_list), dtype=FRAME_INFO_DTYPE)
    output = np.zeros(int(lengths.sum()), dtype=np.uint8)
    if isinstance(crc, str):
        scan_into(buffer, offsets, lengths, MODES[crc], KEY, output, info)
    else:
        per_frame = np.array([MODES[mode] for mode in crc], dtype=np.uint8)
        scan_into(buffer, offsets, lengths, CRCMode.AUTO, KEY, output, info, per_frame)
    return info, output


def assert_same_as_reference(frame_list: list[bytes], crc: str | list[str]) -> None:
    """The C core (or, under MINOLCORE_PUREPYTHON, the public wrapper) equals the reference;
    ``crc`` is one mode for the batch or one per frame."""
    if isinstance(crc, str):
        result = scan_frames(frame_list, crc=crc, key=KEY)  # type: ignore[arg-type]
    else:
        buffer, offsets, lengths = pack_frames(frame_list)
        per_frame = [MODES[mode] for mode in crc]
        result = scan(buffer, offsets, lengths, key=KEY, crc_per_frame=per_frame)
        for index, (frame, mode) in enumerate(zip(frame_list, crc, strict=True)):
            alone = scan_frames([frame], crc=mode, key=KEY)  # type: ignore[arg-type]
            row = alone.info[0].copy()
            row["out_offset"] = result.info["out_offset"][index]
            assert row.tobytes() == result.info[index].tobytes()
    info, output = reference_scan(frame_list, crc)
    for name in FRAME_INFO_DTYPE.names or ():
        assert np.array_equal(result.info[name], info[name]), name
    for index in range(len(frame_list)):
        start = int(info["out_offset"][index])
        end = start + int(info["out_length"][index]) + int(info["trailing"][index])
        assert np.array_equal(result.output[start:end], output[start:end])


def test_vectors_scan() -> None:
    raws = [bytes.fromhex(text) for text in (V1, V2, V3, V4, V5_B_WITH_CRC, V6, V8)]
    result = scan_frames(raws, key=KEY)
    assert list(result.status) == [FrameStatus.OK] * 7
    assert list(result.crc_shape) == [1, 1, 1, 1, 2, 0, 0]
    assert result.manufacturer[0] == 0x1593 and result.id[0] == 0x12345678
    assert list(result.security_mode[:4]) == [5, 7, 7, 5]
    assert list(result.encrypted_blocks[:4]) == [2, 2, 2, 1]
    # V3 and V4: the long TPL header names the real meter behind the radio converter.
    assert result.flags[2] & Flag.LONG_TPL and result.meter_id[2] == 0x12345678 and result.id[2] == 0x11223344
    assert result.meter_manufacturer[3] == 0x4493 and result.meter_device_type[3] == 0x08
    assert result.message_counter[1] == 2739 and result.flags[1] & Flag.MCR
    assert result.flags[5] & Flag.HIDDEN and result.acc[5] == 0x50
    assert result.trailing[6] == 3
    for index, raw in enumerate(raws):
        assert result.frame(index) == parse_frame(raw).data
        assert result.apl_offset[index] == parse_frame(raw).payload_offset
    assert result.fingerprint[0] == _native.siphash24(KEY, result.frame(0))


def test_copies_in_different_shapes_share_a_fingerprint() -> None:
    canonical = parse_frame(V1).data
    shapes = [
        bytes.fromhex(V1),
        canonical,
        build_frame(
            manufacturer="ELS",
            id="12345678",
            version=0x33,
            device_type=3,
            ci=0x7A,
            payload=canonical[11:],
            shape="B",
        ),
    ]
    result = scan_frames(shapes, key=KEY)
    assert list(result.status) == [0, 0, 0]
    assert len(set(result.fingerprint.tolist())) == 1
    other_key = scan_frames(shapes, key=bytes(16))
    assert other_key.fingerprint[0] != result.fingerprint[0]


def test_bad_frames_get_statuses_and_the_batch_goes_on() -> None:
    corrupted = bytearray(bytes.fromhex(V1))
    corrupted[30] ^= 0x10
    raws = [
        b"",
        b"\x0a\x44",
        bytes(corrupted),
        bytes.fromhex("0B44AE0C78563412010772AA"),
        bytes.fromhex("2044AE0C7856341201078C2027"),
        bytes.fromhex(V1),
    ]
    result = scan_frames(raws, key=KEY)
    assert list(result.status) == [
        FrameStatus.TOO_SHORT,
        FrameStatus.TOO_SHORT,
        FrameStatus.CRC,
        FrameStatus.HEADER_TRUNCATED,
        FrameStatus.L_FIELD,
        FrameStatus.OK,
    ]
    assert result.ok().tolist() == [False] * 5 + [True]


def test_corpus_scan(corpus: list[dict[str, object]]) -> None:
    raws = [
        bytes.fromhex(str(c["telegram_hex"]))
        for c in corpus
        if len(str(c["telegram_hex"])) % 2 == 0 and not str(c["telegram_hex"]).startswith("68")
    ]
    result = scan_frames(raws, key=KEY)
    assert int(np.count_nonzero(result.ok())) == len(raws) == 256
    for index, raw in enumerate(raws):
        frame = parse_frame(raw)
        assert result.frame(index) == frame.data
        assert result.id[index] == frame.id_value and result.meter_id[index] == frame.meter_address.id_value
    assert_same_as_reference(raws, "auto")


def test_batch_description_errors() -> None:
    with pytest.raises(InputError):
        scan(b"abc", [0], [4])
    with pytest.raises(InputError):
        scan(b"abc", [0, 1], [1])
    with pytest.raises(InputError):
        scan_frames([bytes.fromhex(V1)], key=b"short")
    assert len(scan(b"", [], [])) == 0


CRC_NAMES = st.sampled_from(["auto", "present", "absent"])


@pytest.mark.equivalence
@given(st.lists(st.binary(max_size=300), max_size=8), CRC_NAMES)
def test_c_equals_reference_on_arbitrary_bytes(frame_list: list[bytes], crc: str) -> None:
    assert_same_as_reference(frame_list, crc)


@pytest.mark.equivalence
@given(st.lists(st.tuples(st.binary(max_size=300), CRC_NAMES), max_size=8))
def test_c_equals_reference_with_a_crc_mode_per_frame(frames_and_modes: list[tuple[bytes, str]]) -> None:
    assert_same_as_reference([frame for frame, _ in frames_and_modes], [mode for _, mode in frames_and_modes])


def test_crc_per_frame_must_name_a_mode_for_every_frame() -> None:
    frame = bytes.fromhex(V1)
    for bad in ([0, 1], [3], [-1], ["auto"], [0.5], 7):
        with pytest.raises(InputError, match="crc_per_frame"):
            scan(frame, [0], [len(frame)], crc_per_frame=bad)


@pytest.mark.equivalence
@given(
    st.lists(st.tuples(frames(), st.sampled_from(["A", "B", "none"])), min_size=1, max_size=4),
    st.sampled_from(["auto", "present", "absent", "per frame"]),
    st.data(),
)
def test_c_equals_reference_on_mutated_frames(
    specs: list[tuple[tuple[dict[str, object], bytes], str]], crc: str, data: st.DataObject
) -> None:
    frame_list = []
    for (fields, payload), shape in specs:
        raw = bytearray(build_frame(**fields, payload=payload, shape=shape))  # type: ignore[arg-type]
        mutation = data.draw(st.sampled_from(["none", "flip", "cut", "extend", "l_field"]))
        if mutation == "flip":
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        elif mutation == "cut":
            del raw[data.draw(st.integers(0, len(raw) - 1)) :]
        elif mutation == "extend":
            raw += data.draw(st.binary(min_size=1, max_size=6))
        elif mutation == "l_field":
            raw[0] = data.draw(st.integers(0, 255))
        frame_list.append(bytes(raw))
    if crc == "per frame":
        assert_same_as_reference(frame_list, [data.draw(CRC_NAMES) for _ in frame_list])
    else:
        assert_same_as_reference(frame_list, crc)


@pytest.mark.equivalence
@given(
    st.integers(240, 255),
    st.sampled_from([0, 2, 3, 4, 5, 6]),
    st.binary(min_size=300, max_size=300),
    CRC_NAMES,
)
def test_frames_longer_than_any_l_field_counts_are_read_alike(
    l_field: int, extra: int, body: bytes, crc: str
) -> None:
    """Frames of L + 3 to L + 6 bytes with L near 255: whether format B with a rewritten L
    could apply depends on the original L fitting in its byte (257 or more bytes: never).
    The C core equals the reference and the object parser raises only library errors."""
    frame = bytes((l_field,)) + body[: l_field + extra]
    assert_same_as_reference([frame], crc)
    with contextlib.suppress(MinolcoreError):
        parse_frame(frame, crc=crc)  # type: ignore[arg-type]


@pytest.mark.parametrize("l_field", [252, 253, 254, 255])
def test_a_frame_too_long_for_a_rewritten_l_is_not_read_as_one(l_field: int) -> None:
    """L + 5 bytes with L >= 252: as format B with a rewritten L the original L would be 256
    or more. Even with both format-B CRCs valid over that L cut to a byte, no mode takes it
    for format B."""
    total = l_field + 5
    frame = bytearray(i & 0xFF for i in range(total))
    frame[0] = (total - 1) & 0xFF
    frame[126:128] = crc16(bytes(frame[:126])).to_bytes(2, "big")
    frame[total - 2 :] = crc16(bytes(frame[128 : total - 2])).to_bytes(2, "big")
    frame[0] = l_field
    for crc in ("auto", "present", "absent"):
        assert_same_as_reference([bytes(frame)], crc)
        assert scan_frames([bytes(frame)], crc=crc).crc_shape[0] != CRCShape.FORMAT_B  # type: ignore[arg-type]
        with contextlib.suppress(MinolcoreError):
            parse_frame(bytes(frame), crc=crc)  # type: ignore[arg-type]


@pytest.mark.parametrize("total", [129, 130])
def test_129_and_130_bytes_are_no_format_b_length(total: int) -> None:
    """Past its first CRC a format-B frame needs a second block of at least one byte and its
    CRC. A frame of 129 or 130 bytes whose first CRC is valid (and, at 130, whose last two
    bytes are the CRC of nothing) is refused or read CRC-free, alike in C and the reference."""
    frame = bytearray(bytes.fromhex("442D2C78563412010778").rjust(11, b"\x00")) + bytes(total - 11)
    frame[0] = total - 1
    frame[126:128] = crc16(bytes(frame[:126])).to_bytes(2, "big")
    if total == 130:
        frame[128:130] = crc16(b"").to_bytes(2, "big")
    for crc in ("auto", "present", "absent"):
        assert_same_as_reference([bytes(frame)], crc)
        assert scan_frames([bytes(frame)], crc=crc).crc_shape[0] != CRCShape.FORMAT_B  # type: ignore[arg-type]
        with contextlib.suppress(MinolcoreError):
            assert parse_frame(bytes(frame), crc=crc).crc_shape != CRCShape.FORMAT_B  # type: ignore[arg-type]
