"""Site registry: the sample file, validation errors that name where, assignment by time
(example swaps and a Hypothesis model of random install/remove histories), lookups, export."""

from __future__ import annotations

import datetime as dt
import math
import pathlib
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore.errors import ConfigError
from minolcore.site import (
    BillingSettings,
    DeviceKind,
    Installation,
    LoRaWANAddress,
    RatingFactors,
    RestBasis,
    SiteRegistry,
    WMBusAddress,
)

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "site.toml"
UTC = dt.UTC
OLD_WATER = WMBusAddress.of("ZRI", "40000001", 1, 22)
NEW_WATER = WMBusAddress.of("ZRI", "40000002", 1, 22)
HCA = WMBusAddress.of("QDS", "71234501", 2, 8)


@pytest.fixture(scope="module")
def example() -> SiteRegistry:
    return SiteRegistry.from_toml(EXAMPLE)


# --- the sample site -------------------------------------------------------------------------


def test_example_loads(example: SiteRegistry) -> None:
    assert [b.id for b in example.buildings()] == ["B1"]
    assert [u.id for u in example.units("B1")] == ["B1-01", "B1-02"]
    unit = example.unit("B1-01")
    assert unit.area_m2 == 72.5 and unit.heated_volume_m3 == 181.25
    billing = example.building("B1").billing
    assert billing == BillingSettings(
        due_month=12,
        due_day=31,
        heating_consumption_percent=70.0,
        hot_water_consumption_percent=50.0,
        rest_by=RestBasis.AREA,
    )
    assert repr(example) == "SiteRegistry(1 buildings, 2 units, 5 installations, 2 tenancies)"


def test_meter_swap_day_belongs_to_the_old_meter(example: SiteRegistry) -> None:
    # Removed 2024-03-15 = last day in service; the new one is installed the same day.
    during = dt.datetime(2024, 3, 15, 12, 0)
    old = example.assign(OLD_WATER, during)
    new = example.assign(NEW_WATER, during)
    assert old is not None and old.installation.id == "B1-01-water-1"
    assert new is not None and new.installation.id == "B1-01-water-2"
    assert old.unit is not None and old.unit.id == "B1-01"
    assert old.room == "bathroom"
    assert example.assign(OLD_WATER, dt.datetime(2024, 3, 16, 0, 0)) is None
    assert example.assign(OLD_WATER, dt.datetime(2018, 5, 31, 23, 59)) is None
    assert example.assign(OLD_WATER, dt.datetime(2018, 6, 1, 0, 0)) is not None
    assert example.assign(NEW_WATER, dt.datetime(2024, 3, 14, 23, 59)) is None


def test_naive_times_are_site_local_and_aware_times_are_instants(example: SiteRegistry) -> None:
    # 2024-03-15T23:30Z is 2024-03-16 00:30 in Berlin: the old meter is gone by then.
    assert example.assign(OLD_WATER, dt.datetime(2024, 3, 15, 23, 30, tzinfo=UTC)) is None
    assert example.assign(OLD_WATER, dt.datetime(2024, 3, 15, 22, 30, tzinfo=UTC)) is not None
    assert example.assign(OLD_WATER, dt.datetime(2024, 3, 15, 23, 30)) is not None


def test_rating_factor_and_address_wildcards(example: SiteRegistry) -> None:
    # Registered with device type 8 but no version: any version with type 8 matches.
    found = example.assign(HCA, dt.datetime(2023, 1, 10))
    assert found is not None
    assert found.rating_factor == pytest.approx(1.25 * 0.95)
    assert found.installation.rating == RatingFactors(kq=1.25, kc=0.95)
    assert example.assign(WMBusAddress.of("QDS", "71234501", 2, 7), dt.datetime(2023, 1, 10)) is None
    assert example.assign(WMBusAddress.of("QDS", "71234501"), dt.datetime(2023, 1, 10)) is not None
    combined = example.assign(WMBusAddress.of("QDS", "71234502", 9, 8), dt.datetime(2023, 1, 10))
    assert combined is not None and combined.rating_factor == 0.88
    water = example.assign(NEW_WATER, dt.datetime(2025, 1, 1))
    assert water is not None and water.rating_factor is None


