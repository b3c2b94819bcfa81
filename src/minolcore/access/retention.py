"""Retention periods per data class, and erasure of a person (GDPR Art. 5(1)(e), Art. 17).

Data classes of the readings: ``current`` (storage 0: the day-by-day pattern), ``monthly``
(storage >= 2: month-end history), ``billing`` (storage 1: due-date values, kept for the
commercial and tax retention period), ``status`` (status events). Erasure removes a tenant's
day-by-day and monthly values of their tenancy, their grants, consents, accounts and the link
from the audit trail to them; due-date values are archived under a pseudonym whose key is kept
only until the billing retention period ends.
"""

from __future__ import annotations

import datetime as dt
import secrets

from minolcore._model import Record
from minolcore.access.guard import AccessLayer
from minolcore.access.model import DenyReason, NoGrantError, Principal, Role

__all__ = ["DAY_S", "ErasureResult", "RetentionPolicy", "apply_retention", "erase_person"]

DAY_S = 86_400.0


class RetentionPolicy(Record):
    """How long each data class is kept, in s (defaults: current values 400 days, enough for a
    tenant change inside a billing year; month-end values 3 years for the year-on-year comparison
    and disputes; billing 10 years, HGB § 257 / AO § 147; status events 3 years)."""

    current_s: float = 400 * DAY_S
    monthly_s: float = 3 * 365 * DAY_S
    billing_s: float = 10 * 365 * DAY_S
    status_s: float = 3 * 365 * DAY_S


class ErasureResult(Record):
    """What an erasure removed (row counts) and the pseudonym of the archived billing records."""

    pseudonym: str
    readings_deleted: int
    billing_archived: int
    grants_deleted: int
    consents_deleted: int
    accounts_deleted: int


# The unit's devices lead a query by unit to the readings' key (device first).
_PLACED = "device_uid IN (SELECT device_uid FROM placements WHERE unit_id = ?)"


def _cutoff(now: float, age_s: float) -> str:
    # Reading times are site-local ISO text; a day of slack absorbs the time-zone offset.
    return dt.datetime.fromtimestamp(now - age_s - DAY_S, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def _check_operator(layer: AccessLayer, actor: Principal, action: str) -> None:
    if actor.role is not Role.OPERATOR or actor.staff_role not in ("admin", "data_protection"):
        error = NoGrantError(DenyReason.PURPOSE_NOT_ALLOWED, f"{action} needs operator admin or DPO staff")
        layer.audit.append(
            {
                "action": action,
                "actor": layer.audit.ref(actor.id),
                "role": actor.role.value,
                "decision": "deny",
                "reason": error.code.value,
            }
        )
        raise error


def apply_retention(layer: AccessLayer, actor: Principal, policy: RetentionPolicy) -> dict[str, int]:
    """Delete readings and status events older than their class's period (at the layer's
    clock) and expired billing pseudonym keys; audited. Returns deleted rows per class."""
    _check_operator(layer, actor, "retention")
    db = layer._connection()
    now = layer.now()
    counts = {
        "current": db.execute(
            "DELETE FROM readings WHERE storage = 0 AND reading_time < ?", (_cutoff(now, policy.current_s),)
        ).rowcount,
        "monthly": db.execute(
            "DELETE FROM readings WHERE storage >= 2 AND reading_time < ?", (_cutoff(now, policy.monthly_s),)
        ).rowcount,
        "billing": db.execute(
            "DELETE FROM readings WHERE storage = 1 AND reading_time < ?", (_cutoff(now, policy.billing_s),)
        ).rowcount,
        "status": db.execute(
            "DELETE FROM status_events WHERE event_time < ?", (_cutoff(now, policy.status_s),)
        ).rowcount,
        "billing_archive": db.execute(
            "DELETE FROM access_billing_archive WHERE keep_until < ?", (now,)
        ).rowcount,
        "billing_keys": db.execute("DELETE FROM access_billing_keys WHERE keep_until < ?", (now,)).rowcount,
    }
    layer.audit.append(
        {
            "action": "retention",
            "actor": layer.audit.ref(actor.id),
            "role": actor.role.value,
            "decision": "allow",
            **{f"deleted_{name}": count for name, count in counts.items()},
        }
    )
    return counts


def erase_person(
    layer: AccessLayer,
    actor: Principal,
    person_id: str,
    *,
    policy: RetentionPolicy | None = None,
) -> ErasureResult:
    """Erase ``person_id`` at the end of a tenancy or on request (Art. 17): readings of their
    tenancies except due-date values, which move to the pseudonymised billing archive (kept
    ``policy.billing_s`` s); their grants, consents and accounts; and the link from the audit
    trail. The site registry's tenancy entries are the embedding service's to remove."""
    _check_operator(layer, actor, "erasure")
    retention = policy or RetentionPolicy()
    db = layer._connection()
    now = layer.now()
    keep_until = now + retention.billing_s
    pseudonym = "b-" + secrets.token_hex(8)
    site = layer.site
    deleted = archived = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for unit in site.units():
            for tenancy in site.tenancies(unit.id):
                if tenancy.tenant != person_id:
                    continue
                first = tenancy.start.isoformat()
                # The end day is inclusive: every time on it sorts below the next day.
                last = "9999" if tenancy.end is None else (tenancy.end + dt.timedelta(days=1)).isoformat()
                span = (unit.id, first, last)
                archived += db.execute(
                    "INSERT INTO access_billing_archive SELECT ?, building_id, unit_id, ?, ?, device_uid, "
                    "reading_time, quantity, value, unit, ? FROM readings "
                    "WHERE storage = 1 AND unit_id = ? AND reading_time >= ? AND reading_time < ? "
                    f"AND {_PLACED}",
                    (
                        pseudonym,
                        first,
                        tenancy.end.isoformat() if tenancy.end else "",
                        keep_until,
                        *span,
                        unit.id,
                    ),
                ).rowcount
                deleted += db.execute(
                    "DELETE FROM readings WHERE storage != 1 AND unit_id = ? AND reading_time >= ? "
                    f"AND reading_time < ? AND {_PLACED}",
                    (*span, unit.id),
                ).rowcount
        consent_ids = [
            str(r[0]) for r in db.execute("SELECT id FROM access_consents WHERE subject = ?", (person_id,))
        ]
        grants = db.execute(
            "DELETE FROM access_grants WHERE principal_id = ? "
            "OR consent_id IN (SELECT id FROM access_consents WHERE subject = ?)",
            (person_id, person_id),
        ).rowcount
        consents = db.execute("DELETE FROM access_consents WHERE subject = ?", (person_id,)).rowcount
        accounts_deleted = db.execute(
            "DELETE FROM access_accounts WHERE principal_id = ?", (person_id,)
        ).rowcount
        if archived:
            db.execute("INSERT INTO access_billing_keys VALUES (?, ?, ?)", (pseudonym, person_id, keep_until))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    layer.audit.forget(person_id)
    layer.audit.append(
        {
            "action": "erasure",
            "actor": layer.audit.ref(actor.id),
            "role": actor.role.value,
            "decision": "allow",
            "pseudonym": pseudonym,
            "consents": consent_ids,
            "deleted_readings": deleted,
            "archived_billing": archived,
        }
    )
    return ErasureResult(
        pseudonym=pseudonym,
        readings_deleted=deleted,
        billing_archived=archived,
        grants_deleted=grants,
        consents_deleted=consents,
        accounts_deleted=accounts_deleted,
    )
