"""The access layer is the only public path to readings: the public store and reports modules
return none, and the ``minolcore report`` command reads as operator staff through the layer,
each report audited under a key that is kept outside the database."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import stat
from pathlib import Path

import pytest

import minolcore.reports
from minolcore.access import (
    AUDIT_KEY_ENV,
    AUDIT_KEY_FILE_ENV,
    AccessLayer,
    AuditLog,
    audit_key_for,
    audit_key_path,
)
from minolcore.access.db import connect
from minolcore.cli import REPORT_STAFF_ROLES, main
from minolcore.errors import ConfigError
from minolcore.simulator import Simulation, simulate, write_collector_log
from minolcore.store import SQLiteStore, Store
from minolcore.store.base import ReadingRow, StatusEventRow

ENV_KEY = "ab" * 32


def _returns_rows(function: object) -> bool:
    hints = inspect.get_annotations(function, eval_str=True)  # type: ignore[arg-type]
    text = repr(hints.get("return"))
    return ReadingRow.__name__ in text or StatusEventRow.__name__ in text or "tuple[object" in text


def test_public_store_and_reports_return_no_readings() -> None:
    public = {name for name in dir(SQLiteStore) if not name.startswith("_")}
    assert not {"readings", "status_events", "dump"} & public
    assert not any(_returns_rows(getattr(SQLiteStore, name)) for name in public)
    assert not {name for name in dir(Store) if not name.startswith("_")} & {"readings", "status_events"}
    for name in ("billing_report", "monthly_report", "smoke_report", "ReportStore"):
        assert not hasattr(minolcore.reports, name)
    assert callable(minolcore.reports.render)
    assert not hasattr(AccessLayer, "connection")
    for name in ("billing_report", "monthly_report", "smoke_report", "readings", "status_events"):
        assert callable(getattr(AccessLayer, name))


# --- the audit key of a command-line run ----------------------------------------------------------------


def test_key_file_is_created_once_private_and_not_in_the_database(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    SQLiteStore(db).close()
    key = audit_key_for(db, {})
    path = audit_key_path(db)
    assert path == tmp_path / "r.sqlite.audit-key" and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit_key_for(db, {}) == key
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".audit-key")] == []
    assert key.hex().encode() not in db.read_bytes() and key not in db.read_bytes()


def test_environment_key_wins_and_no_file_is_made(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    assert audit_key_for(db, {AUDIT_KEY_ENV: ENV_KEY}) == bytes.fromhex(ENV_KEY)
    assert not audit_key_path(db).exists()
    named = tmp_path / "secret" / "audit.key"
    named.parent.mkdir()
    named.write_text("cd" * 32 + "\n")
    named.chmod(0o600)
    assert audit_key_for(db, {AUDIT_KEY_FILE_ENV: str(named)}) == bytes.fromhex("cd" * 32)
    assert not audit_key_path(db).exists()


@pytest.mark.parametrize("text", ["", "zz" * 32, "ab" * 31, "ab" * 33])
def test_malformed_keys_are_refused_without_echoing_them(tmp_path: Path, text: str) -> None:
    db = tmp_path / "r.sqlite"
    if text:
        with pytest.raises(ConfigError) as caught:
            audit_key_for(db, {AUDIT_KEY_ENV: text})
        assert text not in str(caught.value) and "64 hex digits" in str(caught.value)
    path = audit_key_path(db)
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        audit_key_for(db, {})
    assert (not text or text not in str(caught.value)) and "64 hex digits" in str(caught.value)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    audit_key_for(db, {})
    audit_key_path(db).chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        audit_key_for(db, {})
    with pytest.raises(ConfigError, match="cannot read"):
        audit_key_for(db, {AUDIT_KEY_FILE_ENV: str(tmp_path / "missing.key")})


# --- the report command ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Path]:
    folder = tmp_path_factory.mktemp("paths")
    simulation = simulate(start=dt.date(2025, 1, 1), days=30, seed=9, units=2)
    simulation.write_site_toml(folder / "site.toml")
    simulation.write_keys_toml(folder / "keys.toml")
    write_collector_log(folder / "traffic.jsonl", simulation.receptions)
    db = folder / "r.sqlite"
    args = ["--site", str(folder / "site.toml"), "--keys", str(folder / "keys.toml"), "--db", str(db)]
    assert main(["ingest", str(folder / "traffic.jsonl"), *args]) == 0
    # A copy before any report: a log begun under one key must not be continued under another.
    (folder / "clean.sqlite").write_bytes(db.read_bytes())
    return simulation, db


def _entries(db: Path, key: bytes) -> tuple[AuditLog, list[dict[str, object]]]:
    log = AuditLog(connect(db), key, clock=lambda: 0.0)
    assert log.verify().ok
    return log, [dict(record.data()) for record in log.records()]


def test_each_report_is_an_audited_read_as_operator_staff(
    database: tuple[Simulation, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = database
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    monkeypatch.delenv(AUDIT_KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("MINOLCORE_OPERATOR", "staff-17")
    assert main(["report", "smoke", "--db", str(db), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["detectors"]
    assert main(["report", "monthly", "--db", str(db), "--unit", "B1-01", "--period", "2025"]) == 0
    assert main(["report", "billing", "--db", str(db), "--building", "B1", "--period", "2024"]) == 0
    capsys.readouterr()
    key = audit_key_path(db).read_text().strip()
    log, entries = _entries(db, bytes.fromhex(key))
    reports = [e for e in entries if str(e["action"]).startswith("report_")]
    assert [(e["action"], e["decision"], e["role"]) for e in reports] == [
        ("report_smoke", "allow", "operator"),
        ("report_monthly", "allow", "operator"),
        ("report_billing", "allow", "operator"),
    ]
    assert [e["grants"] for e in reports] == [
        ["staff:technician"],
        ["staff:billing"],
        ["staff:billing"],
    ]
    assert {e["actor"] for e in reports} == {log.ref("staff-17")}
    assert reports[1]["unit"] == "B1-01" and reports[1]["purpose"] == "consumption_info"
    assert key not in db.read_text(encoding="latin-1")
    assert REPORT_STAFF_ROLES == {"billing": "billing", "monthly": "billing", "smoke": "technician"}


def test_report_with_the_environment_key(
    database: tuple[Simulation, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    simulation, db = database
    fresh = tmp_path / "e.sqlite"
    fresh.write_bytes((db.parent / "clean.sqlite").read_bytes())
    monkeypatch.setenv(AUDIT_KEY_ENV, ENV_KEY)
    assert main(["report", "smoke", "--db", str(fresh), "--format", "csv"]) == 0
    assert not audit_key_path(fresh).exists()
    _, entries = _entries(fresh, bytes.fromhex(ENV_KEY))
    assert entries[-1]["action"] == "report_smoke"
    assert entries[-1]["building"] == simulation.site.buildings()[0].id


def test_bad_environment_key_fails_the_command_quietly(
    database: tuple[Simulation, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = database
    monkeypatch.setenv(AUDIT_KEY_ENV, "ab" * 16)
    assert main(["report", "smoke", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "64 hex digits" in err and "ab" * 16 not in err
