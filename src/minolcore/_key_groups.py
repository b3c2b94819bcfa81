"""Rows grouped by a fixed-width key in one hash pass of the C core (``mc_key_groups``).

The reading merges keep, of all rows with one reading key, the first row in batch order with
the smallest uplink key of them all (see :mod:`minolcore.store._readings`). A pass over a
hash table of the keys finds the groups, each group's first row and its smallest text at
once, in time linear in the rows; only the rows kept are sorted after. The same pass numbers
the distinct entries of a table of texts. Texts compare as their UTF-8 bytes (surrogates
passed through), which orders them as Python orders ``str``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from minolcore import _native
from minolcore.errors import InputError

# The C core's hash of the keys is seeded per process (see csrc/mc_groups.c); the groups it
# finds are the same whatever the seed.
_HASH_SEED = int.from_bytes(os.urandom(8), "little")

__all__ = ["EncodedTexts", "KeyGroups", "encoded_texts", "fixed_rows", "key_groups", "ordered_texts"]


class EncodedTexts(NamedTuple):
    """Texts as one buffer of UTF-8 bytes: text ``t`` is ``data[starts[t]:ends[t]]``."""

    data: bytes
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]


class KeyGroups(NamedTuple):
    """Per row its group (numbered in order of first appearance); per group the row first
    by order, and (where texts were given) the entry of its rows' smallest text."""

    group_of: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    smallest: npt.NDArray[np.int64] | None


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def encoded_texts(texts: Sequence[object]) -> EncodedTexts | None:
    """``texts`` as :class:`EncodedTexts`, or None unless every one is a ``str`` (a
    subclass may order itself otherwise)."""
    if not set(map(type, texts)) <= {str}:
        return None
    strs: Sequence[str] = texts  # type: ignore[assignment]
    count = len(strs)
    # One join and one encoding, the bounds from the separators: unless a text holds a NUL
    # itself (then there are more of them), each NUL byte is a separator.
    data = _utf8("\0".join(strs))
    if count and data.count(0) == count - 1:
        width = len(_utf8(strs[0]))
        if len(data) == count * (width + 1) - 1 and data[width :: width + 1] == bytes(count - 1):
            # Texts of one width (the content keys): the bounds follow from it.
            starts = np.arange(0, len(data) + 1, width + 1, dtype=np.int64)
            return EncodedTexts(data, starts, starts + width)
        separators = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0)
        starts = np.empty(count, dtype=np.int64)
        starts[0] = 0
        starts[1:] = separators + 1
        ends = np.empty(count, dtype=np.int64)
        ends[:-1] = separators
        ends[-1] = len(data)
        return EncodedTexts(data, starts, ends)
    parts = list(map(_utf8, strs))
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=count)
    ends = np.cumsum(lengths, dtype=np.int64)
    return EncodedTexts(b"".join(parts), ends - lengths, ends)


def ordered_texts(values: Sequence[Any]) -> EncodedTexts:
    """:func:`encoded_texts` of ``values`` where they are all ``str``; else per value its
    place among the distinct values in Python's order, as 8 big-endian bytes (raises
    TypeError for values that do not compare)."""
    texts = encoded_texts(values)
    if texts is not None:
        return texts
    distinct = sorted(set(values))
    place = dict(zip(distinct, itertools.count()))
    ranks = np.fromiter(map(place.__getitem__, values), dtype=np.int64, count=len(values))
    starts = np.arange(0, 8 * len(values), 8, dtype=np.int64)
    return EncodedTexts(ranks.astype(">u8").tobytes(), starts, starts + 8)


