"""Storage of the pipeline's output behind a small interface (SQLite by default)."""

from minolcore.store.base import (
    DeviceRow,
    ReadingRow,
    ReceptionRow,
    RejectedRow,
    StatusEventRow,
    Store,
    StoreBatch,
    UplinkRow,
    content_key,
)
from minolcore.store.sqlite import SQLiteStore

__all__ = [
    "DeviceRow",
    "ReadingRow",
    "ReceptionRow",
    "RejectedRow",
    "SQLiteStore",
    "StatusEventRow",
    "Store",
    "StoreBatch",
    "UplinkRow",
    "content_key",
]
