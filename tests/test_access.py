"""The access layer end to end: default deny, purposes and fields, tenancies, consents, tokens,
reports, erasure and key rotation, over a store filled by hand in a temporary file."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws, jwt

from minolcore.access import (
    AccessLayer,
    BearerToken,
    DenyReason,
    LegalBasis,
    NoGrantError,
    Principal,
    Purpose,
    Role,
    TokenError,
    erase_person,
)
from minolcore.access.guard import _PLACED_OR_REPORTING
from minolcore.errors import ConfigError, InputError, KeyStoreError
from minolcore.keys import KeyStore, MasterKey
from minolcore.site import SiteRegistry, WMBusAddress
from minolcore.store import SQLiteStore
from minolcore.store._reader import StoreReader
from minolcore.store.base import DeviceRow, ReadingRow, StatusEventRow, StoreBatch

AUDIT_KEY = b"k" * 32
TOKEN_KEY = b"t" * 32
T0 = dt.datetime(2025, 1, 15, tzinfo=dt.UTC).timestamp()

DEVICES = {
    # uid: (manufacturer, meter id, store kind, site kind, unit)
    "wmbus:QDS:00000001": ("QDS", "00000001", "heat_cost_allocator", "heat_cost_allocator", "U1"),
    "wmbus:QDS:00000002": ("QDS", "00000002", "heat_cost_allocator", "heat_cost_allocator", "U2"),
    "wmbus:QDS:00000003": ("QDS", "00000003", "heat_cost_allocator", "heat_cost_allocator", "U3"),
    "wmbus:ZRI:40000001": ("ZRI", "40000001", "water_meter", "cold_water_meter", "U1"),
    "wmbus:EFE:60000001": ("EFE", "60000001", "smoke_detector", "smoke_detector", "U1"),
}
BUILDING = {"U1": "B1", "U2": "B1", "U3": "B2"}


class Clock:
    """A settable clock (s since the epoch)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_site() -> SiteRegistry:
    site = SiteRegistry("Europe/Berlin")
    site.add_building("B1", "Lindenstrasse 5")
    site.add_building("B2", "Ahornweg 2")
    site.add_unit("U1", "B1", "ground floor", 80.0)
    site.add_unit("U2", "B1", "first floor", 40.0)
    site.add_unit("U3", "B2", "attic", 50.0)
    for uid, (man, meter, _, kind, unit) in DEVICES.items():
        site.install(
            WMBusAddress.of(man, meter), dt.date(2020, 1, 1), kind=kind, unit=unit, installation_id=uid
        )
    site.add_tenancy("U1", "alice", dt.date(2023, 1, 1), dt.date(2024, 3, 31))
    site.add_tenancy("U1", "bob", dt.date(2024, 4, 1))
    site.add_tenancy("U2", "carol", dt.date(2022, 1, 1))
    return site


def reading(uid: str, day: dt.date, storage: int, value: float) -> ReadingRow:
    unit = DEVICES[uid][4]
    quantity = "volume" if "ZRI" in uid else "hca_units" if "QDS" in uid else "battery_voltage"
    return ReadingRow(
        device_uid=uid,
        reading_time=f"{day.isoformat()}T{12 if storage == 0 else 0:02d}:00",
        quantity=quantity,
        storage=storage,
        tariff=0,
        subunit=0,
        function="instantaneous",
        value=value,
        unit="m3" if "ZRI" in uid else "V" if "EFE" in uid else "",
        valid=True,
        building_id=BUILDING[unit],
        unit_id=unit,
        uplink_key=f"up-{uid}-{day}-{storage}",
    )