def test_building_level_lorawan_meter(example: SiteRegistry) -> None:
    found = example.assign(LoRaWANAddress.of(dev_eui="70b3d57ed00000dc"), dt.datetime(2023, 1, 1))
    assert found is not None
    assert found.unit is None and found.building.id == "B1"
    assert found.installation.kind is DeviceKind.HEAT_METER
    assert example.assign(LoRaWANAddress.of(dev_addr="70B3D57E"), dt.datetime(2023, 1, 1)) is None


def test_devices_in_unit_and_installations(example: SiteRegistry) -> None:
    year_2024 = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    ids = [i.id for i in example.devices_in_unit("B1-01", year_2024)]
    assert ids == ["B1-01-water-1", "B1-01-hca-living", "B1-01-water-2"]
    # Before the swap day only the old water meter and the HCA.
    early = [i.id for i in example.devices_in_unit("B1-01", (dt.date(2024, 1, 1), dt.date(2024, 3, 14)))]
    assert early == ["B1-01-water-1", "B1-01-hca-living"]
    assert [i.id for i in example.installations(building="B1", active_at=dt.datetime(2025, 1, 1))] == [
        "B1-01-hca-living",
        "B1-02-hca-bedroom",
        "B1-heat-main",
        "B1-01-water-2",
    ]
    assert [i.id for i in example.installations(address=OLD_WATER)] == ["B1-01-water-1"]
    assert [i.id for i in example.installations(unit="B1-02")] == ["B1-02-hca-bedroom"]


def test_billing_period_and_tenancies(example: SiteRegistry) -> None:
    start, end = example.billing_period("B1", 2024)
    berlin = start.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert berlin.replace(tzinfo=None) == dt.datetime(2024, 1, 1)
    assert end - start == dt.timedelta(days=366)
    assert example.building("B1").billing is not None
    tenancy = example.tenancy_at("B1-01", dt.date(2023, 6, 30))
    assert tenancy is not None and tenancy.tenant == "T-1001"
    later = example.tenancy_at("B1-01", dt.date(2023, 7, 1))
    assert later is not None and later.tenant == "T-1002"
    assert example.tenancy_at("B1-02", dt.date(2023, 7, 1)) is None
    assert [u.id for u in example.units_of_tenant("T-1002", dt.date(2030, 1, 1))] == ["B1-01"]
    assert [t.tenant for t in example.tenancies("B1-01")] == ["T-1001", "T-1002"]


def test_export_round_trip(example: SiteRegistry) -> None:
    text = example.to_toml()
    again = SiteRegistry.from_toml_text(text)
    assert again.to_toml() == text
    assert again.installations() == example.installations()
    assert again.units() == example.units()
    assert again.buildings() == example.buildings()
    assert again.tenancies("B1-01") == example.tenancies("B1-01")


# --- validation --------------------------------------------------------------------------------

BASE = """
[[buildings]]
id = "B1"
name = "House"

[[units]]
id = "U1"
building = "B1"
name = "Flat 1"
area = 50.0

[[units]]
id = "U2"
building = "B1"
name = "Flat 2"
area = 60
"""

INSTALL = """
[[installations]]
unit = "U1"
kind = "water_meter"
manufacturer = "ZRI"
meter_id = "12345678"
installed = 2020-01-01
"""

HCA_INSTALL = INSTALL.replace("water_meter", "heat_cost_allocator")

