"""Reference twin of ``mc_key_groups``: rows numbered by their keys' bytes, with per group
its first row and the smallest text of its rows."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["GROUPS_RANGE", "key_groups_into"]

# mc_key_groups' result when the keys do not fit their buffer or a text lies outside its array.
GROUPS_RANGE = -1


def key_groups_into(
    keys: bytes,
    n_rows: int,
    width: int,
    order: npt.NDArray[np.int64] | None,
    text_of: npt.NDArray[np.int64] | None,
    texts: bytes,
    text_starts: npt.NDArray[np.int64],
    text_ends: npt.NDArray[np.int64],
    group_of: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    smallest: npt.NDArray[np.int64],
) -> int:
    """Fill ``group_of``, ``first`` and (with ``text_of``) ``smallest`` exactly as
    ``mc_key_groups`` does; returns the number of groups, or ``GROUPS_RANGE`` where it does
    (the outputs then unspecified)."""
    if n_rows == 0:
        return 0
    if width and n_rows > len(keys) // width:
        return GROUPS_RANGE
    entries: list[bytes] = []
    of_row: list[int] = []
    if text_of is not None:
        bounds = list(zip(text_starts.tolist(), text_ends.tolist(), strict=True))
        if any(not 0 <= start <= end <= len(texts) for start, end in bounds):
            return GROUPS_RANGE
        of_row = text_of.tolist()
        if any(not 0 <= t < len(bounds) for t in of_row):
            return GROUPS_RANGE
        entries = [texts[start:end] for start, end in bounds]
    ranks = order.tolist() if order is not None else [0] * n_rows
    numbers: dict[bytes, int] = {}
    firsts: list[int] = []
    bests: list[int] = []  # per group the row of its smallest text
    for i in range(n_rows):
        key = keys[i * width : (i + 1) * width]
        g = numbers.get(key)
        if g is None:
            g = numbers[key] = len(numbers)
            firsts.append(i)
            bests.append(i)
        else:
            if ranks[i] < ranks[firsts[g]]:
                firsts[g] = i
            if of_row:
                # Smallest text, then earliest by order, then by row (rows come in order).
                mine, best = entries[of_row[i]], entries[of_row[bests[g]]]
                if (mine, ranks[i]) < (best, ranks[bests[g]]):
                    bests[g] = i
        group_of[i] = g
    first[: len(firsts)] = firsts
    if of_row:
        smallest[: len(bests)] = [of_row[row] for row in bests]
    return len(numbers)