def fill(store: SQLiteStore) -> None:
    rows: list[ReadingRow] = []
    for uid in DEVICES:
        for month in range(1, 13):
            for year in (2023, 2024):
                first = dt.date(year, month, 1)
                rows.append(reading(uid, first, 0, float(month)))
                rows.append(reading(uid, first - dt.timedelta(days=1), 2, float(month * 10)))
        rows.append(reading(uid, dt.date(2023, 12, 31), 1, 100.0))
        rows.append(reading(uid, dt.date(2024, 12, 31), 1, 200.0))
    devices = [
        DeviceRow(device_uid=uid, radio="wmbus", manufacturer=m, meter_id=i, version=1, device_type=4, kind=k)
        for uid, (m, i, k, _, _) in DEVICES.items()
    ]
    events = [
        StatusEventRow(device_uid="wmbus:EFE:60000001", event_time="2024-05-01T10:00", event="battery_low"),
        StatusEventRow(device_uid="wmbus:ZRI:40000001", event_time="2024-05-02T10:00", event="leak"),
    ]
    store.write(StoreBatch(devices=devices, readings=rows, status_events=events))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "data.db")
    fill(s)
    return s


@pytest.fixture
def layer(store: SQLiteStore, clock: Clock) -> AccessLayer:
    return AccessLayer(store, make_site(), audit_key=AUDIT_KEY, token_key=TOKEN_KEY, clock=clock)


ADMIN = Principal(id="staff-1", role=Role.OPERATOR, staff_role="admin")
BILLING_CLERK = Principal(id="staff-2", role=Role.OPERATOR, staff_role="billing")
TECHNICIAN = Principal(id="staff-3", role=Role.OPERATOR, staff_role="technician")
OWNER = Principal(id="olga", role=Role.OWNER)
ALICE = Principal(id="alice", role=Role.TENANT)
BOB = Principal(id="bob", role=Role.TENANT)
AUDITOR = Principal(id="audrey", role=Role.AUDITOR)


def last_entry(layer: AccessLayer) -> dict[str, object]:
    return dict(layer.audit.records()[-1].data())


def test_default_deny_is_typed_and_audited(layer: AccessLayer) -> None:
    with pytest.raises(NoGrantError) as caught:
        layer.readings(OWNER, Purpose.BILLING, building="B1")
    assert caught.value.code is DenyReason.NO_GRANT
    entry = last_entry(layer)
    assert entry["decision"] == "deny" and entry["reason"] == "no_grant" and entry["purpose"] == "billing"
    assert entry["actor"] == layer.audit.ref("olga") and "olga" not in layer.audit.records()[-1].entry


def test_in_memory_store_is_refused() -> None:
    with pytest.raises(ConfigError):
        AccessLayer(SQLiteStore(":memory:"), make_site(), audit_key=AUDIT_KEY)


def test_billing_sees_due_date_values_only(layer: AccessLayer) -> None:
    grant = layer.grants.grant(
        ADMIN, principal_id="olga", building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
    )
    rows = layer.readings(OWNER, Purpose.BILLING, building="B1")
    assert rows and {r.storage for r in rows} == {1}
    assert {r.unit_id for r in rows} == {"U1", "U2"}
    assert all("EFE" not in (r.device_uid or "") for r in rows)
    entry = last_entry(layer)
    assert entry["decision"] == "allow" and entry["grants"] == [grant.id] and entry["basis"] == ["contract"]
    assert entry["rows"] == len(rows)
    with pytest.raises(NoGrantError) as caught:
        layer.readings(OWNER, Purpose.CONSUMPTION_INFO, building="B1")
    assert caught.value.code is DenyReason.PURPOSE_NOT_ALLOWED
    with pytest.raises(NoGrantError) as caught:
        layer.readings(OWNER, Purpose.BILLING, building="B2")
    assert caught.value.code is DenyReason.OUT_OF_SCOPE


def test_smoke_inspection_sees_device_states_not_consumption(layer: AccessLayer) -> None:
    rows = layer.readings(TECHNICIAN, Purpose.SMOKE_INSPECTION, building="B1")
    assert rows and {r.device_uid for r in rows} == {"wmbus:EFE:60000001"}
    events = layer.status_events(TECHNICIAN, Purpose.SMOKE_INSPECTION, building="B1")
    assert [(e.event, e.unit_id) for e in events] == [("battery_low", "U1")]
    with pytest.raises(NoGrantError):
        layer.readings(TECHNICIAN, Purpose.BILLING, building="B1")
    report = layer.smoke_report(TECHNICIAN, building="B1", at=dt.datetime(2024, 6, 1))
    assert [d.installation for d in report.detectors] == ["wmbus:EFE:60000001"]
    assert report.detectors[0].faults


