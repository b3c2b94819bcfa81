"""The ingest job: gateway log files streamed through the pipeline into a store.

Files are read line by line (collector JSON lines or plain hex lines), in batches, so
memory stays bounded whatever the file size. Lines that are not receptions (garbage, bad
hex, bad times) are stored as rejected entries with their reason and line number: nothing
is silently lost.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from minolcore._model import Record
from minolcore.adapters.collector import RejectedLine, iter_collector_file
from minolcore.pipeline import Pipeline, PipelineStats
from minolcore.reception import Reception
from minolcore.store.base import RejectedRow, StoreBatch

__all__ = ["IngestSummary", "ingest_files"]

DEFAULT_BATCH = 20_000


class IngestSummary(Record):
    """What an ingest run did: lines read, lines rejected per reason, the pipeline's counts,
    and the wall time in seconds."""

    lines: int
    bad_lines: dict[str, int]
    pipeline: PipelineStats
    seconds: float


def _items(paths: Iterable[str | Path]) -> Iterator[tuple[str, Reception | RejectedLine]]:
    for path in paths:
        name = os.path.basename(str(path))
        for item in iter_collector_file(path, default_gateway=name, default_time=time.time()):
            yield name, item


def ingest_files(
    paths: Iterable[str | Path],
    pipeline: Pipeline,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Stream every line of ``paths`` through ``pipeline`` in batches of ``batch_size``.

    ``progress`` is called with the number of lines handled since its last call. Raises
    :class:`OSError` for an unreadable file (after storing what came before it).
    """
    started = time.perf_counter()
    bad = collections.Counter[str]()
    lines = 0
    receptions: list[Reception] = []
    rejected: list[RejectedRow] = []

    def flush() -> None:
        if receptions:
            # Ingest needs the stored rows only: the columnar path (models only if a callback wants them).
            pipeline.feed(receptions, models=False)
        if rejected and pipeline.store is not None:
            pipeline.store.write(StoreBatch(rejected=rejected))
        if progress is not None:
            progress(len(receptions) + len(rejected))
        receptions.clear()
        rejected.clear()

    for source, item in _items(paths):
        lines += 1
        if isinstance(item, Reception):
            receptions.append(item)
        else:
            bad[str(item.reason)] += 1
            raw = item.raw if isinstance(item.raw, str) else item.raw.decode("utf-8", "replace")
            rejected.append(
                # Not a reception, so no gateway or time: the file and line stand in for both.
                RejectedRow(
                    gateway_id=f"{source}#{item.line_no}",
                    received_at_ms=0,
                    reason=f"line_{item.reason}",
                    payload_hex=raw[:512],
                    detail=item.detail,
                )
            )
        if len(receptions) + len(rejected) >= batch_size:
            flush()
    flush()
    return IngestSummary(
        lines=lines,
        bad_lines=dict(sorted(bad.items())),
        pipeline=pipeline.stats(),
        seconds=time.perf_counter() - started,
    )