BAD_FILES = [
    pytest.param(BASE.replace("area = 50.0", "area = -1"), "units[0].area", "positive number (m2)",
                 id="negative-area"),
    pytest.param(BASE.replace("area = 60", 'area = "60"'), "units[1].area", "number (m2)", id="string-area"),
    pytest.param(BASE.replace("area = 60", "area = nan"), "units[1].area", "number", id="nan-area"),
    pytest.param(BASE.replace("area = 60", "area = true"), "units[1].area", "number", id="bool-area"),
    pytest.param(BASE.replace("area = 60", "aera = 60"), "units[1]", "unknown field 'aera'", id="typo"),
    pytest.param(BASE.replace('building = "B1"\nname = "Flat 2"', 'building = "B9"\nname = "Flat 2"'),
                 "units[1].building", "unknown building 'B9'", id="unknown-building"),
    pytest.param(BASE.replace('id = "U2"', 'id = "U1"'), "units[1].id", "duplicate unit id", id="dup-unit"),
    pytest.param(BASE + '[[buildings]]\nid = "B1"\nname = "x"\n', "buildings[1].id", "duplicate building",
                 id="dup-building"),
    pytest.param(BASE.replace('name = "Flat 1"\n', ""), "units[0].name", "is missing", id="missing-name"),
    pytest.param(BASE + INSTALL + INSTALL.replace("2020-01-01", "2021-01-01"), "installations[1]",
                 "overlaps installation", id="overlap"),
    pytest.param(BASE + INSTALL.replace("2020-01-01", "2020-01-01\nremoved = 2019-12-31"),
                 "installations[0].removed", "removal before installation", id="removal-before-install"),
    pytest.param(BASE + INSTALL.replace("2020-01-01", '"2020-13-01"'), "installations[0].installed",
                 "not a valid date", id="bad-date-string"),
    pytest.param(BASE + INSTALL.replace("2020-01-01", "12"), "installations[0].installed", "must be a date",
                 id="int-date"),
    pytest.param(BASE + INSTALL.replace("2020-01-01", "08:00:00"), "installations[0].installed",
                 "must be a date", id="time-only"),
    pytest.param(BASE + INSTALL.replace('"ZRI"', '"Z1I"'), "installations[0].manufacturer",
                 "three letters A-Z", id="bad-manufacturer"),
    pytest.param(BASE + INSTALL.replace('"ZRI"', '"ZRIX"'), "installations[0].manufacturer",
                 "three letters A-Z", id="long-manufacturer"),
    pytest.param(BASE + INSTALL.replace('"12345678"', "12345678"), "installations[0].meter_id",
                 "quote it", id="int-meter-id"),
    pytest.param(BASE + INSTALL.replace('"12345678"', '"1234567"'), "installations[0].meter_id",
                 "8 hex digits", id="short-meter-id"),
    pytest.param(BASE + INSTALL + "version = 300\n", "installations[0].version", "0..255", id="bad-version"),
    pytest.param(BASE + INSTALL + 'dev_eui = "70B3D57ED00000DC"\n', "installations[0]", "either",
                 id="wmbus-and-lorawan"),
    pytest.param(BASE + INSTALL.replace('manufacturer = "ZRI"\nmeter_id = "12345678"', 'dev_eui = "70B3"'),
                 "installations[0].dev_eui", "16 hex digits", id="short-eui"),
    pytest.param(BASE + INSTALL + "kq = 1.2\nkc = 0.9\n", "installations[0]", "only to heat cost allocators",
                 id="rating-on-water-meter"),
    pytest.param(BASE + HCA_INSTALL + "kq = 1.2\n",
                 "installations[0]", "both kq and kc", id="kq-without-kc"),
    pytest.param(BASE + HCA_INSTALL + "kq = 1\nkc = 1\nfactor = 1\n",
                 "installations[0]", "not both", id="kq-and-factor"),
    pytest.param(BASE + HCA_INSTALL + "factor = 0\n",
                 "installations[0].factor", "positive", id="zero-factor"),
    pytest.param(BASE + INSTALL.replace("water_meter", "gas_meter"), "installations[0].kind",
                 "must be one of", id="unknown-kind"),
    pytest.param(BASE + INSTALL.replace('unit = "U1"', 'unit = "U9"'), "installations[0].unit",
                 "unknown unit 'U9'", id="unknown-unit"),
    pytest.param(BASE + INSTALL.replace('unit = "U1"', 'unit = "U1"\nbuilding = "B2"'),
                 "installations[0].building", "belongs to building", id="unit-building-mismatch"),
    pytest.param(BASE + INSTALL.replace('unit = "U1"\n', ""), "installations[0]", "needs a unit",
                 id="no-place"),
    pytest.param(BASE + INSTALL.replace("installed = 2020-01-01\n", ""), "installations[0].installed",
                 "is missing", id="no-install-date"),
    pytest.param(BASE + INSTALL + "removed = 2020-06-30\n"
                 + INSTALL.replace("2020-01-01", "2021-01-01\nid = \"ZRI-12345678@2020-01-01\""),
                 "installations[1].id", "duplicate installation id", id="dup-installation-id"),
    pytest.param(BASE.replace('name = "House"', 'name = "House"\nbilling = { due_date = "02-29", '
                              "heating_consumption_percent = 70 }"),
                 "buildings[0].billing.due_date", "not a day of every year", id="due-feb-29"),
    pytest.param(BASE.replace('name = "House"', 'name = "House"\nbilling = { due_date = "13-01", '
                              "heating_consumption_percent = 70 }"),
                 "buildings[0].billing.due_date", "not a day of every year", id="due-month-13"),
    pytest.param(BASE.replace('name = "House"', 'name = "House"\nbilling = { due_date = "1231", '
                              "heating_consumption_percent = 70 }"),
                 "buildings[0].billing.due_date", "MM-DD", id="due-format"),
    pytest.param(BASE.replace('name = "House"', 'name = "House"\nbilling = { due_date = "12-31", '
                              "heating_consumption_percent = 80 }"),
                 "buildings[0].billing.heating_consumption_percent", "between 50 and 70", id="share-80"),
    pytest.param(BASE.replace('name = "House"', 'name = "House"\nbilling = { due_date = "12-31", '
                              'heating_consumption_percent = 60, rest_by = "persons" }'),
                 "buildings[0].billing.rest_by", "must be one of", id="rest-by"),
    pytest.param(BASE.replace('name = "House"', 'name = "House"\nbilling = { due_date = "12-31", '
                              'heating_consumption_percent = 60, rest_by = "heated_volume" }'),
                 "unit 'U1'.heated_volume", "heated volume", id="volume-needed"),
    pytest.param(BASE + '[[tenancies]]\nunit = "U1"\ntenant = "A"\nstart = 2020-01-01\n'
                 '[[tenancies]]\nunit = "U1"\ntenant = "B"\nstart = 2021-01-01\n',
                 "tenancies[1]", "overlaps the tenancy of 'A'", id="tenancy-overlap"),
    pytest.param(BASE + '[[tenancies]]\nunit = "U1"\ntenant = "A"\nstart = 2020-01-01\nend = 2019-01-01\n',
                 "tenancies[0].end", "ends before it starts", id="tenancy-backwards"),
    pytest.param(BASE + '[[tenancies]]\nunit = "U1"\ntenant = "A"\nstart = 2020-01-01T08:00:00\n',
                 "tenancies[0].start", "must be a date", id="tenancy-datetime"),
    pytest.param('timezone = "Mars/Olympus"\n' + BASE, "timezone", "unknown time zone", id="timezone"),
    pytest.param('timezone = "Europe"\n' + BASE, "timezone", "unknown time zone", id="timezone-directory"),
    pytest.param(f'timezone = "{"x" * 300}"\n' + BASE, "timezone", "unknown time zone", id="timezone-long"),
    pytest.param(BASE + "area = = 3\n", "<site>", "not valid TOML", id="toml-syntax"),
    pytest.param("units = 3\n", "units", "array of tables", id="units-not-list"),
    pytest.param("buildings = [1]\n", "buildings[0]", "must be a table", id="building-not-table"),
    pytest.param('colour = "red"\n', "site", "unknown field 'colour'", id="unknown-top-level"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "where", "message"), BAD_FILES)