def test_analysis_rows_carry_no_identifiers(layer: AccessLayer) -> None:
    analyst = Principal(id="staff-4", role=Role.OPERATOR, staff_role="analyst")
    rows = layer.readings(analyst, Purpose.ANALYSIS, building="B1")
    assert rows and all(r.device_uid is None and r.unit_id is None for r in rows)


def test_tenant_sees_own_unit_only_during_tenancy(layer: AccessLayer) -> None:
    for tenant in ("alice", "bob"):
        layer.grants.grant(
            ADMIN,
            principal_id=tenant,
            building="B1",
            unit="U1",
            purpose=Purpose.CONSUMPTION_INFO,
            basis=LegalBasis.LEGAL_OBLIGATION,
        )
    alice_rows = layer.readings(ALICE, Purpose.CONSUMPTION_INFO, building="B1", unit="U1")
    bob_rows = layer.readings(BOB, Purpose.CONSUMPTION_INFO, building="B1", unit="U1")
    assert alice_rows and bob_rows
    assert all("2023-01-01" <= r.reading_time[:10] <= "2024-03-31" for r in alice_rows)
    assert all(r.reading_time[:10] >= "2024-04-01" for r in bob_rows)
    assert all(r.storage is not None and r.storage >= 1 for r in alice_rows + bob_rows)
    with pytest.raises(NoGrantError) as caught:
        layer.readings(ALICE, Purpose.CONSUMPTION_INFO, building="B1", unit="U2")
    assert caught.value.code is DenyReason.OUT_OF_SCOPE
    # A building-wide grant to a tenant still shows only their own unit.
    layer.grants.grant(
        ADMIN, principal_id="bob", building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
    )
    assert {r.unit_id for r in layer.readings(BOB, Purpose.BILLING, building="B1")} == {"U1"}
    report = layer.monthly_report(
        BOB, building="B1", unit="U1", months=(dt.date(2024, 1, 1), dt.date(2024, 6, 1))
    )
    assert report.rows
    with pytest.raises(NoGrantError):
        layer.monthly_report(BOB, building="B1", months=(dt.date(2024, 1, 1), dt.date(2024, 6, 1)))


def test_tenant_without_tenancy_is_refused(layer: AccessLayer) -> None:
    layer.grants.grant(
        ADMIN,
        principal_id="carol",
        building="B1",
        unit="U1",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
    )
    with pytest.raises(NoGrantError) as caught:
        layer.readings(Principal(id="carol", role=Role.TENANT), Purpose.BILLING, building="B1", unit="U1")
    assert caught.value.code is DenyReason.NOT_TENANT


def test_consent_withdrawal_and_revocation_take_effect_at_once(layer: AccessLayer, clock: Clock) -> None:
    consent = layer.grants.record_consent(
        ADMIN, subject="carol", purpose=Purpose.CONSUMPTION_INFO, evidence="form 2025-017, signed"
    )
    grant = layer.grants.grant(
        ADMIN,
        principal_id="olga",
        building="B1",
        unit="U2",
        purpose=Purpose.CONSUMPTION_INFO,
        basis=LegalBasis.CONSENT,
        consent_id=consent.id,
    )
    assert layer.readings(OWNER, Purpose.CONSUMPTION_INFO, building="B1", unit="U2")
    layer.grants.withdraw_consent(ADMIN, consent.id)
    with pytest.raises(NoGrantError) as caught:
        layer.readings(OWNER, Purpose.CONSUMPTION_INFO, building="B1", unit="U2")
    assert caught.value.code is DenyReason.CONSENT_WITHDRAWN
    with pytest.raises(ConfigError):
        layer.grants.grant(
            ADMIN,
            principal_id="olga",
            building="B1",
            purpose=Purpose.CONSUMPTION_INFO,
            basis=LegalBasis.CONSENT,
            consent_id=consent.id,
        )
    other = layer.grants.grant(
        ADMIN,
        principal_id="olga",
        building="B1",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
        valid_until=clock.now + 60,
    )
    assert layer.readings(OWNER, Purpose.BILLING, building="B1")
    layer.grants.revoke(ADMIN, other.id)
    with pytest.raises(NoGrantError) as caught:
        layer.readings(OWNER, Purpose.BILLING, building="B1")
    assert caught.value.code is DenyReason.REVOKED
    assert grant.id in {g.id for g in layer.grants.of("olga")}


