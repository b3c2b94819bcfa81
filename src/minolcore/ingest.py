"""The ingest job: gateway log files streamed through the pipeline into a store.

Files are read line by line (wireless M-Bus collector lines, JSON or plain hex, and LoRaWAN
packet-forwarder lines; see :mod:`minolcore.adapters.gateway_log`), in batches, so memory
stays bounded whatever the file size. Lines that are not receptions (garbage, bad
hex, bad times) are stored as rejected entries with their reason and line number: nothing
is silently lost.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO, cast

import msgspec

from minolcore._model import Record, replace
from minolcore.adapters.collector import RejectedLine
from minolcore.adapters.gateway_log import LogBatch, iter_log_batches
from minolcore.pipeline import Pipeline, PipelineStats
from minolcore.reception import ReceptionColumns
from minolcore.store.base import (
    ReadingBlock,
    ReadingRow,
    ReadingValues,
    RejectedRow,
    Store,
    StoreBatch,
    UplinkBlock,
)

__all__ = ["IngestSummary", "fewer_collections", "ingest_files", "print_stats"]

DEFAULT_BATCH = 20_000
# Rows (uplinks, late copies and rejected lines) the store gets per transaction. Uplink
# keys are content hashes, so every transaction rewrites pages all over those tables: fewer,
# larger transactions write each page fewer times. The pipeline still works in batches of
# ``batch_size``; only the store's commits are pooled.
STORE_BATCH = 100_000


class _Collections:
    # True inside fewer_collections (when automatic collection was on): ingest_files then
    # collects after each store write.
    after_writes = False


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Switch Python's automatic cyclic garbage collection off inside the block:
    :func:`ingest_files` collects the young generations after each store write instead (or
    after each batch, without a store). The previous state is restored on exit.

    A batch keeps a few hundred thousand tuples and lists alive until it is stored. The
    automatic collector walks each of them at least once, whatever its threshold (0.37 s of
    a million-line ingest with a young generation of 100,000 objects, 2.6 s at the default
    700). Right after a write they are freed, and a collection walks only what survived
    (0.06 s). The pipeline makes no reference cycles (a million-line ingest leaves none
    behind), so nothing waits long to be collected. The setting is process-wide, so this
    is for the program that owns the process (the ``minolcore`` command uses it); a service
    embedding the library chooses its own. A process that switched automatic collection off
    (``gc.disable()`` or a first threshold of 0) is left so.
    """
    # Only the block that switched collection off switches it on again (a nested block, or
    # one in another thread, finds it off and leaves everything as it was).
    owner = gc.isenabled() and gc.get_threshold()[0] > 0
    if owner:
        gc.disable()
        _Collections.after_writes = True
    try:
        yield
    finally:
        if owner:
            _Collections.after_writes = False
            gc.enable()


def _collect_after_write() -> None:
    if _Collections.after_writes:
        gc.collect(1)  # the young generations: what lives on moves to the oldest


class IngestSummary(Record):
    """What an ingest run did: lines read, lines rejected per reason, the pipeline's counts,
    and the wall time in seconds."""

    lines: int
    bad_lines: dict[str, int]
    pipeline: PipelineStats
    seconds: float


_BATCH_FIELDS = tuple(StoreBatch.__annotations__)


def _as_blocks(batch: StoreBatch) -> StoreBatch:
    """The batch with its readings, and its uplinks given as value tuples, in blocks: a
    batch's readings count in the order objects, value tuples, blocks (its uplinks: value
    tuples, blocks), so pooled batches that differ in kind would otherwise be reordered.
    Uplink row objects, which the store puts first, are left as they are."""
    if not (batch.readings or batch.reading_values or batch.uplink_values):
        return batch  # the pipeline's columnar batches
    astuple = cast(Callable[[ReadingRow], ReadingValues], msgspec.structs.astuple)
    readings = [
        ReadingBlock.from_rows(rows)
        for rows in (list(map(astuple, batch.readings)), batch.reading_values)
        if rows
    ]
    uplinks = [UplinkBlock.from_rows(batch.uplink_values)] if batch.uplink_values else []
    return replace(
        batch,
        readings=(),
        reading_values=(),
        reading_blocks=[*readings, *batch.reading_blocks],
        uplink_values=(),
        uplink_blocks=[*uplinks, *batch.uplink_blocks],
    )


