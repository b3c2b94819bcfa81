"""The access layer's own tables, kept in the readings' SQLite file so that the audit trail,
grants and consents travel, back up and restore together with the data they protect."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from minolcore.errors import ConfigError

__all__ = ["connect"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_persons (person_id TEXT PRIMARY KEY, ref TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS access_consents (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, purpose TEXT NOT NULL, evidence TEXT NOT NULL,
    recorded_at REAL NOT NULL, revoked_at REAL
);
CREATE TABLE IF NOT EXISTS access_grants (
    id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, building TEXT NOT NULL, unit TEXT,
    device_kinds TEXT NOT NULL, purpose TEXT NOT NULL, basis TEXT NOT NULL,
    valid_from REAL NOT NULL, valid_until REAL, data_from TEXT, data_until TEXT,
    consent_id TEXT, revoked_at REAL, granted_by TEXT
);
CREATE INDEX IF NOT EXISTS access_grants_by_principal ON access_grants (principal_id, purpose);
CREATE TABLE IF NOT EXISTS access_audit (
    seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS access_audit_head (id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL, hash TEXT NOT NULL, mac TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_accounts (
    username TEXT PRIMARY KEY, principal TEXT NOT NULL, principal_id TEXT NOT NULL,
    password_hash BLOB NOT NULL, failures INTEGER NOT NULL, locked_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_revoked_tokens (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS access_billing_keys (
    pseudonym TEXT PRIMARY KEY, person_id TEXT NOT NULL, keep_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_billing_archive (
    pseudonym TEXT NOT NULL, building_id TEXT, unit_id TEXT, first_day TEXT NOT NULL,
    last_day TEXT NOT NULL, device_uid TEXT NOT NULL, reading_time TEXT NOT NULL,
    quantity TEXT NOT NULL, value REAL, unit TEXT NOT NULL, keep_until REAL NOT NULL
);
"""


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection of its own to the store's database file, with the access tables created.

    An in-memory store cannot be shared between connections, so it is refused."""
    text = str(path)
    if text == ":memory:" or text.startswith("file::memory:"):
        raise ConfigError("the access layer needs the store in a file (not ':memory:')", "path")
    try:
        db = sqlite3.connect(text, isolation_level=None, check_same_thread=False, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(access_grants)")}
        if "granted_by" not in columns:
            # Databases made before grant authority was recorded: their grants have no creator.
            db.execute("ALTER TABLE access_grants ADD COLUMN granted_by TEXT")
    except sqlite3.Error as error:
        raise ConfigError(f"cannot open the access tables: {error}", where=text) from None
    return db
