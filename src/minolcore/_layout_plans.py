"""Reading rows of many telegrams at once, one plan per record layout.

Telegrams of one meter type repeat the same record headers (DIB + VIB) in every
transmission; only the data change. The fast path of the pipeline therefore groups the
walked telegrams of a batch by their exact header bytes, works out once per layout what
each record position means (its quantity, unit, scaling, which date a historic value
takes, which record is the status), and then reads the values of the whole group from
the walker's numpy columns: scaled numbers and type F/G dates by column. The reading rows stay
columns too (:class:`ReadingColumn`, one per layout group and reading position): the
pipeline turns them into store rows for the whole batch at once.

The rules are those of :func:`minolcore.pipeline_fast._record` and ``_read`` (which
follow the object path); a layout they do not cover exactly (a number beyond 2**53,
unsigned 8-byte integers, a date record that is not a time point, ...) has no plan and its
telegrams take the per-record path. ``tests/test_layout_plans.py`` proves both paths
give the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from minolcore import _native
from minolcore.errors import InputError
from minolcore.readings import READING_QUANTITIES, iso_minute, reading_stamp
from minolcore.wmbus.dates import (
    NO_MINUTE,
    decode_timepoint,
    minute_text,
    minute_texts,
    type_f_minutes,
    type_g_minutes,
)
from minolcore.wmbus.record_batch import RECORD_DTYPE, RecordFlag, _header, _value
from minolcore.wmbus.vif import (
    CODING_BCD,
    CODING_INT,
    CODING_NONE,
    CODING_REAL,
    FLAG_INVALID,
    KIND_MANUFACTURER,
    KIND_TIMEPOINT,
    NO_OFFSET,
)

__all__ = [
    "LayoutRead",
    "LayoutReads",
    "ReadingColumn",
    "ReadingTimes",
    "ei_head",
    "layout_groups",
    "plain_main",
    "read_by_layout",
    "telegram_rows",
]

# Shared with the per-record reader in minolcore.pipeline_fast.
TIME_QUANTITIES: Final = frozenset(("date", "datetime"))
SPECIAL: Final = int(RecordFlag.MANUFACTURER_DATA | RecordFlag.GLOBAL_READOUT)
NUMBER: Final = int(RecordFlag.NUMBER)
_NEUTRAL: Final = frozenset(("standard_conform_data_content", "forward_flow", "value_at_base_conditions"))
_EXACT: Final = float(2**53)  # integers below this convert to float exactly
_PLAN_LIMIT: Final = 4096


class LayoutRead(NamedTuple):
    """What one layout group's telegrams read besides their readings, column by column:
    per telegram (a position in :func:`read_by_layout`'s ``chosen``) the model's time
    "YYYY-MM-DDTHH:MM" as a :class:`ReadingTimes` number, the error flags and the EI head
    value (None where the layout has none); and the group's layout entries."""

    positions: list[int]
    event_minutes: list[int]
    error_flags: list[int | None]
    heads: list[int | None]
    layout: tuple[str, ...]


# Reading times that are not "YYYY-MM-DDThh:mm" are numbered from here on (a YYYYMMDDhhmm
# number is below it).
_OTHER_TIMES: Final = 10**12


class ReadingTimes:
    """The reading times of one batch as numbers, so that columns of them compare and sort
    in numpy: "YYYY-MM-DDThh:mm" is its YYYYMMDDhhmm number (as the type F and G date
    columns give them, see :func:`~minolcore.wmbus.dates.type_f_minutes`), any other time
    text gets a number of its own from 10**12 on. Equal texts get equal numbers."""

    __slots__ = ("_numbers", "_others")

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._others: list[str] = []

    def number(self, text: str) -> int:
        """The number of a reading time text."""
        found = self._numbers.get(text)
        if found is None:
            found = _minute_number(text)
            if found is None:
                found = _OTHER_TIMES + len(self._others)
                self._others.append(text)
            self._numbers[text] = found
        return found

    def text(self, number: int) -> str:
        """The text of a reading time number."""
        return minute_text(number) if number < _OTHER_TIMES else self._others[number - _OTHER_TIMES]

    def texts(self, numbers: list[int]) -> list[str]:
        """The texts of reading time numbers (none of them ``NO_MINUTE``)."""
        if not numbers or max(numbers) < _OTHER_TIMES:
            return cast(list[str], minute_texts(numbers))
        return list(map(self.text, numbers))


def _minute_number(text: str) -> int | None:
    """YYYYMMDDhhmm of a "YYYY-MM-DDThh:mm" text (ASCII digits), else None."""
    if len(text) != 16 or text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":":
        return None
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16]
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


