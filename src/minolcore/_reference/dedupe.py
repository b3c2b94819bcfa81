"""Reference twin of the C dedupe table (csrc/mc_dedupe.c): the same decisions, with a dict.

The observable behaviour (which item opens a new uplink, which uplink id each item gets,
the counters, when entries expire and when the table grows) is specified here; the C
table reproduces it with open addressing over the 64-bit fingerprints.
"""

from __future__ import annotations

__all__ = ["ReferenceDedupeTable"]

INT64_MIN = -(2**63)


class ReferenceDedupeTable:
    """Fingerprint -> (first event time in ms, uplink id), with expiry and bounded growth."""

    def __init__(self, initial_capacity: int, max_capacity: int, retention_ms: int) -> None:
        self.capacity = initial_capacity
        self.max_capacity = max_capacity
        self.retention_ms = retention_ms
        self.entries: dict[int, tuple[int, int]] = {}
        self.next_id = 0
        self.watermark = INT64_MIN
        self.last_sweep_watermark = INT64_MIN
        self.overflow = 0
        self.expired = 0
        self.sweeps = 0

    def _sweep_due(self) -> bool:
        if self.last_sweep_watermark == INT64_MIN:
            return True
        return self.watermark - self.last_sweep_watermark >= max(self.retention_ms // 8, 1)

    def _rebuild(self, capacity: int) -> None:
        has_cutoff = self.watermark != INT64_MIN and self.watermark >= INT64_MIN + self.retention_ms
        cutoff = self.watermark - self.retention_ms if has_cutoff else INT64_MIN
        kept = {fp: entry for fp, entry in self.entries.items() if entry[0] >= cutoff}
        self.expired += len(self.entries) - len(kept)
        self.entries = kept
        self.capacity = capacity
        self.sweeps += 1
        self.last_sweep_watermark = self.watermark

    def _make_room(self) -> bool:
        count = len(self.entries)
        if (count + 1) * 2 <= self.capacity:
            return True
        if self._sweep_due():
            self._rebuild(self.capacity)
        count = len(self.entries)
        if (count + 1) * 4 > self.capacity and self.capacity * 2 <= self.max_capacity:
            self._rebuild(self.capacity * 2)
        return (len(self.entries) + 1) * 2 <= self.capacity

    def process(
        self, fingerprints: list[int], times_ms: list[int], window_ms: int
    ) -> tuple[list[int], list[bool]]:
        """Uplink id and is-new flag of every item, in order."""
        ids: list[int] = []
        new: list[bool] = []
        for raw_fp, time_ms in zip(fingerprints, times_ms, strict=True):
            fp = raw_fp or 1  # 0 marks an empty slot in the C table
            entry = self.entries.get(fp)
            if entry is not None and abs(time_ms - entry[0]) <= window_ms:
                ids.append(entry[1])
                new.append(False)
            else:
                uplink = self.next_id
                self.next_id += 1
                if entry is not None or self._make_room():
                    self.entries[fp] = (time_ms, uplink)
                else:
                    self.overflow += 1
                ids.append(uplink)
                new.append(True)
            self.watermark = max(self.watermark, time_ms)
        return ids, new
