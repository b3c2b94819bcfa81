"""Reference twin of ``mc_layout_groups``: telegrams numbered by their records' header bytes."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["LAYOUT_RANGE", "layout_groups_into"]

# mc_layout_groups' result when a telegram, its rows or a header lie outside their arrays.
LAYOUT_RANGE = -1


def layout_groups_into(
    buffer: bytes,
    apl_offsets: npt.NDArray[np.int64],
    rows: np.ndarray[Any, Any],
    firsts: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int32],
    chosen: npt.NDArray[np.int64],
    group_of: npt.NDArray[np.int64],
    heads: npt.NDArray[np.int64],
) -> int:
    """Fill ``group_of`` and ``heads`` exactly as ``mc_layout_groups`` does; returns the
    number of layouts, or ``LAYOUT_RANGE`` where it does (the outputs then unspecified)."""
    bases, starts_of, ends_of = apl_offsets.tolist(), rows["offset"].tolist(), rows["data_offset"].tolist()
    first_rows, row_counts = firsts.tolist(), counts.tolist()
    numbers: dict[bytes, int] = {}
    for i, telegram in enumerate(chosen.tolist()):
        if not 0 <= telegram < len(bases):
            return LAYOUT_RANGE
        first, count, base = first_rows[telegram], row_counts[telegram], bases[telegram]
        if first < 0 or count < 0 or first + count > len(starts_of):
            return LAYOUT_RANGE
        headers = []
        for row in range(first, first + count):
            start, end = base + starts_of[row], base + ends_of[row]
            if not 0 <= start <= end <= len(buffer):
                return LAYOUT_RANGE
            headers.append(buffer[start:end])
        key = b"".join(headers)
        number = numbers.get(key)
        if number is None:
            number = numbers[key] = len(numbers)
            heads[number] = i
        group_of[i] = number
    return len(numbers)
