"""The audit trail: every access decision, appended to a hash chain with a keyed MAC.

Each row holds ``seq`` (1, 2, ...), ``entry`` (canonical JSON: sorted keys, no spaces),
``prev`` (the previous row's hash, 64 zeros for the first), ``hash`` =
SHA-256(prev ‖ "\\n" ‖ seq ‖ "\\n" ‖ entry) and ``mac`` = HMAC-SHA-256(audit key, "entry" ‖ hash).
A head row holds the last seq and hash with its own MAC, so cutting entries off the end is
found too. Without the audit key nobody can write a row or a head that verifies; the
verifier names the first position where the log stops being the one that was written.
Principal ids are written as pseudonymous references (see :meth:`AuditLog.ref`), so erasing a
person unlinks their entries without breaking the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence

from minolcore._model import Record
from minolcore.errors import ConfigError

__all__ = ["GENESIS", "AuditLog", "AuditProblem", "AuditRecord", "AuditReport", "verify_records"]

GENESIS = "0" * 64
_MIN_KEY_BYTES = 16

AuditValue = str | int | float | bool | None | list[str]


class AuditRecord(Record):
    """One stored row of the trail (see the module docstring for the fields)."""

    seq: int
    entry: str
    prev: str
    hash: str
    mac: str

    def data(self) -> dict[str, AuditValue]:
        """The decoded entry."""
        value: dict[str, AuditValue] = json.loads(self.entry)
        return value


class AuditProblem(Record):
    """Where the trail was changed: ``position`` (0-based row index in the log as read),
    ``seq`` the row's sequence number (None for a missing tail), and what was found."""

    position: int
    seq: int | None
    kind: str
    detail: str


class AuditReport(Record):
    """The verifier's answer: ``ok`` and every problem, the first one first."""

    ok: bool
    entries: int
    problems: tuple[AuditProblem, ...] = ()


def _chain_hash(prev: str, seq: int, entry: str) -> str:
    return hashlib.sha256(f"{prev}\n{seq}\n{entry}".encode()).hexdigest()


def _mac(key: bytes, label: str, text: str) -> str:
    return hmac.new(key, f"{label}\n{text}".encode(), hashlib.sha256).hexdigest()


def _head_mac(key: bytes, seq: int, last_hash: str) -> str:
    return _mac(key, "head", f"{seq}\n{last_hash}")


def verify_records(
    records: Sequence[AuditRecord], key: bytes, *, head: tuple[int, str, str] | None = None
) -> AuditReport:
    """Check a trail as read: every row's sequence number, link, hash and MAC, and (with
    ``head`` = (seq, hash, mac)) that nothing was cut off the end. Finds any modified, deleted,
    inserted or reordered row and reports the position of each inconsistency."""
    problems: list[AuditProblem] = []
    prev = GENESIS
    for position, record in enumerate(records):
        expected_seq = position + 1
        if record.seq != expected_seq:
            kind = "deleted" if record.seq > expected_seq else "reordered_or_inserted"
            problems.append(
                AuditProblem(
                    position=position,
                    seq=record.seq,
                    kind=kind,
                    detail=f"expected entry {expected_seq}, found {record.seq}",
                )
            )
        if record.prev != prev:
            problems.append(
                AuditProblem(
                    position=position,
                    seq=record.seq,
                    kind="broken_link",
                    detail="does not follow its predecessor",
                )
            )
        recomputed = _chain_hash(record.prev, record.seq, record.entry)
        if not hmac.compare_digest(recomputed, record.hash):
            problems.append(
                AuditProblem(
                    position=position, seq=record.seq, kind="modified", detail="content does not match hash"
                )
            )
        if not hmac.compare_digest(_mac(key, "entry", record.hash), record.mac):
            problems.append(
                AuditProblem(position=position, seq=record.seq, kind="forged", detail="MAC does not verify")
            )
        prev = record.hash
    if head is not None:
        seq, last_hash, mac = head
        if not hmac.compare_digest(_head_mac(key, seq, last_hash), mac):
            problems.append(
                AuditProblem(
                    position=len(records), seq=None, kind="forged_head", detail="head MAC does not verify"
                )
            )
        elif seq != len(records) or (records and not hmac.compare_digest(records[-1].hash, last_hash)):
            problems.append(
                AuditProblem(
                    position=min(seq, len(records)),
                    seq=None,
                    kind="truncated" if seq > len(records) else "head_mismatch",
                    detail=f"head says {seq} entries, the log has {len(records)}",
                )
            )
    elif records:
        problems.append(
            AuditProblem(position=len(records), seq=None, kind="head_missing", detail="no head row")
        )
    problems.sort(key=lambda p: p.position)
    return AuditReport(ok=not problems, entries=len(records), problems=tuple(problems))


