"""Portal accounts: bcrypt password hashes, constant-time checks and a lockout after failures."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import bcrypt
import msgspec

from minolcore.access.audit import AuditLog
from minolcore.access.model import AuthenticationError, DenyReason, LockedOutError, Principal
from minolcore.errors import ConfigError, InputError, StoreError

__all__ = ["Accounts"]

_BCRYPT_MAX_BYTES = 72


class Accounts:
    """Usernames with bcrypt hashes (``cost`` = log2 rounds, 4..31; 12 in production). After
    ``max_failures`` wrong passwords in a row an account is locked for ``lockout_s`` seconds.
    Every login attempt is audited (without the password or the hash)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        audit: AuditLog,
        *,
        cost: int = 12,
        max_failures: int = 5,
        lockout_s: float = 900.0,
        clock: Callable[[], float],
    ) -> None:
        if not 4 <= cost <= 31:
            raise ConfigError("bcrypt cost must be 4..31", "cost")
        if max_failures < 1 or lockout_s <= 0:
            raise ConfigError("max_failures must be >= 1 and lockout_s > 0 (s)", "lockout")
        self._db = db
        self._audit = audit
        self._cost = cost
        self._max_failures = max_failures
        self._lockout_s = lockout_s
        self._clock = clock
        # Unknown users are checked against this hash, so a login takes as long whether or not
        # the user exists (no account enumeration by timing).
        self._dummy = bcrypt.hashpw(b"minolcore-no-such-user", bcrypt.gensalt(rounds=cost))

    def __repr__(self) -> str:
        return f"<Accounts cost={self._cost}>"

    def create(self, username: str, password: str, principal: Principal) -> None:
        """Create an account for ``principal``; the password (8..72 UTF-8 bytes) is stored only
        as a bcrypt hash."""
        secret = password.encode()
        if not 8 <= len(secret) <= _BCRYPT_MAX_BYTES:
            raise InputError("a password needs 8 to 72 bytes (UTF-8)")
        hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=self._cost))
        try:
            self._db.execute(
                "INSERT INTO access_accounts VALUES (?, ?, ?, ?, 0, 0)",
                (username, msgspec.json.encode(principal).decode(), principal.id, hashed),
            )
        except sqlite3.IntegrityError:
            raise ConfigError("the username is taken", "username") from None
        self._audit.append(
            {"action": "account_created", "actor": self._audit.ref(principal.id), "decision": "allow"}
        )

    def authenticate(self, username: str, password: str) -> Principal:
        """The principal of a correct login; :class:`AuthenticationError` (same for a wrong
        password and an unknown user) or :class:`LockedOutError` otherwise."""
        now = self._clock()
        row = self._db.execute(
            "SELECT principal, password_hash, failures, locked_until FROM access_accounts WHERE username = ?",
            (username,),
        ).fetchone()
        secret = password.encode()[:_BCRYPT_MAX_BYTES]
        stored = self._dummy if row is None else bytes(row[1])
        # checkpw compares in constant time; it runs for every attempt, locked or not.
        matches = bcrypt.checkpw(secret, stored) and len(password.encode()) <= _BCRYPT_MAX_BYTES
        if row is None:
            self._audit.append(
                {"action": "login", "actor": None, "decision": "deny", "reason": "bad_credentials"}
            )
            raise AuthenticationError(DenyReason.BAD_CREDENTIALS, "wrong username or password")
        try:
            principal = msgspec.json.decode(str(row[0]).encode(), type=Principal)
        except (msgspec.DecodeError, UnicodeError) as error:
            # Written by an older minolcore, or damaged: no login with what cannot be checked.
            raise StoreError(f"the stored account {username!r} names no valid principal: {error}") from None
        ref = self._audit.ref(principal.id)
        failures, locked_until = int(row[2]), float(row[3])
        if locked_until > now:
            self._audit.append({"action": "login", "actor": ref, "decision": "deny", "reason": "locked_out"})
            raise LockedOutError(locked_until)
        if not matches:
            failures += 1
            until = now + self._lockout_s if failures >= self._max_failures else 0.0
            self._db.execute(
                "UPDATE access_accounts SET failures = ?, locked_until = ? WHERE username = ?",
                (0 if until else failures, until, username),
            )
            self._audit.append(
                {"action": "login", "actor": ref, "decision": "deny", "reason": "bad_credentials"}
            )
            if until:
                raise LockedOutError(until)
            raise AuthenticationError(DenyReason.BAD_CREDENTIALS, "wrong username or password")
        self._db.execute(
            "UPDATE access_accounts SET failures = 0, locked_until = 0 WHERE username = ?", (username,)
        )
        self._audit.append({"action": "login", "actor": ref, "decision": "allow"})
        return principal

    def delete_person(self, person_id: str) -> int:
        """Delete every account of ``person_id`` (erasure); returns how many."""
        cursor = self._db.execute("DELETE FROM access_accounts WHERE principal_id = ?", (person_id,))
        return cursor.rowcount