def fixed_rows(texts: Sequence[str]) -> npt.NDArray[np.uint8] | None:
    """The UTF-8 bytes of ``texts`` (all ``str``) as rows of one width, each ended by a NUL
    byte (equal rows, equal texts); None unless they all take the same bytes and none holds
    a NUL."""
    count = len(texts)
    data = _utf8("\0".join(texts) + "\0")
    if not count or len(data) % count:
        return None
    rows = np.frombuffer(data, dtype=np.uint8).reshape(count, len(data) // count)
    # Exactly one NUL per row, at its end: then every text takes the row's other bytes.
    if np.count_nonzero(rows == 0) != count or np.any(rows[:, -1]):
        return None
    return rows


def key_groups(
    keys: np.ndarray[Any, Any],
    order: np.ndarray[Any, Any] | None = None,
    texts: EncodedTexts | None = None,
    text_of: np.ndarray[Any, Any] | None = None,
) -> KeyGroups:
    """The groups of the rows of ``keys`` (a 2-D array: row ``i``'s key is the bytes of
    ``keys[i]``, so rows of equal bytes are one key: integers as their values, while 0.0
    and -0.0, or two NaNs of other bits, would be two).

    ``order`` (int64 per row, default the rows' order) picks each group's first row: the
    smallest, of equal ones the first. With ``texts`` and ``text_of`` (per row an entry of
    ``texts``) each group also gets the entry of its rows' smallest text, of equal texts
    that of the row first by ``order``. Raises :class:`InputError` for columns of other
    shapes or types, or an entry outside ``texts``."""
    array = np.asarray(keys)
    if array.ndim != 2 or array.dtype.hasobject:
        raise InputError("key groups need a 2-D array of keys without objects")
    count, width = len(array), array.shape[1] * array.dtype.itemsize
    rows = np.ascontiguousarray(array).view(np.uint8).reshape(count, width)
    ranks = None if order is None else _column(order, count, "order")
    if (texts is None) != (text_of is None):
        raise InputError("key groups need both the texts and each row's entry of them, or neither")
    entries = None if text_of is None else _column(text_of, count, "text_of")
    data, starts, ends = b"", np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if texts is not None:
        data, starts, ends = texts.data, _as_int64(texts.starts), _as_int64(texts.ends)
        if not isinstance(data, bytes) or len(starts) != len(ends):
            raise InputError("key groups need texts as bytes with a start and an end per text")
    group_of = np.empty(count, dtype=np.int64)
    first = np.empty(count, dtype=np.int64)
    smallest = np.empty(count, dtype=np.int64)
    if _native.BACKEND == "cffi":
        ffi = _native.ffi

        def ints(column: npt.NDArray[np.int64] | None) -> Any:
            return ffi.NULL if column is None else ffi.from_buffer("int64_t[]", column)

        found = _native.lib.mc_key_groups(
            ffi.from_buffer("uint8_t[]", rows),
            rows.size,
            count,
            width,
            ints(ranks),
            ints(entries),
            ffi.from_buffer("uint8_t[]", data),
            len(data),
            ints(starts),
            ints(ends),
            len(starts),
            ffi.from_buffer("int64_t[]", group_of),
            ffi.from_buffer("int64_t[]", first),
            ffi.from_buffer("int64_t[]", smallest),
            _HASH_SEED,
        )
        if found == _native.lib.MC_GROUPS_NOMEM:
            raise MemoryError("no memory for the key groups")
    else:
        from minolcore._reference.groups import key_groups_into  # noqa: PLC0415

        found = key_groups_into(
            rows.tobytes(), count, width, ranks, entries, data, starts, ends, group_of, first, smallest
        )
    if found < 0:
        raise InputError("a row's text entry or a text lies outside its array")
    return KeyGroups(group_of, first[:found], None if entries is None else smallest[:found])


def _as_int64(column: Any) -> npt.NDArray[np.int64]:
    array = np.asarray(column)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InputError("key groups need 1-D integer columns")
    if array.dtype.kind == "u" and len(array) and int(array.max()) > np.iinfo(np.int64).max:
        raise InputError("key groups need integers that fit in 64 bits")
    return np.ascontiguousarray(array, dtype=np.int64)


def _column(column: Any, count: int, name: str) -> npt.NDArray[np.int64]:
    array = _as_int64(column)
    if len(array) != count:
        raise InputError(f"key groups need one {name} per row")
    return array
