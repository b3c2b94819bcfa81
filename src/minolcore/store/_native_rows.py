"""Packed rows bound from C onto the store's own connection (``mc_sql_insert``).

The C core gets the connection's ``sqlite3*`` from SQLite itself: it registers an
auto-extension, an entry point the SQLite library calls for every connection it opens, in
the very library Python's ``sqlite3`` module loaded (found through that module, see
csrc/mc_sqlite.c). The entry point gives each connection an SQL function,
``minolcore_connection()``, whose number leads the C core back to the connection for as
long as it is open; the store asks its own connection for the number. The statements then
run inside the transactions the store begins and commits through Python. Where that
library cannot be found (the pure-Python backend, a Python whose ``sqlite3`` is linked in
statically, Windows), :func:`connect` returns no native rows and the store binds through
Python's ``sqlite3`` as before.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from minolcore._native import BACKEND, ffi, lib
from minolcore.store._columns import DOUBLE, INT64, NULL, TABLE, TEXT, PackedColumns, TextTable

__all__ = ["NativeRows", "connect"]

# SQLite's primary result codes, mapped to the exceptions Python's sqlite3 raises for them.
_ERRORS: dict[int, type[Exception]] = {
    2: sqlite3.InternalError,  # INTERNAL
    12: sqlite3.InternalError,  # NOTFOUND
    7: MemoryError,  # NOMEM
    11: sqlite3.DatabaseError,  # CORRUPT
    18: sqlite3.DataError,  # TOOBIG
    19: sqlite3.IntegrityError,  # CONSTRAINT
    20: sqlite3.IntegrityError,  # MISMATCH
    25: sqlite3.InterfaceError,  # RANGE (the C core's: a table entry out of range)
    # ERROR, PERM, ABORT, BUSY, LOCKED, READONLY, INTERRUPT, IOERR, FULL, CANTOPEN, PROTOCOL,
    # EMPTY, SCHEMA
    **dict.fromkeys((1, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 16, 17), sqlite3.OperationalError),
}
_MISUSE = 21
_ERROR_BYTES = 512
_LIBRARY_LOCK = threading.Lock()


@functools.cache
def _library_found() -> bool:
    """Whether the C core found SQLite's functions and watches connections being opened."""
    if BACKEND != "cffi":
        return False
    import _sqlite3  # noqa: PLC0415  (the module whose SQLite library is wanted)

    path = getattr(_sqlite3, "__file__", None)  # None where it is built into Python
    with _LIBRARY_LOCK:
        if path is None or lib.mc_sql_bind_library(os.fsencode(path)) != 1:
            return False
        return bool(lib.mc_sql_watch_opens() == 0)


def connect(
    open_connection: Callable[[], sqlite3.Connection],
) -> tuple[sqlite3.Connection, NativeRows | None]:
    """Open a connection with ``open_connection`` and, where the C core can bind on it, its
    :class:`NativeRows`."""
    if not _library_found():
        return open_connection(), None
    db = open_connection()
    try:
        (number,) = db.execute("SELECT minolcore_connection()").fetchone()
    except sqlite3.Error:
        return db, None  # the function could not be added: Python's sqlite3 binds
    return db, (NativeRows(number) if lib.mc_sql_connection(number) != ffi.NULL else None)


