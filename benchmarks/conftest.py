"""Shared benchmark data: realistic wireless M-Bus traffic built with the frame builder."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest

from minolcore.wmbus.builder import build_frame
from minolcore.wmbus.headers import TPLHeader, TPLKind

UNIQUE_FRAMES = 20_000
BATCH_FRAMES = 1_000_000


def realistic_frames(count: int, seed: int = 1) -> list[bytes]:
    """Format-A frames with CRCs, 30-150 bytes on the air, mode-5 short headers, as meters send."""
    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        payload_length = rng.randrange(11, 118)
        tpl = TPLHeader(
            ci=0x7A,
            kind=TPLKind.SHORT,
            acc=rng.randrange(256),
            sts=0,
            cf=0x0500 | (((payload_length + 15) // 16) << 4),
        )
        frames.append(
            build_frame(
                manufacturer=rng.choice(["QDS", "TCH", "ZRI", "BHG", "KAM", "EFE"]),
                id=rng.randrange(10**8),
                version=rng.randrange(256),
                device_type=rng.choice([0x04, 0x07, 0x08, 0x16, 0x1A]),
                tpl=tpl,
                payload=rng.randbytes(payload_length),
                shape="A",
            )
        )
    return frames


class Batch:
    """One contiguous buffer of frames with their offsets and lengths."""

    def __init__(self, frames: list[bytes], repeat: int) -> None:
        unique = b"".join(frames)
        lengths = np.array([len(frame) for frame in frames], dtype=np.int32)
        self.buffer: npt.NDArray[np.uint8] = np.frombuffer(unique * repeat, dtype=np.uint8)
        self.lengths: npt.NDArray[np.int32] = np.tile(lengths, repeat)
        self.offsets: npt.NDArray[np.int64] = np.zeros(len(self.lengths), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=self.offsets[1:])
        self.frames = frames

    def __len__(self) -> int:
        return len(self.lengths)


@pytest.fixture(scope="session")
def million_frames() -> Batch:
    frames = realistic_frames(UNIQUE_FRAMES)
    return Batch(frames, BATCH_FRAMES // UNIQUE_FRAMES)


def record_rate(benchmark: object, name: str, items: int) -> None:
    """Store ``items / median`` (items per second) in the benchmark's extra info.

    With ``--benchmark-disable`` (CI runs each benchmark once as a test) there are no
    statistics, and nothing is stored.
    """
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info[name] = round(items / stats.stats.median)  # type: ignore[attr-defined]
