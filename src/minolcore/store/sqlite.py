"""The default store: one SQLite file in WAL mode.

Rows are inserted with ``INSERT ... ON CONFLICT DO NOTHING`` on their natural keys (device
times keep their extremes with an upsert), one transaction per batch, so writes are
idempotent and crash-safe: SQLite commits a batch whole or not at all.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import operator
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import msgspec
import numpy as np

from minolcore.errors import ConfigError, InputError, StoreError
from minolcore.store import _native_rows
from minolcore.store._checkpoints import BackgroundCheckpoints
from minolcore.store._columns import PackedColumns, TextTable, pack_columns
from minolcore.store._readings import (
    historic_rows,
    merge_reading_blocks_keyed,
    pack_readings,
    placements,
    reading_keys,
    select_rows,
)
from minolcore.store._uplinks import pack_uplinks
from minolcore.store.base import (
    DeviceRow,
    ReadingBlock,
    ReadingRow,
    ReceptionRow,
    RejectedRow,
    StatusEventRow,
    StoreBatch,
    UplinkRow,
    UplinkValues,
)
from minolcore.store.receptions import encode_receptions

__all__ = ["SQLiteStore"]

logger = logging.getLogger(__name__)

# 2: receptions kept in their uplink's row (a JSON array), no receptions table; a status
# event's detail is part of its key.
# 3: the devices of each building and unit in a small placements table instead of an index
# of every reading by unit (version 2 databases are brought up to 3 when opened).
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device_uid TEXT PRIMARY KEY, radio TEXT NOT NULL, manufacturer TEXT NOT NULL,
    meter_id TEXT NOT NULL, version INTEGER NOT NULL, device_type INTEGER NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uplinks (
    uplink_key TEXT PRIMARY KEY, device_uid TEXT NOT NULL,
    size INTEGER NOT NULL, security_status TEXT NOT NULL, decode_errors TEXT NOT NULL,
    first_received_ms INTEGER NOT NULL, last_received_ms INTEGER NOT NULL,
    receptions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    device_uid TEXT NOT NULL, reading_time TEXT NOT NULL, quantity TEXT NOT NULL,
    storage INTEGER NOT NULL, tariff INTEGER NOT NULL, subunit INTEGER NOT NULL,
    function TEXT NOT NULL, value REAL, unit TEXT NOT NULL, valid INTEGER NOT NULL,
    building_id TEXT, unit_id TEXT, uplink_key TEXT NOT NULL,
    PRIMARY KEY (device_uid, reading_time, quantity, storage, tariff, subunit, function)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS placements (
    building_id TEXT NOT NULL, unit_id TEXT NOT NULL, device_uid TEXT NOT NULL,
    PRIMARY KEY (building_id, unit_id, device_uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS status_events (
    device_uid TEXT NOT NULL, event_time TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (device_uid, event_time, event, detail)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    gateway_id TEXT NOT NULL, received_at_ms INTEGER NOT NULL, reason TEXT NOT NULL,
    payload_hex TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (gateway_id, received_at_ms, payload_hex)
) WITHOUT ROWID;
"""