def test_bad_site_files_name_where(text: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SiteRegistry.from_toml_text(text)
    assert caught.value.where == where
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{where}: ")


def test_base_file_is_valid() -> None:
    # The mutations above break only what each names: the base and one install load.
    registry = SiteRegistry.from_toml_text(BASE + INSTALL)
    assert [u.area_m2 for u in registry.units()] == [50.0, 60.0]
    assert registry.installations()[0].id == "ZRI-12345678@2020-01-01"


def test_unreadable_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the site file"):
        SiteRegistry.from_toml(tmp_path / "missing.toml")
    binary = tmp_path / "site.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        SiteRegistry.from_toml(binary)


_SITE_FIELDS = [
    "timezone", "buildings", "units", "installations", "tenancies", "id", "name", "building", "unit", "area",
    "heated_volume", "kind", "manufacturer", "meter_id", "installed", "removed", "kq", "kc", "factor",
    "dev_eui", "dev_addr", "version", "device_type", "tenant", "start", "end", "billing", "due_date",
    "heating_consumption_percent", "rest_by", "room", "address", "gateways", "gateway_crc", "GW-1",
]  # fmt: skip
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["B1", "U1", "ZRI", "12345678", "heat_cost_allocator", "12-31", "2020-01-01"])
    | st.sampled_from(["GW-1", "present", "absent", "auto"])
    | st.dates()
    | st.datetimes()
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_SITE_FIELDS), inner, max_size=6)
    ),
    max_leaves=25,
)


