"""Records walked in the C core: decrypt + decode throughput of the mode-5 corpus mix of
bench_decode.py, as record objects (:func:`decode_batch`) and as numpy columns, and the C
walker and the layout groups against their pure-Python references on the same application
layers. Rates are stored in ``extra_info``. Run:

    python -m pytest benchmarks/bench_records_native.py --benchmark-only \
        --benchmark-columns=median,ops
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.bench_decode import BATCH, BATCH_SIZE, KEY
from benchmarks.conftest import record_rate
from minolcore import _native
from minolcore._layout_plans import layout_groups
from minolcore._reference.layouts import layout_groups_into
from minolcore._reference.records import walk_into
from minolcore.wmbus.columns import Mode5Status, decrypt_mode5_columns
from minolcore.wmbus.record_batch import (
    RECORD_DTYPE,
    WALK_INFO_DTYPE,
    RecordColumns,
    WalkStatus,
    decode_record_columns,
    decode_records_batch,
    walk,
)
from minolcore.wmbus.scan import pack_frames, scan
from minolcore.wmbus.security import OMSKey
from minolcore.wmbus.telegram import decode_batch

REFERENCE_APLS = 1_000  # the pure-Python reference is timed on a slice of the batch


def decrypt_columns(
    buffer: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64], lengths: npt.NDArray[np.int32], key: OMSKey
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Scan and decrypt a batch through the library's columnar path (one key for the whole mix):
    (plaintext buffer, application-layer offsets, lengths, key check passed)."""
    scanned = scan(buffer, offsets, lengths)
    columns = decrypt_mode5_columns(scanned, [key] * len(scanned))
    return columns.plain, columns.apl_offset, columns.apl_length, columns.status == Mode5Status.DECRYPTED


def _batch_arrays() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    return pack_frames(BATCH)


FRAMES = _batch_arrays()
APLS, APL_OFFSETS, APL_LENGTHS, CHECKED = decrypt_columns(*FRAMES, KEY)
APL_LIST = [
    APLS[o : o + n].tobytes() for o, n in zip(APL_OFFSETS.tolist(), APL_LENGTHS.tolist(), strict=True)
]
RECORDS = sum(len(r.records) for r in decode_records_batch(APL_LIST))


def test_columnar_decryption_matches_decode_batch() -> None:
    assert bool(CHECKED.all())
    telegrams = decode_batch(BATCH, KEY)
    for telegram, apl in zip(telegrams[:500], APL_LIST, strict=False):
        assert telegram.records == decode_records_batch([apl])[0].records


def test_decode_batch_records(benchmark: Any) -> None:
    # Telegram and DataRecord objects, the C walker inside (with MINOLCORE_PUREPYTHON=1 the
    # reference walker).
    telegrams = benchmark(decode_batch, BATCH, KEY)
    assert len(telegrams) == BATCH_SIZE
    benchmark.extra_info["backend"] = _native.BACKEND
    benchmark.extra_info["records_per_round"] = RECORDS
    record_rate(benchmark, "telegrams_per_s", BATCH_SIZE)
    record_rate(benchmark, "records_per_s", RECORDS)


def test_decrypt_and_decode_columns(benchmark: Any) -> None:
    def run() -> RecordColumns:
        apls, offsets, lengths, _ = decrypt_columns(*FRAMES, KEY)
        return decode_record_columns(apls, offsets, lengths)

    columns = benchmark(run)
    handed_over = int(np.count_nonzero(columns.status != WalkStatus.OK))
    benchmark.extra_info["handed_over_telegrams"] = handed_over
    benchmark.extra_info["records_per_round"] = len(columns)
    record_rate(benchmark, "telegrams_per_s", BATCH_SIZE)


def test_decrypt_columns_only(benchmark: Any) -> None:
    benchmark(decrypt_columns, *FRAMES, KEY)
    record_rate(benchmark, "telegrams_per_s", BATCH_SIZE)


def test_records_from_plaintext(benchmark: Any) -> None:
    # Record objects for already decrypted application layers: the record stage alone.
    results = benchmark(decode_records_batch, APL_LIST)
    assert sum(len(r.records) for r in results) == RECORDS
    record_rate(benchmark, "telegrams_per_s", BATCH_SIZE)


def test_walker_c(benchmark: Any) -> None:
    result = benchmark(walk, APLS, APL_OFFSETS, APL_LENGTHS)
    benchmark.extra_info["backend"] = _native.BACKEND
    benchmark.extra_info["handed_over"] = int(np.count_nonzero(result.info["status"] != WalkStatus.OK))
    record_rate(benchmark, "apls_per_s", BATCH_SIZE)


def test_walker_reference(benchmark: Any) -> None:
    offsets = APL_OFFSETS[:REFERENCE_APLS]
    lengths = APL_LENGTHS[:REFERENCE_APLS].astype(np.int32)

    def run() -> int:
        rows = np.zeros(int(lengths.sum()), dtype=RECORD_DTYPE)
        info = np.zeros(len(offsets), dtype=WALK_INFO_DTYPE)
        return walk_into(APLS, offsets, lengths, rows, info)

    assert benchmark(run) > 0
    record_rate(benchmark, "apls_per_s", REFERENCE_APLS)


WALKED = walk(APLS, APL_OFFSETS, APL_LENGTHS)
WALKED_FIRSTS = np.ascontiguousarray(WALKED.info["first_record"])
WALKED_COUNTS = np.ascontiguousarray(WALKED.info["record_count"])
WALKED_OK = np.flatnonzero(WALKED.info["status"] == WalkStatus.OK)


def test_layout_groups_c(benchmark: Any) -> None:
    # The telegrams of a batch numbered by their records' header bytes (mc_layout_groups).
    group_of, layouts = benchmark(
        layout_groups, APLS, APL_OFFSETS, WALKED.rows, WALKED_FIRSTS, WALKED_COUNTS, WALKED_OK
    )
    assert len(group_of) == len(WALKED_OK) and layouts
    benchmark.extra_info["backend"] = _native.BACKEND
    benchmark.extra_info["layouts"] = len(layouts)
    record_rate(benchmark, "apls_per_s", len(WALKED_OK))


def test_layout_groups_reference(benchmark: Any) -> None:
    data = APLS.tobytes()
    chosen = WALKED_OK[:REFERENCE_APLS]

    def run() -> int:
        group_of = np.empty(len(chosen), dtype=np.int64)
        heads = np.empty(len(chosen), dtype=np.int64)
        return layout_groups_into(
            data, APL_OFFSETS, WALKED.rows, WALKED_FIRSTS, WALKED_COUNTS, chosen, group_of, heads
        )

    assert benchmark(run) > 0
    record_rate(benchmark, "apls_per_s", len(chosen))