class NativeRows:
    """Runs INSERT statements for packed rows on one connection, binding them from C.

    The connection is looked up by its number for every call, so a closed one is noticed,
    not used. Prepared statements are kept per statement text until :meth:`close`, which
    should come before the connection closes (SQLite keeps a connection closed with
    statements left open until they are finalized). A lock keeps :meth:`close` from
    finalizing statements that another thread is running (the call into C lets other
    threads run)."""

    def __init__(self, number: int) -> None:
        self._number: int | None = number
        self._lock = threading.Lock()
        self._statements: dict[str, Any] = {}
        self._error = ffi.new("char[]", _ERROR_BYTES)

    def _prepared(self, handle: Any, text: str) -> Any:
        statement = self._statements.get(text)
        if statement is None:
            out = ffi.new("void **")
            rc = lib.mc_sql_prepare(handle, text.encode(), out)
            if rc != 0:
                lib.mc_sql_finalize(out[0])
                raise _ERRORS.get(rc & 0xFF, sqlite3.DatabaseError)(
                    f"cannot prepare an insert (SQLite code {rc})"
                )
            statement = self._statements[text] = out[0]
        return statement

    def insert(self, many: str | None, rows_per_many: int, one: str, packed: PackedColumns) -> None:
        """Run ``many`` (a statement of ``rows_per_many`` rows, or None) for each whole chunk
        of the rows, then ``one`` (of one row) for each row left. Raises the exception
        Python's ``sqlite3`` raises for SQLite's error, rows before the failing one staying
        in the open transaction (as with ``executemany``)."""
        with self._lock:
            self._insert(many, rows_per_many, one, packed)

    def _insert(self, many: str | None, rows_per_many: int, one: str, packed: PackedColumns) -> None:
        handle = ffi.NULL if self._number is None else lib.mc_sql_connection(self._number)
        if handle == ffi.NULL:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        width = len(packed.kinds)
        columns = ffi.new("mc_sql_column[]", width)
        buffers = []  # the cdata views must outlive the call
        for number, column in enumerate(columns):
            kind, values, mask, table = _checked(packed, number)
            column.kind = kind
            if values is not None:
                view = ffi.from_buffer(values)
                buffers.append(view)
                column.values = view
            if mask is not None:
                view = ffi.from_buffer(mask)
                buffers.append(view)
                column.nulls = view
            if table is not None:
                texts, offsets = table
                views = (ffi.from_buffer(texts), ffi.from_buffer("int64_t[]", offsets))
                buffers.extend(views)
                column.table, column.offsets = views
                column.entries = len(offsets) - 1
                column.table_bytes = len(texts)
        many_statement = ffi.NULL if many is None else self._prepared(handle, many)
        rc = lib.mc_sql_insert(
            handle,
            many_statement,
            rows_per_many,
            self._prepared(handle, one),
            columns,
            width,
            packed.rows,
            self._error,
            _ERROR_BYTES,
        )
        if rc != 0:
            message = ffi.string(self._error).decode(errors="replace")
            if rc & 0xFF == _MISUSE:
                # Statements that do not fit the columns: a fault of the caller, not of the rows.
                raise RuntimeError(f"the C core refused the insert: {message}")
            raise _ERRORS.get(rc & 0xFF, sqlite3.DatabaseError)(message)

    def close(self) -> None:
        """Finalize the prepared statements; the connection is not used again."""
        with self._lock:
            statements, self._statements = self._statements, {}
            for statement in statements.values():
                lib.mc_sql_finalize(statement)
            self._number = None


def _checked(packed: PackedColumns, number: int) -> tuple[int, Any, bytes | None, TextTable | None]:
    """Column ``number`` of ``packed`` as the C core reads it: numbers in contiguous arrays of
    their C type, and every buffer as long as the rows need (else ValueError), so that C never
    reads beyond one."""
    kind, values, mask, table = (
        packed.kinds[number],
        packed.values[number],
        packed.nulls[number],
        packed.table(number),
    )
    rows = packed.rows
    if mask is not None and len(mask) != rows:
        raise ValueError("a null mask of another length than the rows")
    if kind in (INT64, TABLE):
        values = np.ascontiguousarray(values, dtype=np.int64)
    elif kind == DOUBLE:
        values = np.ascontiguousarray(values, dtype=np.float64)
    elif kind == TEXT:
        present = rows if mask is None else rows - np.count_nonzero(np.frombuffer(mask, dtype=np.uint8))
        if not isinstance(values, bytes) or values.count(0) != present:
            raise ValueError("texts that do not end once per row")
    elif kind == NULL:
        values = None
    else:
        raise ValueError(f"no column kind {kind}")
    if kind in (INT64, DOUBLE, TABLE) and len(values) != rows:
        raise ValueError("a column of another length than the rows")
    if kind == TABLE:
        if table is None:
            raise ValueError("a table column without its table")
        texts, offsets = table
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if len(offsets) < 1:
            raise ValueError("a table without offsets")
        table = (texts, offsets)
    return kind, values, mask, table