_gateway_sites = st.fixed_dictionaries(
    {
        "gateways": st.lists(st.sampled_from(["GW-1", "GW-2"]), max_size=3) | _values,
        "gateway_crc": st.dictionaries(
            st.sampled_from(["GW-1", "GW-2", "GW-3"]),
            st.sampled_from(["present", "absent", "auto"]) | _leaves,
        )
        | _values,
    }
)


@given(st.dictionaries(st.sampled_from(_SITE_FIELDS), _values, max_size=5) | _gateway_sites)
def test_arbitrary_structures_raise_only_config_errors(data: dict[str, Any]) -> None:
    try:
        registry = SiteRegistry.from_dict(data)
    except ConfigError as exc:
        assert str(exc)
    else:
        again = SiteRegistry.from_toml_text(registry.to_toml())
        assert (again.gateways, again.gateway_crc) == (registry.gateways, registry.gateway_crc)


# --- the API -------------------------------------------------------------------------------------


def _small() -> SiteRegistry:
    registry = SiteRegistry("UTC")
    registry.add_building(
        "B1",
        "House",
        billing=BillingSettings(
            due_month=6, due_day=30, heating_consumption_percent=50, hot_water_consumption_percent=70
        ),
    )
    registry.add_unit("U1", "B1", "Flat 1", 50.0)
    registry.add_unit("U2", "B1", "Flat 2", 65.5, heated_volume_m3=170.0)
    return registry


def test_api_install_remove_and_move() -> None:
    registry = _small()
    meter = WMBusAddress.of("zri", "abcdef01")
    assert meter.manufacturer == "ZRI" and meter.id == "ABCDEF01"
    first = registry.install(meter, dt.date(2022, 1, 1), kind="water_meter", unit="U1", room="kitchen")
    assert first.end is None
    ended = registry.remove(meter, dt.datetime(2023, 5, 1, 10, 0))
    assert ended.end == dt.datetime(2023, 5, 1, 10, 0, tzinfo=UTC)
    # The same device moves to the other flat later that day.
    second = registry.install(meter, dt.datetime(2023, 5, 1, 14, 0), kind=DeviceKind.WATER_METER, unit="U2")
    morning = registry.assign(meter, dt.datetime(2023, 5, 1, 9, 59))
    noon = registry.assign(meter, dt.datetime(2023, 5, 1, 12, 0))
    afternoon = registry.assign(meter, dt.datetime(2023, 5, 1, 14, 0))
    assert morning is not None and morning.installation == ended and morning.unit is not None
    assert morning.unit.id == "U1"
    assert noon is None
    assert afternoon is not None and afternoon.installation == second
    assert registry.remove(second.id, dt.date(2024, 1, 31)).end == dt.datetime(2024, 2, 1, tzinfo=UTC)
    assert registry.assign(meter, dt.datetime(2024, 1, 31, 23, 59)) is not None
    assert registry.assign(meter, dt.datetime(2024, 2, 1)) is None