_INSERT_DEVICE = """
INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device_uid) DO UPDATE SET
    kind = CASE WHEN devices.kind = 'generic' THEN excluded.kind ELSE devices.kind END
"""
# An uplink heard again (late copies, input fed twice) keeps the union of its receptions.
_INSERT_UPLINK = """
INSERT INTO uplinks VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET
    receptions = minolcore_merge_receptions(uplinks.receptions, excluded.receptions),
    first_received_ms = min(uplinks.first_received_ms, excluded.first_received_ms),
    last_received_ms = max(uplinks.last_received_ms, excluded.last_received_ms)
WHERE uplinks.receptions <> excluded.receptions
"""
_ADD_RECEPTIONS = """
UPDATE uplinks SET
    receptions = minolcore_merge_receptions(receptions, ?1),
    first_received_ms = min(first_received_ms, ?2),
    last_received_ms = max(last_received_ms, ?3)
WHERE uplink_key = ?4
"""
# The same value arrives in many uplinks (a due-date value is repeated all year): the row
# keeps the smallest uplink key, so the store does not depend on arrival order.
_INSERT_READING = """
INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET uplink_key = min(uplink_key, excluded.uplink_key)
"""
# Which devices have readings in which building and unit ('' for none, e.g. a building's own
# meter): a few rows per meter, which lead queries by building or unit to the readings' key.
_INSERT_PLACEMENT = "INSERT INTO placements VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
_FROM_VERSION_2 = (
    """CREATE TABLE IF NOT EXISTS placements (
        building_id TEXT NOT NULL, unit_id TEXT NOT NULL, device_uid TEXT NOT NULL,
        PRIMARY KEY (building_id, unit_id, device_uid)
    ) WITHOUT ROWID""",
    """INSERT INTO placements SELECT DISTINCT coalesce(building_id, ''), coalesce(unit_id, ''), device_uid
        FROM readings WHERE building_id IS NOT NULL OR unit_id IS NOT NULL ON CONFLICT DO NOTHING""",
    "DROP INDEX IF EXISTS readings_by_unit",
    "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
)
_INSERT_STATUS = "INSERT INTO status_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
_INSERT_REJECTED = "INSERT INTO rejected VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"

# Bytes per database page of a new store.
_PAGE_SIZE = 16384

# Rows per INSERT statement (and fewer where SQLite allows fewer parameters per statement):
# 500 rather than 100 took 4.7 % fewer instructions to insert 60,000 uplinks and 50,000
# readings (valgrind --tool=callgrind).
_ROWS_PER_STATEMENT = 500

# Historic reading keys remembered per connection (a few per meter and year).
_SETTLED_LIMIT = 200_000

# Seconds a write waits for another writer's lock (a large batch commits in a few seconds).
BUSY_TIMEOUT_S = 60.0

_TABLES = ("devices", "uplinks", "readings", "status_events", "rejected")
# placements is derived from the readings: counted and digested through them.
_OWN = frozenset(("meta", "placements", *_TABLES))
_ORDERS = {
    "devices": "device_uid",
    "uplinks": "uplink_key",
    "readings": "device_uid, reading_time, quantity, storage, tariff, subunit, function",
    "status_events": "device_uid, event_time, event, detail",
    "rejected": "gateway_id, received_at_ms, payload_hex",
}