class AuditLog:
    """The trail in the database of ``db``; ``key`` (at least 16 bytes) keys the MACs and must
    be kept apart from the database (e.g. in the service's secret store)."""

    def __init__(self, db: sqlite3.Connection, key: bytes, *, clock: Callable[[], float]) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ConfigError(f"the audit key needs at least {_MIN_KEY_BYTES} bytes", "audit_key")
        self._db = db
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._refs: dict[str, str] = {}

    def __repr__(self) -> str:
        return "<AuditLog>"

    def ref(self, person_id: str | None) -> str | None:
        """The pseudonymous reference that stands for ``person_id`` in the trail (created on
        first use; erasing the person deletes the link, leaving the entries unlinkable)."""
        if person_id is None:
            return None
        cached = self._refs.get(person_id)
        if cached is not None:
            return cached
        row = self._db.execute("SELECT ref FROM access_persons WHERE person_id = ?", (person_id,)).fetchone()
        if row is None:
            ref = "p-" + secrets.token_hex(8)
            self._db.execute(
                "INSERT INTO access_persons VALUES (?, ?) ON CONFLICT DO NOTHING", (person_id, ref)
            )
            row = self._db.execute(
                "SELECT ref FROM access_persons WHERE person_id = ?", (person_id,)
            ).fetchone()
        ref = str(row[0])
        self._refs[person_id] = ref
        return ref

    def resolve(self, ref: str) -> str | None:
        """The person id behind a reference, or None once the person was erased."""
        row = self._db.execute("SELECT person_id FROM access_persons WHERE ref = ?", (ref,)).fetchone()
        return None if row is None else str(row[0])

    def forget(self, person_id: str) -> None:
        """Delete the link between ``person_id`` and its reference (erasure)."""
        self._db.execute("DELETE FROM access_persons WHERE person_id = ?", (person_id,))
        self._refs.pop(person_id, None)

    def append(self, fields: Mapping[str, AuditValue]) -> int:
        """Append one entry (``at`` added as UTC ISO time); returns its sequence number.

        The row and the head are written in one immediate transaction, so concurrent writers
        (threads or processes) each get the next number and the chain never forks."""
        data = dict(fields)
        data["at"] = dt.datetime.fromtimestamp(self._clock(), dt.UTC).isoformat(timespec="microseconds")
        entry = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        db = self._db
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                head = db.execute("SELECT seq, hash FROM access_audit_head WHERE id = 1").fetchone()
                seq, prev = (1, GENESIS) if head is None else (int(head[0]) + 1, str(head[1]))
                digest = _chain_hash(prev, seq, entry)
                db.execute(
                    "INSERT INTO access_audit VALUES (?, ?, ?, ?, ?)",
                    (seq, entry, prev, digest, _mac(self._key, "entry", digest)),
                )
                db.execute(
                    "INSERT INTO access_audit_head VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
                    (seq, digest, _head_mac(self._key, seq, digest)),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return seq

    def records(self) -> list[AuditRecord]:
        """Every row in storage order (rowid order, which an attacker may have changed)."""
        rows = self._db.execute("SELECT seq, entry, prev, hash, mac FROM access_audit ORDER BY rowid")
        return [AuditRecord(seq=a, entry=b, prev=c, hash=d, mac=e) for a, b, c, d, e in rows]

    def head(self) -> tuple[int, str, str] | None:
        """The head row (last seq, its hash, the head MAC); copy it elsewhere to anchor the log."""
        row = self._db.execute("SELECT seq, hash, mac FROM access_audit_head WHERE id = 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def count(self) -> int:
        """Number of entries written (the head's sequence number)."""
        head = self.head()
        return 0 if head is None else head[0]

    def verify(self, *, anchor: tuple[int, str, str] | None = None) -> AuditReport:
        """Verify the stored trail against its head row, or against ``anchor`` (a head copied
        out earlier, which also catches a rolled-back head)."""
        records = self.records()
        if anchor is not None:
            # The log may have grown since the anchor was taken: the anchored prefix must match.
            prefix = verify_records(records[: anchor[0]], self._key, head=anchor)
            if not prefix.ok:
                return prefix
        head = self.head()
        return verify_records(records, self._key, head=head)