def test_api_errors() -> None:
    registry = _small()
    meter = WMBusAddress.of("ZRI", "00000001")
    registry.install(meter, dt.date(2022, 1, 1), kind="water_meter", unit="U1")
    with pytest.raises(ConfigError, match="overlaps installation"):
        registry.install(meter, dt.date(2023, 1, 1), kind="water_meter", unit="U2")
    with pytest.raises(ConfigError, match="removal before installation"):
        registry.remove(meter, dt.datetime(2021, 12, 31, 23, 0))
    with pytest.raises(ConfigError, match="is not installed"):
        registry.remove(WMBusAddress.of("ZRI", "00000002"), dt.date(2023, 1, 1))
    with pytest.raises(ConfigError, match="unknown installation id"):
        registry.remove("nope", dt.date(2023, 1, 1))
    registry.remove(meter, dt.date(2023, 1, 1))
    with pytest.raises(ConfigError, match="already removed"):
        registry.remove("ZRI-00000001@2022-01-01", dt.date(2023, 2, 1))
    with pytest.raises(ConfigError, match="positive number") as caught:
        registry.add_unit("U3", "B1", "Flat 3", 0)
    assert caught.value.where == "unit 'U3'.area_m2"
    with pytest.raises(ConfigError, match="number"):
        registry.add_unit("U3", "B1", "Flat 3", "big")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown building"):
        registry.add_unit("U3", "B7", "Flat 3", 40)
    with pytest.raises(ConfigError, match="duplicate building"):
        registry.add_building("B1", "Again")
    with pytest.raises(ConfigError, match="three letters"):
        WMBusAddress.of("Z9I", "00000001")
    with pytest.raises(ConfigError, match="three letters"):
        registry.install(
            WMBusAddress(manufacturer="??", id="00000003"), dt.date(2022, 1, 1), kind="other", unit="U1"
        )
    with pytest.raises(ConfigError, match="exactly one"):
        LoRaWANAddress.of(dev_eui="70B3D57ED00000DC", dev_addr="26011BDA")
    with pytest.raises(ConfigError, match="between 50 and 70"):
        registry.add_building(
            "B2", "x", billing=BillingSettings(due_month=12, due_day=31, heating_consumption_percent=40,
                                                 hot_water_consumption_percent=60),
        )  # fmt: skip
    with pytest.raises(ConfigError, match="a reading time must be a datetime"):
        registry.assign(meter, dt.date(2022, 6, 1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown unit"):
        registry.devices_in_unit("U9", (dt.date(2022, 1, 1), dt.date(2022, 12, 31)))
    with pytest.raises(ConfigError, match="has no billing settings"):
        registry.add_building("B3", "No billing")
        registry.billing_period("B3", 2024)


def test_billing_period_mid_year_due_date() -> None:
    registry = _small()
    start, end = registry.billing_period("B1", 2024)
    assert start == dt.datetime(2023, 7, 1, tzinfo=UTC)
    assert end == dt.datetime(2024, 7, 1, tzinfo=UTC)
    settings = registry.building("B1").billing
    assert settings is not None and settings.period_days(2024) == (dt.date(2023, 7, 1), dt.date(2024, 6, 30))


def test_version_specific_installations_and_ambiguous_queries() -> None:
    registry = _small()
    # One ID, two media (a combined device sends heat and water with different type bytes).
    heat = registry.install(
        WMBusAddress.of("ABC", "11111111", 1, 4), dt.date(2022, 1, 1), kind="heat_meter", unit="U1"
    )
    water = registry.install(
        WMBusAddress.of("ABC", "11111111", 1, 7), dt.date(2022, 1, 1), kind="water_meter", unit="U1"
    )
    when = dt.datetime(2023, 1, 1)
    found_heat = registry.assign(WMBusAddress.of("ABC", "11111111", 1, 4), when)
    found_water = registry.assign(WMBusAddress.of("ABC", "11111111", 1, 7), when)
    assert found_heat is not None and found_heat.installation == heat
    assert found_water is not None and found_water.installation == water
    assert registry.assign(WMBusAddress.of("ABC", "11111111", 2, 7), when) is None
    with pytest.raises(ConfigError, match="give the version and device type"):
        registry.assign(WMBusAddress.of("ABC", "11111111"), when)
    with pytest.raises(ConfigError, match="overlaps"):
        registry.install(WMBusAddress.of("ABC", "11111111"), dt.date(2022, 6, 1), kind="other", unit="U2")


def test_assignment_is_cached_and_refreshed_after_remove() -> None:
    registry = _small()
    meter = LoRaWANAddress.of(dev_addr="26011bda")
    registry.install(meter, dt.date(2022, 1, 1), kind="pulse_module", building="B1")
    first = registry.assign(meter, dt.datetime(2023, 1, 1))
    assert first is registry.assign(meter, dt.datetime(2024, 1, 1))
    registry.remove(meter, dt.date(2023, 12, 31))
    second = registry.assign(meter, dt.datetime(2023, 1, 1))
    assert second is not None and second is not first
    assert second.installation.end == dt.datetime(2024, 1, 1, tzinfo=UTC)


# --- Hypothesis: assignment against a brute-force model -----------------------------------------

T0 = dt.datetime(2020, 1, 1, tzinfo=UTC)
ADDRESSES = [WMBusAddress.of("ZRI", f"{n:08d}", 1, 7) for n in range(3)] + [
    LoRaWANAddress.of(dev_eui="70B3D57ED00000DC")
]
UNITS = ["U1", "U2"]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, int, int, int | None]]:
    """(address index, unit index, start minute, end minute or None): per device, non-overlapping."""
    spans: list[tuple[int, int, int, int | None]] = []
    for device in range(draw(st.integers(1, len(ADDRESSES)))):
        clock = draw(st.integers(0, 50))
        for _ in range(draw(st.integers(0, 5))):
            start = clock
            end = start + draw(st.integers(1, 100))
            spans.append((device, draw(st.integers(0, 1)), start, end))
            clock = end + draw(st.integers(0, 30))  # 0: reinstalled the minute it was removed
        if draw(st.booleans()):
            spans.append((device, draw(st.integers(0, 1)), clock, None))
    return spans


