"""Portal accounts: bcrypt hashes, lockout, constant-time checks, nothing secret in reprs or the audit."""

from __future__ import annotations

import contextlib
from pathlib import Path

import bcrypt
import pytest

from minolcore.access import Accounts, AuthenticationError, DenyReason, LockedOutError, Principal, Role
from minolcore.access.audit import AuditLog
from minolcore.access.db import connect
from minolcore.errors import ConfigError, InputError, StoreError

OWNER = Principal(id="olga", role=Role.OWNER)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(tmp_path: Path, clock: Clock) -> Accounts:
    db = connect(tmp_path / "accounts.db")
    audit = AuditLog(db, b"a" * 32, clock=clock)
    result = Accounts(db, audit, cost=4, max_failures=3, lockout_s=600.0, clock=clock)
    result.create("olga@example.org", "correct horse battery", OWNER)
    return result


def test_login_and_hash_at_rest(accounts: Accounts, tmp_path: Path) -> None:
    assert accounts.authenticate("olga@example.org", "correct horse battery") == OWNER
    db = connect(tmp_path / "accounts.db")
    stored = db.execute("SELECT password_hash FROM access_accounts").fetchone()[0]
    assert bytes(stored).startswith(b"$2b$04$") and b"correct horse" not in bytes(stored)
    audit_text = repr(list(db.execute("SELECT entry FROM access_audit")))
    assert "correct horse" not in audit_text and "$2b$" not in audit_text
    assert "horse" not in repr(accounts)


@pytest.mark.parametrize("stored", ['{"id": "", "role": "owner"}', '{"id": "olga", "role": "king"}', "{"])
def test_an_account_whose_stored_principal_is_damaged_is_a_store_error(
    accounts: Accounts, tmp_path: Path, stored: str
) -> None:
    # Written by an older version or damaged: no login, and a clear error instead of a
    # decoder's exception.
    db = connect(tmp_path / "accounts.db")
    with db:
        db.execute("UPDATE access_accounts SET principal = ?", (stored,))
    with pytest.raises(StoreError, match="names no valid principal"):
        accounts.authenticate("olga@example.org", "correct horse battery")


def test_wrong_password_and_unknown_user_look_alike(accounts: Accounts) -> None:
    with pytest.raises(AuthenticationError) as wrong:
        accounts.authenticate("olga@example.org", "wrong password")
    with pytest.raises(AuthenticationError) as unknown:
        accounts.authenticate("nobody@example.org", "wrong password")
    assert str(wrong.value) == str(unknown.value) and wrong.value.code is DenyReason.BAD_CREDENTIALS


def test_every_attempt_runs_one_bcrypt_check(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    # Timing safety: known and unknown users, right and wrong passwords, locked or not, all cost
    # exactly one constant-time bcrypt comparison.
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    attempts = [
        ("olga@example.org", "correct horse battery"),
        ("olga@example.org", "wrong"),
        ("nobody@example.org", "wrong"),
        ("olga@example.org", "x" * 100),
    ]
    for username, password in attempts:
        before = len(calls)
        with contextlib.suppress(AuthenticationError):
            accounts.authenticate(username, password)
        assert len(calls) == before + 1
    assert all(h.startswith(b"$2b$04$") for h in calls)


def test_lockout_after_repeated_failures(accounts: Accounts, clock: Clock) -> None:
    for _ in range(2):
        with pytest.raises(AuthenticationError) as caught:
            accounts.authenticate("olga@example.org", "wrong")
        assert not isinstance(caught.value, LockedOutError)
    with pytest.raises(LockedOutError) as locked:
        accounts.authenticate("olga@example.org", "wrong")
    assert locked.value.until == clock.now + 600.0
    # Locked: even the right password is refused until the lockout ends.
    with pytest.raises(LockedOutError):
        accounts.authenticate("olga@example.org", "correct horse battery")
    clock.now += 601.0
    assert accounts.authenticate("olga@example.org", "correct horse battery") == OWNER


def test_success_resets_the_failure_count(accounts: Accounts) -> None:
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            accounts.authenticate("olga@example.org", "wrong")
    accounts.authenticate("olga@example.org", "correct horse battery")
    for _ in range(2):
        with pytest.raises(AuthenticationError) as caught:
            accounts.authenticate("olga@example.org", "wrong")
        assert not isinstance(caught.value, LockedOutError)


def test_bad_settings_and_passwords(accounts: Accounts, tmp_path: Path, clock: Clock) -> None:
    with pytest.raises(InputError):
        accounts.create("a@example.org", "short", OWNER)
    with pytest.raises(InputError):
        accounts.create("a@example.org", "x" * 73, OWNER)
    with pytest.raises(ConfigError):
        accounts.create("olga@example.org", "another long one", OWNER)
    db = connect(tmp_path / "other.db")
    with pytest.raises(ConfigError):
        Accounts(db, AuditLog(db, b"a" * 32, clock=clock), cost=3, clock=clock)