class SQLiteStore:
    """The pipeline's store in one SQLite file (``":memory:"`` for tests).

    Its public methods write, count and describe; none returns readings or status events.
    Those are personal data, read only through :class:`minolcore.access.AccessLayer`, which
    uses the internal reader of :mod:`minolcore.store._reader`."""

    def __init__(self, path: str | Path, *, checkpoint_in_background: bool = False) -> None:
        """Open (or create) the store at ``path``.

        ``checkpoint_in_background``: copy the write-ahead log into the database on a
        thread of its own after each batch, instead of inside a batch's commit once the log
        is large (see :mod:`minolcore.store._checkpoints`): for bulk ingest, whose writer
        then does not wait for the disk. Ignored for an in-memory database (``""`` or
        ``":memory:"``). The thread ends at :meth:`close` (or when the store is garbage
        collected). Raises :class:`ConfigError` when the database cannot be opened or is
        not a minolcore database."""
        self.path = str(path)
        self._checkpoints: BackgroundCheckpoints | None = None
        try:
            # Another writer (an ingest, retention) may hold the lock for a large batch's commit.
            self._db, self._native_rows = _native_rows.connect(
                lambda: sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
                )
            )
        except sqlite3.Error as error:
            raise ConfigError(f"cannot open the database: {error}", where=self.path) from None
        # Statements prepared on the connection are finalized before it closes, also when the
        # store is dropped unclosed.
        self._close_native_rows = weakref.finalize(
            self, self._native_rows.close if self._native_rows is not None else _nothing
        )
        try:
            # The schema first: a file that is not ours is refused before anything changes it.
            version = self._open_schema()
            if version == "2":
                version = self._from_version_2()
            if version != str(SCHEMA_VERSION):
                raise ConfigError(
                    f"database schema version {version}, this minolcore writes version {SCHEMA_VERSION}: "
                    "ingest into a new database",
                    where=self.path,
                )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Bulk loads touch the readings tree and its unit index all over: a page cache of
            # 64 MB (bounded, per connection) instead of 2 MB keeps them out of the OS.
            self._db.execute("PRAGMA cache_size=-65536")
            self._db.execute("PRAGMA temp_store=MEMORY")
            self._db.create_function("minolcore_merge_receptions", 2, merge_receptions, deterministic=True)
            if checkpoint_in_background and self.path not in ("", ":memory:"):
                self._start_checkpoints()
        except sqlite3.DatabaseError as error:
            self.close()
            raise ConfigError(f"not a minolcore database: {error}", where=self.path) from None
        except ConfigError:
            self.close()
            raise
        self._settled: dict[tuple[Any, ...], str] = {}
        self._settled_version: tuple[int, int] = (-1, -1)

    def _start_checkpoints(self) -> None:
        try:
            checkpoints = BackgroundCheckpoints(self.path, BUSY_TIMEOUT_S)
        except sqlite3.Error as error:
            raise ConfigError(
                f"cannot open a second connection for background checkpoints: {error}", where=self.path
            ) from None
        self._checkpoints = checkpoints
        # The thread holds the checkpoints, not the store: a store dropped unclosed stops it.
        self._stop_checkpoints = weakref.finalize(self, checkpoints.close)
        self._db.execute("PRAGMA wal_autocheckpoint=0")

    def _close_checkpoints(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints = None
            self._stop_checkpoints()

    def _open_schema(self) -> str | None:
        """The schema version of the database, creating the tables in a new (empty) one.

        A database of another application, or of another schema version, is refused before
        anything is written to it; one whose schema is in place needs no write at all."""
        db = self._db
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # The access layer keeps its tables (access_*) in the same file, maybe created first.
        foreign = sorted(name for name in tables if not name.startswith("access_") and name not in _OWN)
        if foreign and "meta" not in tables:
            raise ConfigError(
                "not a minolcore database: it holds other tables (" + ", ".join(foreign[:5]) + ")",
                where=self.path,
            )
        version = self.get_meta("schema_version") if "meta" in tables else None
        if version is None:
            if not tables:
                # An empty file: pages of 16 KB rather than 4 KB. A bulk load's commits then
                # write a quarter as many log frames: 0.86-0.94 s against 1.19-1.22 s of
                # commits for the million lines' rows (tools/store_floor.py, two runs each).
                # A page's size is fixed once the first table is created.
                db.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            # A new database, or one whose creation was interrupted: one transaction.
            db.executescript(
                f"BEGIN IMMEDIATE;{_SCHEMA}"
                f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;"
                "COMMIT;"
            )
            version = self.get_meta("schema_version")
        return version

    def _from_version_2(self) -> str | None:
        """Bring a version 2 database up to version 3, in one transaction.

        Writers of an older minolcore must be stopped first: they would go on writing
        readings without placements, which queries by building or unit do not find."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have brought it up while this one waited for the lock.
            if self.get_meta("schema_version") == "2":
                for statement in _FROM_VERSION_2:
                    db.execute(statement)
                logger.info("%s: brought from schema version 2 to 3", self.path)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return self.get_meta("schema_version")

    def write(self, batch: StoreBatch) -> None:
        """Write one batch in one transaction; rows already present are left as they are.

        Raises :class:`StoreError` when the database refuses the write (still locked by
        another writer after ``BUSY_TIMEOUT_S`` seconds, read-only, full) and
        :class:`InputError` for a row it cannot hold (integers beyond 64 bits, text that is
        not Unicode, a value of a type SQLite has no column type for, a missing key, a row
        of the wrong width, a reading time that is no date-time "YYYY-MM-DDTHH:MM[:SS]");
        either way nothing of the batch is written. A closed store
        raises :class:`StoreError`."""
        try:
            self._write(batch)
        except sqlite3.OperationalError as error:
            if "user-defined function raised exception" in str(error):
                # minolcore_merge_receptions met text that is not receptions (an encoded row
                # built by hand, or a damaged row in the file).
                raise InputError(
                    f"{self.path}: an uplink's receptions are not stored reception text"
                ) from None
            raise StoreError(f"{self.path}: {error}") from None
        except sqlite3.ProgrammingError as error:
            if "closed" in str(error):
                raise StoreError(f"{self.path}: the store is closed") from None
            # A value of a type SQLite cannot hold (a list, a dict, ...).
            raise InputError(f"a row {self.path} cannot hold: {error}") from None
        except (
            sqlite3.IntegrityError,
            sqlite3.InterfaceError,  # a packed column the C core refuses (a table entry out of range)
            sqlite3.DataError,
            OverflowError,
            TypeError,
            IndexError,
            UnicodeEncodeError,
        ) as error:
            raise InputError(f"a row {self.path} cannot hold: {error}") from None

    def _write(self, batch: StoreBatch) -> None:
        db = self._db
        if self._checkpoints is not None:
            self._await_checkpoint(self._checkpoints)
        db.execute("BEGIN IMMEDIATE")
        try:
            # Holding the write lock, nobody else can change the database until COMMIT: what
            # changed since this connection's last commit is known here, before its own rows.
            if self._version() != self._settled_version:
                self._settled.clear()
            # Rows repeated within the batch are merged first as the statements would merge
            # them (most readings and devices repeat): SQLite sees each key once.
            insert = self._insert_rows
            insert(_INSERT_DEVICE, _merged_devices(batch.devices))
            self._insert_uplinks(batch)
            late = _late_reception_values(batch.late_receptions)
            found = db.executemany(_ADD_RECEPTIONS, late).rowcount
            if found < len(late):
                # Copies of uplinks this database never stored (a pipeline restored from
                # another store's state): there is no row to add them to.
                logger.warning("%d late copies name uplinks that are not in %s", len(late) - found, self.path)
            merged, uplink_table = _merged_readings(batch)
            readings = self._unsettled(merged)
            # Rows left out keep the tables: the uplink keys' table still holds.
            self._insert_readings(
                readings, uplink_table if readings.uplink_keys is merged.uplink_keys else None
            )
            insert(_INSERT_PLACEMENT, placements(readings))
            insert(_INSERT_STATUS, _distinct_status_events(batch.status_events))
            insert(_INSERT_REJECTED, [_rejected_values(row) for row in batch.rejected])
            version = self._version()  # COMMIT changes neither number
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if self._checkpoints is not None:
            self._checkpoints.request()
        self._settle(readings, version)

    def _await_checkpoint(self, checkpoints: BackgroundCheckpoints) -> None:
        """Wait for the checkpoint of the last batch, so that SQLite can start the log over
        when this write begins (it does only after a checkpoint copied all of it). If the
        thread has stopped, SQLite checkpoints at commits again, as without it."""
        if checkpoints.wait():
            return
        logger.warning("%s: background checkpoints stopped; checkpoints run at commits again", self.path)
        self._db.execute("PRAGMA wal_autocheckpoint=1000")
        self._close_checkpoints()

    def _insert_rows(self, statement: str, rows: Sequence[Sequence[object]]) -> None:
        """Run an ``INSERT ... VALUES (?, ...)`` statement (with its upsert clause) for every
        row, many rows per statement: SQLite then opens the table and its key once per
        statement rather than once per row (with 100 rows, a fifth less time at the median
        for the million lines' uplinks and readings than ``executemany`` with one row per
        statement, 5-28 % over five runs of ``tools/store_floor.py``). The C core binds
        the rows where they pack into columns (:mod:`minolcore.store._columns`)."""
        head, width, tail = _values_clause(statement)
        if set(map(len, rows)) - {width}:
            raise InputError(f"a row of {width} values expected for: {head.split('(')[0].strip()}")
        if self._native_rows is not None and rows:
            packed = pack_columns(rows, width)
            if packed is not None:
                self._insert_packed(statement, packed)
                return
        per = self._rows_per_statement(width)
        whole = len(rows) - len(rows) % per
        flat = itertools.chain.from_iterable
        if whole:
            self._db.executemany(
                _many_rows(head, width, tail, per),
                (tuple(flat(rows[i : i + per])) for i in range(0, whole, per)),
            )
        # The rest in pieces of a power of two rows each: a few statement shapes per
        # statement, so the cached statement texts stay few (not one per remainder).
        start = whole
        while start < len(rows):
            size = 1 << ((len(rows) - start).bit_length() - 1)
            self._db.execute(_many_rows(head, width, tail, size), tuple(flat(rows[start : start + size])))
            start += size

    def _rows_per_statement(self, width: int) -> int:
        limit = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return max(1, min(_ROWS_PER_STATEMENT, limit // width))

    def _insert_packed(self, statement: str, packed: PackedColumns) -> None:
        """Run ``statement`` for the packed rows, bound from C (only with native rows)."""
        assert self._native_rows is not None
        head, width, tail = _values_clause(statement)
        per = self._rows_per_statement(width)
        many = _many_rows(head, width, tail, per) if packed.rows >= per else None
        self._native_rows.insert(many, per, _many_rows(head, width, tail, 1), packed)

    def _insert_uplinks(self, batch: StoreBatch) -> None:
        """The batch's uplinks: the pipeline's (every key once, no row objects) packed in key
        order and bound from C; otherwise merged per key first (see :func:`_merged_uplinks`)."""
        blocks, values = batch.uplink_blocks, batch.uplink_values
        for block in blocks:
            block.check()
        if self._native_rows is not None and not batch.uplinks:
            packed = pack_uplinks(blocks, values)
            if packed is not None:
                self._insert_packed(_INSERT_UPLINK, packed)
                return
        from_blocks = itertools.chain.from_iterable(block.rows() for block in blocks)
        self._insert_rows(_INSERT_UPLINK, _merged_uplinks(batch.uplinks, [*values, *from_blocks]))

    def _insert_readings(self, readings: ReadingBlock, uplink_table: TextTable | None = None) -> None:
        """Insert the merged readings (``uplink_table``: their uplink keys as a table, if made)."""
        if not len(readings):
            return
        if self._native_rows is not None:
            packed = pack_readings(readings, uplink_table)
            if packed is not None:
                self._insert_packed(_INSERT_READING, packed)
                return
        self._insert_rows(_INSERT_READING, readings.rows())

    def _version(self) -> tuple[int, int]:
        """(PRAGMA data_version, total_changes): the first changes when another connection
        commits, the second when a statement of this one changes rows."""
        db = self._db
        return db.execute("PRAGMA data_version").fetchone()[0], db.total_changes

    def _unsettled(self, readings: ReadingBlock) -> ReadingBlock:
        """The reading rows whose upsert can change the store.

        A historic value (storage > 0: due-date and month-end values) comes again in every
        telegram until the next due date. Once this connection committed its key with an
        uplink key, a row with an equal or larger one is a no-op: it is not sent to SQLite.
        The memory is dropped as soon as anything else changed the database (another
        connection, or another statement on this one, such as retention)."""
        settled = self._settled
        if not settled or not len(readings):
            return readings
        historic = historic_rows(readings)
        uplink_keys = readings.uplink_keys
        stale = [
            row
            for row, key, uplink in zip(
                historic.tolist(),
                reading_keys(readings, historic),
                readings.uplink[historic].tolist(),
                strict=True,
            )
            if (held := settled.get(key)) is not None and not uplink_keys[uplink] < held
        ]
        if not stale:
            return readings
        keep = np.ones(len(readings), dtype=np.bool_)
        keep[stale] = False
        return select_rows(readings, np.flatnonzero(keep))

    def _settle(self, readings: ReadingBlock, version: tuple[int, int]) -> None:
        settled = self._settled
        if len(settled) > _SETTLED_LIMIT:
            settled.clear()
        # Historic rows are a few in ten: their keys are made, not every row's.
        historic = historic_rows(readings)
        uplink_keys = readings.uplink_keys
        for key, uplink in zip(
            reading_keys(readings, historic), readings.uplink[historic].tolist(), strict=True
        ):
            held = settled.get(key)
            text = uplink_keys[uplink]
            settled[key] = text if held is None else min(held, text)
        self._settled_version = version

    def set_meta(self, key: str, value: str) -> None:
        """Store a configuration text beside the data (e.g. the site file the data was assigned with)."""
        self._db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def get_meta(self, key: str) -> str | None:
        """A configuration text stored with :meth:`set_meta`, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def latest_reading_time(self) -> str | None:
        """The newest reading time (ISO 8601), or None for an empty store."""
        row = self._db.execute("SELECT max(reading_time) FROM readings").fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def devices(self) -> list[DeviceRow]:
        """Every device seen, ordered by its uid."""
        rows = self._db.execute("SELECT * FROM devices ORDER BY device_uid")
        return [DeviceRow(**dict(zip(DeviceRow.__annotations__, values, strict=True))) for values in rows]

    def device_activity(self) -> dict[str, tuple[int, int, int]]:
        """Per device: (first and last reception time in ms since the epoch, number of uplinks)."""
        rows = self._db.execute(
            "SELECT device_uid, min(first_received_ms), max(last_received_ms), count(*) "
            "FROM uplinks GROUP BY device_uid"
        )
        return {uid: (first, last, count) for uid, first, last, count in rows}

    def rejected(self) -> list[RejectedRow]:
        """Rejected receptions, ordered by time."""
        rows = self._db.execute("SELECT * FROM rejected ORDER BY received_at_ms, gateway_id, payload_hex")
        return [
            RejectedRow(gateway_id=a, received_at_ms=b, reason=c, payload_hex=d, detail=e)
            for a, b, c, d, e in rows
        ]

    def rejected_by_reason(self) -> dict[str, int]:
        """Number of rejected receptions per reason."""
        return dict(self._db.execute("SELECT reason, count(*) FROM rejected GROUP BY reason ORDER BY reason"))

    def counts(self) -> dict[str, int]:
        """Rows per table, and the receptions stored in the uplinks."""
        counts = {table: self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in _TABLES}
        row = self._db.execute("SELECT sum(json_array_length(receptions)) FROM uplinks").fetchone()
        counts["receptions"] = int(row[0] or 0)
        return counts

    def digest(self) -> dict[str, str]:
        """A SHA-256 digest (hex) of every table's rows in key order: two stores with equal
        digests hold the same data, and comparing them shows no reading."""
        result: dict[str, str] = {}
        for table, order in _ORDERS.items():
            digest = hashlib.sha256()
            for row in self._db.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                digest.update(repr(row).encode())
                digest.update(b"\n")
            result[table] = digest.hexdigest()
        return result

    def close(self) -> None:
        """Close the connection (and stop the background checkpoints, if any)."""
        self._close_checkpoints()
        self._close_native_rows()
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path}>"