def test_grant_expiry_and_data_period(layer: AccessLayer, clock: Clock) -> None:
    layer.grants.grant(
        ADMIN,
        principal_id="olga",
        building="B1",
        purpose=Purpose.CONSUMPTION_INFO,
        basis=LegalBasis.CONTRACT,
        valid_until=clock.now + 60,
        data_from="2024-01-01",
        data_until="2024-06-30",
    )
    rows = layer.readings(OWNER, Purpose.CONSUMPTION_INFO, building="B1")
    assert rows and all("2024-01-01" <= r.reading_time[:10] <= "2024-06-30" for r in rows)
    clock.now += 61
    with pytest.raises(NoGrantError) as caught:
        layer.readings(OWNER, Purpose.CONSUMPTION_INFO, building="B1")
    assert caught.value.code is DenyReason.EXPIRED


def refused_grant(layer: AccessLayer, message: str, **span: Any) -> None:
    """An administrator's grant to olga with ``span`` is refused, and nothing is granted."""
    with pytest.raises(ConfigError, match=message):
        layer.grants.grant(
            ADMIN,
            principal_id="olga",
            building="B1",
            purpose=Purpose.CONSUMPTION_INFO,
            basis=LegalBasis.CONTRACT,
            **span,
        )
    assert layer.grants.of("olga") == []


@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 1e30])
def test_a_grant_time_that_is_no_time_is_refused(layer: AccessLayer, field: str, value: float) -> None:
    # A NaN end was stored as "no end": a grant that never expired.
    refused_grant(layer, "Unix seconds between 1970 and 9999", **{field: value})


@pytest.mark.parametrize("field", ["data_from", "data_until"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-1-5", "ISO day"),  # compared as text, it would sort after 2024-10-01
        ("2024-01-05T00:00", "ISO day"),
        ("yesterday", "ISO day"),
        (dt.date(2024, 1, 5), "ISO day"),
        ("0999-01-01", "between"),
    ],
)
def test_a_data_day_that_is_no_iso_day_is_refused(
    layer: AccessLayer, field: str, value: object, message: str
) -> None:
    refused_grant(layer, message, **{field: value})


def test_data_days_in_reverse_are_refused(layer: AccessLayer) -> None:
    refused_grant(layer, "after data_until", data_from="2024-06-01", data_until="2024-05-31")


def test_the_last_day_of_the_calendar_may_stand_for_no_end(layer: AccessLayer) -> None:
    grant = layer.grants.grant(
        ADMIN,
        principal_id="olga",
        building="B1",
        purpose=Purpose.CONSUMPTION_INFO,
        basis=LegalBasis.CONTRACT,
        data_from="2024-01-01",
        data_until="9999-12-31",
    )
    assert grant.data_until == "9999-12-31"