def _minute(m: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=m)


def _build(spans: list[tuple[int, int, int, int | None]], via_api: bool, seed: int) -> SiteRegistry:
    if via_api:
        registry = _small()
        # Chronological per device (remove before the next install), devices interleaved.
        for device, unit, start, end in spans:
            registry.install(ADDRESSES[device], _minute(start), kind="other", unit=UNITS[unit])
            if end is not None:
                registry.remove(ADDRESSES[device], _minute(end))
        return registry
    entries: list[dict[str, Any]] = []
    for device, unit, start, end in spans:
        address = ADDRESSES[device]
        entry: dict[str, Any] = {"unit": UNITS[unit], "kind": "other", "installed": _minute(start)}
        if isinstance(address, WMBusAddress):
            entry |= {
                "manufacturer": address.manufacturer,
                "meter_id": address.id,
                "version": 1,
                "device_type": 7,
            }
        else:
            entry["dev_eui"] = address.dev_eui
        if end is not None:
            entry["removed"] = _minute(end)
        entries.append(entry)
    random.Random(seed).shuffle(entries)  # the file order must not matter
    data = {
        "timezone": "UTC",
        "buildings": [{"id": "B1", "name": "House"}],
        "units": [{"id": u, "building": "B1", "name": u, "area": 50.0} for u in UNITS],
        "installations": entries,
    }
    return SiteRegistry.from_dict(data)


@given(histories(), st.booleans(), st.integers(0, 2**16), st.lists(st.integers(-10, 700), max_size=30))
def test_assign_matches_the_installation_active_at_each_time(
    spans: list[tuple[int, int, int, int | None]], via_api: bool, seed: int, probes: list[int]
) -> None:
    registry = _build(spans, via_api, seed)
    boundaries = {m + d for _, _, s, e in spans for m in (s, e) if m is not None for d in (-1, 0, 1)}
    for device, address in enumerate(ADDRESSES):
        for minute in sorted(boundaries | set(probes)):
            at = _minute(minute)
            expected = [
                (unit, start)
                for d, unit, start, end in spans
                if d == device and start <= minute and (end is None or minute < end)
            ]
            found = registry.assign(address, at)
            if not expected:
                assert found is None
            else:
                assert len(expected) == 1
                assert found is not None
                assert found.unit is not None and found.unit.id == UNITS[expected[0][0]]
                assert found.installation.start == _minute(expected[0][1])
                assert found.installation.active_at(at)


@given(
    st.lists(st.tuples(st.integers(0, 100), st.integers(1, 50), st.booleans()), min_size=1, max_size=6),
    st.integers(0, 2**16),
)
def test_overlapping_histories_are_rejected_exactly_when_they_overlap(
    raw: list[tuple[int, int, bool]], seed: int
) -> None:
    spans: list[tuple[int, int, int, int | None]] = [
        (0, 0, start, None if open_end else start + length) for start, length, open_end in raw
    ]
    overlap = any(
        (e2 is None or s1 < e2) and (e1 is None or s2 < e1)
        for i, (_, _, s1, e1) in enumerate(spans)
        for (_, _, s2, e2) in spans[i + 1 :]
    )
    if overlap:
        with pytest.raises(ConfigError, match="overlaps installation"):
            _build(spans, False, seed)
    else:
        registry = _build(spans, False, seed)
        assert len(registry.installations(address=ADDRESSES[0])) == len(spans)


@given(histories(), st.integers(0, 2**16))
def test_export_round_trip_of_random_histories(
    spans: list[tuple[int, int, int, int | None]], seed: int
) -> None:
    registry = _build(spans, False, seed)
    again = SiteRegistry.from_toml_text(registry.to_toml())
    assert again.installations() == registry.installations()
    assert all(isinstance(i, Installation) for i in again.installations())


