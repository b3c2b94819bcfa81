"""Rows of an INSERT packed into typed columns, for binding them from C (``mc_sql_insert``).

Python's ``sqlite3`` binds one value at a time: a type test through Python's C API and a
copy of every text. Packed, a statement's rows become a few buffers: per column an array of
64-bit integers or doubles, its texts one after another (each ended by a NUL byte), or a
table of texts with each row's entry number. The C core binds them in place (see
csrc/mc_sqlite.c). Packing tests each value's type once (``set(map(type, ...))``) and joins
or converts a column in C-level passes; the blocks of the pipeline
(:class:`~minolcore.store.base.ReadingBlock`, :class:`~minolcore.store.base.UplinkBlock`)
come as arrays and tables already, with no value per row to test.

A column packs where binding it from C gives exactly what Python's ``sqlite3`` binds: every
value a ``str`` (with no NUL inside, encodable), every value an ``int`` or ``bool`` within
64 bits, or every value a ``float``, each kind with or without ``None``. Anything else
(bytes, subclasses, numpy's scalars, integers and floats mixed in one column, integers
beyond 64 bits, a lone surrogate) leaves the statement's rows to Python's ``sqlite3``, which
binds them or refuses them as it always did.
"""

from __future__ import annotations

import itertools
import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

__all__ = [
    "DOUBLE",
    "INT64",
    "NULL",
    "TABLE",
    "TEXT",
    "PackedColumns",
    "TextTable",
    "distinct_text_column",
    "distinct_text_order",
    "pack_column",
    "pack_columns",
    "table_column",
    "text_order",
    "text_table",
    "unpack_rows",
]

# Column kinds; the numbers match MC_SQL_* in csrc/minolcore.h.
NULL = 0
INT64 = 1
DOUBLE = 2
TEXT = 3
TABLE = 4

_NONE = type(None)
_INTEGERS = frozenset((int, bool))
_NUL = 0


# A table of texts: entry e is texts[offsets[e]:offsets[e + 1]] (UTF-8).
TextTable = tuple[bytes, "np.ndarray[Any, np.dtype[np.int64]]"]


@dataclass(frozen=True, slots=True)
class PackedColumns:
    """A statement's rows as columns: ``kinds[c]`` is one of NULL, INT64, DOUBLE, TEXT, TABLE;
    ``values[c]`` an array of 64-bit integers or doubles with a value per row (any value for a
    null row), the UTF-8 texts of the rows that are not null each ended by a NUL byte, for
    TABLE each row's entry number into ``tables[c]`` (a :data:`TextTable`), or None for an
    all-NULL column; ``nulls[c]`` None or one byte per row, 1 where the row binds NULL."""

    rows: int
    kinds: tuple[int, ...]
    values: tuple[Any, ...]
    nulls: tuple[bytes | None, ...]
    tables: tuple[TextTable | None, ...] = ()

    def table(self, column: int) -> TextTable | None:
        return self.tables[column] if column < len(self.tables) else None


def text_table(entries: Sequence[object]) -> TextTable | None:
    """The entries as a :data:`TextTable`, or None where an entry is not a ``str`` (None
    included: see :func:`table_column`) or cannot be encoded."""
    if not set(map(type, entries)) <= {str}:
        return None
    return _encoded(cast(Sequence[str], entries))


def _encoded(texts: Sequence[str]) -> TextTable | None:
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    joined = "".join(texts)
    if joined.isascii():
        # One byte per character: the offsets follow from the lengths.
        np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=offsets[1:])
        return joined.encode(), offsets
    try:
        encoded = [text.encode() for text in texts]
    except UnicodeEncodeError:
        return None
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    return b"".join(encoded), offsets


