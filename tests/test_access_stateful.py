"""Stateful property: over random grants, revocations, consents, tenancies, readings and reads by
random principals, no read returns a reading outside a valid grant's scope, period, purpose and
fields, and every read (allowed or denied) lands in the audit trail, which stays verifiable."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
from pathlib import Path

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from minolcore.access import AccessLayer, LegalBasis, PolicyDeniedError, Principal, Purpose, ReadingView, Role
from minolcore.errors import ConfigError
from minolcore.site import SiteRegistry, WMBusAddress
from minolcore.store import SQLiteStore
from minolcore.store.base import DeviceRow, ReadingRow, StoreBatch

# uid -> (manufacturer, meter id, store kind, site kind, unit, class as the test sees it)
DEVICES = {
    "wmbus:QDS:00000001": ("QDS", "00000001", "heat_cost_allocator", "heat_cost_allocator", "U1", "heating"),
    "wmbus:QDS:00000002": ("QDS", "00000002", "heat_cost_allocator", "heat_cost_allocator", "U2", "heating"),
    "wmbus:QDS:00000003": ("QDS", "00000003", "heat_cost_allocator", "heat_cost_allocator", "U3", "heating"),
    "wmbus:ZRI:40000001": ("ZRI", "40000001", "water_meter", "warm_water_meter", "U2", "water"),
    "wmbus:EFE:60000001": ("EFE", "60000001", "smoke_detector", "smoke_detector", "U1", "smoke"),
}
BUILDING = {"U1": "B1", "U2": "B1", "U3": "B2"}
PEOPLE = ["olga", "lars", "alice", "bob", "carol"]
ROLE = {
    "olga": Role.OWNER,
    "lars": Role.LANDLORD,
    "alice": Role.TENANT,
    "bob": Role.TENANT,
    "carol": Role.TENANT,
}
ADMIN = Principal(id="staff-admin", role=Role.OPERATOR, staff_role="admin")
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()

# The specification, written out again here rather than imported: storage range and classes.
SPEC = {
    Purpose.BILLING: (1, 1, {"heating", "water"}),
    Purpose.CONSUMPTION_INFO: (1, 99, {"heating", "water"}),
    Purpose.SMOKE_INSPECTION: (0, 99, {"smoke"}),
    Purpose.ANALYSIS: (0, 99, {"heating", "water", "smoke", "pulse", "other"}),
}
STAFF = {"billing": {Purpose.BILLING, Purpose.CONSUMPTION_INFO}, "technician": {Purpose.SMOKE_INSPECTION}}

days = st.dates(dt.date(2023, 1, 1), dt.date(2024, 12, 31))


class AccessMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="access-stateful-"))
        self.now = T0
        self.site = SiteRegistry("Europe/Berlin")
        self.site.add_building("B1", "one")
        self.site.add_building("B2", "two")
        for unit, building in BUILDING.items():
            self.site.add_unit(unit, building, unit, 50.0)
        for uid, (man, meter, _, kind, unit, _) in DEVICES.items():
            self.site.install(
                WMBusAddress.of(man, meter), dt.date(2020, 1, 1), kind=kind, unit=unit, installation_id=uid
            )
        self.store = SQLiteStore(self.dir / "data.db")
        self.store.write(
            StoreBatch(
                devices=[
                    DeviceRow(
                        device_uid=u,
                        radio="wmbus",
                        manufacturer=m,
                        meter_id=i,
                        version=1,
                        device_type=4,
                        kind=k,
                    )
                    for u, (m, i, k, _, _, _) in DEVICES.items()
                ]
            )
        )
        self.layer = AccessLayer(self.store, self.site, audit_key=b"s" * 32, clock=lambda: self.now)
        self.rows: dict[tuple[str, str, str, int], ReadingRow] = {}
        self.grants: dict[str, dict[str, object]] = {}
        self.consents: dict[str, bool] = {}
        self.reads = 0

    def teardown(self) -> None:
        self.layer.close()
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @initialize()
    def seed(self) -> None:
        # A populated start, so that random reads find both covered and uncovered rows.
        for uid in DEVICES:
            for month in range(1, 25):
                day = dt.date(2023 + (month - 1) // 12, (month - 1) % 12 + 1, 15)
                self.add_reading(uid, day, month % 3, float(month))
        self.site.add_tenancy("U1", "alice", dt.date(2023, 1, 1), dt.date(2023, 12, 31))
        self.site.add_tenancy("U1", "bob", dt.date(2024, 1, 1))
        self.site.add_tenancy("U2", "carol", dt.date(2023, 6, 1))
        for person, building, unit, purpose in (
            ("olga", "B1", None, Purpose.BILLING),
            ("lars", "B1", None, Purpose.CONSUMPTION_INFO),
            ("lars", "B2", None, Purpose.ANALYSIS),
            ("alice", "B1", "U1", Purpose.CONSUMPTION_INFO),
            ("bob", "B1", None, Purpose.CONSUMPTION_INFO),
            ("carol", "B1", "U2", Purpose.BILLING),
        ):
            self._grant(person, building, unit, purpose, LegalBasis.CONTRACT, set(), None, None, None)

    def _grant(
        self,
        person: str,
        building: str,
        unit: str | None,
        purpose: Purpose,
        basis: LegalBasis,
        kinds: set[str],
        lifetime: float | None,
        period: list[dt.date] | None,
        consent_id: str | None,
    ) -> None:
        grant = self.layer.grants.grant(
            ADMIN,
            principal_id=person,
            building=building,
            unit=unit,
            purpose=purpose,
            basis=basis,
            device_kinds=kinds,
            valid_until=None if lifetime is None else self.now + lifetime,
            data_from=None if period is None else period[0].isoformat(),
            data_until=None if period is None else period[1].isoformat(),
            consent_id=consent_id,
        )
        self.grants[grant.id] = {
            "person": person,
            "building": building,
            "unit": unit,
            "purpose": purpose,
            "kinds": kinds,
            "until": grant.valid_until,
            "from_day": grant.data_from,
            "to_day": grant.data_until,
            "consent": consent_id,
            "revoked": False,
        }

    @rule(uid=st.sampled_from(sorted(DEVICES)), day=days, storage=st.integers(0, 3), value=st.floats(0, 1e4))
    def add_reading(self, uid: str, day: dt.date, storage: int, value: float) -> None:
        unit = DEVICES[uid][4]
        row = ReadingRow(
            device_uid=uid,
            reading_time=f"{day.isoformat()}T{storage:02d}:30",
            quantity="q",
            storage=storage,
            tariff=0,
            subunit=0,
            function="instantaneous",
            value=value,
            unit="",
            valid=True,
            building_id=BUILDING[unit],
            unit_id=unit,
            uplink_key=f"{uid}{day}{storage}",
        )
        self.store.write(StoreBatch(readings=[row]))
        key = (uid, row.reading_time, row.quantity, storage)
        self.rows.setdefault(key, row)

    @rule(
        tenant=st.sampled_from(["alice", "bob", "carol"]),
        unit=st.sampled_from(sorted(BUILDING)),
        start=days,
        length=st.one_of(st.none(), st.integers(0, 400)),
    )
    def add_tenancy(self, tenant: str, unit: str, start: dt.date, length: int | None) -> None:
        end = None if length is None else start + dt.timedelta(days=length)
        with contextlib.suppress(ConfigError):
            self.site.add_tenancy(unit, tenant, start, end)

    @rule(person=st.sampled_from(PEOPLE), purpose=st.sampled_from(list(Purpose)))
    def consent(self, person: str, purpose: Purpose) -> None:
        consent = self.layer.grants.record_consent(ADMIN, subject=person, purpose=purpose, evidence="form")
        self.consents[consent.id] = True

    @precondition(lambda self: any(self.consents.values()))
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        # Creation order, not id order: ids are random, and Hypothesis must replay the same choice.
        consent_id = data.draw(st.sampled_from([c for c, active in self.consents.items() if active]))
        self.layer.grants.withdraw_consent(ADMIN, consent_id)
        self.consents[consent_id] = False

    @rule(
        data=st.data(),
        person=st.sampled_from(PEOPLE),
        building=st.sampled_from(["B1", "B2"]),
        unit=st.sampled_from([None, "U1", "U2", "U3"]),
        purpose=st.sampled_from(list(Purpose)),
        basis=st.sampled_from(list(LegalBasis)),
        kinds=st.sets(st.sampled_from(["heating", "water", "smoke"]), max_size=2),
        lifetime=st.one_of(st.none(), st.floats(1, 1e5)),
        period=st.one_of(st.none(), st.tuples(days, days).map(sorted)),
    )
    def grant(
        self,
        data: st.DataObject,
        person: str,
        building: str,
        unit: str | None,
        purpose: Purpose,
        basis: LegalBasis,
        kinds: set[str],
        lifetime: float | None,
        period: list[dt.date] | None,
    ) -> None:
        consent_id = None
        if basis is LegalBasis.CONSENT:
            active = [
                c
                for c, ok in self.consents.items()
                if ok and self.layer.grants.consent(c).purpose is purpose  # type: ignore[union-attr]
            ]
            if not active:
                return
            consent_id = data.draw(st.sampled_from(active))
        self._grant(person, building, unit, purpose, basis, kinds, lifetime, period, consent_id)

    @precondition(lambda self: bool(self.grants))
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        grant_id = data.draw(st.sampled_from(list(self.grants)))
        self.layer.grants.revoke(ADMIN, grant_id)
        self.grants[grant_id]["revoked"] = True

    @rule(seconds=st.floats(0, 2e5))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    # --- the oracle ------------------------------------------------------------------------------------

    def allowed(
        self, effective: Principal, purpose: Purpose, building: str, unit: str | None, row: ReadingRow
    ) -> bool:
        low, high, classes = SPEC[purpose]
        kind = DEVICES[row.device_uid][5]
        if not (low <= row.storage <= high and kind in classes and row.building_id == building):
            return False
        if unit is not None and row.unit_id != unit:
            return False
        if effective.role is Role.OPERATOR:
            return purpose in STAFF.get(effective.staff_role or "", set())
        day = row.reading_time[:10]
        if effective.role is Role.TENANT and not any(
            t.tenant == effective.id and t.covers(dt.date.fromisoformat(day))
            for t in self.site.tenancies(row.unit_id or "")
        ):
            return False
        for g in self.grants.values():
            if g["person"] != effective.id or g["purpose"] is not purpose or g["building"] != building:
                continue
            if g["revoked"] or (g["until"] is not None and self.now >= g["until"]):  # type: ignore[operator]
                continue
            if g["consent"] is not None and not self.consents[g["consent"]]:  # type: ignore[index]
                continue
            if g["unit"] is not None and g["unit"] != row.unit_id:
                continue
            if unit is not None and g["unit"] not in (None, unit):
                continue
            if g["kinds"] and kind not in g["kinds"]:  # type: ignore[operator]
                continue
            if g["from_day"] is not None and not g["from_day"] <= day <= g["to_day"]:  # type: ignore[operator]
                continue
            return True
        return False

    def originals(self, view: ReadingView) -> list[ReadingRow]:
        if view.device_uid is not None:
            found = self.rows.get((view.device_uid, view.reading_time, view.quantity, view.storage or 0))
            return [] if found is None else [found]
        return [
            r
            for r in self.rows.values()
            if (r.reading_time, r.storage, r.value, r.building_id)
            == (view.reading_time, view.storage, view.value, view.building_id)
        ]

    @rule(
        who=st.sampled_from([*PEOPLE, "staff:billing", "staff:technician", "service:olga", "service:alice"]),
        purpose=st.sampled_from(list(Purpose)),
        building=st.sampled_from(["B1", "B2"]),
        unit=st.sampled_from([None, "U1", "U2", "U3"]),
    )
    def read(self, who: str, purpose: Purpose, building: str, unit: str | None) -> None:
        if who.startswith("staff:"):
            principal = Principal(id=who, role=Role.OPERATOR, staff_role=who[6:])
        elif who.startswith("service:"):
            person = who[8:]
            principal = Principal(
                id="svc", role=Role.SERVICE, acting_for=Principal(id=person, role=ROLE[person])
            )
        else:
            principal = Principal(id=who, role=ROLE[who])
        effective = principal.effective()
        assert effective is not None
        before = self.layer.audit.count()
        try:
            views = self.layer.readings(principal, purpose, building=building, unit=unit)
        except PolicyDeniedError:
            views = None
        self.reads += 1
        assert self.layer.audit.count() == before + 1
        entry = self.layer.audit.records()[-1].data()
        assert entry["action"] == "read_readings" and entry["purpose"] == purpose.value
        assert entry["decision"] == ("deny" if views is None else "allow")
        assert entry["actor"] == self.layer.audit.ref(principal.id)
        if views is None:
            event(f"denied: {entry['reason']}")
            return
        event("allowed with rows" if views else "allowed, nothing covered")
        assert entry["rows"] == len(views)
        for view in views:
            if purpose is Purpose.ANALYSIS:
                assert view.device_uid is None and view.unit_id is None
            candidates = self.originals(view)
            assert any(self.allowed(effective, purpose, building, unit, r) for r in candidates), view

    @invariant()
    def audit_verifies(self) -> None:
        if self.reads % 5 == 0:
            assert self.layer.audit.verify().ok


AccessMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestAccessStateful = AccessMachine.TestCase
