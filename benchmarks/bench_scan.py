"""Batch frame scan over 1,000,000 realistic format-A frames: C core against the reference,
and bytes/s against zlib.crc32 over the same buffer (a sense of the memory-speed limit).

Throughput = frames (or bytes) / median time. Run:
    python -m pytest benchmarks/bench_scan.py --benchmark-only --benchmark-columns=median,rounds
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from benchmarks.conftest import Batch
from minolcore import _native
from minolcore._reference.scan import scan_into
from minolcore.wmbus import FRAME_INFO_DTYPE, CRCMode, scan

KEY = bytes(range(16))
REFERENCE_FRAMES = 5_000


@pytest.mark.skipif(_native.BACKEND != "cffi", reason="measures the C core")
def test_scan_c_1m_frames(benchmark, million_frames: Batch) -> None:
    batch = million_frames
    result = benchmark.pedantic(
        scan, args=(batch.buffer, batch.offsets, batch.lengths), kwargs={"key": KEY}, rounds=7, iterations=1
    )
    assert int(np.count_nonzero(result.ok())) == len(batch)
    benchmark.extra_info["frames"] = len(batch)
    benchmark.extra_info["bytes"] = len(batch.buffer)


@pytest.mark.skipif(_native.BACKEND != "cffi", reason="measures the C core")
def test_scan_c_1m_frames_in_64k_batches(benchmark, million_frames: Batch) -> None:
    """The same million frames fed as a stream of 65,536-frame batches (as the CLI feeds them)."""
    batch = million_frames
    chunk = 65_536

    def run() -> int:
        ok = 0
        for start in range(0, len(batch), chunk):
            result = scan(
                batch.buffer,
                batch.offsets[start : start + chunk],
                batch.lengths[start : start + chunk],
                key=KEY,
            )
            ok += int(np.count_nonzero(result.ok()))
        return ok

    assert benchmark.pedantic(run, rounds=7, iterations=1) == len(batch)
    benchmark.extra_info["frames"] = len(batch)


def test_scan_reference_5k_frames(benchmark, million_frames: Batch) -> None:
    count = REFERENCE_FRAMES
    buffer = million_frames.buffer[: int(million_frames.offsets[count])]
    offsets, lengths = million_frames.offsets[:count], million_frames.lengths[:count]

    def run() -> np.ndarray:
        info = np.zeros(count, dtype=FRAME_INFO_DTYPE)
        output = np.zeros(int(lengths.sum()), dtype=np.uint8)
        scan_into(buffer, offsets, lengths, CRCMode.AUTO, KEY, output, info)
        return info

    info = benchmark.pedantic(run, rounds=3, iterations=1)
    assert int(np.count_nonzero(info["status"] == 0)) == count
    benchmark.extra_info["frames"] = count


def test_zlib_crc32_same_buffer(benchmark, million_frames: Batch) -> None:
    data = million_frames.buffer
    benchmark.pedantic(zlib.crc32, args=(data,), rounds=7, iterations=1)
    benchmark.extra_info["bytes"] = len(data)


@pytest.mark.skipif(_native.BACKEND != "cffi", reason="measures the C core")
def test_crc16_c_same_buffer(benchmark, million_frames: Batch) -> None:
    data = million_frames.buffer
    benchmark.pedantic(_native.crc16, args=(data,), rounds=7, iterations=1)
    benchmark.extra_info["bytes"] = len(data)
