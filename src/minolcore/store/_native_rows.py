"""Packed rows bound from C onto the store's own connection (``mc_sql_insert``).

The C core gets the connection's ``sqlite3*`` from SQLite itself: it registers an
auto-extension, an entry point the SQLite library calls for every connection it opens, in
the very library Python's ``sqlite3`` module loaded (found through that module, see
csrc/mc_sqlite.c). Its statements then run inside the transactions the store begins and
commits through Python. Where that library cannot be found (the pure-Python backend, a
Python whose ``sqlite3`` is linked in statically, Windows), :func:`connect` returns no
native rows and the store binds through Python's ``sqlite3`` as before.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from minolcore._native import BACKEND, ffi, lib
from minolcore.store._columns import PackedColumns

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
    21: sqlite3.InterfaceError,  # MISUSE
    25: sqlite3.InterfaceError,  # RANGE
    # ERROR, PERM, ABORT, BUSY, LOCKED, READONLY, INTERRUPT, IOERR, FULL, CANTOPEN, PROTOCOL,
    # EMPTY, SCHEMA
    **dict.fromkeys((1, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 16, 17), sqlite3.OperationalError),
}
_ERROR_BYTES = 512


@functools.cache
def _library_found() -> bool:
    """Whether the C core found SQLite's functions and watches connections being opened."""
    if BACKEND != "cffi":
        return False
    import _sqlite3  # noqa: PLC0415  (the module whose SQLite library is wanted)

    path = getattr(_sqlite3, "__file__", None)  # None where it is built into Python
    if path is None or lib.mc_sql_bind_library(os.fsencode(path)) != 1:
        return False
    return bool(lib.mc_sql_watch_opens() == 0)


def connect(
    open_connection: Callable[[], sqlite3.Connection],
) -> tuple[sqlite3.Connection, NativeRows | None]:
    """Open a connection with ``open_connection`` (in this thread) and, where the C core can
    bind on it, its :class:`NativeRows`."""
    if not _library_found():
        return open_connection(), None
    lib.mc_sql_take_opened()  # forget a connection this thread opened earlier
    db = open_connection()
    handle = lib.mc_sql_take_opened()
    return db, (None if handle == ffi.NULL else NativeRows(handle))


class NativeRows:
    """Runs INSERT statements for packed rows on one connection, binding them from C.

    Prepared statements are kept per statement text until :meth:`close`, which must come
    before the connection closes. A lock keeps :meth:`close` from finalizing statements
    that another thread is running (the call into C lets other threads run)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._statements: dict[str, Any] = {}
        self._error = ffi.new("char[]", _ERROR_BYTES)

    def _prepared(self, text: str) -> Any:
        statement = self._statements.get(text)
        if statement is None:
            out = ffi.new("void **")
            rc = lib.mc_sql_prepare(self._handle, text.encode(), out)
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
        if self._handle is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        width = len(packed.kinds)
        columns = ffi.new("mc_sql_column[]", width)
        buffers = []  # the cdata views must outlive the call
        for column, kind, values, mask in zip(
            columns, packed.kinds, packed.values, packed.nulls, strict=True
        ):
            column.kind = kind
            if values is not None:
                view = ffi.from_buffer(values)
                buffers.append(view)
                column.values = view
            if mask is not None:
                view = ffi.from_buffer(mask)
                buffers.append(view)
                column.nulls = view
        many_statement = ffi.NULL if many is None else self._prepared(many)
        rc = lib.mc_sql_insert(
            self._handle,
            many_statement,
            rows_per_many,
            self._prepared(one),
            columns,
            width,
            packed.rows,
            self._error,
            _ERROR_BYTES,
        )
        if rc != 0:
            message = ffi.string(self._error).decode(errors="replace")
            raise _ERRORS.get(rc & 0xFF, sqlite3.DatabaseError)(message)

    def close(self) -> None:
        """Finalize the prepared statements; the connection is not used again."""
        with self._lock:
            statements, self._statements = self._statements, {}
            for statement in statements.values():
                lib.mc_sql_finalize(statement)
            self._handle = None
