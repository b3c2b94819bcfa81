"""The audit verifier finds every single modified, deleted, inserted or reordered entry, and where."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore._model import replace
from minolcore.access.audit import AuditLog, AuditRecord, verify_records
from minolcore.access.db import connect
from minolcore.errors import ConfigError

KEY = b"a" * 32


def make_log(tmp_path: Path, count: int) -> tuple[AuditLog, sqlite3.Connection]:
    db = connect(tmp_path / "audit.db")
    log = AuditLog(db, KEY, clock=lambda: 1_700_000_000.0)
    for index in range(count):
        log.append({"action": "read_readings", "actor": f"p-{index % 3}", "rows": index, "decision": "allow"})
    return log, db


_LOG_CACHE: dict[int, tuple[list[AuditRecord], tuple[int, str, str]]] = {}


def generated(
    count: int, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[AuditRecord], tuple[int, str, str]]:
    if count not in _LOG_CACHE:
        log, _ = make_log(tmp_path_factory.mktemp("audit"), count)
        head = log.head()
        assert head is not None
        _LOG_CACHE[count] = (log.records(), head)
    records, head = _LOG_CACHE[count]
    return list(records), head


def test_untouched_log_verifies(tmp_path: Path) -> None:
    log, _ = make_log(tmp_path, 10)
    report = log.verify()
    assert report.ok and report.entries == 10 and log.count() == 10


def test_short_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        AuditLog(connect(tmp_path / "x.db"), b"short", clock=lambda: 0.0)


@given(data=st.data())
def test_single_tampering_is_found_where_it_is(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    count = data.draw(st.integers(2, 12), label="count")
    records, head = generated(count, tmp_path_factory)
    kind = data.draw(
        st.sampled_from(["modify", "modify_rehash", "delete", "delete_renumber", "insert", "swap"])
    )
    position = data.draw(st.integers(0, count - 1), label="position")
    if kind == "modify":
        records[position] = replace(records[position], entry=records[position].entry.replace("allow", "deny"))
        if "deny" not in records[position].entry:
            records[position] = replace(records[position], entry=records[position].entry + " ")
    elif kind == "modify_rehash":
        # The attacker recomputes the hash (it is unkeyed) but cannot compute the MAC.
        entry = records[position].entry.replace('"rows"', '"rowz"')
        digest = hashlib.sha256(
            f"{records[position].prev}\n{records[position].seq}\n{entry}".encode()
        ).hexdigest()
        records[position] = replace(records[position], entry=entry, hash=digest)
    elif kind == "delete":
        del records[position]
    elif kind == "delete_renumber":
        del records[position]
        records[position:] = [replace(r, seq=r.seq - 1) for r in records[position:]]
    elif kind == "insert":
        forged = replace(records[position], entry='{"action":"forged"}')
        records.insert(position, forged)
    else:
        other = data.draw(st.integers(0, count - 1).filter(lambda i: i != position), label="other")
        records[position], records[other] = records[other], records[position]
        position = min(position, other)
    report = verify_records(records, KEY, head=head)
    assert not report.ok
    if kind == "delete" and position == count - 1:
        # Cutting off the last entry is seen only by the head.
        assert report.problems[0].kind == "truncated" and report.problems[0].position == position
    else:
        assert report.problems[0].position == position


def test_tampering_in_the_database_is_found(tmp_path: Path) -> None:
    log, db = make_log(tmp_path, 6)
    db.execute("UPDATE access_audit SET entry = replace(entry, 'allow', 'deny') WHERE seq = 4")
    report = log.verify()
    assert not report.ok and report.problems[0].seq == 4 and report.problems[0].kind == "modified"


def test_truncation_and_rolled_back_head_are_found(tmp_path: Path) -> None:
    log, db = make_log(tmp_path, 6)
    anchor = log.head()
    assert anchor is not None
    db.execute("DELETE FROM access_audit WHERE seq = 6")
    assert log.verify().problems[0].kind in {"truncated", "head_mismatch"}
    db.execute("DELETE FROM access_audit_head")
    report = log.verify()
    assert not report.ok and report.problems[0].kind == "head_missing"
    # A head rolled back to an earlier state (saved by the attacker) is caught by an anchor
    # kept outside the database.
    second = tmp_path / "second"
    second.mkdir()
    log2, db2 = make_log(second, 5)
    early = log2.head()
    log2.append({"action": "read_readings", "decision": "allow"})
    late = log2.head()
    assert early is not None and late is not None and anchor[0] == 6
    db2.execute("DELETE FROM access_audit WHERE seq = 6")
    db2.execute("UPDATE access_audit_head SET seq = ?, hash = ?, mac = ?", early)
    assert log2.verify().ok
    report = log2.verify(anchor=late)
    assert not report.ok and report.problems[0].kind == "truncated" and report.problems[0].position == 5


def test_wrong_key_fails_every_entry(tmp_path: Path) -> None:
    log, _ = make_log(tmp_path, 3)
    report = verify_records(log.records(), b"b" * 32, head=log.head())
    assert {p.kind for p in report.problems} == {"forged", "forged_head"}