class _PooledStore:
    """Batches for ``store`` pooled and written as one batch of at most ``rows`` uplinks,
    late copies and rejected lines (a larger batch alone). Batches written in turn leave
    what their concatenation written at once leaves (the store merges rows within a batch
    as its statements would), so the stored result is the same; a crash loses at most the
    pooled batches, which a new run writes again."""

    def __init__(self, store: Store, rows: int) -> None:
        self.store = store
        self.rows = rows
        self._held: list[StoreBatch] = []
        self._count = 0

    def write(self, batch: StoreBatch) -> None:
        uplinks = len(batch.uplinks) + len(batch.uplink_values) + sum(map(len, batch.uplink_blocks))
        rows = uplinks + len(batch.late_receptions) + len(batch.rejected)
        # The batches held so far are written before this one joins them: only the pool
        # holds them, so they are freed before the collection that follows the write.
        if self._held and self._count + rows > self.rows:
            self.flush()
        self._held.append(batch)
        self._count += rows

    def flush(self) -> None:
        held = self._held
        if not held:
            return
        if len(held) == 1:
            merged = held[0]
        else:
            # Field by field, whatever fields a batch has: each the rows of every batch in turn
            # (readings and uplinks as blocks, so that they keep the order of the batches).
            in_order = list(map(_as_blocks, held))
            merged = StoreBatch(
                **{
                    name: list(itertools.chain.from_iterable(getattr(batch, name) for batch in in_order))
                    for name in _BATCH_FIELDS
                }
            )
        self._held = []
        self._count = 0
        self.store.write(merged)
        del merged, held
        _collect_after_write()

    def counts(self) -> dict[str, int]:
        self.flush()
        return self.store.counts()

    def close(self) -> None:
        self.flush()
        self.store.close()


def _rejected_row(source: str, item: RejectedLine) -> RejectedRow:
    raw = item.raw if isinstance(item.raw, str) else item.raw.decode("utf-8", "replace")
    # Not a reception, so no gateway or time: the file and line stand in for both.
    return RejectedRow(
        gateway_id=f"{source}#{item.line_no}",
        received_at_ms=0,
        reason=f"line_{item.reason}",
        payload_hex=raw[:512],
        detail=item.detail,
    )


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
    store = pipeline.store
    pooled = None if store is None else _PooledStore(store, max(batch_size, STORE_BATCH))
    pipeline.store = pooled
    # Batches of small files wait until together they make a pipeline batch.
    held: list[LogBatch] = []

    def feed_held() -> None:
        if not held:
            return
        wmbus = ReceptionColumns.joined([batch.wmbus for batch in held])
        lorawan = [reception for batch in held for reception in batch.lorawan]
        count = sum(batch.lines for batch in held)
        held.clear()
        # Ingest needs the stored rows only: the columnar path (models only if a callback wants them).
        if len(wmbus):
            pipeline.feed(wmbus, models=False)
        if lorawan:
            pipeline.feed(lorawan, models=False)
        if pooled is None:
            _collect_after_write()
        if progress is not None:
            progress(count)

    try:
        try:
            for path in paths:
                # The file name stands in for the gateway of rejected lines: stored text, so
                # a name that is not UTF-8 (bytes kept as surrogates) is written with escapes.
                source = os.fsencode(os.path.basename(path)).decode("utf-8", "backslashreplace")
                for batch in iter_log_batches(
                    path,
                    gateway_ids=pipeline.network.gateway_ids,
                    default_gateway=source,
                    default_time=time.time(),
                    batch_lines=batch_size,
                ):
                    lines += batch.lines
                    if batch.rejected and pooled is not None:
                        rows = [_rejected_row(source, item) for item in batch.rejected]
                        pooled.write(StoreBatch(rejected=rows))
                    bad.update(str(item.reason) for item in batch.rejected)
                    if held and sum(part.lines for part in held) + batch.lines > batch_size:
                        feed_held()
                    held.append(batch)
                    if sum(part.lines for part in held) >= batch_size:
                        feed_held()
        except OSError:
            feed_held()  # an unreadable file: what came before it is stored
            raise
        feed_held()
    finally:
        pipeline.store = store
        if pooled is not None:
            pooled.flush()
    return IngestSummary(
        lines=lines,
        bad_lines=dict(sorted(bad.items())),
        pipeline=pipeline.stats(),
        seconds=time.perf_counter() - started,
    )


def print_stats(stats: PipelineStats, out: TextIO) -> None:
    """The pipeline's counts, one per line, for a person."""
    print(f"receptions received      {stats.received:>10,}", file=out)
    print(f"uplinks (transmissions)  {stats.uplinks:>10,}", file=out)
    print(
        f"  copies merged          {stats.duplicates_merged:>10,}  (late: {stats.late_receptions:,})",
        file=out,
    )
    if stats.joins:
        print(f"LoRaWAN joins accepted   {stats.joins:>10,}", file=out)
    rejected = sum(stats.rejected.values())
    print(f"rejected                 {rejected:>10,}", file=out)
    for reason, count in stats.rejected.items():
        print(f"  {reason:<22} {count:>10,}", file=out)
    print(f"decoded uplinks          {stats.decoded:>10,}", file=out)
    for reason, count in stats.not_decoded.items():
        print(f"  not decoded: {reason:<9} {count:>10,}", file=out)
    print(f"reading values read      {stats.readings:>10,}", file=out)
    print("decoded uplinks per device kind:", file=out)
    for kind, count in stats.devices_by_kind.items():
        print(f"  {kind:<22} {count:>10,}", file=out)