class ReadingColumn:
    """One reading position of the telegrams of one layout: the row each telegram gives.

    ``telegrams``: the telegrams (positions in :func:`read_by_layout`'s ``chosen``, which
    :func:`~minolcore.pipeline_fast.fast_records` renumbers to the batch's); ``record``: the position's
    index among the layout's records (its order within a telegram); ``fields``: (quantity,
    storage, tariff, subunit, function, unit), the same for every telegram; per telegram
    its ``stamps`` (the reading time as a :class:`ReadingTimes` number, ``NO_MINUTE`` where
    a historic value has no valid date and so no row), ``values`` (float64) and ``valid``
    (the row's value is None where not valid)."""

    __slots__ = ("fields", "record", "stamps", "telegrams", "valid", "values")

    def __init__(
        self,
        telegrams: np.ndarray[Any, np.dtype[np.int64]],
        record: int,
        fields: tuple[str, int, int, int, str, str],
        stamps: np.ndarray[Any, np.dtype[np.int64]],
        values: np.ndarray[Any, np.dtype[np.float64]],
        valid: np.ndarray[Any, np.dtype[np.bool_]],
    ) -> None:
        self.telegrams = telegrams
        self.record = record
        self.fields = fields
        self.stamps = stamps
        self.values = values
        self.valid = valid

    def rows(self, times: ReadingTimes) -> list[tuple[Any, ...] | None]:
        """Per telegram its reading row (time, quantity, storage, tariff, subunit, function,
        value, unit, valid as 1 or 0), or None: what the column means, one telegram at a time (the
        pipeline builds the rows it keeps in bulk, in ``minolcore._batch_readings``; the
        tests hold both to the per-record path)."""
        quantity, storage, tariff, subunit, function, unit = self.fields
        return [
            None
            if stamp == NO_MINUTE
            else (
                times.text(stamp),
                quantity,
                storage,
                tariff,
                subunit,
                function,
                value if ok else None,
                unit,
                ok,
            )
            for stamp, value, ok in zip(
                self.stamps.tolist(), self.values.tolist(), self.valid.view(np.uint8).tolist(), strict=True
            )
        ]


def telegram_rows(columns: Sequence[ReadingColumn], times: ReadingTimes) -> dict[int, list[tuple[Any, ...]]]:
    """The reading rows of the columns per telegram, in record order (as the per-record path
    lists a telegram's rows)."""
    found: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
    for column in columns:
        for telegram, row in zip(column.telegrams.tolist(), column.rows(times), strict=True):
            if row is not None:
                found.setdefault(telegram, []).append((column.record, row))
    return {telegram: [row for _, row in sorted(rows, key=_first_item)] for telegram, rows in found.items()}


def _first_item(item: tuple[int, Any]) -> int:
    return item[0]


# (per layout group what its telegrams read besides their readings, the reading columns)
LayoutReads = tuple[list[LayoutRead], list[ReadingColumn]]


def plain_main(header: Any) -> bool:
    """Whether a record header (see ``record_batch._header``) is a plain main-unit value:
    storage 0, tariff 0, subunit 0, instantaneous, no VIFE that changes the meaning."""
    return bool(
        header[9] == 0
        and header[10] == 0
        and header[11] == 0
        and header[12] == "instantaneous"
        and all(name in _NEUTRAL for name in header[6])
    )