def test_billing_report_needs_building_grant(layer: AccessLayer) -> None:
    period = (dt.date(2023, 12, 31), dt.date(2024, 12, 31))
    with pytest.raises(NoGrantError):
        layer.billing_report(OWNER, building="B1", period=period)
    layer.grants.grant(
        ADMIN,
        principal_id="olga",
        building="B1",
        unit="U1",
        purpose=Purpose.BILLING,
        basis=LegalBasis.CONTRACT,
    )
    with pytest.raises(NoGrantError) as caught:
        layer.billing_report(OWNER, building="B1", period=period)
    assert caught.value.code is DenyReason.OUT_OF_SCOPE
    report = layer.billing_report(BILLING_CLERK, building="B1", period=period)
    consumption = {d.installation: d.consumption for u in report.units for d in u.devices}
    assert consumption["wmbus:QDS:00000001"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "olga", "role": "owner"},  # text: "is Role.OWNER" fails where "== Role.OWNER" passes
        {"id": "", "role": Role.OWNER},
        {"id": 7, "role": Role.OWNER},
        {"id": "olga", "role": Role.OPERATOR, "staff_role": 1},
        {"id": "svc", "role": Role.SERVICE, "acting_for": "olga"},
    ],
)
def test_a_principal_of_the_wrong_kind_is_an_input_error(fields: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        Principal(**fields)


def test_service_acts_for_its_principal(layer: AccessLayer) -> None:
    layer.grants.grant(
        ADMIN, principal_id="olga", building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
    )
    portal = Principal(id="svc-portal", role=Role.SERVICE, acting_for=OWNER)
    assert layer.readings(portal, Purpose.BILLING, building="B1")
    entry = last_entry(layer)
    assert entry["actor"] == layer.audit.ref("svc-portal") and entry["for"] == layer.audit.ref("olga")
    with pytest.raises(NoGrantError) as caught:
        layer.readings(Principal(id="svc-x", role=Role.SERVICE), Purpose.BILLING, building="B1")
    assert caught.value.code is DenyReason.NO_PRINCIPAL


def test_audit_trail_is_for_auditors(layer: AccessLayer) -> None:
    with pytest.raises(NoGrantError):
        layer.audit_entries(OWNER)
    entries = layer.audit_entries(AUDITOR)
    assert entries[-1]["action"] == "read_audit" and entries[-1]["decision"] == "deny"
    assert layer.audit.verify().ok


# --- tokens --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"exp": float("nan")},
        {"exp": 10**400},
        {"exp": "never"},
        {"scope": "grant:\ud800"},
        {"sub": ""},
        {"act": {"sub": ""}},
    ],
)
def test_a_signed_token_with_impossible_claims_is_refused(layer: AccessLayer, change: dict[str, Any]) -> None:
    # Only a holder of the token key can sign these; they still must not pass or crash.
    assert layer.tokens is not None
    grant = layer.grants.grant(
        ADMIN, principal_id="olga", building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
    )
    claims = jwt.decode(layer.tokens.issue(OWNER, [grant]).reveal(), layer.tokens._key).claims
    # JSON with \u escapes (ASCII): a lone surrogate can only arrive that way.
    payload = json.dumps({**claims, **change}).encode()
    forged = BearerToken(jws.serialize_compact({"alg": "HS256"}, payload, layer.tokens._key))
    with pytest.raises(TokenError):
        layer.readings(forged, Purpose.BILLING, building="B1")


def test_token_read_and_refusals(layer: AccessLayer, clock: Clock) -> None:
    assert layer.tokens is not None
    grant = layer.grants.grant(
        ADMIN, principal_id="olga", building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
    )
    token = layer.tokens.issue(OWNER, [grant])
    assert "eyJ" not in repr(token) and layer.readings(token, Purpose.BILLING, building="B1")
    claims = layer.tokens.verify(token)
    assert claims.grant_ids == {grant.id} and claims.principal == OWNER

    text = token.reveal()
    head, payload, signature = text.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    for bad in (BearerToken(f"{head}.{payload}.{flipped}"), BearerToken("garbage")):
        with pytest.raises(TokenError) as caught:
            layer.readings(bad, Purpose.BILLING, building="B1")
        assert caught.value.code is DenyReason.TOKEN_INVALID and text not in str(caught.value)
    with pytest.raises(TokenError) as caught:
        layer.tokens.verify(token, audience="another-api")
    assert caught.value.code is DenyReason.TOKEN_AUDIENCE
    # A token of one grant does not open another purpose, even if the principal holds one.
    layer.grants.grant(
        ADMIN, principal_id="olga", building="B1", purpose=Purpose.ANALYSIS, basis=LegalBasis.CONTRACT
    )
    with pytest.raises(NoGrantError):
        layer.readings(token, Purpose.ANALYSIS, building="B1")
    with pytest.raises(TokenError) as caught:
        layer.tokens.issue(
            OWNER,
            [
                layer.grants.grant(
                    ADMIN,
                    principal_id="bob",
                    building="B1",
                    purpose=Purpose.BILLING,
                    basis=LegalBasis.CONTRACT,
                )
            ],
        )
    assert caught.value.code is DenyReason.TOKEN_SCOPE

    layer.tokens.revoke(claims)
    with pytest.raises(TokenError) as caught:
        layer.readings(token, Purpose.BILLING, building="B1")
    assert caught.value.code is DenyReason.TOKEN_REVOKED

    fresh = layer.tokens.issue(OWNER, [grant])
    layer.grants.revoke(ADMIN, grant.id)
    with pytest.raises(TokenError) as caught:
        layer.readings(fresh, Purpose.BILLING, building="B1")
    assert caught.value.code is DenyReason.TOKEN_REVOKED
    assert last_entry(layer)["reason"] == "token_revoked"

    staff = layer.tokens.issue(BILLING_CLERK)
    clock.now += 299
    assert layer.readings(staff, Purpose.BILLING, building="B1")
    clock.now += 2
    with pytest.raises(TokenError) as caught:
        layer.readings(staff, Purpose.BILLING, building="B1")
    assert caught.value.code is DenyReason.TOKEN_EXPIRED


