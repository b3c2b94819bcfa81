"""Grants and consents in the database: who may change them, and every decision audited.

Authority (see docs/data-protection.md, "Who may give permissions"):

* Operator staff with staff role ``admin`` or ``data_protection`` may grant and revoke any
  grant, record a consent the data subject gave in writing (its evidence names the form) and
  withdraw any consent.
* An owner or landlord may grant a tenant access to that tenant's own unit only: one unit of a
  building, to a person the site registry lists as a tenant of that unit, for billing or the
  monthly consumption information, on the basis of the tenancy contract or the legal duty to
  inform (HeizkostenV § 6a), and only within a usable grant the owner holds for the same
  purpose, building (or unit) and device kinds. They may revoke the grants they gave.
* A person records and withdraws their own consents (directly or through a service acting for
  them); nobody else's.
* Everyone else (tenants for grants, other staff roles, auditors, services acting for nobody)
  is refused.

Every decision, allowed or refused, is appended to the audit trail before the call returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator

from minolcore.access.audit import AuditLog, AuditValue
from minolcore.access.model import (
    Consent,
    DenyReason,
    Grant,
    LegalBasis,
    NotAuthorizedError,
    PolicyDeniedError,
    Principal,
    Purpose,
    Role,
)
from minolcore.errors import ConfigError, InputError, MinolcoreError
from minolcore.reception import is_event_time
from minolcore.site import FIRST_DAY, SiteRegistry

__all__ = ["DEVICE_CLASSES", "GRANTING_STAFF", "OWNER_BASES", "OWNER_PURPOSES", "GrantRegistry"]

DEVICE_CLASSES = frozenset(("heating", "water", "smoke", "pulse", "other"))

_GRANT_COLUMNS = (
    "id, principal_id, building, unit, device_kinds, purpose, basis, valid_from, valid_until, "
    "data_from, data_until, consent_id, revoked_at, granted_by"
)

# Staff whose job is permissions: administrators and the data-protection office.
GRANTING_STAFF = frozenset(("admin", "data_protection"))
# What an owner or landlord may pass on to a tenant about the tenant's own unit: the billing
# and the monthly information they owe the tenant, under the tenancy or that legal duty.
OWNER_PURPOSES = frozenset((Purpose.BILLING, Purpose.CONSUMPTION_INFO))
OWNER_BASES = frozenset((LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION))
_PERSONS = (Role.TENANT, Role.OWNER, Role.LANDLORD)


def _granting_staff(principal: Principal) -> bool:
    return principal.role is Role.OPERATOR and principal.staff_role in GRANTING_STAFF


def _refuse(detail: str) -> NotAuthorizedError:
    return NotAuthorizedError(DenyReason.NO_AUTHORITY, detail)


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
        granted_by=None if row[13] is None else str(row[13]),
    )


class GrantRegistry:
    """Grants and consents stored beside the readings. Each change is checked against the
    acting principal's authority (module docstring) and audited, allowed or refused; a
    revocation takes effect for the next read (reads query the table). ``site`` tells an
    owner's grant whom a unit is rented to; without it only staff may grant."""

    def __init__(
        self,
        db: sqlite3.Connection,
        audit: AuditLog,
        *,
        clock: Callable[[], float],
        site: SiteRegistry | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._site = site

    def __repr__(self) -> str:
        return "<GrantRegistry>"

    def record_consent(self, by: Principal, *, subject: str, purpose: Purpose, evidence: str) -> Consent:
        """Record the explicit consent of person ``subject`` with its ``evidence`` (a reference to
        the signed form or the portal click, not a copy of personal documents). ``by`` is the
        subject (or a service acting for them), or granting staff entering a written consent.
        Raises :class:`NotAuthorizedError` (audited)."""
        fields: dict[str, AuditValue] = {"subject": self._audit.ref(subject), "purpose": purpose.value}
        with self._decision(by, "consent_recorded", fields):
            effective = self._acting(by)
            if not _granting_staff(effective) and not (
                effective.role in _PERSONS and effective.id == subject
            ):
                raise _refuse("a consent is recorded by its subject or by data-protection staff")
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
            fields["consent"] = consent.id
        return consent

    def withdraw_consent(self, by: Principal, consent_id: str) -> None:
        """Withdraw a consent: grants based on it stop working for the very next read. ``by`` is
        the consent's subject (or a service acting for them) or granting staff."""
        fields: dict[str, AuditValue] = {"consent": consent_id}
        with self._decision(by, "consent_withdrawn", fields):
            effective = self._acting(by)
            consent = self.consent(consent_id)
            if consent is not None:
                fields["subject"] = self._audit.ref(consent.subject)
            if not _granting_staff(effective):
                if consent is None or effective.role not in _PERSONS or effective.id != consent.subject:
                    raise _refuse("only its subject or data-protection staff withdraw a consent")
            elif consent is None:
                raise ConfigError("no such consent", "consent_id")
            self._db.execute(
                "UPDATE access_consents SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._clock(), consent_id),
            )

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
        days. A consent-based grant needs an active consent of the same purpose. ``by`` needs the
        authority of the module docstring: :class:`NotAuthorizedError` otherwise (audited)."""
        if not isinstance(purpose, Purpose) or not isinstance(basis, LegalBasis):
            raise InputError("purpose must be a Purpose and basis a LegalBasis")
        fields: dict[str, AuditValue] = {
            "subject": self._audit.ref(principal_id),
            "building": building,
            "unit": unit,
            "purpose": purpose.value,
            "basis": basis.value,
        }
        with self._decision(by, "grant", fields):
            for name, moment in (("valid_from", valid_from), ("valid_until", valid_until)):
                # NaN would be stored as "no end": a grant that never expires.
                if moment is not None and not is_event_time(moment):
                    raise ConfigError("must be Unix seconds between 1970 and 9999", name)
            # Data days are compared as text: only the canonical ISO form orders like the days.
            for name, day in (("data_from", data_from), ("data_until", data_until)):
                if day is not None:
                    _check_data_day(day, name)
            if data_from is not None and data_until is not None and data_from > data_until:
                raise ConfigError(f"data_from {data_from} is after data_until {data_until}", "data_from")
            kinds = tuple(sorted(set(device_kinds)))
            now = self._clock()
            effective = self._acting(by)
            if not _granting_staff(effective):
                self._check_owner_grant(
                    effective,
                    principal_id,
                    building,
                    unit,
                    purpose,
                    basis,
                    kinds,
                    now,
                    span=(now if valid_from is None else valid_from, valid_until, data_from, data_until),
                )
            unknown = set(kinds) - DEVICE_CLASSES
            if unknown:
                raise ConfigError(f"unknown device kinds {sorted(unknown)}", "device_kinds")
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
                granted_by=self._audit.ref(effective.id),
            )
            self._db.execute(
                f"INSERT INTO access_grants ({_GRANT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
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
                    grant.granted_by,
                ),
            )
            fields["grant"] = grant.id
        return grant

    def _check_owner_grant(
        self,
        owner: Principal,
        tenant: str,
        building: str,
        unit: str | None,
        purpose: Purpose,
        basis: LegalBasis,
        kinds: tuple[str, ...],
        now: float,
        *,
        span: tuple[float, float | None, str | None, str | None],
    ) -> None:
        if owner.role not in (Role.OWNER, Role.LANDLORD):
            raise _refuse(f"a {owner.role.value} may not give permissions")
        if unit is None:
            raise _refuse("an owner grants a tenant one unit, not a building")
        if purpose not in OWNER_PURPOSES or basis not in OWNER_BASES:
            raise _refuse("an owner grants a tenant billing or consumption information under contract or law")
        if self._site is None:
            raise _refuse("no site registry to find the unit's tenants")
        try:
            in_building = self._site.unit(unit).building == building
        except ConfigError:
            in_building = False
        if not in_building or all(t.tenant != tenant for t in self._site.tenancies(unit)):
            raise _refuse("an owner grants a tenant access to that tenant's own unit only")
        # Nobody passes on more than they hold: the owner's own grant must cover the unit.
        for held in self.of(owner.id, purpose):
            if (
                held.building == building
                and held.unit in (None, unit)
                and (not held.device_kinds or (kinds and set(kinds) <= set(held.device_kinds)))
                and held.usable_at(now)
                and (held.basis is not LegalBasis.CONSENT or self.consent_active(held.consent_id, now))
                and _within(span, held)
            ):
                return
        raise _refuse(
            "the owner holds no usable grant covering this unit, purpose, kinds, validity and data days"
        )

    def revoke(self, by: Principal, grant_id: str) -> None:
        """Revoke a grant at once: the next read no longer sees it. Granting staff revoke any
        grant; an owner or landlord only those they gave. :class:`NotAuthorizedError` otherwise."""
        fields: dict[str, AuditValue] = {"grant": grant_id}
        with self._decision(by, "revoke", fields):
            effective = self._acting(by)
            grant = self.get(grant_id)
            if grant is not None:
                fields["subject"] = self._audit.ref(grant.principal_id)
            if not _granting_staff(effective):
                mine = (
                    grant is not None
                    and effective.role in (Role.OWNER, Role.LANDLORD)
                    and grant.granted_by is not None
                    and grant.granted_by == self._audit.ref(effective.id)
                )
                if not mine:
                    raise _refuse("only data-protection staff or the owner who gave a grant revoke it")
            elif grant is None:
                raise ConfigError("no such grant", "grant_id")
            self._db.execute(
                "UPDATE access_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._clock(), grant_id),
            )

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

    def _acting(self, by: Principal) -> Principal:
        effective = by.effective()
        if effective is None:
            raise NotAuthorizedError(DenyReason.NO_PRINCIPAL, "a service must act for a principal")
        return effective

    @contextlib.contextmanager
    def _decision(self, by: Principal, action: str, fields: dict[str, AuditValue]) -> Iterator[None]:
        """Audit the change made in the block: allowed if it completes, else refused with the
        reason (``invalid_request`` for a malformed one). ``fields`` may grow inside the block."""
        try:
            yield
        except PolicyDeniedError as error:
            self._log(by, action, fields, error.code.value)
            raise
        except MinolcoreError:
            self._log(by, action, fields, "invalid_request")
            raise
        self._log(by, action, fields, None)

    def _log(self, by: Principal, action: str, fields: dict[str, AuditValue], reason: str | None) -> None:
        effective = by.effective()
        entry: dict[str, AuditValue] = {
            "action": action,
            "actor": self._audit.ref(by.id),
            "role": by.role.value,
            "for": None if effective is None or effective is by else self._audit.ref(effective.id),
            "staff_role": by.staff_role,
            "decision": "allow" if reason is None else "deny",
            **fields,
        }
        if reason is not None:
            entry["reason"] = reason
        self._audit.append(entry)


def _within(span: tuple[float, float | None, str | None, str | None], held: Grant) -> bool:
    """Whether a grant's validity (s since the epoch) and data days (ISO, inclusive) lie inside
    ``held``'s: an owner cannot pass on access for longer or to more days than they hold."""
    valid_from, valid_until, data_from, data_until = span
    if valid_from < held.valid_from:
        return False
    if held.valid_until is not None and (valid_until is None or valid_until > held.valid_until):
        return False
    if held.data_from is not None and (data_from is None or data_from < held.data_from):
        return False
    return held.data_until is None or (data_until is not None and data_until <= held.data_until)


def _check_data_day(day: object, where: str) -> None:
    """:class:`ConfigError` unless ``day`` is an ISO day text (``YYYY-MM-DD``) from
    :data:`~minolcore.site.FIRST_DAY` on (9999-12-31 may stand for "no end": data days are
    only compared, never counted on from)."""
    try:
        parsed = dt.date.fromisoformat(day) if isinstance(day, str) and len(day) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != day:
        raise ConfigError(f"must be an ISO day such as 2024-03-15, got {str(day)[:40]!r}", where)
    if parsed < FIRST_DAY:
        raise ConfigError(f"must lie between {FIRST_DAY} and 9999-12-31", where)
