"""Layout groups (``mc_layout_groups`` and its twin): telegrams numbered by the header bytes
of their records, in order of first appearance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore._layout_plans import layout_groups
from minolcore._reference.layouts import LAYOUT_RANGE, layout_groups_into
from minolcore.errors import InputError
from minolcore.wmbus.record_batch import RECORD_DTYPE, WalkStatus, walk
from minolcore.wmbus.scan import pack_frames
from tests.test_layout_plans import batches
from tests.test_records_native import corpus_apls


def reference(
    buffer: bytes, bases: Any, rows: Any, firsts: Any, counts: Any, chosen: Any
) -> tuple[int, list[int], list[int]]:
    group_of = np.zeros(len(chosen), dtype=np.int64)
    heads = np.zeros(len(chosen), dtype=np.int64)
    found = layout_groups_into(
        buffer,
        np.asarray(bases, dtype=np.int64),
        rows,
        np.asarray(firsts, dtype=np.int64),
        np.asarray(counts, dtype=np.int32),
        np.asarray(chosen, dtype=np.int64),
        group_of,
        heads,
    )
    return found, group_of.tolist(), heads[: max(found, 0)].tolist()


def expected_groups(apls: list[bytes], rows: Any, firsts: Any, counts: Any, chosen: list[int]) -> list[int]:
    """Layout numbers worked out from each telegram's own bytes, independently of both."""
    numbers: dict[bytes, int] = {}
    out = []
    for t in chosen:
        own = rows[firsts[t] : firsts[t] + counts[t]]
        key = b"".join(apls[t][row["offset"] : row["data_offset"]] for row in own)
        out.append(numbers.setdefault(key, len(numbers)))
    return out


def assert_groups(apls: list[bytes]) -> None:
    buffer, offsets, lengths = pack_frames(apls)
    walked = walk(buffer, offsets, lengths)
    firsts, counts = walked.info["first_record"], walked.info["record_count"]
    chosen = np.flatnonzero(walked.info["status"] == WalkStatus.OK)
    group_of, heads = layout_groups(buffer, offsets, walked.rows, firsts, counts, chosen)
    want = expected_groups(apls, walked.rows, firsts.tolist(), counts.tolist(), chosen.tolist())
    assert group_of.tolist() == want
    assert heads == [want.index(number) for number in range(len(heads))]
    found, ref_groups, ref_heads = reference(buffer.tobytes(), offsets, walked.rows, firsts, counts, chosen)
    assert (found, ref_groups, ref_heads) == (len(heads), group_of.tolist(), heads)


@pytest.mark.equivalence
@given(batches())
def test_groups_of_generated_telegrams(batch: tuple[list[bytes], list[float]]) -> None:
    apls, _ = batch
    assert_groups(apls)


@pytest.mark.equivalence
def test_groups_of_the_corpus(corpus: list[dict[str, Any]]) -> None:
    apls = corpus_apls(corpus)
    assert_groups(apls + apls[::-1])


def test_headers_split_differently_are_one_layout() -> None:
    # The key is the header bytes one record after the other, however the records split them.
    assert split_groups([[b"AB", b"CD"], [b"ABC", b"D"], [b"A", b"", b"BCD"]]) == [0, 0, 0]


def test_different_headers_are_different_layouts() -> None:
    assert split_groups([[b"AB", b"CD"], [b"ABC", b"E"], [b"A", b""], [b"", b"B"], [], [b""]]) == [
        0,
        1,
        2,
        3,
        4,
        4,
    ]


def split_groups(telegrams: list[list[bytes]]) -> list[int]:
    """The layout numbers of telegrams given as their records' header bytes, laid out with a
    data byte after every header (which the key leaves out)."""
    data, bases, firsts, counts, spans = b"", [], [], [], []
    for headers in telegrams:
        bases.append(len(data))
        firsts.append(len(spans))
        counts.append(len(headers))
        apl = b""
        for header in headers:
            spans.append((len(apl), len(apl) + len(header)))
            apl += header + b"\x00"
        data += apl
    rows = np.zeros(len(spans), dtype=RECORD_DTYPE)
    rows["offset"] = [start for start, _ in spans]
    rows["data_offset"] = [end for _, end in spans]
    chosen = np.arange(len(telegrams))
    group_of, _ = layout_groups(
        np.frombuffer(data, dtype=np.uint8), np.array(bases), rows, np.array(firsts), np.array(counts), chosen
    )
    found, ref_groups, _ = reference(data, bases, rows, firsts, counts, chosen)
    assert found >= 0 and ref_groups == group_of.tolist()
    return group_of.tolist()


