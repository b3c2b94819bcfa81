"""The simulator: determinism, sizes, genuine frames, assignment, injected faults, files."""

from __future__ import annotations

import collections
import datetime as dt
from pathlib import Path

import pytest

from minolcore.adapters.collector import iter_collector_lines
from minolcore.devices import to_model
from minolcore.devices.models import HeatCostAllocator, HeatMeter, SmokeDetector, WaterMeter
from minolcore.errors import FrameError, InputError
from minolcore.keys import KeyStore
from minolcore.lorawan import decode_uplink
from minolcore.reception import Radio, Reception
from minolcore.simulator import UNKNOWN_GATEWAY, ExpectedUplink, Simulation, simulate, write_collector_log
from minolcore.site import LoRaWANAddress, SiteRegistry, WMBusAddress
from minolcore.wmbus.frame import parse_frame
from minolcore.wmbus.records import decode_records
from minolcore.wmbus.telegram import decode

START = dt.date(2024, 12, 1)  # crosses a month end, the due date (Dec 31) and a year
DAYS = 60
UNITS = 3


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(start=START, days=DAYS, seed=7, units=UNITS, gateways=3)


def _wmbus_parts(address: str) -> tuple[str, str, int, int]:
    manufacturer, meter_id, version, device_type = address.split("-")
    return manufacturer, meter_id, int(version, 16), int(device_type, 16)


def _first_copies(sim: Simulation) -> dict[int, Reception]:
    """One live copy per uplink (the first to arrive)."""
    out: dict[int, Reception] = {}
    for reception, truth in zip(sim.receptions, sim.truth.receptions, strict=True):
        if truth.verdict == "copy" and truth.uplink not in out:
            out[truth.uplink] = reception
    return out


def _at(uplink: ExpectedUplink) -> dt.datetime:
    return dt.datetime.fromtimestamp(uplink.sent_at, dt.UTC)


def test_same_seed_same_traffic_other_seed_other_traffic() -> None:
    a = simulate(start=START, days=10, seed=1, units=2)
    b = simulate(start=START, days=10, seed=1, units=2)
    c = simulate(start=START, days=10, seed=2, units=2)
    assert a.receptions == b.receptions
    assert a.truth == b.truth
    assert [r.payload for r in a.receptions] != [r.payload for r in c.receptions]


def test_sizes_per_device_kind(sim: Simulation) -> None:
    kinds = collections.Counter(u.kind for u in sim.truth.uplinks)
    hcas = sum(1 for d in sim.devices if d.kind == "heat_cost_allocator")
    assert 2 * UNITS <= hcas <= 3 * UNITS
    assert kinds["heat_cost_allocator"] == hcas * DAYS
    assert kinds["warm_water_meter"] == UNITS * DAYS
    assert kinds["smoke_detector"] == UNITS * DAYS
    assert kinds["heat_meter"] == DAYS
    assert kinds["pulse_module"] == DAYS
    # One cold-water meter is swapped: both send on the swap day, one reading each per day.
    assert kinds["cold_water_meter"] == UNITS * DAYS + 1
    assert sim.gateways == ("GW-1", "GW-2", "GW-3")
    assert sim.site.gateways == sim.gateways
    assert len(sim.truth.receptions) == len(sim.receptions)
    modes = collections.Counter(d.mode for d in sim.devices)
    assert modes[7] >= 2 and modes[5] > modes[7] and modes[0] == 1


def test_demo_year_size_is_modest() -> None:
    year = simulate(start=dt.date(2025, 1, 1), days=365, seed=0)
    assert 10_000 <= len(year.truth.uplinks) <= 30_000
    assert len(year.receptions) < 3 * len(year.truth.uplinks)