def ei_head(header: Any) -> bool:
    """Whether a record header is EI Electronics' status head (0xFF 0x2C, subunit 1, storage 0)."""
    return bool(
        header[2] == "manufacturer_specific" and header[1] == "FF2C" and header[11] == 1 and header[9] == 0
    )


class _Position:
    """What one record position of a layout means."""

    __slots__ = (
        "coding",
        "current",
        "exponent",
        "function",
        "head",
        "header",
        "invalid",
        "kind",
        "length",
        "offset_exp",
        "plain_main",
        "quantity",
        "role",
        "signed",
        "storage",
        "subunit",
        "tariff",
        "unit",
    )

    def __init__(self, header: Any, coding: int, length: int) -> None:
        self.header = header
        self.coding = coding
        self.length = length
        self.quantity: str = header[2]
        self.unit: str = header[3]
        self.exponent: int = header[4]
        self.kind: int = header[5]
        self.offset_exp: int = header[8]
        self.storage: int = header[9]
        self.tariff: int = header[10]
        self.subunit: int = header[11]
        self.function: str = header[12]
        self.signed: bool = header[13]
        self.invalid = coding == CODING_NONE or bool(header[7] & FLAG_INVALID)
        self.plain_main = plain_main(header)
        self.current = self.storage == 0 and self.function == "instantaneous"
        self.head = ei_head(header)
        self.role = ""


class _Plan:
    """The meaning of every record position of one layout."""

    __slots__ = (
        "date_at",
        "datetime_at",
        "error_at",
        "heads",
        "layout",
        "positions",
        "readings",
        "stamp_sources",
        "times",
    )

    def __init__(self, positions: list[_Position | None], layout: tuple[str, ...]) -> None:
        self.positions = positions
        self.layout = layout
        self.times = [j for j, p in enumerate(positions) if p is not None and p.role == "time"]
        self.datetime_at = _first(
            positions, lambda p: p.role == "time" and p.plain_main and p.quantity == "datetime"
        )
        self.date_at = _first(positions, lambda p: p.role == "time" and p.plain_main and p.quantity == "date")
        self.error_at = _first(positions, lambda p: p.role == "error" and p.plain_main)
        self.heads = [j for j, p in enumerate(positions) if p is not None and p.role == "head"]
        self.readings = [j for j, p in enumerate(positions) if p is not None and p.role == "reading"]
        # Per reading position: the date positions its time comes from, in the order the
        # per-record path looks them up (same storage, tariff and subunit first, then any
        # date of the same storage); None for current values (storage 0).
        self.stamp_sources: list[tuple[int, ...] | None] = []
        for j in self.readings:
            p = positions[j]
            assert p is not None
            if p.storage == 0:
                self.stamp_sources.append(None)
                continue
            same = [k for k in self.times if _key(positions[k]) == (p.storage, p.tariff, p.subunit)]
            storage = [k for k in self.times if _storage(positions[k]) == p.storage]
            self.stamp_sources.append(tuple(same + storage))


def _key(p: _Position | None) -> tuple[int, int, int]:
    assert p is not None
    return (p.storage, p.tariff, p.subunit)


def _storage(p: _Position | None) -> int:
    assert p is not None
    return p.storage


def _first(positions: list[_Position | None], test: Callable[[_Position], bool]) -> int | None:
    for j, p in enumerate(positions):
        if p is not None and test(p):
            return j
    return None


_plans: dict[bytes, _Plan | None] = {}


