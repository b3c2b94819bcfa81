"""Grants and consents in the database, each change written to the audit trail."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterable

from minolcore.access.audit import AuditLog
from minolcore.access.model import Consent, Grant, LegalBasis, Principal, Purpose
from minolcore.errors import ConfigError

__all__ = ["DEVICE_CLASSES", "GrantRegistry"]

DEVICE_CLASSES = frozenset(("heating", "water", "smoke", "pulse", "other"))

_GRANT_COLUMNS = (
    "id, principal_id, building, unit, device_kinds, purpose, basis, valid_from, valid_until, "
    "data_from, data_until, consent_id, revoked_at"
)


def _grant(row: tuple[object, ...]) -> Grant:
    kinds = str(row[4])
    return Grant(
        id=str(row[0]),
        principal_id=str(row[1]),
        building=str(row[2]),
        unit=None if row[3] is None else str(row[3]),
        device_kinds=tuple(kinds.split(",")) if kinds else (),
        purpose=Purpose(str(row[5])),
        basis=LegalBasis(str(row[6])),
        valid_from=float(row[7]),  # type: ignore[arg-type]
        valid_until=None if row[8] is None else float(row[8]),  # type: ignore[arg-type]
        data_from=None if row[9] is None else str(row[9]),
        data_until=None if row[10] is None else str(row[10]),
        consent_id=None if row[11] is None else str(row[11]),
        revoked_at=None if row[12] is None else float(row[12]),  # type: ignore[arg-type]
    )


class GrantRegistry:
    """Grants and consents stored beside the readings. Every change is audited with the
    acting principal; a revocation takes effect for the next read (reads query the table)."""

    def __init__(self, db: sqlite3.Connection, audit: AuditLog, *, clock: Callable[[], float]) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock

    def __repr__(self) -> str:
        return "<GrantRegistry>"

    def record_consent(self, by: Principal, *, subject: str, purpose: Purpose, evidence: str) -> Consent:
        """Record the explicit consent of person ``subject`` with its ``evidence`` (a reference to
        the signed form or the portal click, not a copy of personal documents)."""
        if not evidence.strip():
            raise ConfigError("a consent needs its evidence", "evidence")
        consent = Consent(
            id="c-" + secrets.token_hex(8),
            subject=subject,
            purpose=purpose,
            evidence=evidence,
            recorded_at=self._clock(),
        )
        self._db.execute(
            "INSERT INTO access_consents VALUES (?, ?, ?, ?, ?, NULL)",
            (consent.id, subject, purpose.value, evidence, consent.recorded_at),
        )
        self._log(by, "consent_recorded", consent=consent.id, subject=subject, purpose=purpose.value)
        return consent

    def withdraw_consent(self, by: Principal, consent_id: str) -> None:
        """Withdraw a consent: grants based on it stop working for the very next read."""
        now = self._clock()
        self._db.execute(
            "UPDATE access_consents SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, consent_id)
        )
        self._log(by, "consent_withdrawn", consent=consent_id)

    def consent(self, consent_id: str) -> Consent | None:
        """The consent ``consent_id`` (withdrawn ones too), or None."""
        row = self._db.execute(
            "SELECT id, subject, purpose, evidence, recorded_at, revoked_at "
            "FROM access_consents WHERE id = ?",
            (consent_id,),
        ).fetchone()
        if row is None:
            return None
        return Consent(
            id=row[0],
            subject=row[1],
            purpose=Purpose(row[2]),
            evidence=row[3],
            recorded_at=row[4],
            revoked_at=row[5],
        )

    def grant(
        self,
        by: Principal,
        *,
        principal_id: str,
        building: str,
        purpose: Purpose,
        basis: LegalBasis,
        unit: str | None = None,
        device_kinds: Iterable[str] = (),
        valid_from: float | None = None,
        valid_until: float | None = None,
        data_from: str | None = None,
        data_until: str | None = None,
        consent_id: str | None = None,
    ) -> Grant:
        """Give ``principal_id`` access to ``building`` (or one ``unit`` of it) for ``purpose`` on
        ``basis``; times in s since the epoch (``valid_from`` default now), data days as local ISO
        days. A consent-based grant needs an active consent of the same purpose."""
        kinds = tuple(sorted(set(device_kinds)))
        unknown = set(kinds) - DEVICE_CLASSES
        if unknown:
            raise ConfigError(f"unknown device kinds {sorted(unknown)}", "device_kinds")
        now = self._clock()
        if basis is LegalBasis.CONSENT:
            consent = None if consent_id is None else self.consent(consent_id)
            if consent is None or not consent.active_at(now) or consent.purpose is not purpose:
                raise ConfigError(
                    "a consent-based grant needs an active consent for its purpose", "consent_id"
                )
        grant = Grant(
            id="g-" + secrets.token_hex(8),
            principal_id=principal_id,
            building=building,
            unit=unit,
            device_kinds=kinds,
            purpose=purpose,
            basis=basis,
            valid_from=now if valid_from is None else valid_from,
            valid_until=valid_until,
            data_from=data_from,
            data_until=data_until,
            consent_id=consent_id if basis is LegalBasis.CONSENT else None,
        )
        self._db.execute(
            f"INSERT INTO access_grants ({_GRANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                grant.id,
                principal_id,
                building,
                unit,
                ",".join(kinds),
                purpose.value,
                basis.value,
                grant.valid_from,
                valid_until,
                data_from,
                data_until,
                grant.consent_id,
            ),
        )
        self._log(
            by,
            "grant",
            grant=grant.id,
            subject=principal_id,
            building=building,
            unit=unit,
            purpose=purpose.value,
            basis=basis.value,
        )
        return grant

    def revoke(self, by: Principal, grant_id: str) -> None:
        """Revoke a grant at once: the next read no longer sees it."""
        self._db.execute(
            "UPDATE access_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (self._clock(), grant_id),
        )
        self._log(by, "revoke", grant=grant_id)

    def get(self, grant_id: str) -> Grant | None:
        """The grant ``grant_id`` (revoked ones too), or None."""
        row = self._db.execute(
            f"SELECT {_GRANT_COLUMNS} FROM access_grants WHERE id = ?", (grant_id,)
        ).fetchone()
        return None if row is None else _grant(row)

    def of(self, principal_id: str, purpose: Purpose | None = None) -> list[Grant]:
        """Every grant of ``principal_id`` (optionally for one purpose), revoked ones included."""
        if purpose is None:
            rows = self._db.execute(
                f"SELECT {_GRANT_COLUMNS} FROM access_grants WHERE principal_id = ?", (principal_id,)
            )
        else:
            rows = self._db.execute(
                f"SELECT {_GRANT_COLUMNS} FROM access_grants WHERE principal_id = ? AND purpose = ?",
                (principal_id, purpose.value),
            )
        return [_grant(row) for row in rows]

    def consent_active(self, consent_id: str | None, now: float) -> bool:
        """Whether ``consent_id`` exists and holds at ``now`` (s since the epoch)."""
        if consent_id is None:
            return False
        row = self._db.execute(
            "SELECT recorded_at, revoked_at FROM access_consents WHERE id = ?", (consent_id,)
        ).fetchone()
        return row is not None and row[0] <= now and (row[1] is None or now < row[1])

    def _log(self, by: Principal, action: str, **fields: str | None) -> None:
        entry: dict[str, str | None] = {
            "action": action,
            "actor": self._audit.ref(by.id),
            "role": by.role.value,
            "decision": "allow",
        }
        for name, value in fields.items():
            entry[name] = self._audit.ref(value) if name == "subject" else value
        self._audit.append(entry)
