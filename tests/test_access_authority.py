"""Who may give, revoke and consent: granting staff, owners for their tenants' own units, data
subjects for their own consents; everyone else refused, and every decision in the audit trail."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore.access import (
    AccessLayer,
    DenyReason,
    LegalBasis,
    NotAuthorizedError,
    Principal,
    Purpose,
    Role,
)
from minolcore.access.grants import OWNER_BASES, OWNER_PURPOSES
from minolcore.errors import ConfigError
from minolcore.store import SQLiteStore
from tests.test_access import ADMIN, AUDIT_KEY, AUDITOR, BOB, OWNER, TECHNICIAN, Clock, fill, make_site
from tests.test_access import BILLING_CLERK as CLERK

DPO = Principal(id="staff-9", role=Role.OPERATOR, staff_role="data_protection")
ANALYST = Principal(id="staff-4", role=Role.OPERATOR, staff_role="analyst")
LANDLORD = Principal(id="lars", role=Role.LANDLORD)
CAROL = Principal(id="carol", role=Role.TENANT)
PORTAL_FOR_BOB = Principal(id="svc-portal", role=Role.SERVICE, acting_for=BOB)
LONE_SERVICE = Principal(id="svc-x", role=Role.SERVICE)


def open_layer(folder: Path) -> AccessLayer:
    store = SQLiteStore(folder / "data.db")
    fill(store)
    layer = AccessLayer(store, make_site(), audit_key=AUDIT_KEY, clock=Clock())
    # Olga owns building B1 (billing and monthly information); Lars lets unit U2 (billing).
    for person, unit, purpose in (
        ("olga", None, Purpose.BILLING),
        ("olga", None, Purpose.CONSUMPTION_INFO),
        ("lars", "U2", Purpose.BILLING),
    ):
        layer.grants.grant(
            ADMIN, principal_id=person, building="B1", unit=unit, purpose=purpose, basis=LegalBasis.CONTRACT
        )
    return layer


@pytest.fixture
def layer(tmp_path: Path) -> AccessLayer:
    return open_layer(tmp_path)


def last(layer: AccessLayer) -> dict[str, object]:
    return dict(layer.audit.records()[-1].data())


def grant_rows(layer: AccessLayer) -> int:
    return int(layer._connection().execute("SELECT count(*) FROM access_grants").fetchone()[0])


def refused(
    layer: AccessLayer, action: str, call: object, code: DenyReason = DenyReason.NO_AUTHORITY
) -> None:
    before = layer.audit.count()
    with pytest.raises(NotAuthorizedError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code is code
    entry = last(layer)
    assert layer.audit.count() == before + 1
    assert (entry["action"], entry["decision"], entry["reason"]) == (action, "deny", code.value)


# --- staff ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("staff", [ADMIN, DPO])
def test_granting_staff_grant_and_revoke_anything(layer: AccessLayer, staff: Principal) -> None:
    grant = layer.grants.grant(
        staff,
        principal_id="ivan",
        building="B2",
        purpose=Purpose.ANALYSIS,
        basis=LegalBasis.LEGITIMATE_INTEREST,
    )
    entry = last(layer)
    assert (entry["action"], entry["decision"], entry["grant"]) == ("grant", "allow", grant.id)
    assert entry["staff_role"] == staff.staff_role and entry["actor"] == layer.audit.ref(staff.id)
    assert entry["subject"] == layer.audit.ref("ivan") and "ivan" not in layer.audit.records()[-1].entry
    assert grant.granted_by == layer.audit.ref(staff.id)
    layer.grants.revoke(staff, grant.id)
    assert (last(layer)["action"], last(layer)["decision"]) == ("revoke", "allow")
    assert layer.grants.get(grant.id).revoked_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("who", [CLERK, TECHNICIAN, ANALYST, AUDITOR, BOB])
def test_others_may_not_grant_or_revoke(layer: AccessLayer, who: Principal) -> None:
    rows = grant_rows(layer)
    refused(
        layer,
        "grant",
        lambda: layer.grants.grant(
            who, principal_id=who.id, building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
        ),
    )
    assert grant_rows(layer) == rows
    held = layer.grants.of("olga")[0]
    refused(layer, "revoke", lambda: layer.grants.revoke(who, held.id))
    assert layer.grants.get(held.id).revoked_at is None  # type: ignore[union-attr]


def test_service_acting_for_nobody_is_refused(layer: AccessLayer) -> None:
    refused(
        layer,
        "grant",
        lambda: layer.grants.grant(
            LONE_SERVICE,
            principal_id="bob",
            building="B1",
            purpose=Purpose.BILLING,
            basis=LegalBasis.CONTRACT,
        ),
        DenyReason.NO_PRINCIPAL,
    )


def test_staff_mistakes_are_refused_and_audited(layer: AccessLayer) -> None:
    with pytest.raises(ConfigError):
        layer.grants.revoke(ADMIN, "g-unknown")
    assert (last(layer)["decision"], last(layer)["reason"]) == ("deny", "invalid_request")
    with pytest.raises(ConfigError):
        layer.grants.grant(
            ADMIN,
            principal_id="bob",
            building="B1",
            purpose=Purpose.BILLING,
            basis=LegalBasis.CONTRACT,
            device_kinds=["toaster"],
        )
    assert (last(layer)["action"], last(layer)["reason"]) == ("grant", "invalid_request")


# --- owners and landlords ---------------------------------------------------------------------------------


def test_owner_grants_a_tenant_their_own_unit(layer: AccessLayer) -> None:
    grant = layer.grants.grant(
        OWNER,
        principal_id="bob",
        building="B1",
        unit="U1",
        purpose=Purpose.CONSUMPTION_INFO,
        basis=LegalBasis.LEGAL_OBLIGATION,
    )
    entry = last(layer)
    assert (entry["decision"], entry["role"], entry["unit"]) == ("allow", "owner", "U1")
    assert grant.granted_by == layer.audit.ref("olga")
    rows = layer.readings(BOB, Purpose.CONSUMPTION_INFO, building="B1", unit="U1")
    assert rows and {r.unit_id for r in rows} == {"U1"}
    landlord = layer.grants.grant(
        LANDLORD,
        principal_id="carol",
        building="B1",
        unit="U2",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
    )
    assert layer.readings(CAROL, Purpose.BILLING, building="B1", unit="U2")
    layer.grants.revoke(LANDLORD, landlord.id)
    assert (last(layer)["action"], last(layer)["decision"]) == ("revoke", "allow")


@pytest.mark.parametrize(
    ("who", "tenant", "building", "unit", "purpose", "basis"),
    [
        (OWNER, "bob", "B1", None, Purpose.CONSUMPTION_INFO, LegalBasis.CONTRACT),  # a whole building
        (OWNER, "carol", "B1", "U1", Purpose.BILLING, LegalBasis.CONTRACT),  # not her unit
        (OWNER, "mallory", "B1", "U1", Purpose.BILLING, LegalBasis.CONTRACT),  # not a tenant at all
        (OWNER, "bob", "B2", "U1", Purpose.BILLING, LegalBasis.CONTRACT),  # unit of another building
        (OWNER, "bob", "B1", "U9", Purpose.BILLING, LegalBasis.CONTRACT),  # no such unit
        (OWNER, "bob", "B1", "U1", Purpose.ANALYSIS, LegalBasis.CONTRACT),  # purpose not for tenants
        (OWNER, "bob", "B1", "U1", Purpose.SMOKE_INSPECTION, LegalBasis.LEGAL_OBLIGATION),
        (OWNER, "bob", "B1", "U1", Purpose.BILLING, LegalBasis.LEGITIMATE_INTEREST),  # basis
        (OWNER, "bob", "B1", "U1", Purpose.BILLING, LegalBasis.CONSENT),
        (OWNER, "carol", "B2", "U3", Purpose.BILLING, LegalBasis.CONTRACT),  # holds nothing in B2
        (LANDLORD, "bob", "B1", "U1", Purpose.BILLING, LegalBasis.CONTRACT),  # holds only U2
        (LANDLORD, "carol", "B1", "U2", Purpose.CONSUMPTION_INFO, LegalBasis.CONTRACT),  # only billing
    ],
)
def test_owner_grants_outside_the_rule_are_refused(
    layer: AccessLayer,
    who: Principal,
    tenant: str,
    building: str,
    unit: str | None,
    purpose: Purpose,
    basis: LegalBasis,
) -> None:
    rows = grant_rows(layer)
    refused(
        layer,
        "grant",
        lambda: layer.grants.grant(
            who, principal_id=tenant, building=building, unit=unit, purpose=purpose, basis=basis
        ),
    )
    assert grant_rows(layer) == rows


def test_owner_passes_on_no_more_than_they_hold(layer: AccessLayer) -> None:
    held = layer.grants.grant(
        ADMIN,
        principal_id="oskar",
        building="B1",
        unit="U1",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
        device_kinds=["heating"],
    )
    oskar = Principal(id="oskar", role=Role.OWNER)

    def give(kinds: list[str]) -> object:
        return layer.grants.grant(
            oskar,
            principal_id="bob",
            building="B1",
            unit="U1",
            purpose=Purpose.BILLING,
            basis=LegalBasis.CONTRACT,
            device_kinds=kinds,
        )

    refused(layer, "grant", lambda: give([]))  # every kind: more than heating
    refused(layer, "grant", lambda: give(["heating", "water"]))
    assert give(["heating"])
    layer.grants.revoke(ADMIN, held.id)
    refused(layer, "grant", lambda: give(["heating"]))  # a revoked grant is nothing to pass on


def test_owner_passes_on_no_longer_and_no_further_back_than_they_hold(layer: AccessLayer) -> None:
    layer.grants.grant(
        ADMIN,
        principal_id="oskar",
        building="B1",
        unit="U1",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
        valid_until=4_000_000_000.0,
        data_from="2024-01-01",
        data_until="2024-12-31",
    )
    oskar = Principal(id="oskar", role=Role.OWNER)

    def give(**span: object) -> object:
        return layer.grants.grant(
            oskar,
            principal_id="bob",
            building="B1",
            unit="U1",
            purpose=Purpose.BILLING,
            basis=LegalBasis.CONTRACT,
            **span,  # type: ignore[arg-type]
        )

    refused(layer, "grant", lambda: give(data_from="2024-01-01", data_until="2024-12-31"))  # open-ended
    refused(
        layer,
        "grant",
        lambda: give(valid_until=5_000_000_000.0, data_from="2024-01-01", data_until="2024-12-31"),
    )  # outlives the owner's grant
    refused(
        layer,
        "grant",
        lambda: give(valid_until=3_000_000_000.0, data_from="2023-06-01", data_until="2024-12-31"),
    )  # reaches further back
    refused(layer, "grant", lambda: give(valid_until=3_000_000_000.0, data_from="2024-01-01"))  # no end day
    assert give(valid_until=3_000_000_000.0, data_from="2024-03-01", data_until="2024-10-31")


def test_owner_revokes_only_what_they_gave(layer: AccessLayer) -> None:
    given_by_owner = layer.grants.grant(
        OWNER,
        principal_id="bob",
        building="B1",
        unit="U1",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
    )
    given_by_admin = layer.grants.grant(
        ADMIN,
        principal_id="bob",
        building="B1",
        unit="U1",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
    )
    refused(layer, "revoke", lambda: layer.grants.revoke(OWNER, given_by_admin.id))
    refused(layer, "revoke", lambda: layer.grants.revoke(LANDLORD, given_by_owner.id))
    refused(layer, "revoke", lambda: layer.grants.revoke(OWNER, "g-unknown"))
    refused(layer, "revoke", lambda: layer.grants.revoke(BOB, given_by_owner.id))  # the grantee either
    layer.grants.revoke(OWNER, given_by_owner.id)
    assert layer.grants.get(given_by_owner.id).revoked_at is not None  # type: ignore[union-attr]
    assert layer.grants.get(given_by_admin.id).revoked_at is None  # type: ignore[union-attr]


# --- consents ---------------------------------------------------------------------------------------------


def test_subject_records_and_withdraws_their_own_consent(layer: AccessLayer) -> None:
    consent = layer.grants.record_consent(
        BOB, subject="bob", purpose=Purpose.ANALYSIS, evidence="portal click 7"
    )
    assert (last(layer)["action"], last(layer)["decision"]) == ("consent_recorded", "allow")
    layer.grants.withdraw_consent(BOB, consent.id)
    assert (last(layer)["action"], last(layer)["decision"]) == ("consent_withdrawn", "allow")
    assert not layer.grants.consent(consent.id).active_at(1e12)  # type: ignore[union-attr]


def test_a_portal_records_consent_for_the_person_it_acts_for(layer: AccessLayer) -> None:
    layer.grants.record_consent(PORTAL_FOR_BOB, subject="bob", purpose=Purpose.ANALYSIS, evidence="click 8")
    entry = last(layer)
    assert entry["decision"] == "allow" and entry["role"] == "service"
    assert entry["for"] == layer.audit.ref("bob") and entry["actor"] == layer.audit.ref("svc-portal")
    refused(
        layer,
        "consent_recorded",
        lambda: layer.grants.record_consent(
            PORTAL_FOR_BOB, subject="carol", purpose=Purpose.ANALYSIS, evidence="x"
        ),
    )


@pytest.mark.parametrize("who", [OWNER, CAROL, CLERK, AUDITOR])
def test_nobody_else_records_or_withdraws_a_persons_consent(layer: AccessLayer, who: Principal) -> None:
    refused(
        layer,
        "consent_recorded",
        lambda: layer.grants.record_consent(who, subject="bob", purpose=Purpose.ANALYSIS, evidence="form 3"),
    )
    consent = layer.grants.record_consent(BOB, subject="bob", purpose=Purpose.ANALYSIS, evidence="form 3")
    refused(layer, "consent_withdrawn", lambda: layer.grants.withdraw_consent(who, consent.id))
    assert layer.grants.consent(consent.id).revoked_at is None  # type: ignore[union-attr]
    refused(layer, "consent_withdrawn", lambda: layer.grants.withdraw_consent(who, "c-unknown"))


@pytest.mark.parametrize("staff", [ADMIN, DPO])
def test_staff_enter_written_consents_with_evidence(layer: AccessLayer, staff: Principal) -> None:
    consent = layer.grants.record_consent(
        staff, subject="carol", purpose=Purpose.ANALYSIS, evidence="form 2025-017, signed"
    )
    assert last(layer)["decision"] == "allow" and last(layer)["subject"] == layer.audit.ref("carol")
    with pytest.raises(ConfigError):
        layer.grants.record_consent(staff, subject="carol", purpose=Purpose.ANALYSIS, evidence="  ")
    assert (last(layer)["decision"], last(layer)["reason"]) == ("deny", "invalid_request")
    layer.grants.withdraw_consent(staff, consent.id)
    assert last(layer)["decision"] == "allow"
    with pytest.raises(ConfigError):
        layer.grants.withdraw_consent(staff, "c-unknown")
    assert layer.audit.verify().ok


def test_databases_without_the_grantor_column_are_upgraded(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "data.db")
    db.execute(
        "CREATE TABLE access_grants (id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, "
        "building TEXT NOT NULL, unit TEXT, device_kinds TEXT NOT NULL, purpose TEXT NOT NULL, "
        "basis TEXT NOT NULL, "
        "valid_from REAL NOT NULL, valid_until REAL, data_from TEXT, data_until TEXT, consent_id TEXT, "
        "revoked_at REAL)"
    )
    db.execute(
        "INSERT INTO access_grants VALUES ('g-old', 'olga', 'B1', NULL, '', 'billing', 'contract', 0, "
        "NULL, NULL, NULL, NULL, NULL)"
    )
    db.commit()
    db.close()
    layer = open_layer(tmp_path)
    assert layer.grants.get("g-old").granted_by is None  # type: ignore[union-attr]
    # A grant of unknown origin is no owner's to revoke; staff still can.
    refused(layer, "revoke", lambda: layer.grants.revoke(OWNER, "g-old"))
    layer.grants.revoke(ADMIN, "g-old")


# --- the rules as a model ---------------------------------------------------------------------------------

ACTORS = [ADMIN, DPO, CLERK, TECHNICIAN, AUDITOR, OWNER, LANDLORD, BOB, CAROL, PORTAL_FOR_BOB, LONE_SERVICE]
TENANTS = {"U1": {"alice", "bob"}, "U2": {"carol"}, "U3": set()}
UNIT_BUILDING = {"U1": "B1", "U2": "B1", "U3": "B2"}
HELD = {
    ("olga", Purpose.BILLING): None,
    ("olga", Purpose.CONSUMPTION_INFO): None,
    ("lars", Purpose.BILLING): "U2",
}


def may_grant(
    by: Principal,
    tenant: str,
    building: str,
    unit: str | None,
    purpose: Purpose,
    basis: LegalBasis,
    held: dict[tuple[str, Purpose], str | None] = HELD,
) -> bool:
    """Whether ``by`` may grant this, while holding the grants ``held`` (owner or landlord
    and purpose: the unit, None for the whole building)."""
    who = by.effective()
    if who is None:
        return False
    if who.role is Role.OPERATOR:
        return who.staff_role in ("admin", "data_protection")
    if who.role not in (Role.OWNER, Role.LANDLORD) or unit is None:
        return False
    if purpose not in OWNER_PURPOSES or basis not in OWNER_BASES:
        return False
    if UNIT_BUILDING.get(unit) != building or tenant not in TENANTS.get(unit, set()):
        return False
    return building == "B1" and (who.id, purpose) in held and held[(who.id, purpose)] in (None, unit)


def may_consent(by: Principal, subject: str) -> bool:
    who = by.effective()
    if who is None:
        return False
    if who.role is Role.OPERATOR:
        return who.staff_role in ("admin", "data_protection")
    return who.role in (Role.TENANT, Role.OWNER, Role.LANDLORD) and who.id == subject


operations = st.one_of(
    st.tuples(
        st.just("grant"),
        st.sampled_from(ACTORS),
        st.sampled_from(["alice", "bob", "carol", "mallory"]),
        st.sampled_from(["B1", "B2"]),
        st.sampled_from([None, "U1", "U2", "U3"]),
        st.sampled_from(list(Purpose)),
        st.sampled_from([b for b in LegalBasis if b is not LegalBasis.CONSENT]),
    ),
    st.tuples(st.just("consent"), st.sampled_from(ACTORS), st.sampled_from(["bob", "carol", "olga"])),
    st.tuples(st.just("revoke"), st.sampled_from(ACTORS), st.integers(0, 50)),
    st.tuples(st.just("withdraw"), st.sampled_from(ACTORS), st.integers(0, 50)),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(operations, min_size=1, max_size=12))
def test_every_change_follows_the_rules_and_is_audited(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        layer = open_layer(Path(folder))
        grantor: dict[str, str | None] = {g.id: None for p in ("olga", "lars") for g in layer.grants.of(p)}
        # The owner's and the landlord's own grants can be revoked too (ids are random, so any
        # run may pick them): from then on they may grant nothing for that purpose.
        held = dict(HELD)
        own = {g.id: (p, g.purpose) for p in ("olga", "lars") for g in layer.grants.of(p)}
        consents: dict[str, str] = {}
        for op in ops:
            before = layer.audit.count()
            kind, by = op[0], op[1]
            assert isinstance(by, Principal)
            effective = by.effective()
            staff = (
                effective is not None
                and effective.role is Role.OPERATOR
                and effective.staff_role
                in (
                    "admin",
                    "data_protection",
                )
            )
            try:
                if kind == "grant":
                    tenant, building, unit, purpose, basis = op[2:]
                    expected = may_grant(by, tenant, building, unit, purpose, basis, held)  # type: ignore[arg-type]
                    grant = layer.grants.grant(
                        by,
                        principal_id=tenant,
                        building=building,
                        unit=unit,
                        purpose=purpose,
                        basis=basis,  # type: ignore[arg-type]
                    )
                    grantor[grant.id] = None if effective is None else effective.id
                elif kind == "consent":
                    subject = str(op[2])
                    expected = may_consent(by, subject)
                    consent = layer.grants.record_consent(
                        by, subject=subject, purpose=Purpose.ANALYSIS, evidence="f"
                    )
                    consents[consent.id] = subject
                elif kind == "revoke":
                    ids = sorted(grantor)
                    grant_id = ids[int(op[2]) % len(ids)]  # type: ignore[call-overload]
                    expected = staff or (
                        effective is not None
                        and effective.role in (Role.OWNER, Role.LANDLORD)
                        and grantor[grant_id] == effective.id
                    )
                    layer.grants.revoke(by, grant_id)
                    if grant_id in own:
                        held.pop(own[grant_id], None)
                else:
                    if not consents:
                        continue
                    ids = sorted(consents)
                    consent_id = ids[int(op[2]) % len(ids)]  # type: ignore[call-overload]
                    expected = staff or (
                        effective is not None
                        and effective.role is not Role.OPERATOR
                        and effective.role in (Role.TENANT, Role.OWNER, Role.LANDLORD)
                        and effective.id == consents[consent_id]
                    )
                    layer.grants.withdraw_consent(by, consent_id)
                allowed = True
            except NotAuthorizedError:
                allowed = False
            assert allowed == expected, op
            assert layer.audit.count() == before + 1
            assert last(layer)["decision"] == ("allow" if allowed else "deny")
        assert layer.audit.verify().ok
        layer.close()