def _make_plan(data: bytes, rows: np.ndarray[Any, Any], first: int, count: int, base: int) -> _Plan | None:
    """The plan of the layout of the telegram whose rows are rows[first : first + count], or
    None when a position needs the per-record path."""
    positions: list[_Position | None] = []
    layout: list[str] = []
    for r in range(first, first + count):
        row = rows[r]
        offset, data_offset = base + int(row["offset"]), base + int(row["data_offset"])
        if int(row["flags"]) & SPECIAL:
            # Manufacturer data and global readout: no value, no date, no status.
            positions.append(None)
            layout.append(f"{data[offset]:02X}")
            continue
        header = _header(
            data[offset:data_offset],
            int(row["dib_length"]),
            int(row["storage"]),
            int(row["tariff"]),
            int(row["subunit"]),
            int(row["function"]),
        )
        coding, length = int(row["coding"]), int(row["data_length"])
        p = _Position(header, coding, length)
        layout.append(header[0] + header[1])
        if coding not in (CODING_NONE, CODING_INT, CODING_REAL, CODING_BCD):
            return None
        if coding == CODING_INT and length >= 8 and not p.signed:
            return None  # an unsigned 64-bit value does not fit the int64 column
        if p.offset_exp != NO_OFFSET or abs(p.exponent) > 22:
            return None  # float64 arithmetic would not match the exact integer one
        reading = p.quantity in READING_QUANTITIES
        if p.quantity in TIME_QUANTITIES:
            if p.kind != KIND_TIMEPOINT or reading:
                return None
            p.role = "time"
        elif p.kind == KIND_TIMEPOINT:
            if reading:
                return None
        elif p.quantity == "error_flags" or p.head:
            if reading:
                return None
            p.role = "error" if p.quantity == "error_flags" else "head"
        elif reading:
            p.role = "reading"
        positions.append(p)
    return _Plan(positions, tuple(layout))


def _numbers(
    p: _Position, rows: _Gather
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.bool_]]] | None:
    """(value as the reading row holds it, valid) of one reading position for every telegram
    of a group, or None when a number is too large to scale exactly in float64. A value
    that is not valid is None in the row, whatever the first array holds."""
    n = len(rows)
    if p.invalid:
        return np.zeros(n), np.zeros(n, dtype=np.bool_)
    has_number = (rows["flags"] & NUMBER) != 0
    if p.coding == CODING_REAL:
        number = rows["real"].astype(np.float64)
    else:
        raw = rows["value"].astype(np.int64)
        if p.coding == CODING_INT and not p.signed:
            raw = np.where(raw < 0, raw + (1 << (8 * p.length)), raw)
        if np.any(np.abs(raw[has_number]) >= _EXACT):
            return None
        number = raw.astype(np.float64)
    if p.kind != KIND_MANUFACTURER:
        if p.exponent > 0:
            number = number * float(10**p.exponent)
        elif p.exponent < 0:
            number = number / float(10**-p.exponent)
    return number, has_number


def _stamps(
    p: _Position, data: np.ndarray[Any, Any], starts: np.ndarray[Any, Any], times: ReadingTimes
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], list[Any] | None]:
    """(the reading time of one date position for every telegram of a group as a
    :class:`ReadingTimes` number, ``NO_MINUTE`` where invalid; the decoded values, or None
    for type F and G dates, whose decoded value is their reading time)."""
    n = len(starts)
    if p.invalid or p.coding not in (CODING_INT, CODING_BCD):
        return np.full(n, NO_MINUTE, dtype=np.int64), [None] * n
    if p.length in (2, 4):
        columns = data[starts[:, None] + np.arange(p.length)]
        return (type_f_minutes(columns) if p.length == 4 else type_g_minutes(columns)), None
    raw = data.tobytes()
    decoded = [decode_timepoint(raw[s : s + p.length]) for s in starts.tolist()]
    stamps = [reading_stamp(v) if isinstance(v, str) else None for v in decoded]
    minutes = [NO_MINUTE if stamp is None else times.number(stamp) for stamp in stamps]
    return np.asarray(minutes, dtype=np.int64), decoded


