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
    rows = np.zeros(4, dtype=RECORD_DTYPE)
    rows["offset"] = [0, 2, 0, 3]
    rows["data_offset"] = [2, 4, 3, 4]
    buffer = np.frombuffer(b"ABCD" + b"ABCD", dtype=np.uint8)
    group_of, heads = layout_groups(
        buffer, np.array([0, 4]), rows, np.array([0, 2]), np.array([2, 2]), np.array([0, 1])
    )
    assert group_of.tolist() == [0, 0] and heads == [0]


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


def test_a_description_that_does_not_fit_is_refused() -> None:
    rows = np.zeros(1, dtype=RECORD_DTYPE)
    with pytest.raises(InputError):
        layout_groups(
            np.zeros(4, dtype=np.uint8), np.array([0]), rows, np.array([0, 0]), np.array([1]), np.array([0])
        )
    with pytest.raises(InputError):
        layout_groups(
            np.zeros(4, dtype=np.uint8),
            np.array([0]),
            np.zeros(1),
            np.array([0]),
            np.array([1]),
            np.array([0]),
        )
