"""What the pipeline stores, and the small interface every store implements.

Every row has a natural key, and writes are "insert or ignore" on it, in one transaction
per batch: feeding the same input twice changes nothing, and a process killed during a
write loses nothing that feeding the input again does not restore.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from minolcore._model import Record

__all__ = [
    "DeviceRow",
    "ReadingRow",
    "ReadingValues",
    "ReceptionRow",
    "RejectedRow",
    "StatusEventRow",
    "Store",
    "StoreBatch",
    "UplinkRow",
    "UplinkValues",
    "content_key",
]


def content_key(device_uid: str, frame: bytes) -> str:
    """Stable key of an uplink: the device and a BLAKE2b digest of its canonical bytes (hex).

    Unlike the per-pipeline SipHash fingerprint it is the same in every process, so a
    restarted pipeline recognises what it stored before.
    """
    digest = _UPLINK_DIGEST.copy()  # copying the keyed-up state costs half of making it
    digest.update(frame)
    digest.update(device_uid.encode())
    return digest.hexdigest()


_UPLINK_DIGEST = hashlib.blake2b(digest_size=16, person=b"minolcore-uplink")


class DeviceRow(Record):
    """A sender seen by the pipeline (when it was heard follows from its receptions)."""

    device_uid: str
    radio: str
    manufacturer: str
    meter_id: str
    version: int
    device_type: int
    kind: str


class ReceptionRow(Record, array_like=True):
    """One gateway's copy of an uplink (time in ms since the epoch, RSSI dBm, SNR dB).

    Stored inside its uplink's row, as a JSON array ``[gateway_id, received_at_ms, rssi,
    snr]`` (array-like: it encodes as one)."""

    gateway_id: str
    received_at_ms: int
    rssi: float | None = None
    snr: float | None = None


class UplinkRow(Record):
    """One transmission after dedupe, with the receptions it was heard in.

    Rows with the same key merge: the stored uplink holds the union of their receptions
    (so late copies, repeated input and any input order leave the same row)."""

    uplink_key: str
    device_uid: str
    size: int
    security_status: str
    decode_errors: str = ""
    receptions: tuple[ReceptionRow, ...] = ()


# An uplink as the uplinks table holds it, in column order: (uplink_key, device_uid, size,
# security_status, decode_errors, first_received_ms, last_received_ms, receptions), its
# receptions already the stored JSON text of
# :func:`minolcore.store.receptions.encode_reception_columns`, the times in ms since the epoch.
UplinkValues = tuple[str, str, int, str, str, int, int, str]


class ReadingRow(Record):
    """One value of one device at one time, assigned to a building and unit.

    ``reading_time`` is an ISO 8601 string (the time the value refers to: a record's date
    for historic values, else the telegram's time); ``value`` is in ``unit``.
    """

    device_uid: str
    reading_time: str
    quantity: str
    storage: int
    tariff: int
    subunit: int
    function: str
    value: float | None
    unit: str
    valid: bool
    building_id: str | None
    unit_id: str | None
    uplink_key: str


# A reading as the readings table holds it, in column order: (device_uid, reading_time,
# quantity, storage, tariff, subunit, function, value, unit, valid, building_id, unit_id,
# uplink_key), the fields of :class:`ReadingRow`. ``valid`` is 1 or 0 as the pipeline makes
# it (True and False store the same, but Python's sqlite3 binds a bool at several times
# the cost of an int).
ReadingValues = tuple[str, str, str, int, int, int, str, float | None, str, int, str | None, str | None, str]


class StatusEventRow(Record):
    """A status change or fault of a device at a time (ISO 8601)."""

    device_uid: str
    event_time: str
    event: str
    detail: str = ""


class RejectedRow(Record):
    """A reception the pipeline rejected, with its reason (time in ms since the epoch)."""

    gateway_id: str
    received_at_ms: int
    reason: str
    payload_hex: str
    detail: str = ""


class StoreBatch(Record):
    """Everything one pipeline batch writes, in one transaction."""

    devices: Sequence[DeviceRow] = ()
    uplinks: Sequence[UplinkRow] = ()
    # Uplinks as value tuples, their receptions already encoded (the pipeline's columnar path
    # makes these): they merge with uplink rows of the same key as uplink rows do.
    uplink_values: Sequence[UplinkValues] = ()
    # Copies of uplinks stored before (a collector uploading late): (uplink key, copy),
    # merged into the uplink's receptions.
    late_receptions: Sequence[tuple[str, ReceptionRow]] = ()
    readings: Sequence[ReadingRow] = ()
    # Readings as value tuples (the pipeline's columnar path makes these): stored as
    # ``readings`` are, without an object per reading.
    reading_values: Sequence[ReadingValues] = ()
    status_events: Sequence[StatusEventRow] = ()
    rejected: Sequence[RejectedRow] = ()


class Store(Protocol):
    """The storage interface of the pipeline (SQLite now; PostgreSQL can follow): it writes
    and counts; reading readings back is the access layer's (:mod:`minolcore.access`)."""

    def write(self, batch: StoreBatch) -> None:
        """Write one batch atomically and idempotently."""

    def counts(self) -> dict[str, int]:
        """Rows per table."""

    def close(self) -> None:
        """Release the connection."""
