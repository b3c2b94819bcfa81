"""Unfiltered reads of a store's readings and status events: internal.

Readings are personal data, so :class:`~minolcore.store.SQLiteStore` has no public method that
returns them. This reader is what :class:`minolcore.access.AccessLayer` narrows (by grant,
purpose and tenancy) before anything leaves the library; the library's own tests use it to
check what the pipeline stored. Embedding code reads through the access layer.
"""

from __future__ import annotations

from typing import Any

from minolcore.store.base import DeviceRow, ReadingRow, StatusEventRow
from minolcore.store.sqlite import _ORDERS, SQLiteStore

__all__ = ["StoreReader"]


class StoreReader:
    """Reads of one store's connection, everything there is, unfiltered."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        # The reader is the store's internal half: it shares the connection.
        self._db = store._db

    def __repr__(self) -> str:
        return f"<StoreReader {self._store.path}>"

    def readings(
        self,
        *,
        device_uid: str | None = None,
        building_id: str | None = None,
        unit_id: str | None = None,
        quantity: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[ReadingRow]:
        """Readings matching every given filter, ordered by device and time (ISO bounds, inclusive)."""
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("device_uid", device_uid),
            ("building_id", building_id),
            ("unit_id", unit_id),
            ("quantity", quantity),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if device_uid is None and (building_id is not None or unit_id is not None):
            # The devices placed there lead the query to the readings' key (device first).
            placed = [("building_id", building_id), ("unit_id", unit_id)]
            where_placed = " AND ".join(f"{column} = ?" for column, value in placed if value is not None)
            clauses.append(f"device_uid IN (SELECT device_uid FROM placements WHERE {where_placed})")
            params.extend(value for _, value in placed if value is not None)
        if since is not None:
            clauses.append("reading_time >= ?")
            params.append(since)
        if until is not None:
            clauses.append("reading_time <= ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT * FROM readings {where} ORDER BY device_uid, reading_time, quantity, storage"
        return [_reading_row(values) for values in self._db.execute(query, params)]

    def devices(self) -> list[DeviceRow]:
        """Every device seen, ordered by its uid."""
        return self._store.devices()

    def status_events(self, device_uid: str | None = None) -> list[StatusEventRow]:
        """Status events, optionally of one device, ordered by device and time."""
        query = "SELECT * FROM status_events"
        params: tuple[str, ...] = ()
        if device_uid is not None:
            query += " WHERE device_uid = ?"
            params = (device_uid,)
        rows = self._db.execute(query + " ORDER BY device_uid, event_time, event", params)
        return [StatusEventRow(device_uid=a, event_time=b, event=c, detail=d) for a, b, c, d in rows]

    def dump(self) -> dict[str, list[tuple[object, ...]]]:
        """Every row of every table in key order: two stores with equal dumps hold the same data."""
        return {
            table: list(self._db.execute(f"SELECT * FROM {table} ORDER BY {order}"))
            for table, order in _ORDERS.items()
        }


def _reading_row(values: tuple[Any, ...]) -> ReadingRow:
    names = ReadingRow.__annotations__
    row = dict(zip(names, values, strict=True))
    row["valid"] = bool(row["valid"])
    return ReadingRow(**row)
