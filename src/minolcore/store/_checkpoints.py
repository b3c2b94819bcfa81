"""WAL checkpoints on a thread of their own, so that a bulk writer need not wait for them.

In WAL mode with ``synchronous=NORMAL`` a commit only appends to the write-ahead log; the
checkpoint that copies the log into the database is where SQLite syncs both files to disk.
Run inside the writer's COMMIT (SQLite's automatic checkpoint), that wait stops the
writer: about 0.4-1.3 s per million ingested lines here, nearly all of it in ``fsync``.
On a second connection in a background thread the wait overlaps with the writer's next
batch: SQLite releases the GIL while it checkpoints, and the thread spends its time
waiting for the disk, not on the CPU.

The guarantees stay those of WAL mode: a checkpoint copies only committed transactions,
and whatever has not been copied when the process dies is in the log, which the next
connection reads (and checkpoints). The log stays bounded as with SQLite's own checkpoints
because the writer waits (:meth:`BackgroundCheckpoints.wait`) for the checkpoint of its
last batch before it begins the next: SQLite starts the log over only when a write begins
after a checkpoint has copied all of it. Between batches that wait is normally over
before it begins (a checkpoint takes a fraction of the time the pipeline spends on the
next batch); on a slow disk it is the wait SQLite's own checkpoint would have made.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["BackgroundCheckpoints"]

logger = logging.getLogger(__name__)


class BackgroundCheckpoints:
    """A thread that runs a passive WAL checkpoint of the database at ``path`` each time
    :meth:`request` is called (requests made while one runs are served by one more run).

    The writer's own connection should have ``PRAGMA wal_autocheckpoint=0`` and call
    :meth:`wait` before each write transaction. A checkpoint that fails is logged and the
    next request tries again; nothing is raised into the writer. :meth:`close` stops the
    thread. Raises :class:`sqlite3.Error` when the second connection cannot be opened."""

    def __init__(self, path: str, busy_timeout_s: float) -> None:
        # Opened here, not in the thread: a file that cannot be opened fails the caller.
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
        self._path = path
        self._wanted = threading.Condition()
        self._pending = False
        self._closing = False
        # Requests made, and requests whose checkpoint has run (a run serves all before it).
        self._requested = 0
        self._served = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"minolcore checkpoints {path}", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Ask for a checkpoint of everything committed so far (returns at once)."""
        with self._wanted:
            self._pending = True
            self._requested += 1
            self._wanted.notify_all()

    @property
    def running(self) -> bool:
        """Whether the thread still serves requests (it stops at :meth:`close`, or after
        an error that is not SQLite's, which is logged)."""
        return not self._stopped

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the checkpoints requested so far have run (or failed); False if
        ``timeout_s`` seconds passed first or the thread stopped before."""
        with self._wanted:
            wanted = self._requested
            return (
                self._wanted.wait_for(lambda: self._served >= wanted or self._stopped, timeout_s)
                and self._served >= wanted
            )

    def close(self) -> None:
        """Stop the thread (after the checkpoint it is running, if any; a request not yet
        started is dropped) and close its connection. The writer's connection, closed
        last, checkpoints what remains."""
        with self._wanted:
            self._closing = True
            self._wanted.notify_all()
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                with self._wanted:
                    while not (self._pending or self._closing):
                        self._wanted.wait()
                    if self._closing:
                        return
                    self._pending = False
                    serving = self._requested
                try:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    logger.warning("%s: background checkpoint failed: %s", self._path, error)
                except Exception:
                    # Not SQLite's: the thread cannot go on; the writer sees it stopped.
                    logger.exception("%s: background checkpoints stopped", self._path)
                    return
                with self._wanted:
                    self._served = serving
                    self._wanted.notify_all()
        finally:
            self._db.close()
            with self._wanted:
                self._stopped = True
                self._wanted.notify_all()