def _status_numbers(
    p: _Position, raw: bytes, rows: _Gather, starts: np.ndarray[Any, Any]
) -> list[int | None]:
    """The decoded value of a status position for every telegram where it is an integer,
    else None (the per-record reader's value, then the status inputs' test)."""
    column = rows["real"] if p.coding == CODING_REAL else rows["value"]
    flagged = (rows["flags"] & NUMBER) != 0
    if p.kind == KIND_TIMEPOINT:
        numbers, has_numbers = column.tolist(), flagged.tolist()
        return [
            _integer_or_none(_value(p.header, p.coding, raw[start : start + p.length], has_number, number)[0])
            for start, has_number, number in zip(starts.tolist(), has_numbers, numbers, strict=True)
        ]
    # Other kinds read only the number (and the data length): status values repeat, so
    # each distinct one is decoded once and the telegrams take theirs in numpy.
    filler = bytes(p.length)
    found = np.empty(len(flagged), dtype=object)
    for has_number in (True, False):
        telegrams = np.flatnonzero(flagged == has_number)
        if len(telegrams):
            distinct, which = np.unique(column[telegrams], return_inverse=True)
            decoded = [
                _integer_or_none(_value(p.header, p.coding, filler, has_number, number)[0])
                for number in distinct.tolist()
            ]
            found[telegrams] = np.array(decoded, dtype=object)[which]
    return cast(list[int | None], found.tolist())


def _integer_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def layout_groups(
    buffer: np.ndarray[Any, Any],
    apl_offsets: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
    firsts: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
    chosen: np.ndarray[Any, Any],
) -> tuple[npt.NDArray[np.int64], list[int]]:
    """(per telegram of ``chosen`` its layout number, layouts numbered in order of first
    appearance; per layout the place in ``chosen`` of its first telegram).

    Telegram ``t``'s records are ``rows[firsts[t] : firsts[t] + counts[t]]`` (the walker's
    rows and counts); its layout is their header bytes (DIB + VIB, or a special record's
    DIF), one record after the other. Raises :class:`InputError` when a telegram, its rows or
    a header lie outside their arrays."""
    data = (
        np.frombuffer(buffer, dtype=np.uint8) if isinstance(buffer, bytes | bytearray) else np.asarray(buffer)
    )
    bases = _integer_column(apl_offsets, np.int64, "apl_offsets")
    first_rows = _integer_column(firsts, np.int64, "firsts")
    row_counts = _integer_column(counts, np.int32, "counts")
    telegrams = _integer_column(chosen, np.int64, "chosen")
    rows = np.ascontiguousarray(rows)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise InputError("layout groups need a 1-D uint8 buffer")
    if rows.dtype != RECORD_DTYPE or rows.ndim != 1:
        raise InputError("layout groups need the walker's rows")
    if first_rows.shape != bases.shape or row_counts.shape != bases.shape:
        raise InputError("layout groups need a first row and a row count per telegram")
    buffer = np.ascontiguousarray(data)
    group_of = np.empty(len(telegrams), dtype=np.int64)
    heads = np.empty(len(telegrams), dtype=np.int64)
    if not len(telegrams):
        found = 0
    elif _native.BACKEND == "cffi":
        ffi = _native.ffi
        found = _native.lib.mc_layout_groups(
            ffi.from_buffer("uint8_t[]", buffer),
            len(buffer),
            ffi.from_buffer("int64_t[]", bases),
            len(bases),
            ffi.from_buffer("mc_record[]", rows),
            len(rows),
            ffi.from_buffer("int64_t[]", first_rows),
            ffi.from_buffer("int32_t[]", row_counts),
            ffi.from_buffer("int64_t[]", telegrams),
            len(telegrams),
            ffi.from_buffer("int64_t[]", group_of),
            ffi.from_buffer("int64_t[]", heads),
        )
    else:
        from minolcore._reference.layouts import layout_groups_into  # noqa: PLC0415

        found = layout_groups_into(
            buffer.tobytes(), bases, rows, first_rows, row_counts, telegrams, group_of, heads
        )
    if _native.BACKEND == "cffi" and found == _native.lib.MC_LAYOUT_NOMEM:
        raise MemoryError("no memory for the layout groups")
    if found < 0:
        raise InputError("a telegram, its rows or a record header lie outside their arrays")
    return group_of, heads[:found].tolist()