def test_token_from_another_key_is_refused(store: SQLiteStore, layer: AccessLayer, clock: Clock) -> None:
    other = AccessLayer(store, make_site(), audit_key=AUDIT_KEY, token_key=b"x" * 32, clock=clock)
    assert other.tokens is not None
    with pytest.raises(TokenError) as caught:
        layer.readings(other.tokens.issue(BILLING_CLERK), Purpose.BILLING, building="B1")
    assert caught.value.code is DenyReason.TOKEN_INVALID


def test_service_token_keeps_actor(layer: AccessLayer) -> None:
    assert layer.tokens is not None
    grant = layer.grants.grant(
        ADMIN, principal_id="olga", building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
    )
    portal = Principal(id="svc-portal", role=Role.SERVICE, acting_for=OWNER)
    claims = layer.tokens.verify(layer.tokens.issue(portal, [grant]))
    assert claims.principal.role is Role.SERVICE and claims.principal.effective() == OWNER


# --- erasure -------------------------------------------------------------------------------------------


def _text_of_database(path: str) -> dict[str, str]:
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    text = {t: repr(list(db.execute(f"SELECT * FROM {t}"))) for t in tables}
    db.close()
    return text


def test_erasure_leaves_only_pseudonymised_billing_records(layer: AccessLayer, store: SQLiteStore) -> None:
    consent = layer.grants.record_consent(
        ADMIN, subject="alice", purpose=Purpose.ANALYSIS, evidence="alice signed form 17"
    )
    layer.grants.grant(
        ADMIN,
        principal_id="alice",
        building="B1",
        unit="U1",
        purpose=Purpose.ANALYSIS,
        basis=LegalBasis.CONSENT,
        consent_id=consent.id,
    )
    layer.readings(ALICE, Purpose.ANALYSIS, building="B1", unit="U1")
    with pytest.raises(NoGrantError):
        erase_person(layer, OWNER, "alice")
    result = erase_person(layer, ADMIN, "alice")
    assert result.billing_archived == 3 and result.readings_deleted > 0
    assert result.grants_deleted == 1 and result.consents_deleted == 1
    texts = _text_of_database(store.path)
    holders = {table for table, text in texts.items() if "alice" in text}
    assert holders == {"access_billing_keys"}
    # Day-by-day values of the tenancy are gone, due-date values stay for the building's billing.
    left = StoreReader(store).readings(unit_id="U1", since="2023-01-01", until="2024-03-31T23:59")
    assert left and {r.storage for r in left} == {1}
    assert layer.audit.verify().ok
    assert last_entry(layer)["action"] == "erasure"


# --- key custody ---------------------------------------------------------------------------------------