# The merges below leave what the statements would leave of rows inserted in the given
# order: the first row per key (updated as the upsert updates it), kept in a dict as it
# comes; only the kept rows become value tuples. They are inserted in key order (readings
# grouped by device).


def _merged_uplinks(rows: Sequence[UplinkRow], values_rows: Sequence[UplinkValues]) -> list[UplinkValues]:
    """One row per uplink key with the union of the receptions of the rows given for it (the
    row objects count as coming before the value tuples)."""
    if not rows and len(set(map(_UPLINK_KEY, values_rows))) == len(values_rows):
        # Every key once (the pipeline's own batches): sorted by key, nothing to merge.
        return sorted(values_rows, key=_UPLINK_KEY)
    first: dict[str, UplinkRow | UplinkValues] = {}
    repeated: dict[str, list[UplinkRow | UplinkValues]] = {}
    both: Iterable[UplinkRow | UplinkValues] = itertools.chain(rows, values_rows)
    for row in both:
        key = row[0] if type(row) is tuple else cast(UplinkRow, row).uplink_key
        held = first.setdefault(key, row)
        if held is not row:
            repeated.setdefault(key, [held]).append(row)
    values: list[UplinkValues] = []
    for key in sorted(first):
        row = first[key]
        if repeated and key in repeated:
            copies = [copy for one in repeated[key] for copy in _receptions_of(one)]
        elif type(row) is tuple:
            values.append(row)
            continue
        else:
            copies = list(_receptions_of(row))
        if not copies:
            raise InputError(
                f"uplink {key}: no receptions (an uplink is stored with the copies it was heard in)"
            )
        head = row[:5] if type(row) is tuple else _uplink_head(cast(UplinkRow, row))
        values.append((*head, *encode_receptions(copies)))
    return values