def _integer_column(values: Any, dtype: type[np.signedinteger[Any]], name: str) -> npt.NDArray[Any]:
    """``values`` as a contiguous 1-D array of ``dtype``, or :class:`InputError` where they
    are not integers of its range (an empty sequence is an empty column)."""
    array = np.asarray(values)
    if not array.size:
        return np.zeros(0, dtype=dtype)
    limits = np.iinfo(dtype)
    if (
        array.ndim != 1
        or array.dtype.kind not in "iu"
        or int(array.min()) < limits.min
        or int(array.max()) > limits.max
    ):
        raise InputError(f"layout groups: {name} must be a 1-D column of {np.dtype(dtype).name} integers")
    return np.ascontiguousarray(array, dtype=dtype)


def _layout_key(data: bytes, rows: np.ndarray[Any, Any], base: int, first: int, count: int) -> bytes:
    """A telegram's layout key (see :func:`layout_groups`) from its application layer at
    ``base`` in ``data`` and its rows."""
    own = rows[first : first + count]
    spans = zip(own["offset"].tolist(), own["data_offset"].tolist(), strict=True)
    return b"".join([data[base + start : base + end] for start, end in spans])


def read_by_layout(
    buffer: np.ndarray[Any, Any],
    apl_offsets: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
    firsts: Sequence[int] | np.ndarray[Any, Any],
    counts: Sequence[int] | np.ndarray[Any, Any],
    chosen: Sequence[int] | np.ndarray[Any, Any],
    received_at: Sequence[float],
    minute_of: Callable[[str], str],
    times: ReadingTimes,
) -> LayoutReads:
    """What the per-record path reads from the telegram positions of ``chosen`` (walked
    without error) whose layout has a plan: per position its model time, status inputs and
    layout, and the reading rows of them all as columns (telegrams named by position).
    ``firsts``, ``counts``: per position its first row and row count in ``rows``;
    ``received_at``: first reception time per position in s; ``minute_of``:
    "YYYY-MM-DDTHH:MM" of a date-time value."""
    if not len(chosen):
        return [], []
    data = buffer.tobytes()
    # Checked by layout_groups (integers of their range), not cast.
    first_rows, row_counts, positions = np.asarray(firsts), np.asarray(counts), np.asarray(chosen)
    group_of, heads = layout_groups(buffer, apl_offsets, rows, first_rows, row_counts, positions)
    # Each layout's positions in their order: one stable sort by layout number.
    by_layout = positions[np.argsort(group_of, kind="stable")].tolist()
    ends = np.cumsum(np.bincount(group_of, minlength=len(heads))).tolist()
    out: list[LayoutRead] = []
    columns: list[ReadingColumn] = []
    start = 0
    for end in ends:
        members = by_layout[start:end]
        start = end
        head = members[0]
        first, count, base = int(first_rows[head]), int(row_counts[head]), int(apl_offsets[head])
        key = _layout_key(data, rows, base, first, count)
        if key in _plans:
            plan = _plans[key]
        else:
            plan = _make_plan(data, rows, first, count, base)
            if len(_plans) >= _PLAN_LIMIT:
                _plans.clear()
            _plans[key] = plan
        if plan is not None:
            _read_group(
                plan,
                members,
                buffer,
                data,
                apl_offsets,
                rows,
                first_rows,
                received_at,
                minute_of,
                out,
                columns,
                times,
            )
    return out, columns


class _Gather:
    """The rows ``index`` of a record array, read field by field: only the fields asked for
    are gathered (a whole record is 80 bytes)."""

    __slots__ = ("index", "rows")

    def __init__(self, rows: np.ndarray[Any, Any], index: np.ndarray[Any, Any]) -> None:
        self.rows = rows
        self.index = index

    def __getitem__(self, name: str) -> np.ndarray[Any, Any]:
        found: np.ndarray[Any, Any] = self.rows[name][self.index]
        return found

    def __len__(self) -> int:
        return len(self.index)


