"""The reading rows of one pipeline batch, one per reading key, as the store keeps them.

Of all rows with one reading key (device, time, quantity, storage, tariff, subunit,
function) the store keeps the first in batch order, with the smallest uplink key of them
all (see :mod:`minolcore.store.sqlite`). A batch repeats most keys many times: every
telegram repeats its meter's due-date and month-end values. The rows the layout plans read
stay columns (:class:`~minolcore._layout_plans.ReadingColumn`) up to here, and
:func:`merge_reading_rows` settles the repeats of the whole batch, together with the rows
the other paths appended, in one hash pass of the C core (:mod:`minolcore._key_groups`)
that compares the uplink keys as it goes: only the rows kept are sorted. What it keeps stays columns too, a
:class:`~minolcore.store.base.ReadingBlock`: numbers into tables of device uids, reading
times, fields, places and uplink keys, no Python object per row, which the store binds
from C.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from minolcore._key_groups import key_groups, ordered_texts
from minolcore._layout_plans import ReadingColumn, ReadingTimes
from minolcore.store._readings import EMPTY
from minolcore.store.base import ReadingBlock, ReadingValues
from minolcore.wmbus.dates import NO_MINUTE

__all__ = ["UplinkPlaces", "merge_reading_rows"]


class UplinkPlaces(NamedTuple):
    """Per uplink index of a batch the fields of its column rows that the reading columns do
    not hold, as columns: its device uid, uplink key and (building id, unit id). An uplink
    without column rows keeps those of :meth:`unplaced` (never read)."""

    device_uids: list[str]
    keys: list[str]
    places: list[tuple[str | None, str | None]]

    @classmethod
    def unplaced(cls, count: int) -> UplinkPlaces:
        """``count`` uplinks without column rows: "", "" and (None, None) each."""
        return cls([""] * count, [""] * count, [(None, None)] * count)


def _ids() -> defaultdict[Any, int]:
    """A table that numbers each new key it is asked for: 0, 1, 2, ..."""
    return defaultdict(itertools.count().__next__)


def merge_reading_rows(
    columns: Sequence[ReadingColumn],
    times: ReadingTimes,
    uplinks: UplinkPlaces,
    appended: Sequence[ReadingValues],
    appended_uplinks: Sequence[int],
) -> tuple[ReadingBlock, int]:
    """(one row per reading key, as the store keeps the batch's rows, in a block; how many
    rows the columns give, i.e. their values with a reading time).

    ``columns`` name their telegrams by uplink index (the uplink's place in the batch) and
    their reading times by ``times``' numbers; ``uplinks`` gives per uplink index the
    device, key, building and unit of its column rows. ``appended``: the rows the other
    paths built one by one, in batch order, with ``appended_uplinks`` their uplink indexes
    (never decreasing). An uplink has column rows or appended rows, not both; within an
    uplink, rows count in record order."""
    if not appended and not columns:
        return EMPTY, 0
    appended_at_uplink = np.asarray(appended_uplinks, dtype=np.int64)
    if len(appended_at_uplink) != len(appended) or np.any(np.diff(appended_at_uplink) < 0):
        raise ValueError("appended rows must come with their uplink indexes, in batch order")
    uids, keys, places = uplinks
    if not len(uids) == len(keys) == len(places):
        raise ValueError("every uplink needs a device, a key and a place")
    device_ids = _ids()
    field_ids = _ids()
    uplink_device = np.fromiter(map(device_ids.__getitem__, uids), dtype=np.int64, count=len(uids))
    # The uplink keys, one entry per uplink and then one per appended row: only compared
    # (in C), so neither made distinct nor sorted.
    uplink_keys = [*keys, *(row[12] for row in appended)]

    # Every row of the batch as a candidate: the column rows first, then the appended
    # ones. Per candidate its uplink and record (its place in batch order), its reading
    # time and field numbers (with the device, its reading key), and its source: the
    # column it came from, or -1 for an appended row.
    uplink_parts: list[np.ndarray[Any, Any]] = []
    record_parts: list[np.ndarray[Any, Any]] = []
    stamp_parts: list[np.ndarray[Any, Any]] = []
    field_parts: list[np.ndarray[Any, Any]] = []
    source_parts: list[np.ndarray[Any, Any]] = []
    for number, column in enumerate(columns):
        size = len(column.stamps)
        uplink_parts.append(column.telegrams)
        record_parts.append(np.full(size, column.record, dtype=np.int64))
        stamp_parts.append(column.stamps)
        field_parts.append(np.full(size, field_ids[column.fields[:5]], dtype=np.int64))
        source_parts.append(np.full(size, number, dtype=np.int64))
    from_columns = sum(map(len, stamp_parts))
    if appended:
        uplink_parts.append(appended_at_uplink)
        # Within its uplink an appended row counts by its place among the uplink's rows.
        starts = np.flatnonzero(np.diff(appended_at_uplink, prepend=-1))
        sizes = np.diff(np.append(starts, len(appended)))
        record_parts.append(np.arange(len(appended)) - np.repeat(starts, sizes))
        stamp_parts.append(
            np.fromiter((times.number(row[1]) for row in appended), dtype=np.int64, count=len(appended))
        )
        field_parts.append(
            np.fromiter((field_ids[row[2:7]] for row in appended), dtype=np.int64, count=len(appended))
        )
        source_parts.append(np.full(len(appended), -1, dtype=np.int64))
    # The candidates with a reading time (a historic value without a valid date has no row).
    kept = np.flatnonzero(np.concatenate(stamp_parts) != NO_MINUTE)
    read = int(np.count_nonzero(kept < from_columns))
    if not len(kept):
        return EMPTY, read
    uplink, record, stamp, field, source = (
        np.concatenate(parts)[kept]
        for parts in (uplink_parts, record_parts, stamp_parts, field_parts, source_parts)
    )
    is_column = source >= 0
    device = np.where(is_column, uplink_device[uplink], 0)
    # Per candidate its uplink key's entry: its uplink's, or an appended row's own.
    appended_at = kept - from_columns  # meaningful where not is_column
    key = np.where(is_column, uplink, len(keys) + appended_at)
    if appended:
        on_appended = ~is_column
        row_devices = np.fromiter(
            (device_ids[row[0]] for row in appended), dtype=np.int64, count=len(appended)
        )
        device[on_appended] = row_devices[appended_at[on_appended]]

    # One group per reading key: its first row in batch order wins, with the smallest
    # uplink key of the group.
    groups = key_groups(
        np.stack([device, stamp, field], axis=1),
        order=_batch_order(uplink, record),
        texts=ordered_texts(uplink_keys),
        text_of=key,
    )
    winners, smallest = groups.first, cast(npt.NDArray[np.int64], groups.smallest)
    # The column rows first, then the appended ones, each in the order of their keys.
    by_key = np.lexsort((field[winners], stamp[winners], device[winners]))
    from_column = is_column[winners[by_key]]
    in_block = np.concatenate([by_key[from_column], by_key[~from_column]])
    chosen = winners[in_block]
    rows = _Chosen(
        device=device[chosen],
        stamp=stamp[chosen],
        uplink_key=smallest[in_block],
        column=source[chosen],
        uplink=uplink[chosen],
        at=kept[chosen],
    )
    appended_rows = [appended[at] for at in appended_at[chosen[~is_column[chosen]]].tolist()]
    return _block(columns, places, times, rows, appended_rows, list(device_ids), uplink_keys), read


def _batch_order(uplink: npt.NDArray[np.int64], record: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per candidate its place in batch order as one number: by uplink, then record."""
    order = np.empty(len(uplink), dtype=np.int64)
    if not len(uplink):
        return order
    # Python integers: the spans of numbers far apart do not fit in 64 bits.
    first_uplink, first_record = int(uplink.min()), int(record.min())
    span = int(record.max()) - first_record + 1
    if (int(uplink.max()) - first_uplink + 1) * span < 2**62:
        np.multiply(uplink - first_uplink, span, out=order)
        order += record - first_record
        return order
    # Numbers too wide to combine: their places in a sort.
    order[np.lexsort((record, uplink))] = np.arange(len(uplink))
    return order


class _Chosen(NamedTuple):
    """Per row kept: its device number, reading time number, the entry of its smallest
    uplink key; for a column row its column, uplink index and place among all column rows
    (for an appended row -1 and what it was as a candidate). Column rows come first."""

    device: np.ndarray[Any, np.dtype[np.int64]]
    stamp: np.ndarray[Any, np.dtype[np.int64]]
    uplink_key: np.ndarray[Any, np.dtype[np.int64]]
    column: np.ndarray[Any, np.dtype[np.int64]]
    uplink: np.ndarray[Any, np.dtype[np.int64]]
    at: np.ndarray[Any, np.dtype[np.int64]]


def _block(
    columns: Sequence[ReadingColumn],
    uplink_places: Sequence[tuple[str | None, str | None]],
    times: ReadingTimes,
    rows: _Chosen,
    appended: list[ReadingValues],
    device_uids: list[str],
    uplink_keys: list[str],
) -> ReadingBlock:
    """The block of the rows kept: the column rows of ``rows``, then the ``appended`` rows;
    ``uplink_places``: per uplink index its (building, unit)."""
    on_column = slice(0, len(rows.device) - len(appended))
    distinct_stamps, time = np.unique(rows.stamp, return_inverse=True)
    # Tables of fields (with their unit) and of places: a number per entry, not per row.
    field_ids = _ids()
    column_field = _numbers((field_ids[column.fields] for column in columns), len(columns))
    appended_field = _numbers((field_ids[(*row[2:7], row[8])] for row in appended), len(appended))
    place_ids = _ids()
    uplink_place = _numbers(map(place_ids.__getitem__, uplink_places), len(uplink_places))
    appended_place = _numbers((place_ids[(row[10], row[11])] for row in appended), len(appended))
    at = rows.at[on_column]
    values = np.concatenate([c.values for c in columns])[at] if columns else np.zeros(0)
    valid = np.concatenate([c.valid for c in columns])[at] if columns else np.zeros(0, dtype=np.bool_)
    appended_values = [row[7] for row in appended]
    return ReadingBlock(
        device_uids=device_uids,
        times=times.texts(distinct_stamps.tolist()),
        fields=list(field_ids),
        places=list(place_ids),
        uplink_keys=uplink_keys,
        device=rows.device,
        time=time.astype(np.int64).reshape(-1),
        field=np.concatenate([column_field[rows.column[on_column]], appended_field]),
        place=np.concatenate([uplink_place[rows.uplink[on_column]], appended_place]),
        uplink=rows.uplink_key,
        # A column row's value is None where it is not valid.
        value=np.concatenate(
            [values, np.array([math.nan if v is None else v for v in appended_values], dtype=np.float64)]
        ),
        has_value=np.concatenate([valid, np.array([v is not None for v in appended_values], dtype=np.bool_)]),
        valid=np.concatenate([valid.view(np.uint8), np.array([row[9] for row in appended], dtype=np.uint8)]),
    )


def _numbers(numbers: Iterable[int], count: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.fromiter(numbers, dtype=np.int64, count=count)