def test_every_wmbus_frame_decrypts_with_its_key_and_carries_the_truth(sim: Simulation) -> None:
    checked = collections.Counter[str]()
    for index, reception in _first_copies(sim).items():
        uplink = sim.truth.uplinks[index]
        if reception.radio is not Radio.WMBUS:
            continue
        key = sim.keys.oms_key(*_wmbus_parts(uplink.address))
        telegram = decode(reception.payload, key)
        assert telegram.security is not None and telegram.security.status == "decrypted"
        assert telegram.ok, telegram.errors
        model = to_model(telegram, received_at=_at(uplink))
        assert model.reading_time == uplink.reading_time
        values = uplink.values
        if isinstance(model, HeatCostAllocator):
            assert model.current_units == values["hca_units"]
            assert model.due_date == uplink.due_date
            assert model.due_date_units == values.get("due_date_units")
        elif isinstance(model, HeatMeter):
            assert model.energy_kwh == values["energy_kwh"]
            assert model.volume_m3 == pytest.approx(values["volume_m3"])
            assert model.flow_temperature_c == pytest.approx(values["flow_temperature_c"])
            assert model.due_date_energy_kwh == values.get("due_date_energy_kwh")
            assert uplink.counter == telegram.security.message_counter
        elif isinstance(model, WaterMeter):
            assert model.volume_m3 == pytest.approx(values["volume_m3"])
            assert model.due_date_volume_m3 == pytest.approx(values.get("due_date_volume_m3"))
            month_end = [h.value for h in model.history if h.date == uplink.month_end_date]
            assert month_end == (
                [pytest.approx(values["month_end_volume_m3"])] if uplink.month_end_date else []
            )
        elif isinstance(model, SmokeDetector):
            assert model.smoke_chamber_soiled == values["smoke_chamber_soiled"]
            assert model.battery_sufficient == values["battery_sufficient"]
            assert model.battery_voltage_v == values["battery_voltage_v"]
            assert model.obstacle_detected == values["obstacle_detected"]
            assert model.removal_count == values["removal_count"]
        else:
            pytest.fail(f"unexpected model {type(model).__name__}")
        assert model.status.error_flags == values["error_flags"]
        checked[uplink.kind] += 1
    assert set(checked) == {
        "heat_cost_allocator",
        "heat_meter",
        "cold_water_meter",
        "warm_water_meter",
        "smoke_detector",
    }


def test_copies_come_in_all_three_crc_shapes(sim: Simulation) -> None:
    canonical_lengths: dict[int, set[int]] = collections.defaultdict(set)
    for reception, truth in zip(sim.receptions, sim.truth.receptions, strict=True):
        if reception.radio is Radio.WMBUS and truth.verdict in ("copy", "late"):
            canonical_lengths[truth.uplink].add(len(reception.payload))
    # The same frame delivered with CRCs (A or B) and without has different lengths.
    assert any(len(lengths) == 3 for lengths in canonical_lengths.values())


def test_every_lorawan_uplink_verifies_and_holds_records(sim: Simulation) -> None:
    last: int | None = None
    count = 0
    for index, reception in sorted(_first_copies(sim).items()):
        uplink = sim.truth.uplinks[index]
        if reception.radio is not Radio.LORAWAN:
            continue
        sessions = sim.keys.lorawan_session_keys(uplink.address)
        assert sessions is not None
        up = decode_uplink(
            reception.payload, nwk_s_key=sessions.nwk_s_key, app_s_key=sessions.app_s_key, last_fcnt=last
        )
        assert up.mic_valid and up.fport == 1 and up.fcnt == uplink.counter
        records = decode_records(up.payload)
        assert not records.errors
        by_subunit = {(r.subunit, r.quantity): r.value for r in records.records}
        assert by_subunit[(1, "energy")] == pytest.approx(uplink.values["electricity_kwh"] * 1000)
        assert by_subunit[(2, "volume")] == pytest.approx(uplink.values["gas_m3"])
        assert by_subunit[(1, "device_type")] == 0x02 and by_subunit[(2, "device_type")] == 0x03
        last = up.fcnt
        count += 1
    assert count == DAYS


def test_site_assigns_every_reading_to_its_unit_across_the_swap(sim: Simulation) -> None:
    for uplink in sim.truth.uplinks:
        if uplink.radio == Radio.LORAWAN.value:
            address: WMBusAddress | LoRaWANAddress = LoRaWANAddress.of(dev_addr=uplink.address)
        else:
            address = WMBusAddress.of(*_wmbus_parts(uplink.address))
        assignment = sim.site.assign(address, _at(uplink))
        assert assignment is not None, uplink
        assert assignment.installation.id == uplink.device
        assert (assignment.unit.id if assignment.unit else None) == uplink.unit
    old = next(
        d
        for d in sim.devices
        if d.uid.endswith("-cold-water") and d.last_day < START + dt.timedelta(DAYS - 1)
    )
    new = next(d for d in sim.devices if d.uid == f"{old.uid}-2")
    assert new.first_day == old.last_day and new.unit == old.unit
    swap_day = [
        u
        for u in sim.truth.uplinks
        if u.device in (old.uid, new.uid) and u.reading_time[:10] == str(new.first_day)
    ]
    assert sorted(u.device for u in swap_day) == [old.uid, new.uid]
    # The new meter counts from zero; it reads after the old one's last reading.
    first_new = min((u for u in sim.truth.uplinks if u.device == new.uid), key=lambda u: u.sent_at)
    last_old = max((u for u in sim.truth.uplinks if u.device == old.uid), key=lambda u: u.sent_at)
    assert first_new.values["volume_m3"] < 1.0 and first_new.sent_at > last_old.sent_at
    assert "due_date_volume_m3" not in first_new.values


