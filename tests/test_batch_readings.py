"""merge_reading_rows keeps what the store keeps of a batch's rows in batch order: per
reading key the first row, with the smallest uplink key of them all."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minolcore._batch_readings import UplinkPlaces, merge_reading_rows
from minolcore._layout_plans import ReadingColumn, ReadingTimes, telegram_rows
from minolcore.wmbus.dates import NO_MINUTE

# (device uid, uplink key, building id, unit id) of an uplink with column rows.
UplinkPlace = tuple[str, str, str | None, str | None]

DEVICES = ("wmbus:A", "wmbus:B")
KEYS = ("0a", "0b", "1f", "ff")
MINUTES = (NO_MINUTE, 202401010000, 202402012359)
TEXTS = ("2024-01-01T00:00", "2024-02-01T23:59", "2024-03-01T00:00:30")
FIELDS = (
    ("volume", 0, 0, 0, "instantaneous", "m3"),
    ("volume", 1, 0, 0, "instantaneous", "m3"),
    ("volume", 1, 0, 0, "instantaneous", "l"),
    ("energy", 2, 1, 0, "maximum", "kWh"),
)
PLACES = st.tuples(
    st.sampled_from(DEVICES),
    st.sampled_from(KEYS),
    st.sampled_from((None, "B1")),
    st.sampled_from((None, "U1")),
)
VALUES = st.floats(allow_nan=False) | st.just(float("nan"))


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[ReadingColumn], list[UplinkPlace | None], list[Any], list[int]]:
    count = draw(st.integers(1, 8))
    places: list[UplinkPlace | None] = [draw(st.none() | PLACES) for _ in range(count)]
    placed = [index for index, place in enumerate(places) if place is not None]
    # Each layout group: some placed uplinks, and per record position one column.
    columns: list[ReadingColumn] = []
    groups = draw(st.lists(st.integers(0, 2), min_size=len(placed), max_size=len(placed)))
    for group in set(groups):
        telegrams = np.array([u for u, g in zip(placed, groups, strict=True) if g == group], dtype=np.int64)
        size = len(telegrams)
        for record in range(draw(st.integers(0, 3))):
            columns.append(
                ReadingColumn(
                    telegrams,
                    record,
                    draw(st.sampled_from(FIELDS)),
                    np.array(
                        draw(st.lists(st.sampled_from(MINUTES), min_size=size, max_size=size)), dtype=np.int64
                    ),
                    np.array(draw(st.lists(VALUES, min_size=size, max_size=size)), dtype=np.float64),
                    np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=np.bool_),
                )
            )
    appended: list[Any] = []
    uplinks: list[int] = []
    for index, place in enumerate(places):
        if place is not None:
            continue
        for _ in range(draw(st.integers(0, 3))):
            quantity, storage, tariff, subunit, function, unit = draw(st.sampled_from(FIELDS))
            valid = draw(st.booleans())
            appended.append(
                (
                    draw(st.sampled_from(DEVICES)),
                    draw(st.sampled_from(TEXTS)),
                    quantity,
                    storage,
                    tariff,
                    subunit,
                    function,
                    draw(VALUES) if valid else None,
                    unit,
                    valid,
                    draw(st.sampled_from((None, "B1"))),
                    None,
                    draw(st.sampled_from(KEYS)),
                )
            )
            uplinks.append(index)
    return columns, places, appended, uplinks


def merged_in_batch_order(
    columns: list[ReadingColumn],
    times: ReadingTimes,
    places: list[UplinkPlace | None],
    appended: list[Any],
    uplinks: list[int],
) -> tuple[list[Any], int]:
    """Every row of the batch in batch order (uplink by uplink), merged as the store merges
    rows one by one; and how many rows the columns gave."""
    by_telegram = telegram_rows(columns, times)
    rows: list[Any] = []
    read = 0
    for index, place in enumerate(places):
        if place is not None:
            device, key, building, unit_id = place
            found = by_telegram.get(index, [])
            read += len(found)
            rows.extend((device, *row, building, unit_id, key) for row in found)
        else:
            rows.extend(row for row, uplink in zip(appended, uplinks, strict=True) if uplink == index)
    merged: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        held = merged.get(row[:7])
        if held is None:
            merged[row[:7]] = row
        elif row[12] < held[12]:
            merged[row[:7]] = (*held[:12], row[12])
    return list(merged.values()), read


@given(batches())
def test_merged_rows_are_the_batch_order_merge(
    batch: tuple[list[ReadingColumn], list[UplinkPlace | None], list[Any], list[int]],
) -> None:
    columns, places, appended, uplinks = batch
    times = ReadingTimes()
    expected_rows, expected_read = merged_in_batch_order(columns, times, places, appended, uplinks)
    block, read = merge_reading_rows(columns, times, as_columns(places), appended, uplinks)
    rows = block.rows()
    assert read == expected_read
    assert sorted(map(repr, rows)) == sorted(map(repr, map(as_stored, expected_rows)))
    assert len({row[:7] for row in rows}) == len(rows)


def as_columns(places: list[UplinkPlace | None]) -> UplinkPlaces:
    """The places as merge_reading_rows takes them: an uplink without one unplaced."""
    uplinks = UplinkPlaces.unplaced(len(places))
    for index, place in enumerate(places):
        if place is not None:
            uplinks.device_uids[index], uplinks.keys[index] = place[:2]
            uplinks.places[index] = place[2:]
    return uplinks


def as_stored(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row as the block gives it: the value a float (or None), valid 1 or 0, which SQLite
    stores alike."""
    value = None if row[7] is None else float(row[7])
    return (*row[:7], value, row[8], int(row[9]), *row[10:])


def test_reading_times_number_equal_texts_equally() -> None:
    times = ReadingTimes()
    assert times.number("2024-01-31T23:50") == 202401312350
    assert times.text(202401312350) == "2024-01-31T23:50"
    other = times.number("2024-01-31T23:50:07")
    assert other >= 10**12 and times.text(other) == "2024-01-31T23:50:07"
    assert times.number("2024-01-31T23:50:07") == other
    # Not ASCII digits: a text of its own, never a minute number.
    arabic = "٢٠٢٤-01-31T23:50"
    assert times.text(times.number(arabic)) == arabic
