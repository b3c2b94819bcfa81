"""Key groups (``mc_key_groups`` and its twin): rows numbered by the bytes of their keys, in
order of first appearance, with per group its first row by order and its smallest text."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore import _key_groups as key_groups_module
from minolcore._key_groups import EncodedTexts, encoded_texts, fixed_rows, key_groups, ordered_texts
from minolcore._reference.groups import GROUPS_RANGE, key_groups_into
from minolcore.errors import InputError

# Texts that tell byte order from Python's order where an encoding could: NUL, non-ASCII,
# characters beyond the BMP and lone surrogates (which UTF-8 passes through).
_TEXTS = st.text(
    alphabet=st.sampled_from(["a", "b", "\0", "é", "\U0001f600", "\ud800", "\uffff"]), max_size=4
)


@st.composite
def grouped_rows(
    draw: Any,
) -> tuple[np.ndarray[Any, Any], list[int] | None, list[str] | None, list[int] | None]:
    """(keys, order or None, texts or None, per row its text entry or None): few distinct
    keys, so that groups repeat."""
    count = draw(st.integers(0, 40))
    width = draw(st.integers(0, 3))
    keys = np.array(
        draw(
            st.lists(
                st.lists(st.integers(-2, 2), min_size=width, max_size=width), min_size=count, max_size=count
            )
        ),
        dtype=np.int64,
    ).reshape(count, width)
    order = draw(st.none() | st.lists(st.integers(-3, 3), min_size=count, max_size=count))
    if not draw(st.booleans()):
        return keys, order, None, None
    texts = draw(st.lists(_TEXTS, min_size=1, max_size=8))
    text_of = draw(st.lists(st.integers(0, len(texts) - 1), min_size=count, max_size=count))
    return keys, order, texts, text_of


def expected(
    keys: np.ndarray[Any, Any], order: list[int] | None, texts: list[str] | None, text_of: list[int] | None
) -> tuple[list[int], list[int], list[int] | None]:
    """The groups worked out from the rows' values and Python's order of ``str``."""
    ranks = order if order is not None else [0] * len(keys)
    members: dict[tuple[int, ...], list[int]] = {}
    group_of = [0] * len(keys)
    for row, key in enumerate(map(tuple, keys.tolist())):
        group_of[row] = list(members).index(key) if key in members else len(members)
        members.setdefault(key, []).append(row)
    first = [min(rows, key=lambda row: (ranks[row], row)) for rows in members.values()]
    if texts is None or text_of is None:
        return group_of, first, None
    smallest = [
        text_of[min(rows, key=lambda row: (texts[text_of[row]], ranks[row], row))]
        for rows in members.values()
    ]
    return group_of, first, smallest


def reference(
    keys: np.ndarray[Any, Any], order: list[int] | None, texts: EncodedTexts | None, text_of: list[int] | None
) -> tuple[int, list[int], list[int], list[int] | None]:
    count = len(keys)
    group_of, first, smallest = (np.zeros(count, dtype=np.int64) for _ in range(3))
    data = texts.data if texts is not None else b""
    none = np.zeros(0, dtype=np.int64)
    found = key_groups_into(
        np.ascontiguousarray(keys).tobytes(),
        count,
        keys.shape[1] * keys.dtype.itemsize,
        None if order is None else np.asarray(order, dtype=np.int64),
        None if text_of is None else np.asarray(text_of, dtype=np.int64),
        data,
        texts.starts if texts is not None else none,
        texts.ends if texts is not None else none,
        group_of,
        first,
        smallest,
    )
    return (
        found,
        group_of.tolist(),
        first[:found].tolist(),
        None if text_of is None else smallest[:found].tolist(),
    )


@pytest.mark.equivalence
@given(grouped_rows())
def test_groups_are_the_rows_grouped_by_value(rows: Any) -> None:
    keys, order, texts, text_of = rows
    encoded = None if texts is None else encoded_texts(texts)
    order_column = None if order is None else np.asarray(order, dtype=np.int64)
    text_column = None if text_of is None else np.asarray(text_of, dtype=np.int64)
    groups = key_groups(keys, order_column, encoded, text_column)
    want = expected(keys, order, texts, text_of)
    smallest = None if groups.smallest is None else groups.smallest.tolist()
    assert (groups.group_of.tolist(), groups.first.tolist(), smallest) == want
    assert reference(keys, order, encoded, text_of) == (len(groups.first), *want)


@given(grouped_rows(), st.integers(0, 2**64 - 1))
def test_the_groups_do_not_depend_on_the_hash_seed(rows: Any, seed: int) -> None:
    keys, order, texts, text_of = rows
    encoded = None if texts is None else encoded_texts(texts)
    order_column = None if order is None else np.asarray(order, dtype=np.int64)
    text_column = None if text_of is None else np.asarray(text_of, dtype=np.int64)
    want = key_groups(keys, order_column, encoded, text_column)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_groups_module, "_HASH_SEED", seed)
        got = key_groups(keys, order_column, encoded, text_column)
    assert got.group_of.tolist() == want.group_of.tolist() and got.first.tolist() == want.first.tolist()
    assert (got.smallest is None) == (want.smallest is None)
    if got.smallest is not None and want.smallest is not None:
        assert got.smallest.tolist() == want.smallest.tolist()


@pytest.mark.equivalence
@given(st.lists(st.sampled_from(["2024-01-31T23:50", "2024-02-01T00:00", "é", "abcd"]), max_size=30))
def test_texts_of_one_width_group_as_texts(texts: list[str]) -> None:
    rows = fixed_rows(texts)
    if rows is None:
        assert not texts or len({len(text.encode()) for text in texts}) > 1
        return
    groups = key_groups(rows)
    numbers: dict[str, int] = {}
    assert groups.group_of.tolist() == [numbers.setdefault(text, len(numbers)) for text in texts]
    assert [texts[row] for row in groups.first.tolist()] == list(numbers)


@given(st.lists(_TEXTS, max_size=12))
def test_encoded_texts_hold_each_text(texts: list[str]) -> None:
    encoded = encoded_texts(texts)
    assert encoded is not None
    pieces = [
        encoded.data[start:end].decode("utf-8", "surrogatepass")
        for start, end in zip(encoded.starts.tolist(), encoded.ends.tolist(), strict=True)
    ]
    assert pieces == texts


def test_values_other_than_str_compare_by_their_order() -> None:
    assert encoded_texts(["a", 1]) is None
    encoded = ordered_texts([3, 1.0, 2, 1])
    entries = [encoded.data[s:e] for s, e in zip(encoded.starts.tolist(), encoded.ends.tolist(), strict=True)]
    assert entries[1] == entries[3] < entries[2] < entries[0]


def test_the_first_row_by_order_and_the_smallest_text_win() -> None:
    keys = np.array([[1, 7], [2, 7], [1, 7], [1, 8], [2, 7]], dtype=np.int64)
    texts = encoded_texts(["b", "a", "a", "", "c"])
    groups = key_groups(keys, np.array([9, 5, 3, 0, 1]), texts, np.arange(5))
    assert groups.group_of.tolist() == [0, 1, 0, 2, 1]
    assert groups.first.tolist() == [2, 4, 3]
    assert groups.smallest is not None and groups.smallest.tolist() == [2, 1, 3]
    # Equal texts: the entry of the row first by order.
    tie = key_groups(np.zeros((3, 1), dtype=np.int64), np.array([2, 1, 3]), texts, np.array([1, 2, 1]))
    assert tie.smallest is not None and tie.smallest.tolist() == [2]


def test_an_empty_key_puts_every_row_in_one_group() -> None:
    groups = key_groups(np.zeros((4, 0), dtype=np.int64))
    assert groups.group_of.tolist() == [0, 0, 0, 0] and groups.first.tolist() == [0]
    assert key_groups(np.zeros((0, 3), dtype=np.int64)).first.tolist() == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"keys": np.zeros(3, dtype=np.int64)}, "2-D"),
        ({"keys": np.zeros((2, 1), dtype=object)}, "2-D"),
        ({"order": np.zeros(3, dtype=np.int64)}, "one order per row"),
        ({"order": np.zeros(2, dtype=np.float64)}, "integer"),
        ({"texts": EncodedTexts(b"ab", np.array([0, 1]), np.array([1, 2]))}, "or neither"),
        ({"text_of": np.zeros(2, dtype=np.int64)}, "or neither"),
        (
            {"texts": EncodedTexts(b"ab", np.array([0, 1]), np.array([1, 2])), "text_of": np.array([0, 2])},
            "outside",
        ),
        (
            {"texts": EncodedTexts(b"ab", np.array([0, 1]), np.array([1, 3])), "text_of": np.array([0, 1])},
            "outside",
        ),
        (
            {"texts": EncodedTexts(b"ab", np.array([1, 0]), np.array([0, 1])), "text_of": np.array([0, 1])},
            "outside",
        ),
        (
            {"texts": EncodedTexts(b"ab", np.array([0]), np.array([1, 2])), "text_of": np.array([0, 1])},
            "a start and an end",
        ),
    ],
)
def test_bad_columns_are_refused(arguments: dict[str, Any], message: str) -> None:
    call: dict[str, Any] = {"keys": np.zeros((2, 2), dtype=np.int64), **arguments}
    with pytest.raises(InputError, match=message):
        key_groups(call.pop("keys"), **call)


def test_the_twin_refuses_keys_beyond_their_buffer() -> None:
    none = np.zeros(0, dtype=np.int64)
    outputs = [np.zeros(3, dtype=np.int64) for _ in range(3)]
    assert key_groups_into(b"\0" * 5, 3, 2, None, None, b"", none, none, *outputs) == GROUPS_RANGE