def table_column(
    entries: Sequence[object], numbers: np.ndarray[Any, np.dtype[np.int64]]
) -> tuple[TextTable, bytes | None] | None:
    """A TABLE column whose rows are ``entries[numbers[i]]``: the table, and the rows' null
    mask where an entry is None (such rows bind NULL, as Python's sqlite3 binds None); None
    where an entry is neither a ``str`` nor None, or cannot be encoded."""
    types = set(map(type, entries))
    if types <= {str}:
        table = _encoded(cast(Sequence[str], entries))
        return None if table is None else (table, None)
    if not types <= {str, _NONE}:
        return None
    missing = np.fromiter((entry is None for entry in entries), dtype=np.bool_, count=len(entries))
    table = _encoded(["" if entry is None else cast(str, entry) for entry in entries])
    return None if table is None else (table, missing[numbers].view(np.uint8).tobytes())


def text_order(texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The positions of ``texts`` in sorted order (equal texts in their order). Texts of one
    length in ASCII (the uplinks' content keys) are sorted by numpy as fixed-width bytes,
    which orders them as Python orders the texts; any others by Python."""
    return _sorted_texts(texts)[0]


def distinct_text_order(texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    """:func:`text_order` of texts that are all distinct, or None where two are equal."""
    order, repeated, _ = _sorted_texts(texts)
    return None if repeated else order


def distinct_text_column(
    texts: Sequence[str],
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], TextTable] | None:
    """(:func:`distinct_text_order`, the texts as a :data:`TextTable` in their order) of
    texts that are all ``str``; None where two are equal or one cannot be encoded. Texts of
    one width in ASCII (the uplinks' content keys) are joined once for both: the table's
    bytes are the joined text's, its offsets follow from the width."""
    order, repeated, joined = _sorted_texts(texts)
    if repeated:
        return None
    if joined is not None:
        width = len(joined) // len(texts)
        return order, (joined.encode(), np.arange(len(texts) + 1, dtype=np.int64) * width)
    table = _encoded(texts)
    return None if table is None else (order, table)


def _sorted_texts(texts: Sequence[str]) -> tuple[np.ndarray[Any, np.dtype[np.int64]], bool, str | None]:
    """(:func:`text_order`, whether two texts are equal, the texts joined where they are of
    one width (not 0) in ASCII, else None)."""
    lengths = set(map(len, texts))
    if len(lengths) == 1:
        joined = "".join(texts)
        width = lengths.pop()
        if width == _DIGEST_HEX_WIDTH:
            digests = _digest_order(joined, len(texts))
            if digests is not None:
                return (*digests, joined)  # lowercase hex digits: ASCII
        if width and joined.isascii():
            fixed = np.frombuffer(joined.encode(), dtype=f"S{width}")
            order = np.argsort(fixed, kind="stable").astype(np.int64)
            in_order = fixed[order]
            return order, bool(np.any(in_order[1:] == in_order[:-1])), joined
    order = np.asarray(sorted(range(len(texts)), key=texts.__getitem__), dtype=np.int64)
    ordered = list(map(texts.__getitem__, order.tolist()))
    return order, any(map(operator.eq, ordered, itertools.islice(ordered, 1, None))), None


# The uplinks' content keys: 16-byte digests in lowercase hex.
_DIGEST_HEX_WIDTH = 32


def _digest_order(joined: str, count: int) -> tuple[np.ndarray[Any, np.dtype[np.int64]], bool] | None:
    """:func:`_sorted_texts` of ``count`` texts of 32 lowercase hex digits, joined; None for
    other texts. Such texts sort as their values do, and two 64-bit halves sort faster than
    32-byte strings: by the first half alone, unless two texts share it."""
    try:
        values = bytes.fromhex(joined)
    except ValueError:
        return None
    # fromhex also reads capital letters (which sort before the digits) and skips spaces.
    if values.hex() != joined:
        return None
    halves = np.frombuffer(values, dtype=">u8").reshape(count, 2).astype(np.uint64)
    order = np.argsort(halves[:, 0])  # the first halves all differ, or lexsort follows
    first = halves[order, 0]
    if not np.any(first[1:] == first[:-1]):
        return order.astype(np.int64), False
    order = np.lexsort((halves[:, 1], halves[:, 0]))
    in_order = halves[order]
    return order.astype(np.int64), bool(np.any(np.all(in_order[1:] == in_order[:-1], axis=1)))


def pack_columns(rows: Sequence[Sequence[object]], width: int) -> PackedColumns | None:
    """Pack ``rows`` (each of ``width`` values), or None where a column does not pack (see
    the module's docstring): such rows are bound by Python's ``sqlite3``."""
    count = len(rows)
    if not count:
        return PackedColumns(0, (NULL,) * width, (None,) * width, (None,) * width)
    columns: list[Sequence[object]] = list(zip(*rows, strict=True))
    if len(columns) != width:
        return None
    kinds: list[int] = []
    values: list[array[int] | array[float] | bytes | None] = []
    nulls: list[bytes | None] = []
    for column in columns:
        packed = pack_column(column, count)
        if packed is None:
            return None
        kinds.append(packed[0])
        values.append(packed[1])
        nulls.append(packed[2])
    return PackedColumns(count, tuple(kinds), tuple(values), tuple(nulls))


_Packed = tuple[int, "array[int] | array[float] | bytes | None", "bytes | None"]


def pack_column(column: Sequence[object], count: int) -> _Packed | None:
    """One column of ``count`` values packed: (kind, values, nulls), or None where it does not
    pack (see the module's docstring)."""
    if not count:
        return NULL, None, None
    types = set(map(type, column))
    nullable = _NONE in types
    types.discard(_NONE)
    mask = None
    given = column
    if nullable:
        present = list(map(operator.is_not, column, itertools.repeat(None)))
        mask = bytes(map(operator.not_, present))
        given = list(itertools.compress(column, present))
    try:
        if not types:
            return NULL, None, mask
        if types == {str}:
            return TEXT, _texts(given, len(given)), mask
        if types <= _INTEGERS:
            numbers = [0 if value is None else value for value in column] if nullable else column
            return INT64, array("q", cast(Sequence[int], numbers)), mask
        if types == {float}:
            numbers = [0.0 if value is None else value for value in column] if nullable else column
            return DOUBLE, array("d", cast(Sequence[float], numbers)), mask
    except (ValueError, OverflowError):
        return None  # a NUL or a lone surrogate in a text, an integer beyond 64 bits
    return None  # another type, or integers and floats mixed: each binds as its own type


def _texts(texts: Sequence[object], count: int) -> bytes:
    """The texts in UTF-8, each followed by a NUL byte. TypeError for a value that is not a
    ``str``, ValueError for a text that holds a NUL (or cannot be encoded)."""
    if not count:
        return b""
    packed = ("\0".join(texts) + "\0").encode()  # type: ignore[arg-type]  # join checks each value
    if packed.count(_NUL) != count:
        raise ValueError("a text holds a NUL")
    return packed


def unpack_rows(packed: PackedColumns) -> list[tuple[object, ...]]:
    """The rows that ``packed`` holds, as Python's ``sqlite3`` would bind them (the inverse of
    :func:`pack_columns`)."""
    columns: list[list[object]] = []
    for kind, values, mask in zip(packed.kinds, packed.values, packed.nulls, strict=True):
        column: list[object]
        if kind == NULL:
            column = [None] * packed.rows
        elif kind == TEXT:
            assert isinstance(values, bytes)
            texts = iter(values.decode().split("\0"))
            column = [None if mask is not None and mask[row] else next(texts) for row in range(packed.rows)]
        elif kind == TABLE:
            table = packed.table(len(columns))
            assert table is not None
            texts_bytes, offsets = table
            bounds = offsets.tolist()
            entries = [texts_bytes[bounds[e] : bounds[e + 1]].decode() for e in range(len(bounds) - 1)]
            column = [entries[entry] for entry in np.asarray(values).tolist()]
        else:
            column = list(values) if isinstance(values, array) else np.asarray(values).tolist()
        if mask is not None:
            column = [None if null else value for value, null in zip(column, mask, strict=True)]
        columns.append(column)
    return list(zip(*columns, strict=True)) if columns else []
