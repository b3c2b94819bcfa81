"""The dedupe table: every copy of one transmission, from any gateway and in any arrival
order within an event-time window, maps to one uplink.

Keys are the keyed 64-bit fingerprints of the scan (they cover the sender's address, so
the key is "device plus frame bytes"). An item whose fingerprint was first seen within
``window_ms`` (event time, in either direction) joins that uplink; otherwise it opens a
new one, also when the same bytes come again after the window (a meter that repeats its
reading). Entries older than ``retention_ms`` behind the newest event time are expired,
so memory stays bounded: 24 bytes per slot, at most 50 % load, so 48-96 bytes per live
entry; a hard ``max_capacity`` caps it, and items that find the table full at that cap
are counted in ``overflow`` (treated as new, not remembered).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from minolcore import _native
from minolcore._model import Record
from minolcore._reference.dedupe import ReferenceDedupeTable
from minolcore.errors import InputError

__all__ = ["BYTES_PER_SLOT", "MAX_SLOTS", "DedupeSnapshot", "DedupeStats", "DedupeTable"]

BYTES_PER_SLOT = 24
MAX_TIME_MS = 2**62  # event times are milliseconds since the Unix epoch
MAX_SLOTS = 2**32  # 96 GiB of slots: beyond any deployment, and far from integer limits


class DedupeStats(Record):
    """Counters of a dedupe table (times in ms since the Unix epoch)."""

    count: int
    capacity: int
    max_capacity: int
    next_id: int
    watermark: int
    last_sweep_watermark: int
    overflow: int
    expired: int
    sweeps: int
    retention_ms: int

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the slots."""
        return self.capacity * BYTES_PER_SLOT


class DedupeSnapshot(Record):
    """Everything needed to restore a table after a restart (plain lists, JSON-encodable)."""

    fingerprints: list[int]
    first_seen_ms: list[int]
    uplink_ids: list[int]
    stats: DedupeStats


def _pow2(value: int) -> int:
    result = 8
    while result < value:
        result <<= 1
    return result