def _uplink_head(row: UplinkRow) -> tuple[str, str, int, str, str]:
    return (row.uplink_key, row.device_uid, row.size, row.security_status, row.decode_errors)


def _receptions_of(row: UplinkRow | UplinkValues) -> Sequence[ReceptionRow]:
    if type(row) is tuple:
        try:
            return _RECEPTIONS_DECODER.decode(row[7])
        except (msgspec.DecodeError, UnicodeError, TypeError) as error:
            raise InputError(f"uplink {row[0]}: receptions that are not stored text: {error}") from None
    return cast(UplinkRow, row).receptions


def _late_reception_values(rows: Sequence[tuple[str, ReceptionRow]]) -> list[tuple[object, ...]]:
    grouped: dict[str, list[ReceptionRow]] = {}
    for key, reception in rows:
        grouped.setdefault(key, []).append(reception)
    values: list[tuple[object, ...]] = []
    for key in sorted(grouped):
        first_ms, last_ms, text = encode_receptions(grouped[key])
        values.append((text, first_ms, last_ms, key))
    return values


def _nothing() -> None:
    pass


@functools.cache
def _values_clause(statement: str) -> tuple[str, int, str]:
    """(what comes before VALUES, the number of values per row, what follows the row)."""
    head, _, rest = statement.partition("VALUES (")
    row, _, tail = rest.partition(")")
    return head, row.count("?"), tail