def test_gateways_round_trip() -> None:
    site = SiteRegistry.from_toml_text('gateways = ["GW-1", "GW-2", "GW-1"]\n')
    assert site.gateways == ("GW-1", "GW-2")
    again = SiteRegistry.from_toml_text(site.to_toml())
    assert again.gateways == ("GW-1", "GW-2")
    with pytest.raises(ConfigError) as caught:
        SiteRegistry.from_toml_text("gateways = 3\n")
    assert caught.value.where == "gateways"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("removed", "9999-12-31"),
        ("installed", "0001-01-01"),
        ("removed", "9999-12-31T23:59:00-05:00"),
        ("installed", "0001-01-01T00:30:00+01:00"),
        ("installed", "1899-12-31"),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_config_errors(field: str, value: str) -> None:
    dates = {"installed": "2020-01-01", field: value}
    text = f"""
timezone = "Europe/Berlin"
[[buildings]]
id = "B1"
name = "B"
[[units]]
id = "U1"
building = "B1"
name = "U"
area = 50.0
[[installations]]
unit = "U1"
kind = "water_meter"
manufacturer = "QDS"
meter_id = "12345678"
{chr(10).join(f"{key} = {val}" for key, val in dates.items())}
"""
    with pytest.raises(ConfigError, match="must lie between 1900-01-01 and 9998-12-31"):
        SiteRegistry.from_toml_text(text)


def test_gateway_crc_modes_round_trip_and_are_validated() -> None:
    text = 'gateways = ["GW-1", "GW-2", "GW-3"]\ngateway_crc = { "GW-2" = "present", "GW-3" = "auto" }\n'
    site = SiteRegistry.from_toml_text(text)
    assert site.gateway_crc == {"GW-2": "present"}
    again = SiteRegistry.from_toml_text(site.to_toml())
    assert again.gateways == site.gateways and again.gateway_crc == {"GW-2": "present"}
    site.add_gateway("GW-4", crc="absent")
    site.add_gateway("GW-4")  # a repeat without crc keeps the declaration
    site.add_gateway("GW-2", crc="auto")  # back to detecting per frame
    assert site.gateway_crc == {"GW-4": "absent"}
    for bad, message in (
        ('gateways = ["GW-1"]\ngateway_crc = { "GW-9" = "present" }\n', "'GW-9' is not in gateways"),
        ('gateways = ["GW-1"]\ngateway_crc = { "GW-1" = "maybe" }\n', "must be one of auto, present, absent"),
        ('gateways = ["GW-1"]\ngateway_crc = "present"\n', "must be a table"),
    ):
        with pytest.raises(ConfigError, match=message) as caught:
            SiteRegistry.from_toml_text(bad)
        assert str(caught.value.where).startswith("gateway_crc")


@given(
    st.lists(st.tuples(st.integers(0, 40), st.one_of(st.none(), st.integers(1, 15))), min_size=1, max_size=4),
    st.integers(-5, 60),
)
def test_an_assignment_holds_over_its_whole_span(schedule: list[tuple[int, int | None]], day: int) -> None:
    site = SiteRegistry()
    site.add_building("B1", "Hauptstrasse 1")
    site.add_unit("U1", "B1", "Flat 1", 50.0)
    address = WMBusAddress.of("QDS", "12345678", 0x35, 0x08)
    origin = dt.datetime(2025, 1, 1)
    begin = 0
    for gap, length in schedule:
        start = begin + gap
        site.install(address, origin + dt.timedelta(days=start), kind="heat_cost_allocator", unit="U1")
        if length is None:
            break
        site.remove(address, origin + dt.timedelta(days=start + length))
        begin = start + length
    at = origin + dt.timedelta(days=day, hours=7)
    start, end = site.assign_span(address, at)
    expected = site.assign(address, at)
    assert start <= at.replace(tzinfo=ZoneInfo(site.timezone)).timestamp() < end
    for probe in (start, end - 1e-3, (max(start, -1e10) + min(end, 1e10)) / 2):
        if math.isfinite(probe):
            assert site.assign(address, dt.datetime.fromtimestamp(probe, dt.UTC)) == expected
    if math.isfinite(end):
        assert site.assign(address, dt.datetime.fromtimestamp(end, dt.UTC)) != expected