class DedupeTable:
    """Batch dedupe over numpy columns; the C table when the C core is live."""

    __slots__ = ("_native_table", "_reference")

    def __init__(
        self, *, initial_capacity: int = 1 << 16, max_capacity: int = 1 << 26, retention_ms: int = 600_000
    ) -> None:
        if not (0 < initial_capacity <= MAX_SLOTS and 0 < max_capacity <= MAX_SLOTS) or not (
            0 <= retention_ms < MAX_TIME_MS
        ):
            raise InputError(f"capacities must be in [1, {MAX_SLOTS}] slots and retention_ms in [0, 2**62)")
        capacity = _pow2(initial_capacity)
        maximum = _pow2(max(max_capacity, initial_capacity))
        self._native_table: Any = None
        self._reference: ReferenceDedupeTable | None = None
        if _native.BACKEND == "cffi":
            table = _native.lib.mc_dedupe_new(capacity, maximum, retention_ms)
            if table == _native.ffi.NULL:
                raise MemoryError("dedupe table")
            self._native_table = _native.ffi.gc(table, _native.lib.mc_dedupe_free)
        else:
            self._reference = ReferenceDedupeTable(capacity, maximum, retention_ms)

    def process(
        self, fingerprints: Any, times_ms: Any, window_ms: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """For each item, the id of its uplink and whether the item opened it.

        ``fingerprints`` are uint64, ``times_ms`` the event times in ms since the epoch
        (int64, 0 to 2**62), ``window_ms`` the dedupe window in ms.
        """
        fps = np.ascontiguousarray(fingerprints, dtype=np.uint64)
        times = np.ascontiguousarray(times_ms, dtype=np.int64)
        if fps.shape != times.shape or fps.ndim != 1:
            raise InputError("fingerprints and times must be 1-D and of equal length")
        if not 0 <= window_ms < MAX_TIME_MS:
            raise InputError("window_ms must be in [0, 2**62)")
        if len(times) and (int(times.min()) < 0 or int(times.max()) >= MAX_TIME_MS):
            raise InputError("event times must be in [0, 2**62) ms")
        if self._reference is not None:
            ids, new = self._reference.process(fps.tolist(), times.tolist(), window_ms)
            return np.array(ids, dtype=np.int64), np.array(new, dtype=np.bool_)
        ffi, lib = _native.ffi, _native.lib
        uplink_ids = np.empty(len(fps), dtype=np.int64)
        is_new = np.empty(len(fps), dtype=np.uint8)
        status = lib.mc_dedupe_batch(
            self._native_table,
            ffi.from_buffer("uint64_t[]", fps),
            ffi.from_buffer("int64_t[]", times),
            len(fps),
            window_ms,
            ffi.from_buffer("int64_t[]", uplink_ids),
            ffi.from_buffer("uint8_t[]", is_new),
        )
        if status != 0:
            raise MemoryError("dedupe table could not grow")
        return uplink_ids, is_new.view(np.bool_)

    def stats(self) -> DedupeStats:
        """The table's counters."""
        if self._reference is not None:
            ref = self._reference
            return DedupeStats(
                count=len(ref.entries),
                capacity=ref.capacity,
                max_capacity=ref.max_capacity,
                next_id=ref.next_id,
                watermark=ref.watermark,
                last_sweep_watermark=ref.last_sweep_watermark,
                overflow=ref.overflow,
                expired=ref.expired,
                sweeps=ref.sweeps,
                retention_ms=ref.retention_ms,
            )
        raw = _native.ffi.new("mc_dedupe_stats *")
        _native.lib.mc_dedupe_get_stats(self._native_table, raw)
        return DedupeStats(
            count=raw.count,
            capacity=raw.capacity,
            max_capacity=raw.max_capacity,
            next_id=raw.next_id,
            watermark=raw.watermark,
            last_sweep_watermark=raw.last_sweep_watermark,
            overflow=raw.overflow,
            expired=raw.expired,
            sweeps=raw.sweeps,
            retention_ms=raw.retention_ms,
        )

    def snapshot(self) -> DedupeSnapshot:
        """The live entries and counters, to restore after a restart."""
        stats = self.stats()
        if self._reference is not None:
            items = sorted(self._reference.entries.items())
            return DedupeSnapshot(
                fingerprints=[fp for fp, _ in items],
                first_seen_ms=[entry[0] for fp, entry in items],
                uplink_ids=[entry[1] for fp, entry in items],
                stats=stats,
            )
        ffi, lib = _native.ffi, _native.lib
        fps = np.empty(stats.count, dtype=np.uint64)
        first = np.empty(stats.count, dtype=np.int64)
        ids = np.empty(stats.count, dtype=np.int64)
        written = lib.mc_dedupe_export(
            self._native_table,
            ffi.from_buffer("uint64_t[]", fps),
            ffi.from_buffer("int64_t[]", first),
            ffi.from_buffer("int64_t[]", ids),
            stats.count,
        )
        order = np.argsort(fps[:written], kind="stable")
        return DedupeSnapshot(
            fingerprints=fps[order].tolist(),
            first_seen_ms=first[order].tolist(),
            uplink_ids=ids[order].tolist(),
            stats=stats,
        )

    @classmethod
    def restore(cls, snapshot: DedupeSnapshot) -> DedupeTable:
        """A table in exactly the state the snapshot was taken in."""
        stats = snapshot.stats
        if not len(snapshot.fingerprints) == len(snapshot.first_seen_ms) == len(snapshot.uplink_ids):
            raise InputError("snapshot columns differ in length")
        # A snapshot read from a file may have been damaged: its numbers must fit the table.
        # Watermarks are event times (int64, the lowest value before any event); the rest counts.
        low = {"watermark": -(2**63), "last_sweep_watermark": -(2**63)}
        if not all(low.get(name, 0) <= getattr(stats, name) < 2**63 for name in DedupeStats.__annotations__):
            raise InputError("snapshot counters must lie in [0, 2**63) (watermarks: int64)")
        if not len(snapshot.fingerprints) <= stats.capacity <= stats.max_capacity <= MAX_SLOTS:
            raise InputError(f"snapshot capacities must hold its entries and stay within {MAX_SLOTS} slots")
        table = cls(
            initial_capacity=stats.capacity, max_capacity=stats.max_capacity, retention_ms=stats.retention_ms
        )
        if table._reference is not None:
            ref = table._reference
            ref.entries = {
                fp or 1: (first, uplink)
                for fp, first, uplink in zip(
                    snapshot.fingerprints, snapshot.first_seen_ms, snapshot.uplink_ids, strict=True
                )
            }
            while len(ref.entries) * 2 > ref.capacity:
                ref.capacity *= 2
            ref.next_id, ref.watermark = stats.next_id, stats.watermark
            ref.last_sweep_watermark, ref.overflow = stats.last_sweep_watermark, stats.overflow
            ref.expired, ref.sweeps = stats.expired, stats.sweeps
            return table
        ffi, lib = _native.ffi, _native.lib
        state = ffi.new("mc_dedupe_stats *")
        for name in DedupeStats.__annotations__:
            setattr(state, name, getattr(stats, name))
        fps = np.ascontiguousarray(snapshot.fingerprints, dtype=np.uint64)
        first = np.ascontiguousarray(snapshot.first_seen_ms, dtype=np.int64)
        ids = np.ascontiguousarray(snapshot.uplink_ids, dtype=np.int64)
        if (
            lib.mc_dedupe_restore(
                table._native_table,
                ffi.from_buffer("uint64_t[]", fps),
                ffi.from_buffer("int64_t[]", first),
                ffi.from_buffer("int64_t[]", ids),
                len(fps),
                state,
            )
            != 0
        ):
            raise MemoryError("dedupe table restore")
        return table

    def __len__(self) -> int:
        return self.stats().count

    def __repr__(self) -> str:
        stats = self.stats()
        return (
            f"<DedupeTable {stats.count} entries, capacity {stats.capacity}, "
            f"retention {stats.retention_ms} ms>"
        )