def test_tenant_change_in_the_middle(sim: Simulation) -> None:
    changed = [u for u in sim.site.units() if len(sim.site.tenancies(u.id)) == 2]
    assert len(changed) == 1
    first, second = sim.site.tenancies(changed[0].id)
    assert first.end is not None and second.start == first.end + dt.timedelta(days=1)
    assert START < second.start < START + dt.timedelta(days=DAYS)


def test_injected_faults_match_the_receptions(sim: Simulation) -> None:
    verdicts = collections.Counter(t.verdict for t in sim.truth.receptions)
    rejections = sim.truth.rejections
    assert set(rejections) <= {"bad_crc", "unknown_device", "replay", "unknown_gateway"}
    for reason, count in rejections.items():
        assert verdicts[reason] == count
    assert rejections["replay"] == 3 and rejections["unknown_device"] > 0
    assert verdicts["late"] == sim.truth.late_copies > 0
    assert verdicts["copy"] + verdicts["late"] == len(sim.truth.uplinks) + sim.truth.duplicates
    known = {d.address for d in sim.devices}
    for reception, truth in zip(sim.receptions, sim.truth.receptions, strict=True):
        if truth.verdict == "unknown_gateway":
            assert reception.gateway_id == UNKNOWN_GATEWAY not in sim.gateways
        else:
            assert reception.gateway_id in sim.gateways
        if truth.verdict == "bad_crc":
            with pytest.raises(FrameError):
                parse_frame(reception.payload, crc="present")
        if truth.verdict == "unknown_device":
            frame = parse_frame(reception.payload)
            address = WMBusAddress.of(frame.manufacturer_code, f"{frame.id_value:08X}")
            assert f"{address.manufacturer}-{address.id}" not in {a[:12] for a in known}
            assert sim.site.assign(address, dt.datetime(2025, 1, 1)) is None
            assert sim.keys.oms_key(address.manufacturer, address.id) is None
        if truth.verdict == "replay":
            key = sim.keys.oms_key("SEN", "60000001")
            telegram = decode(reception.payload, key)
            assert telegram.security is not None and telegram.security.status == "decrypted"
            older = [
                u
                for u in sim.truth.uplinks
                if u.counter == telegram.security.message_counter and u.kind == "heat_meter"
            ]
            assert len(older) == 1 and older[0].sent_at < reception.received_at - 86400
    # Every genuine uplink keeps at least one good copy from a registered gateway.
    carried = {t.uplink for t in sim.truth.receptions if t.verdict in ("copy", "late")}
    assert carried == set(range(len(sim.truth.uplinks)))


def test_late_collector_copies_keep_event_time_and_arrive_after(sim: Simulation) -> None:
    position: dict[int, int] = {}
    for index, truth in enumerate(sim.truth.receptions):
        if truth.verdict == "copy":
            position.setdefault(truth.uplink, index)
    late = 0
    for index, (reception, truth) in enumerate(zip(sim.receptions, sim.truth.receptions, strict=True)):
        if truth.verdict != "late":
            continue
        uplink = sim.truth.uplinks[truth.uplink]
        assert reception.gateway_id == sim.gateways[-1]
        assert 0 <= reception.received_at - uplink.sent_at < 1.0
        assert position[truth.uplink] < index
        late += 1
    assert late == sim.truth.late_copies
    assert 2 * 3600 <= sim.truth.max_late_s <= 9 * 3600


