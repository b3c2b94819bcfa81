"""Key groups in the C core (``mc_key_groups``) against its pure-Python reference, on the
candidate rows of one pipeline batch as :func:`~minolcore._batch_readings.merge_reading_rows`
hands them over: about 24,000 rows of about 9,000 reading keys (device, time, fields), each
with its place in batch order and its uplink's content key. Rates are stored in
``extra_info``. Run:

    python -m pytest benchmarks/bench_key_groups.py --benchmark-only \
        --benchmark-columns=median,ops
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from benchmarks.conftest import record_rate
from minolcore import _native
from minolcore._key_groups import encoded_texts, key_groups
from minolcore._reference.groups import key_groups_into

ROWS = 24_000
UPLINKS = 10_000
REFERENCE_ROWS = 2_000  # the pure-Python reference is timed on a slice of the rows

_rng = np.random.default_rng(14)
# Every uplink gives a few rows; about a third of the keys repeat (due-date and month-end
# values that every telegram of a meter repeats).
_UPLINK = np.sort(_rng.integers(0, UPLINKS, ROWS))
_DEVICE = _UPLINK % 540
_STAMP = np.where(_rng.random(ROWS) < 0.6, 202402010000 + _UPLINK, 202401310000)
_FIELD = _rng.integers(0, 4, ROWS)
KEYS = np.stack([_DEVICE, _STAMP, _FIELD], axis=1).astype(np.int64)
ORDER = _UPLINK * 64 + _FIELD
TEXTS = encoded_texts(
    [hashlib.blake2b(bytes(str(u), "ascii"), digest_size=16).hexdigest() for u in range(UPLINKS)]
)
TEXT_OF = _UPLINK.astype(np.int64)


def test_key_groups_c(benchmark: Any) -> None:
    groups = benchmark(key_groups, KEYS, ORDER, TEXTS, TEXT_OF)
    assert 0 < len(groups.first) < ROWS
    benchmark.extra_info["backend"] = _native.BACKEND
    benchmark.extra_info["groups"] = len(groups.first)
    record_rate(benchmark, "rows_per_s", ROWS)


def test_key_groups_reference(benchmark: Any) -> None:
    assert TEXTS is not None
    keys = KEYS[:REFERENCE_ROWS].tobytes()
    order, text_of = ORDER[:REFERENCE_ROWS], TEXT_OF[:REFERENCE_ROWS]

    def run() -> int:
        outputs = [np.empty(REFERENCE_ROWS, dtype=np.int64) for _ in range(3)]
        return key_groups_into(
            keys,
            REFERENCE_ROWS,
            KEYS.shape[1] * 8,
            order,
            text_of,
            TEXTS.data,
            TEXTS.starts,
            TEXTS.ends,
            *outputs,
        )

    assert benchmark(run) > 0
    record_rate(benchmark, "rows_per_s", REFERENCE_ROWS)