@functools.cache
def _many_rows(head: str, width: int, tail: str, rows: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return f"{head}VALUES {', '.join([one] * rows)}{tail}"


_UPLINK_KEY = operator.itemgetter(0)
_RECEPTIONS_DECODER = msgspec.json.Decoder(list[ReceptionRow])


def merge_receptions(stored: str | None, added: str | None) -> str | None:
    """The union of two stored reception arrays (JSON text), in canonical order: the SQL
    function ``minolcore_merge_receptions`` that merges an uplink heard again."""
    if stored is None or added is None:
        return stored if added is None else added
    both = _RECEPTIONS_DECODER.decode(stored) + _RECEPTIONS_DECODER.decode(added)
    return encode_receptions(both)[2]


def _distinct_status_events(rows: Sequence[StatusEventRow]) -> list[tuple[object, ...]]:
    # StatusEventRow's fields are the table's columns in order: astuple runs in C.
    return sorted(set(map(_status_tuple, rows)))


_status_tuple = cast(Callable[[StatusEventRow], tuple[object, ...]], msgspec.structs.astuple)


def _merged_devices(rows: Iterable[DeviceRow]) -> list[tuple[object, ...]]:
    """One row per device as the upsert leaves it: the first row, whose kind a later row
    replaces while it is still 'generic'."""
    merged: dict[str, tuple[object, ...]] = {}
    for row in rows:
        held = merged.get(row.device_uid)
        if held is None:
            merged[row.device_uid] = _device_values(row)
        elif held[6] == "generic":
            merged[row.device_uid] = (*held[:6], row.kind)
    return [merged[key] for key in sorted(merged)]


def _merged_readings(batch: StoreBatch) -> tuple[ReadingBlock, TextTable | None]:
    """One row per reading key of the batch's readings, as the upsert leaves them (see
    :func:`~minolcore.store._readings.merge_reading_blocks`): the row objects first, then the
    value tuples, then the blocks; and their uplink keys as a table where they make one."""
    astuple = cast(Callable[[ReadingRow], tuple[Any, ...]], msgspec.structs.astuple)
    blocks = list(batch.reading_blocks)
    if batch.reading_values:
        blocks.insert(0, ReadingBlock.from_rows(batch.reading_values))
    if batch.readings:
        blocks.insert(0, ReadingBlock.from_rows(list(map(astuple, batch.readings))))
    for block in blocks:
        block.check()
    return merge_reading_blocks_keyed(blocks)


def _device_values(row: DeviceRow) -> tuple[object, ...]:
    return (row.device_uid, row.radio, row.manufacturer, row.meter_id, row.version, row.device_type, row.kind)


def _rejected_values(row: RejectedRow) -> tuple[object, ...]:
    return (row.gateway_id, row.received_at_ms, row.reason, row.payload_hex, row.detail)