def _coalesce(first: list[Any], second: list[Any]) -> list[Any]:
    return [a if a is not None else b for a, b in zip(first, second, strict=True)]


def _read_group(
    plan: _Plan,
    members: list[int],
    buffer: np.ndarray[Any, Any],
    data: bytes,
    apl_offsets: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
    firsts: np.ndarray[Any, np.dtype[np.int64]],
    received_at: Sequence[float],
    minute_of: Callable[[str], str],
    out: list[LayoutRead],
    columns: list[ReadingColumn],
    times: ReadingTimes,
) -> None:
    """Read every telegram of one layout group, column by column: per reading position its
    column of rows into ``columns``, the rest of its telegrams into ``out``."""
    telegrams = np.asarray(members, dtype=np.int64)
    first_rows = firsts[telegrams]
    bases = apl_offsets[telegrams]
    positions: list[Any] = plan.positions
    count = len(members)

    def column(j: int) -> Any:
        return _Gather(rows, first_rows + j)

    def data_starts(selected: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        starts: np.ndarray[Any, Any] = bases + selected["data_offset"].astype(np.int64)
        return starts

    values: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
    for j in plan.readings:
        found = _numbers(positions[j], column(j))
        if found is None:
            return  # left to the per-record path
        values.append(found)
    decoded: dict[int, list[Any] | None] = {}
    stamps: dict[int, np.ndarray[Any, np.dtype[np.int64]]] = {}
    for j in plan.times:
        selected = column(j)
        stamps[j], decoded[j] = _stamps(positions[j], buffer, data_starts(selected), times)
    # The time of the current values: the first current date record that is valid, else
    # the reception time (formatted only where needed).
    current = np.full(count, NO_MINUTE, dtype=np.int64)
    for j in plan.times:
        if positions[j].current:
            current = np.where(current == NO_MINUTE, stamps[j], current)
    for t in np.flatnonzero(current == NO_MINUTE).tolist():
        current[t] = times.number(iso_minute(received_at[members[t]]))
    # Per reading position, its column of rows (NO_MINUTE: a historic value without a valid
    # date, which has no row).
    for j, (numbers, valid), sources in zip(plan.readings, values, plan.stamp_sources, strict=True):
        p = positions[j]
        if sources is None:
            when = current
        else:
            when = np.full(count, NO_MINUTE, dtype=np.int64)
            for k in sources:
                when = np.where(when == NO_MINUTE, stamps[k], when)
        columns.append(
            ReadingColumn(
                telegrams,
                j,
                (p.quantity, p.storage, p.tariff, p.subunit, p.function, p.unit),
                when,
                numbers,
                valid,
            )
        )
    # The model's time: the main date-time record, else the main date, else the reception,
    # as reading time numbers (most are never needed as text: only status events show it).
    event = np.full(count, NO_MINUTE, dtype=np.int64)
    for source in (plan.datetime_at, plan.date_at):
        if source is None:
            continue
        texts = decoded[source]
        if texts is None:
            # Type F and G dates read as "YYYY-MM-DD[THH:MM]": their minute is their stamp.
            moments = stamps[source]
        else:
            moments = np.fromiter(
                (
                    times.number(minute_of(v))
                    if isinstance(v, str) and reading_stamp(v) is not None
                    else NO_MINUTE
                    for v in texts
                ),
                dtype=np.int64,
                count=count,
            )
        event = np.where(event == NO_MINUTE, moments, event)
    for t in np.flatnonzero(event == NO_MINUTE).tolist():
        event[t] = times.number(iso_minute(received_at[members[t]]))
    errors: list[int | None] = [None] * count
    if plan.error_at is not None:
        selected = column(plan.error_at)
        errors = _status_numbers(positions[plan.error_at], data, selected, data_starts(selected))
    heads: list[int | None] = [None] * count
    for j in plan.heads:
        selected = column(j)
        heads = _coalesce(heads, _status_numbers(positions[j], data, selected, data_starts(selected)))
    out.append(LayoutRead(members, event.tolist(), errors, heads, plan.layout))