def test_monthly_consumption_matches_the_month_end_values(sim: Simulation) -> None:
    # Month-end values per device from the truth's uplinks (storage 2), then differences.
    month_end: dict[str, dict[str, float]] = collections.defaultdict(dict)
    current: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for uplink in sim.truth.uplinks:
        if uplink.kind == "cold_water_meter":
            current[uplink.device].append((uplink.sent_at, uplink.values["volume_m3"]))
            if uplink.month_end_date:
                month_end[uplink.device][uplink.month_end_date] = uplink.values["month_end_volume_m3"]
    monthly = sim.truth.monthly_consumption
    assert sorted(monthly["B1-01"]) == ["2024-12"]
    old = next(d for d in sim.devices if d.uid.endswith("-cold-water") and d.unit == "B1-02")
    for unit in ("B1-01", "B1-03"):
        values = month_end[f"{unit}-cold-water"]
        assert monthly[unit]["2024-12"]["cold_water_m3"] == pytest.approx(
            values["2024-12-31"] - values["2024-11-30"]
        )
    # The swap unit's meter was swapped in January; December is still the old meter alone.
    values = month_end[old.uid]
    assert monthly["B1-02"]["2024-12"]["cold_water_m3"] == pytest.approx(
        values["2024-12-31"] - values["2024-11-30"]
    )
    for unit, months in monthly.items():
        for cells in months.values():
            assert all(v >= 0 for v in cells.values()), unit
    assert set(monthly["B1"]["2024-12"]) == {"heat_kwh", "electricity_kwh", "gas_m3"}
    due = sim.truth.due_date_values
    hca = next(d.uid for d in sim.devices if d.kind == "heat_cost_allocator")
    assert set(due[hca]) == {"2023-12-31", "2024-12-31"}
    assert due[hca]["2023-12-31"] <= due[hca]["2024-12-31"]


def test_consumption_grows_and_heating_follows_the_season() -> None:
    year = simulate(start=dt.date(2025, 1, 1), days=365, seed=3, units=1, gateways=2)
    by_device: dict[str, list[float]] = collections.defaultdict(list)
    for uplink in year.truth.uplinks:
        for key in ("hca_units", "energy_kwh", "volume_m3", "electricity_kwh"):
            if key in uplink.values:
                by_device[uplink.device].append(float(uplink.values[key]))
                break
    for device, series in by_device.items():
        assert series == sorted(series), device
    heat = year.truth.monthly_consumption["B1"]
    assert heat["2025-01"]["heat_kwh"] > 3 * heat["2025-07"]["heat_kwh"]


def test_smoke_detector_faults() -> None:
    year = simulate(start=dt.date(2025, 1, 1), days=120, seed=5, units=2)
    soiled = {u.device for u in year.truth.uplinks if u.values.get("smoke_chamber_soiled")}
    removed = [u for u in year.truth.uplinks if u.values.get("removed")]
    assert len(soiled) == 1
    assert len(removed) == 4 and len({u.device for u in removed}) == 1


def test_collector_log_round_trip(sim: Simulation, tmp_path: Path) -> None:
    path = tmp_path / "upload.jsonl"
    wmbus = [r for r in sim.receptions if r.radio is Radio.WMBUS]
    assert write_collector_log(path, sim.receptions) == len(wmbus)
    with path.open("rb") as handle:
        items = list(iter_collector_lines(handle, default_gateway="none", default_time=0.0))
    assert items == wmbus


def test_site_and_key_files_load_back(sim: Simulation, tmp_path: Path) -> None:
    sim.write_site_toml(tmp_path / "site.toml")
    sim.write_keys_toml(tmp_path / "keys.toml")
    site = SiteRegistry.from_toml(tmp_path / "site.toml")
    keys = KeyStore.import_plain(tmp_path / "keys.toml")
    assert site.to_toml() == sim.site.to_toml()
    assert len(keys) == len(sim.keys) == len(sim.devices)
    for device in sim.devices:
        if device.radio == Radio.LORAWAN.value:
            assert keys.lorawan_session_keys(device.address) == sim.keys.lorawan_session_keys(device.address)
        else:
            parts = _wmbus_parts(device.address)
            assert keys.oms_key(*parts) == sim.keys.oms_key(*parts) is not None


def test_keys_stay_out_of_reprs(sim: Simulation) -> None:
    text = repr(sim.keys) + repr(sim.devices) + repr(sim.truth.uplinks[:50])
    for device in sim.devices:
        if device.radio == Radio.WMBUS.value:
            key = sim.keys.oms_key(*_wmbus_parts(device.address))
            assert key is not None and key.reveal().hex() not in text.lower()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": 3},
        {"days": 3_654},
        {"days": 10**30},
        {"units": 0},
        {"gateways": 0},
        {"gateways": 10},
        {"start": dt.datetime(2025, 1, 1)},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = {"start": START, "days": 10, **kwargs}
    with pytest.raises(InputError):
        simulate(**arguments)  # type: ignore[arg-type]
