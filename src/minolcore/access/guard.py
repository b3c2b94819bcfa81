"""The one door to readings, status events and reports: :class:`AccessLayer`.

Every read names the principal (or presents a bearer token) and the purpose. The layer finds
the grants that allow it (operator staff read under the metering contract by staff role),
narrows tenants to their own unit and tenancy days, keeps only the rows and fields the purpose
needs (:mod:`minolcore.access.policy`), and appends the decision to the audit trail, allowed or
denied, before it answers. Default: deny.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from minolcore import _reports
from minolcore._model import Record
from minolcore.access.audit import AuditLog, AuditValue
from minolcore.access.db import connect
from minolcore.access.grants import GrantRegistry
from minolcore.access.model import (
    OPERATOR_PURPOSES,
    DenyReason,
    Grant,
    LegalBasis,
    NoGrantError,
    PolicyDeniedError,
    Principal,
    Purpose,
    Role,
)
from minolcore.access.policy import POLICIES, PurposePolicy, device_class
from minolcore.access.tokens import BearerToken, TokenService
from minolcore.errors import InputError
from minolcore.keys import MasterKey, rotate
from minolcore.site import Installation, LoRaWANAddress, SiteRegistry, WMBusAddress
from minolcore.store import SQLiteStore
from minolcore.store._reader import StoreReader
from minolcore.store.base import DeviceRow, ReadingRow, StatusEventRow

__all__ = ["AccessLayer", "Actor", "Cover", "ReadingView", "StatusView"]

Actor = Principal | BearerToken
_TOKEN = re.compile(r"[A-Za-z0-9]+")

# The devices with placements or status events. The status events' devices are read by
# seeking from one device to the next in the table's key (one index lookup per device)
# instead of scanning every event, which grows with the years a store keeps.
_PLACED_OR_REPORTING = """
SELECT device_uid FROM placements
UNION
SELECT uid FROM (
    WITH RECURSIVE reporting(uid) AS (
        SELECT min(device_uid) FROM status_events
        UNION ALL
        SELECT (SELECT min(device_uid) FROM status_events WHERE device_uid > reporting.uid)
        FROM reporting WHERE reporting.uid IS NOT NULL
    )
    SELECT uid FROM reporting WHERE uid IS NOT NULL
)
"""


class ReadingView(Record):
    """A reading as a purpose may see it: fields the purpose does not need are None
    (``reading_time`` ISO local time, ``value`` in ``unit``)."""

    reading_time: str
    quantity: str
    value: float | None
    unit: str
    device_uid: str | None = None
    storage: int | None = None
    tariff: int | None = None
    subunit: int | None = None
    function: str | None = None
    valid: bool | None = None
    building_id: str | None = None
    unit_id: str | None = None


class StatusView(Record):
    """A status event as a purpose may see it (``event_time`` ISO local time)."""

    event_time: str
    event: str
    device_uid: str | None = None
    detail: str | None = None
    building_id: str | None = None
    unit_id: str | None = None


class Cover(Record):
    """What one grant lets through: a building, a unit (None = all), device classes (empty =
    all) and local days ``first_day``..``last_day`` (ISO, inclusive; None = open)."""

    grant_id: str
    basis: LegalBasis
    building: str
    unit: str | None
    kinds: frozenset[str]
    first_day: str | None
    last_day: str | None

    def admits(self, building: str | None, unit: str | None, kind: str, day: str) -> bool:
        """Whether a row of ``building``/``unit``/device class ``kind`` on local ISO ``day`` is covered."""
        return (
            building == self.building
            and (self.unit is None or unit == self.unit)
            and (not self.kinds or kind in self.kinds)
            and (self.first_day is None or day >= self.first_day)
            and (self.last_day is None or day <= self.last_day)
        )


class _Decision(Record):
    principal: Principal
    effective: Principal
    covers: tuple[Cover, ...]


def _max_day(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else max(a, b)


def _min_day(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else min(a, b)


class _DeviceIndex:
    """Device uid -> device class and installations, rebuilt when the store or the site changes."""

    def __init__(
        self, devices: Sequence[DeviceRow], uids: Iterable[str], installations: Sequence[Installation]
    ):
        by_uid = {device.device_uid: device for device in devices}
        self.kinds: dict[str, str] = {}
        self.places: dict[str, list[Installation]] = {}
        for uid in set(uids) | set(by_uid):
            device = by_uid.get(uid)
            tokens = {token.upper() for token in _TOKEN.findall(uid)}
            found = [inst for inst in installations if _matches(inst.address, device, tokens)]
            self.places[uid] = found
            if found:
                self.kinds[uid] = device_class(found[0].kind.value)
            else:
                self.kinds[uid] = device_class(device.kind) if device is not None else "other"

    def place(self, uid: str, when: dt.datetime) -> Installation | None:
        for inst in self.places.get(uid, ()):
            if inst.active_at(when):
                return inst
        return None


def _matches(address: WMBusAddress | LoRaWANAddress, device: DeviceRow | None, tokens: set[str]) -> bool:
    if isinstance(address, WMBusAddress):
        if device is not None:
            return (
                device.manufacturer.upper() == address.manufacturer and device.meter_id.upper() == address.id
            )
        return address.id in tokens
    wanted = {address.dev_eui, address.dev_addr} - {None}
    if device is not None:
        return device.meter_id.upper() in wanted
    return bool(wanted & tokens)


class AccessLayer:
    """Enforced, audited access to one store (a database file) placed by one site registry.

    ``audit_key`` (16+ bytes) keys the audit MACs; ``token_key`` (32+ bytes) enables bearer
    tokens for ``audience``; ``clock`` returns s since the epoch (for tests).
    """

    def __init__(
        self,
        store: SQLiteStore,
        site: SiteRegistry,
        *,
        audit_key: bytes,
        token_key: bytes | None = None,
        issuer: str = "minolcore",
        audience: str = "minolcore-api",
        token_lifetime_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._reader = StoreReader(store)
        self._site = site
        self._clock = clock
        self._db = connect(store.path)
        self.audit = AuditLog(self._db, audit_key, clock=clock)
        self.grants = GrantRegistry(self._db, self.audit, clock=clock, site=site)
        self.tokens = (
            None
            if token_key is None
            else TokenService(
                self._db,
                self.grants,
                token_key,
                issuer=issuer,
                audience=audience,
                clock=clock,
                lifetime_s=token_lifetime_s,
            )
        )
        self._tz = ZoneInfo(site.timezone)
        self._index: _DeviceIndex | None = None
        self._index_key: tuple[int, int] = (-1, -1)

    def __repr__(self) -> str:
        return f"<AccessLayer {self._store.path}>"

    @property
    def db_path(self) -> str:
        """The database file the layer guards."""
        return self._store.path

    @property
    def site(self) -> SiteRegistry:
        """The site registry used to place devices and tenancies."""
        return self._site

    def _connection(self) -> sqlite3.Connection:
        # Raw SQL reaches every reading: only the retention module (same package) uses it.
        return self._db

    def now(self) -> float:
        """The layer's clock (s since the epoch)."""
        return self._clock()

    # --- decisions -------------------------------------------------------------------------------------

    def _principal(self, actor: Actor) -> tuple[Principal, frozenset[str] | None]:
        if not isinstance(actor, BearerToken | Principal):
            raise InputError(f"the actor must be a Principal or a BearerToken, not {type(actor).__name__}")
        if isinstance(actor, BearerToken):
            if self.tokens is None:
                raise PolicyDeniedError(DenyReason.TOKEN_INVALID, "tokens are not enabled")
            claims = self.tokens.verify(actor)
            return claims.principal, claims.grant_ids
        return actor, None

    def _decide(
        self,
        principal: Principal,
        token_grants: frozenset[str] | None,
        purpose: Purpose,
        building: str,
        unit: str | None,
    ) -> _Decision:
        effective = principal.effective()
        if effective is None:
            raise NoGrantError(DenyReason.NO_PRINCIPAL, "a service must act for a principal")
        if effective.role is Role.OPERATOR:
            allowed = OPERATOR_PURPOSES.get(effective.staff_role or "", frozenset())
            if purpose not in allowed:
                raise NoGrantError(DenyReason.PURPOSE_NOT_ALLOWED, f"staff role {effective.staff_role!r}")
            cover = Cover(
                grant_id="staff:" + (effective.staff_role or ""),
                basis=LegalBasis.CONTRACT,
                building=building,
                unit=None,
                kinds=frozenset(),
                first_day=None,
                last_day=None,
            )
            return _Decision(principal=principal, effective=effective, covers=(cover,))
        now = self._clock()
        grants = self.grants.of(effective.id)
        if token_grants is not None:
            grants = [g for g in grants if g.id in token_grants]
        covers: list[Cover] = []
        reasons: list[DenyReason] = []
        for grant in grants:
            reason = self._grant_problem(grant, purpose, building, unit, now)
            if reason is not None:
                reasons.append(reason)
                continue
            found = self._covers(effective, grant, unit)
            if not found:
                reasons.append(DenyReason.NOT_TENANT)
            covers.extend(found)
        if not covers:
            order = (
                DenyReason.CONSENT_WITHDRAWN,
                DenyReason.REVOKED,
                DenyReason.EXPIRED,
                DenyReason.NOT_TENANT,
                DenyReason.OUT_OF_SCOPE,
                DenyReason.PURPOSE_NOT_ALLOWED,
            )
            code = next((r for r in order if r in reasons), DenyReason.NO_GRANT)
            raise NoGrantError(code, f"{purpose.value} of {building}/{unit or '*'}")
        return _Decision(principal=principal, effective=effective, covers=tuple(covers))

    def _grant_problem(
        self, grant: Grant, purpose: Purpose, building: str, unit: str | None, now: float
    ) -> DenyReason | None:
        if grant.purpose is not purpose:
            return DenyReason.PURPOSE_NOT_ALLOWED
        if grant.building != building or (unit is not None and grant.unit not in (None, unit)):
            return DenyReason.OUT_OF_SCOPE
        if grant.revoked_at is not None and grant.revoked_at <= now:
            return DenyReason.REVOKED
        if not grant.usable_at(now):
            return DenyReason.EXPIRED
        if grant.basis is LegalBasis.CONSENT and not self.grants.consent_active(grant.consent_id, now):
            return DenyReason.CONSENT_WITHDRAWN
        return None

    def _covers(self, effective: Principal, grant: Grant, unit: str | None) -> list[Cover]:
        kinds = frozenset(grant.device_kinds)
        if effective.role is not Role.TENANT:
            return [
                Cover(
                    grant_id=grant.id,
                    basis=grant.basis,
                    building=grant.building,
                    unit=grant.unit,
                    kinds=kinds,
                    first_day=grant.data_from,
                    last_day=grant.data_until,
                )
            ]
        # A tenant sees only units they rent(ed), and only the days of their tenancy, whatever
        # the grant says: the data of the tenants before and after are someone else's.
        units = [grant.unit] if grant.unit is not None else [u.id for u in self._site.units(grant.building)]
        result: list[Cover] = []
        for unit_id in units:
            if unit is not None and unit_id != unit:
                continue
            for tenancy in self._site.tenancies(unit_id):
                if tenancy.tenant != effective.id:
                    continue
                first = _max_day(grant.data_from, tenancy.start.isoformat())
                last = _min_day(grant.data_until, None if tenancy.end is None else tenancy.end.isoformat())
                if first is not None and last is not None and last < first:
                    continue
                result.append(
                    Cover(
                        grant_id=grant.id,
                        basis=grant.basis,
                        building=grant.building,
                        unit=unit_id,
                        kinds=kinds,
                        first_day=first,
                        last_day=last,
                    )
                )
        return result

    def _log(
        self,
        action: str,
        principal: Principal | None,
        purpose: Purpose | None,
        building: str | None,
        unit: str | None,
        decision: _Decision | None,
        error: PolicyDeniedError | None,
        rows: int | None = None,
    ) -> None:
        effective = None if principal is None else principal.effective()
        entry: dict[str, AuditValue] = {
            "action": action,
            "actor": None if principal is None else self.audit.ref(principal.id),
            "role": None if principal is None else principal.role.value,
            "for": None if effective is None or effective is principal else self.audit.ref(effective.id),
            "building": building,
            "unit": unit,
            "purpose": None if purpose is None else purpose.value,
            "decision": "deny" if error is not None else "allow",
        }
        if decision is not None:
            entry["basis"] = sorted({c.basis.value for c in decision.covers})
            entry["grants"] = sorted({c.grant_id for c in decision.covers})
        if error is not None:
            entry["reason"] = error.code.value
        if rows is not None:
            entry["rows"] = rows
        self.audit.append(entry)

    def _authorize(
        self, action: str, actor: Actor, purpose: Purpose, building: str, unit: str | None
    ) -> _Decision:
        if not isinstance(purpose, Purpose):
            raise InputError(f"the purpose must be a Purpose, not {purpose!r}")
        principal: Principal | None = None
        try:
            principal, token_grants = self._principal(actor)
            return self._decide(principal, token_grants, purpose, building, unit)
        except PolicyDeniedError as error:
            self._log(action, principal, purpose, building, unit, None, error)
            raise

    def _audited_principal(self, action: str, actor: Actor) -> Principal:
        """The principal behind ``actor``; a refused token is audited before it is raised."""
        try:
            principal, _ = self._principal(actor)
        except PolicyDeniedError as error:
            self._log(action, None, None, None, None, None, error)
            raise
        return principal

    # --- device placement ------------------------------------------------------------------------------

    def _devices(self) -> _DeviceIndex:
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        key = (version, len(self._site.installations()))
        if self._index is None or key != self._index_key:
            # The devices placed in a building or unit: the only ones whose readings a query
            # by building can return (a few rows per meter, where readings are millions).
            uids = [str(row[0]) for row in self._db.execute(_PLACED_OR_REPORTING)]
            self._index = _DeviceIndex(self._store.devices(), uids, self._site.installations())
            self._index_key = key
        return self._index

    # --- reads -------------------------------------------------------------------------------------------

    def readings(
        self,
        actor: Actor,
        purpose: Purpose,
        *,
        building: str,
        unit: str | None = None,
        quantity: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[ReadingView]:
        """Readings of ``building`` (or one ``unit``) that a valid grant covers for ``purpose``,
        with only the purpose's fields; ``since``/``until`` are ISO local times (inclusive).
        Raises :class:`NoGrantError` or :class:`TokenError` (both audited)."""
        decision = self._authorize("read_readings", actor, purpose, building, unit)
        rows = self._reader.readings(
            building_id=building, unit_id=unit, quantity=quantity, since=since, until=until
        )
        views = self._filter_readings(rows, decision, POLICIES[purpose])
        self._log("read_readings", decision.principal, purpose, building, unit, decision, None, len(views))
        return views

    def _allowed_rows(
        self, rows: Iterable[ReadingRow], decision: _Decision, policy: PurposePolicy
    ) -> list[ReadingRow]:
        kinds = self._devices().kinds
        low, high = policy.min_storage, policy.max_storage
        allowed_kinds = policy.kinds
        covers = decision.covers
        result: list[ReadingRow] = []
        for row in rows:
            storage = row.storage
            if storage < low or (high is not None and storage > high):
                continue
            kind = kinds.get(row.device_uid, "other")
            if kind not in allowed_kinds:
                continue
            day = row.reading_time[:10]
            for cover in covers:
                if cover.admits(row.building_id, row.unit_id, kind, day):
                    result.append(row)
                    break
        return result

    def _filter_readings(
        self, rows: Iterable[ReadingRow], decision: _Decision, policy: PurposePolicy
    ) -> list[ReadingView]:
        fields = policy.reading_fields
        identified = "device_uid" in fields
        return [
            ReadingView(
                reading_time=row.reading_time,
                quantity=row.quantity,
                value=row.value,
                unit=row.unit,
                device_uid=row.device_uid if identified else None,
                storage=row.storage,
                tariff=row.tariff,
                subunit=row.subunit,
                function=row.function,
                valid=row.valid,
                building_id=row.building_id,
                unit_id=row.unit_id if "unit_id" in fields else None,
            )
            for row in self._allowed_rows(rows, decision, policy)
        ]

    def status_events(
        self, actor: Actor, purpose: Purpose, *, building: str, unit: str | None = None
    ) -> list[StatusView]:
        """Status events of devices placed in ``building`` (or ``unit``) when they happened, for
        purposes that need them (smoke inspection: smoke detectors; billing: meters)."""
        decision = self._authorize("read_status", actor, purpose, building, unit)
        policy = POLICIES[purpose]
        if not policy.status_fields:
            error = NoGrantError(DenyReason.PURPOSE_NOT_ALLOWED, f"{purpose.value} needs no status events")
            self._log("read_status", decision.principal, purpose, building, unit, decision, error)
            raise error
        views = [
            StatusView(
                event_time=e.event_time,
                event=e.event,
                device_uid=e.device_uid,
                detail=e.detail,
                building_id=building,
                unit_id=placed,
            )
            for e, placed in self._allowed_events(self._reader.status_events(), decision, policy, unit)
        ]
        self._log("read_status", decision.principal, purpose, building, unit, decision, None, len(views))
        return views

    def _allowed_events(
        self, events: Iterable[StatusEventRow], decision: _Decision, policy: PurposePolicy, unit: str | None
    ) -> list[tuple[StatusEventRow, str | None]]:
        index = self._devices()
        result: list[tuple[StatusEventRow, str | None]] = []
        for event in events:
            kind = index.kinds.get(event.device_uid, "other")
            if kind not in policy.kinds:
                continue
            try:
                local = dt.datetime.fromisoformat(event.event_time)
            except ValueError:
                continue
            when = local.replace(tzinfo=self._tz) if local.tzinfo is None else local
            inst = index.place(event.device_uid, when)
            if inst is None or (unit is not None and inst.unit != unit):
                continue
            day = event.event_time[:10]
            if any(c.admits(inst.building, inst.unit, kind, day) for c in decision.covers):
                result.append((event, inst.unit))
        return result

    # --- reports -----------------------------------------------------------------------------------------

    def _whole(
        self, decision: _Decision, action: str, purpose: Purpose, building: str, unit: str | None
    ) -> None:
        # A building report lists every unit: only a building-wide grant may see that list.
        if unit is None and not any(c.unit is None for c in decision.covers):
            error = NoGrantError(DenyReason.OUT_OF_SCOPE, "the report needs a grant for the whole building")
            self._log(action, decision.principal, purpose, building, unit, decision, error)
            raise error

    def billing_report(
        self,
        actor: Actor,
        *,
        building: str,
        period: tuple[dt.date, dt.date],
        heating_costs: float | None = None,
        consumption_share: float | None = None,
    ) -> _reports.BillingReport:
        """The heating-cost billing over due-date values only, for a principal with
        a billing grant for the whole building (costs in one currency, share in percent)."""
        period = _day_pair(period, "period")
        decision = self._authorize("report_billing", actor, Purpose.BILLING, building, None)
        self._whole(decision, "report_billing", Purpose.BILLING, building, None)
        report = _reports.billing_report(
            _GuardedStore(self, decision, POLICIES[Purpose.BILLING]),
            self._site,
            building=building,
            period=period,
            heating_costs=heating_costs,
            consumption_share=consumption_share,
        )
        self._log("report_billing", decision.principal, Purpose.BILLING, building, None, decision, None)
        return report

    def monthly_report(
        self, actor: Actor, *, building: str, unit: str | None = None, months: tuple[dt.date, dt.date]
    ) -> _reports.MonthlyReport:
        """The monthly consumption information (HeizkostenV § 6a) over the month-end values the
        principal may see; a tenant's report holds only their tenancy (other months: None)."""
        months = _day_pair(months, "months")
        decision = self._authorize("report_monthly", actor, Purpose.CONSUMPTION_INFO, building, unit)
        self._whole(decision, "report_monthly", Purpose.CONSUMPTION_INFO, building, unit)
        report = _reports.monthly_report(
            _GuardedStore(self, decision, POLICIES[Purpose.CONSUMPTION_INFO]),
            self._site,
            unit=unit,
            building=building,
            months=months,
        )
        self._log(
            "report_monthly", decision.principal, Purpose.CONSUMPTION_INFO, building, unit, decision, None
        )
        return report

    def smoke_report(
        self, actor: Actor, *, building: str, at: dt.datetime | None = None
    ) -> _reports.SmokeReport:
        """The smoke detector inspection report (DIN 14676-1), seeing smoke detectors only."""
        if at is not None and not isinstance(at, dt.datetime):
            raise InputError(f"at must be a datetime, not {type(at).__name__}")
        decision = self._authorize("report_smoke", actor, Purpose.SMOKE_INSPECTION, building, None)
        self._whole(decision, "report_smoke", Purpose.SMOKE_INSPECTION, building, None)
        report = _reports.smoke_report(
            _GuardedStore(self, decision, POLICIES[Purpose.SMOKE_INSPECTION]),
            self._site,
            building=building,
            at=at,
        )
        self._log(
            "report_smoke", decision.principal, Purpose.SMOKE_INSPECTION, building, None, decision, None
        )
        return report

    # --- audit and keys ----------------------------------------------------------------------------------

    def audit_entries(self, actor: Actor) -> list[dict[str, AuditValue]]:
        """The decoded audit trail, for auditors and operator data-protection or admin staff."""
        principal = self._audited_principal("read_audit", actor)
        effective = principal.effective()
        allowed = effective is not None and (
            effective.role is Role.AUDITOR
            or (effective.role is Role.OPERATOR and effective.staff_role in ("admin", "data_protection"))
        )
        if not allowed:
            error = NoGrantError(DenyReason.PURPOSE_NOT_ALLOWED, "only auditors read the audit trail")
            self._log("read_audit", principal, None, None, None, None, error)
            raise error
        entries = [record.data() for record in self.audit.records()]
        self._log("read_audit", principal, None, None, None, None, None, len(entries))
        return entries

    def rotate_master_key(self, actor: Actor, path: str | Path, old: MasterKey, new: MasterKey) -> int:
        """Re-seal the key store at ``path`` under ``new`` (see :func:`minolcore.keys.rotate`) as
        operator admin staff; audited with the number of device keys. Returns that number."""
        principal = self._audited_principal("key_rotation", actor)
        effective = principal.effective()
        if effective is None or effective.role is not Role.OPERATOR or effective.staff_role != "admin":
            error = NoGrantError(DenyReason.PURPOSE_NOT_ALLOWED, "only operator admins rotate keys")
            self._log("key_rotation", principal, None, None, None, None, error)
            raise error
        store = rotate(path, old, new)
        self._log("key_rotation", principal, None, None, None, None, None, len(store))
        return len(store)

    def close(self) -> None:
        """Close the layer's own connection (the store stays open)."""
        self._db.close()


class _GuardedStore:
    """The store as one decision and purpose may see it: what the wrapped reports read."""

    def __init__(self, layer: AccessLayer, decision: _Decision, policy: PurposePolicy) -> None:
        self._layer = layer
        self._decision = decision
        self._policy = policy

    def readings(
        self,
        *,
        device_uid: str | None = None,
        building_id: str | None = None,
        unit_id: str | None = None,
        quantity: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[ReadingRow]:
        rows = self._layer._reader.readings(
            device_uid=device_uid,
            building_id=building_id,
            unit_id=unit_id,
            quantity=quantity,
            since=since,
            until=until,
        )
        return self._layer._allowed_rows(rows, self._decision, self._policy)

    def devices(self) -> list[DeviceRow]:
        kinds = self._layer._devices().kinds
        return [
            d for d in self._layer._store.devices() if kinds.get(d.device_uid, "other") in self._policy.kinds
        ]

    def status_events(self, device_uid: str | None = None) -> list[StatusEventRow]:
        if not self._policy.status_fields:
            return []
        events = self._layer._reader.status_events(device_uid)
        return [e for e, _ in self._layer._allowed_events(events, self._decision, self._policy, None)]


def _day_pair(value: object, name: str) -> tuple[dt.date, dt.date]:
    """A report's (first, last) days; a datetime counts as its day."""
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(d, dt.date) for d in value)):
        raise InputError(f"{name} must be a (first, last) pair of dates")
    first, last = (d.date() if isinstance(d, dt.datetime) else d for d in value)
    return first, last