def test_master_key_rotation_without_downtime(layer: AccessLayer, tmp_path: Path) -> None:
    path = tmp_path / "keys.mcks"
    keys = KeyStore()
    for index in range(20):
        keys.add_oms_key("QDS", f"{index:08d}", bytes(range(index, index + 16)))
    old, new = MasterKey.generate(), MasterKey.generate()
    keys.save(path, old)
    stop = threading.Event()
    failures: list[BaseException] = []
    loads = [0]

    def reader() -> None:
        # A reader rolled out with the new key and the old one as previous keeps loading.
        while not stop.is_set():
            try:
                assert len(KeyStore.load(path, new, previous=[old])) == 20
                loads[0] += 1
            except BaseException as error:
                failures.append(error)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    newer = MasterKey.generate()
    assert layer.rotate_master_key(ADMIN, path, old, new) == 20
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures and loads[0] > 0
    with pytest.raises(KeyStoreError):
        KeyStore.load(path, old)
    assert last_entry(layer)["action"] == "key_rotation" and last_entry(layer)["rows"] == 20
    with pytest.raises(NoGrantError):
        layer.rotate_master_key(BILLING_CLERK, path, new, newer)
    assert last_entry(layer)["decision"] == "deny"
    assert len(KeyStore.load(path, new)) == 20
    exported = repr(KeyStore.load(path, new).export_public())
    for index in range(20):
        assert bytes(range(index, index + 16)).hex() not in exported.lower()
    assert old.reveal().hex() not in repr(layer.audit.records()) and "reveal" not in repr(old)


def test_refused_tokens_at_the_audit_trail_and_key_rotation_are_audited(
    layer: AccessLayer, tmp_path: Path
) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    calls = (
        ("read_audit", lambda: layer.audit_entries(BearerToken("garbage"))),
        ("key_rotation", lambda: layer.rotate_master_key(BearerToken("garbage"), tmp_path / "k", old, new)),
    )
    for action, call in calls:
        before = len(layer.audit.records())
        with pytest.raises(TokenError):
            call()
        assert len(layer.audit.records()) == before + 1
        entry = last_entry(layer)
        assert entry["action"] == action and entry["decision"] == "deny"
        assert entry["reason"] == DenyReason.TOKEN_INVALID.value


def test_arguments_of_the_wrong_kind_are_input_errors(layer: AccessLayer) -> None:
    grant = layer.grants.grant(
        ADMIN, principal_id="olga", building="B1", purpose=Purpose.BILLING, basis=LegalBasis.CONTRACT
    )
    assert grant.purpose is Purpose.BILLING
    year = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    calls = [
        lambda: layer.readings(OWNER, "billing", building="B1"),  # type: ignore[arg-type]
        lambda: layer.readings(None, Purpose.BILLING, building="B1"),  # type: ignore[arg-type]
        lambda: layer.billing_report(OWNER, building="B1", period=None),  # type: ignore[arg-type]
        lambda: layer.billing_report(OWNER, building="B1", period=(year[0],)),  # type: ignore[arg-type]
        lambda: layer.smoke_report(ADMIN, building="B1", at=dt.date(2024, 1, 1)),  # type: ignore[arg-type]
        lambda: layer.grants.grant(
            ADMIN,
            principal_id="olga",
            building="B1",
            purpose="billing",
            basis=LegalBasis.CONTRACT,  # type: ignore[arg-type]
        ),
    ]
    for call in calls:
        with pytest.raises(InputError):
            call()
    # A datetime period counts as its days.
    as_datetimes = (dt.datetime(2024, 1, 1, 12, 0), dt.datetime(2024, 12, 31, 12, 0))
    assert layer.billing_report(OWNER, building="B1", period=as_datetimes) == layer.billing_report(  # type: ignore[arg-type]
        OWNER, building="B1", period=year
    )


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=6), st.sampled_from(["2024-05-01T10:00", "2024-06-01T10:00"])), max_size=30
    )
)
def test_the_device_by_device_seek_finds_every_device_with_status_events(
    events: list[tuple[str, str]],
) -> None:
    store = SQLiteStore(":memory:")
    store.write(
        StoreBatch(
            status_events=[
                StatusEventRow(device_uid=uid, event_time=when, event="leak") for uid, when in events
            ]
        )
    )
    found = {row[0] for row in store._db.execute(_PLACED_OR_REPORTING)}
    assert found == {uid for uid, _ in events}