@st.composite
def laid_out(draw: st.DrawFn) -> tuple[bytes, list[int], Any, list[int], list[int], list[int], list[int]]:
    """Telegrams whose keys come from a few byte strings, each split into records at random
    (empty headers and telegrams without records included), with data bytes between the
    headers and telegrams chosen in any order, some twice; with the expected layout numbers."""
    keys = draw(st.lists(st.binary(max_size=5), min_size=1, max_size=4))
    data, bases, firsts, counts, spans, telegram_keys = b"", [], [], [], [], []
    for _ in range(draw(st.integers(1, 12))):
        key = keys[draw(st.integers(0, len(keys) - 1))]
        cuts = sorted(draw(st.lists(st.integers(0, len(key)), max_size=4)))
        pieces = [key[a:b] for a, b in zip([0, *cuts], [*cuts, len(key)], strict=True)]
        if not key and draw(st.booleans()):
            pieces = []  # a telegram without records
        bases.append(len(data))
        firsts.append(len(spans))
        counts.append(len(pieces))
        apl = draw(st.binary(max_size=2))
        for piece in pieces:
            spans.append((len(apl), len(apl) + len(piece)))
            apl += piece + draw(st.binary(max_size=2))
        data += apl
        telegram_keys.append(b"".join(pieces))
    rows = np.zeros(len(spans), dtype=RECORD_DTYPE)
    rows["offset"] = [start for start, _ in spans]
    rows["data_offset"] = [end for _, end in spans]
    chosen = draw(st.lists(st.integers(0, len(bases) - 1), min_size=1, max_size=16))
    numbers: dict[bytes, int] = {}
    want = [numbers.setdefault(telegram_keys[t], len(numbers)) for t in chosen]
    return data, bases, rows, firsts, counts, chosen, want


@pytest.mark.equivalence
@given(laid_out())
def test_c_equals_reference_on_laid_out_telegrams(
    case: tuple[bytes, list[int], Any, list[int], list[int], list[int], list[int]],
) -> None:
    data, bases, rows, firsts, counts, chosen, want = case
    group_of, heads = layout_groups(
        np.frombuffer(data, dtype=np.uint8),
        np.array(bases),
        rows,
        np.array(firsts),
        np.array(counts),
        np.array(chosen),
    )
    assert group_of.tolist() == want
    assert heads == [want.index(number) for number in range(len(heads))]
    assert reference(data, bases, rows, firsts, counts, chosen) == (len(heads), want, heads)


@pytest.mark.equivalence
@given(
    st.binary(max_size=24),
    st.lists(st.tuples(st.integers(-3, 30), st.integers(-3, 30)), max_size=8),
    st.lists(st.tuples(st.integers(-4, 28), st.integers(-2, 9), st.integers(-2, 4)), min_size=1, max_size=6),
    st.lists(st.integers(-2, 7), max_size=10),
)
def test_c_equals_reference_on_arbitrary_descriptions(
    data: bytes, spans: list[tuple[int, int]], telegrams: list[tuple[int, int, int]], chosen: list[int]
) -> None:
    rows = np.zeros(len(spans), dtype=RECORD_DTYPE)
    rows["offset"] = [start for start, _ in spans]
    rows["data_offset"] = [end for _, end in spans]
    bases, firsts, counts = (np.array(column, dtype=np.int64) for column in zip(*telegrams, strict=True))
    buffer = np.frombuffer(data, dtype=np.uint8)
    found, want_groups, want_heads = reference(data, bases, rows, firsts, counts, chosen)
    if found == LAYOUT_RANGE:
        with pytest.raises(InputError):
            layout_groups(buffer, bases, rows, firsts, counts, np.array(chosen, dtype=np.int64))
        return
    group_of, heads = layout_groups(buffer, bases, rows, firsts, counts, np.array(chosen, dtype=np.int64))
    assert (group_of.tolist(), heads) == (want_groups, want_heads)


EXTREME = (-(2**63), -(2**32) - 1, 2**31, 2**32 + 8, 2**63 - 1)


@pytest.mark.equivalence
@pytest.mark.parametrize("base", EXTREME)
@pytest.mark.parametrize("first", [0, 2**63 - 1, -1])
def test_extreme_offsets_are_refused_like_the_reference(base: int, first: int) -> None:
    rows = np.zeros(2, dtype=RECORD_DTYPE)
    rows["data_offset"] = [1, 1]
    bases, firsts, counts = np.array([base]), np.array([first]), np.array([2])
    found, _, _ = reference(b"ABCD", bases, rows, firsts, counts, [0])
    assert found == LAYOUT_RANGE
    with pytest.raises(InputError):
        layout_groups(np.frombuffer(b"ABCD", dtype=np.uint8), bases, rows, firsts, counts, np.array([0]))


def test_a_header_beyond_the_buffer_is_refused() -> None:
    rows = np.zeros(1, dtype=RECORD_DTYPE)
    rows["offset"], rows["data_offset"] = 2, 6
    with pytest.raises(InputError):
        layout_groups(
            np.zeros(4, dtype=np.uint8), np.array([0]), rows, np.array([0]), np.array([1]), np.array([0])
        )


def test_a_description_that_does_not_fit_is_refused() -> None:
    rows = np.zeros(1, dtype=RECORD_DTYPE)
    buffer = np.zeros(4, dtype=np.uint8)
    one, two = np.array([0]), np.array([0, 0])
    with pytest.raises(InputError):
        layout_groups(buffer, one, rows, two, one, one)  # a first row per telegram
    with pytest.raises(InputError):
        layout_groups(buffer, one, np.zeros(1), one, one, one)  # not the walker's rows
    with pytest.raises(InputError):
        layout_groups(buffer, one, rows, one, one, np.array([[0]]))  # 2-D
    with pytest.raises(InputError):
        layout_groups(buffer, one, rows, one, np.array([2**32 + 1]), one)  # beyond int32
    with pytest.raises(InputError):
        layout_groups(buffer.reshape(2, 2), one, rows, one, one, one)
