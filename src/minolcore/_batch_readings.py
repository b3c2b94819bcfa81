"""The reading rows of one pipeline batch, one per reading key, as the store keeps them.

Of all rows with one reading key (device, time, quantity, storage, tariff, subunit,
function) the store keeps the first in batch order, with the smallest uplink key of them
all (see :mod:`minolcore.store.sqlite`). A batch repeats most keys many times: every
telegram repeats its meter's due-date and month-end values. The rows the layout plans read
stay columns (:class:`~minolcore._layout_plans.ReadingColumn`) up to here, and
:func:`merge_reading_rows` settles the repeats of the whole batch with one numpy sort,
together with the rows the other paths appended, before any row tuple is built.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from minolcore._layout_plans import ReadingColumn, ReadingTimes
from minolcore.store.base import ReadingValues
from minolcore.wmbus.dates import NO_MINUTE

__all__ = ["UplinkPlace", "merge_reading_rows"]

# (device uid, uplink key, building id, unit id) of a wireless M-Bus uplink the columnar
# path read: the fields of its rows that the reading columns do not hold.
UplinkPlace = tuple[str, str, str | None, str | None]


def _ids() -> defaultdict[Any, int]:
    """A table that numbers each new key it is asked for: 0, 1, 2, ..."""
    return defaultdict(itertools.count().__next__)


def merge_reading_rows(
    columns: Sequence[ReadingColumn],
    times: ReadingTimes,
    places: Sequence[UplinkPlace | None],
    appended: Sequence[ReadingValues],
    appended_uplinks: Sequence[int],
) -> tuple[list[ReadingValues], int]:
    """(one row per reading key, as the store keeps the batch's rows; how many rows the
    columns give, i.e. their values with a reading time).

    ``columns`` name their telegrams by uplink index (the uplink's place in the batch) and
    their reading times by ``times``' numbers; ``places`` gives per uplink index the
    device, key, building and unit of its column rows. ``appended``: the rows the other
    paths built one by one, in batch order, with ``appended_uplinks`` their uplink indexes
    (never decreasing). An uplink has column rows or appended rows, not both; within an
    uplink, rows count in record order."""
    if not appended and not columns:
        return [], 0
    appended_at_uplink = np.asarray(appended_uplinks, dtype=np.int64)
    if len(appended_at_uplink) != len(appended) or np.any(np.diff(appended_at_uplink) < 0):
        raise ValueError("appended rows must come with their uplink indexes, in batch order")
    device_ids = _ids()
    field_ids = _ids()
    key_ids = _ids()
    # Uplinks without a place have no column rows: their "" is never read.
    uplink_device = np.fromiter(
        map(device_ids.__getitem__, ["" if p is None else p[0] for p in places]),
        dtype=np.int64,
        count=len(places),
    )
    uplink_key = np.fromiter(
        map(key_ids.__getitem__, ["" if p is None else p[1] for p in places]),
        dtype=np.int64,
        count=len(places),
    )
    appended_keys = [key_ids[row[12]] for row in appended]

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
        return [], read
    uplink, record, stamp, field, source = (
        np.concatenate(parts)[kept]
        for parts in (uplink_parts, record_parts, stamp_parts, field_parts, source_parts)
    )
    is_column = source >= 0
    device = np.where(is_column, uplink_device[uplink], 0)
    key = np.where(is_column, uplink_key[uplink], 0)
    appended_at = kept - from_columns  # meaningful where not is_column
    if appended:
        on_appended = ~is_column
        row_devices = np.fromiter(
            (device_ids[row[0]] for row in appended), dtype=np.int64, count=len(appended)
        )
        device[on_appended] = row_devices[appended_at[on_appended]]
        key[on_appended] = np.asarray(appended_keys, dtype=np.int64)[appended_at[on_appended]]
    # Key numbers in the order of the keys: the smallest rank is the smallest key.
    ranked = sorted(key_ids)
    key_rank = np.empty(len(ranked), dtype=np.int64)
    key_rank[[key_ids[text] for text in ranked]] = np.arange(len(ranked))
    rank = key_rank[key]

    order = np.lexsort((record, uplink, field, stamp, device))
    # Runs of one reading key, each in batch order: its first row wins, with the smallest
    # uplink key of the run.
    same = np.ones(len(order), dtype=np.bool_)
    same[0] = False
    for part in (device[order], stamp[order], field[order]):
        same[1:] &= part[1:] == part[:-1]
    starts = np.flatnonzero(~same)
    winners = order[starts]
    smallest_key = _objects(ranked)[np.minimum.reduceat(rank[order], starts)]

    out: list[ReadingValues] = []
    from_column = is_column[winners]
    chosen = winners[from_column]
    if len(chosen):
        out.extend(
            _column_rows(
                columns,
                places,
                uplink[chosen],
                source[chosen],
                kept[chosen],
                stamp[chosen],
                times,
                np.concatenate([c.values for c in columns]),
                np.concatenate([c.valid for c in columns]),
                smallest_key[from_column],
            )
        )
    for at, least in zip(
        appended_at[winners[~from_column]].tolist(), smallest_key[~from_column], strict=True
    ):
        row = appended[at]
        out.append(row if row[12] == least else (*row[:12], least))
    return out, read


def _column_rows(
    columns: Sequence[ReadingColumn],
    places: Sequence[UplinkPlace | None],
    uplink: np.ndarray[Any, Any],
    column: np.ndarray[Any, Any],
    at: np.ndarray[Any, Any],
    stamp: np.ndarray[Any, Any],
    times: ReadingTimes,
    values: np.ndarray[Any, np.dtype[np.float64]],
    valid: np.ndarray[Any, np.dtype[np.bool_]],
    keys: np.ndarray[Any, Any],
) -> list[ReadingValues]:
    """The row tuples of the chosen column rows, built column by column."""
    chosen_valid = valid[at]
    chosen_values: list[float | None] = values[at].tolist()
    if not chosen_valid.all():
        for index in np.flatnonzero(~chosen_valid).tolist():
            chosen_values[index] = None
    # Transposed from the chosen rows' (device, key, building, unit) and field tuples.
    device_uid, _, building, unit_id = zip(*map(places.__getitem__, uplink.tolist()), strict=True)
    fields = [c.fields for c in columns]
    quantity, storage, tariff, subunit, function, unit = zip(
        *map(fields.__getitem__, column.tolist()), strict=True
    )
    rows: list[ReadingValues] = list(
        zip(
            device_uid,
            _texts(stamp, times),
            quantity,
            storage,
            tariff,
            subunit,
            function,
            chosen_values,
            unit,
            chosen_valid.view(np.uint8).tolist(),  # 1 or 0: see ReadingValues
            building,
            unit_id,
            keys.tolist(),
            strict=True,
        )
    )
    return rows


def _texts(stamps: np.ndarray[Any, Any], times: ReadingTimes) -> list[str]:
    """The texts of reading time numbers. Each is made again, not looked up once per
    distinct number: most current values have a minute of their own, and the date and
    clock parts of a text are cached (a third less time than with ``np.unique``)."""
    return times.texts(stamps.tolist())


def _objects(items: Sequence[Any]) -> np.ndarray[Any, Any]:
    """A one-dimensional object array of ``items`` (scalars, never split into sequences)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array
