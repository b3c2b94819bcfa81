"""Tests of the EN 13757-3 record walker (minolcore.wmbus.records, vif, dates).

Every hex string used here is copied into this file, so the tests stand alone.
"""

from __future__ import annotations

import datetime
import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minolcore._reference.crc import crc16
from minolcore.errors import InputError, MinolcoreError, RecordError
from minolcore.wmbus import dates
from minolcore.wmbus.records import DataRecord, DecodedRecords, decode_records, format_signature, walk_records
from minolcore.wmbus.vif import FB_TABLE, FD_TABLE, PRIMARY
from tests.record_encoder import (
    BCD_DIGITS,
    INT_WIDTH,
    REAL32,
    Spec,
    date_g,
    datetime_f,
    encode_dib,
    lvar_bcd,
    lvar_binary,
    lvar_text,
)


def recs(hex_apl: str) -> tuple[DataRecord, ...]:
    result = decode_records(bytes.fromhex(hex_apl))
    assert result.complete, result.errors
    assert result.errors == ()
    return result.records


def simple(r: DataRecord) -> tuple[object, ...]:
    return (r.dif, r.vif, r.quantity, r.unit, r.value, r.storage, r.tariff, r.subunit, r.function, r.valid)


# --- vectors from the project's spec (vectors.md) -------------------------------------------

V1_PLAIN = "2F2F0C1427048502046D32371F1502FD1700002F2F2F2F2F2F2F2F2F2F2F2F2F"
V4_PLAIN = "2F2F0B6E341200426CFE044B6E5634020CFD1078563412"
V6_RECORDS = "02FF2000000413803C070044139F380700"
V7_PLAIN = "2F2F0C1394040000026C572A4C13740200008C01132503000002FD1700042F2F"
V9_NEGATIVE_BCD_APL = "2F2F0C06000000000C14000000000C22224101000B5A4102000B5E4000F0"
V9_INT64 = "07138877665544332211"
V9_INT64_MANUFACTURER = "077F8877665544332211"
V9_LSE_APL = "046D1906D9180C1334120000426CBF1C4C1300000000326CFFFF01FD7300"
V10_APL = "2F2F0C1359000000026CBE2B82046CA12B8C0413FFFFFFFF8D0493132CFBFE" + "FF" * 42 + "02FD1700002F2F"
V11_APL = (
    "0BFD0F070101046D2A06D82502FD17000082206CD825426CD0238440FF2C000F11008250FD61000082506C0101"
    "8260FD6100008360FD3100000082606C01018270FD61000082706C0101"
)


def test_v1_volume_datetime_error_flags() -> None:
    r = recs(V1_PLAIN)
    assert [simple(x) for x in r] == [
        ("0C", "14", "volume", "m3", 28504.27, 0, 0, 0, "instantaneous", True),
        ("04", "6D", "datetime", "", "2008-05-31T23:50", 0, 0, 0, "instantaneous", True),
        ("02", "FD17", "error_flags", "", 0, 0, 0, 0, "instantaneous", True),
    ]
    assert [x.offset for x in r] == [2, 8, 14]
    assert r[0].raw == "27048502"
    assert r[0].to_dict() == {
        "dif": "0C",
        "vif": "14",
        "quantity": "volume",
        "unit": "m3",
        "value": 28504.27,
        "storage": 0,
        "tariff": 0,
        "subunit": 0,
        "function": "instantaneous",
        "valid": True,
        "raw": "27048502",
        "offset": 2,
        "modifiers": [],
    }
    json.dumps(decode_records(bytes.fromhex(V1_PLAIN)).to_dict())


def test_v4_hca_due_date_and_customer_location() -> None:
    r = recs(V4_PLAIN)
    assert [simple(x) for x in r] == [
        ("0B", "6E", "hca_units", "HCA", 1234, 0, 0, 0, "instantaneous", True),
        ("42", "6C", "date", "", "2007-04-30", 1, 0, 0, "instantaneous", True),
        ("4B", "6E", "hca_units", "HCA", 23456, 1, 0, 0, "instantaneous", True),
        ("0C", "FD10", "customer_location", "", 12345678, 0, 0, 0, "instantaneous", True),
    ]


def test_v6_records_after_ci78() -> None:
    r = recs(V6_RECORDS)
    assert [simple(x) for x in r] == [
        ("02", "FF20", "manufacturer_specific", "", 0, 0, 0, 0, "instantaneous", True),
        ("04", "13", "volume", "m3", 474.24, 0, 0, 0, "instantaneous", True),
        ("44", "13", "volume", "m3", 473.247, 1, 0, 0, "instantaneous", True),
    ]
    assert r[0].raw == "0000"


def test_v7_storage_numbers_from_dife() -> None:
    r = recs(V7_PLAIN)
    assert [(x.quantity, x.value, x.storage) for x in r] == [
        ("volume", 0.494, 0),
        ("date", "2018-10-23", 0),
        ("volume", 0.274, 1),
        ("volume", 0.325, 2),
        ("error_flags", 0x0400, 0),
    ]
    assert r[3].dif == "8C01"


def test_v9_negative_bcd_and_units() -> None:
    r = recs(V9_NEGATIVE_BCD_APL)
    assert [(x.quantity, x.unit, x.value) for x in r] == [
        ("energy", "Wh", 0),
        ("volume", "m3", 0.0),
        ("on_time", "h", 14122),
        ("flow_temperature", "degC", 24.1),
        ("return_temperature", "degC", -4.0),
    ]
    assert isinstance(r[0].value, int)
    assert isinstance(r[1].value, float)


def test_v9_int64_volume_and_manufacturer_raw() -> None:
    (vol,) = recs(V9_INT64)
    assert vol.unit == "m3"
    assert vol.value == pytest.approx(1234605616436508.552, rel=1e-15)
    (mfr,) = recs(V9_INT64_MANUFACTURER)
    assert mfr.quantity == "manufacturer_specific"
    assert mfr.value == 1234605616436508552
    assert mfr.raw == "8877665544332211"


def test_v9_invalid_date_is_not_set() -> None:
    r = recs(V9_LSE_APL)
    assert (r[0].quantity, r[0].value) == ("datetime", "2014-08-25T06:25")
    assert (r[2].quantity, r[2].value, r[2].storage) == ("date", "2013-12-31", 1)
    bad = r[4]
    assert (bad.dif, bad.vif, bad.function) == ("32", "6C", "during_error")
    assert bad.value is None
    assert bad.valid is False
    assert bad.raw == "FFFF"


def test_v10_minomess_records() -> None:
    r = recs(V10_APL)
    assert [(x.quantity, x.value, x.storage, x.valid) for x in r] == [
        ("volume", 0.059, 0, True),
        ("date", "2021-11-30", 0, True),
        ("date", "2021-11-01", 8, True),
        ("volume", None, 8, False),
        ("volume", None, 8, False),
        ("error_flags", 0, 0, True),
    ]
    profile = r[4]
    assert (profile.dif, profile.vif) == ("8D04", "9313")
    assert profile.modifiers == ("inverse_compact_profile",)
    assert profile.series is not None and len(profile.series) == 14


def test_v11_smoke_detector_tariff_subunit_and_manufacturer_vif() -> None:
    r = recs(V11_APL)
    assert (r[0].quantity, r[0].value) == ("software_version", 10107)
    assert (r[1].quantity, r[1].value) == ("datetime", "2022-05-24T06:42")
    assert (r[3].dif, r[3].value, r[3].tariff, r[3].storage) == ("8220", "2022-05-24", 2, 0)
    assert (r[4].value, r[4].storage) == ("2022-03-16", 1)
    mfr = r[5]
    assert (mfr.dif, mfr.vif, mfr.quantity, mfr.subunit, mfr.raw) == (
        "8440",
        "FF2C",
        "manufacturer_specific",
        1,
        "000F1100",
    )
    assert [(x.tariff, x.subunit) for x in r[6:]] == [(1, 1), (1, 1), (2, 1), (2, 1), (2, 1), (3, 1), (3, 1)]
    assert (r[9].quantity, r[9].unit) == ("tariff_duration", "min")


# --- DIF / DIFE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_apl", "value"),
    [
        ("0113FE", -0.002),
        ("0213FFFF", None),
        ("0313FFFFFF", None),
        ("0413FFFFFFFF", None),
        ("0613FFFFFFFFFFFF", None),
        ("0713FFFFFFFFFFFFFFFF", None),
        ("0213FF7F", 32.767),
        ("02130080", -32.768),
        ("0A13FFFF", None),
        ("0A131200", 0.012),
        ("0A1312F0", -0.012),
        ("0A13A100", None),
        ("0913F5", -0.005),
        ("0E13563412000000", 123.456),
        ("0015", None),
        ("0815", None),
    ],
)
def test_integer_bcd_and_invalid_markers(hex_apl: str, value: float | None) -> None:
    (r,) = recs(hex_apl)
    assert r.value == value
    assert r.valid is (value is not None)


def test_real32() -> None:
    (r,) = recs("0513" + struct.pack("<f", 1.5).hex())
    assert r.value == pytest.approx(0.0015)
    (nan,) = recs("0513" + struct.pack("<f", math.nan).hex())
    assert (nan.value, nan.valid) == (None, False)


def test_functions_and_many_difes() -> None:
    r = recs("1213E8032213E8033213E803")
    assert [x.function for x in r] == ["maximum", "minimum", "during_error"]
    # DIF C2: storage bit 1; DIFE DF: storage 0xF, tariff 1, subunit 1; DIFE 63: storage 3,
    # tariff 2, subunit 1 (each DIFE adds 4 storage, 2 tariff and 1 subunit bits on top).
    (x,) = recs("C2DF63130100")
    assert (x.storage, x.tariff, x.subunit) == (1 + (0xF << 1) + (0x3 << 5), 1 | (2 << 2), 1 | (1 << 1))
    ten = "82" + "80" * 9 + "01" + "13" + "0100"
    (y,) = recs(ten)
    assert y.storage == 1 << 37
    eleven = "82" + "80" * 10 + "01" + "13" + "0100"
    result = decode_records(bytes.fromhex(eleven))
    assert not result.complete
    assert "more than 10 DIFEs" in result.errors[0]


def test_special_functions() -> None:
    r = recs("2F2F0213E8032F1FAABBCC")
    assert r[0].value == 1.0
    mfr = r[1]
    assert (mfr.dif, mfr.quantity, mfr.value, mfr.raw, mfr.more_follows) == (
        "1F",
        "manufacturer_specific",
        b"\xaa\xbb\xcc",
        "AABBCC",
        True,
    )
    assert mfr.to_dict()["value"] == "AABBCC"
    (last,) = recs("0F0102")
    assert (last.more_follows, last.value) == (False, b"\x01\x02")
    g = recs("7F0213E803")
    assert (g[0].quantity, g[0].dif) == ("global_readout", "7F")
    assert g[1].value == 1.0
    bad = decode_records(bytes.fromhex("0213E8033F"))
    assert bad.status == "malformed"
    assert [x.value for x in bad.records] == [1.0]
    assert "reserved special DIF 0x3F" in bad.errors[0]


def test_lvar_text_bcd_binary() -> None:
    model = "0DFD0C" + lvar_text("AB-12").hex()
    (m,) = recs(model)
    assert (m.quantity, m.value, m.raw[:2]) == ("model_version", "AB-12", "05")
    (p,) = recs("0D13" + lvar_bcd(123456, 3).hex())
    assert p.value == 123.456
    (n,) = recs("0D13" + lvar_bcd(-42, 2).hex())
    assert n.value == -0.042
    (b,) = recs("0D13" + lvar_binary(-5, 2).hex())
    assert b.value == -0.005
    (big,) = recs("0DFD3B" + "F0" + "11" * 16)
    assert big.value == b"\x11" * 16
    (big32,) = recs("0DFD3B" + "F4" + "22" * 32)
    assert big32.value == b"\x22" * 32
    reserved = decode_records(bytes.fromhex("0D13F500"))
    assert not reserved.complete and "reserved LVAR 0xF5" in reserved.errors[0]


def test_truncated_and_strict_variant() -> None:
    apl = bytes.fromhex("0C1427048502046D32371F")
    result = decode_records(apl)
    assert result.complete is False
    assert result.status == "malformed"
    assert [x.value for x in result.records] == [28504.27]
    assert result.errors == ("record at byte 6: 4 data bytes needed, 3 left",)
    with pytest.raises(RecordError) as info:
        walk_records(apl)
    assert info.value.offset == 6
    assert walk_records(bytes.fromhex(V1_PLAIN))[0].value == 28504.27
    for cut in ("8C", "0C", "0C94", "0CFD"):
        partial = decode_records(bytes.fromhex(cut))
        assert not partial.complete and partial.records == ()


def test_start_offset_and_input_errors() -> None:
    apl = bytes.fromhex("7A2A00202F2F0C1427048502")
    result = decode_records(apl, start=4)
    assert result.records[0].value == 28504.27
    assert result.records[0].offset == 6
    assert decode_records(memoryview(apl), start=4).records == result.records
    assert decode_records(bytearray(apl), start=4).records == result.records
    with pytest.raises(InputError):
        decode_records("0C14")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        decode_records(apl, start=99)
    with pytest.raises(InputError):
        walk_records(apl, start=-1)
    empty = decode_records(b"")
    assert empty == DecodedRecords(records=(), errors=(), signature=crc16(b""), complete=True)


# --- VIF / VIFE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vib", "quantity", "unit", "value"),
    [
        ("06", "energy", "Wh", 1000),
        ("03", "energy", "Wh", 1),
        ("00", "energy", "Wh", 0.001),
        ("0E", "energy", "J", 1_000_000),
        ("15", "volume", "m3", 0.1),
        ("1B", "mass", "kg", 1),
        ("20", "on_time", "s", 1),
        ("27", "operating_time", "d", 1),
        ("2E", "power", "W", 1000),
        ("33", "power", "J/h", 1000),
        ("3C", "volume_flow", "m3/h", 0.01),
        ("45", "volume_flow", "m3/min", 0.01),
        ("4F", "volume_flow", "m3/s", 0.01),
        ("52", "mass_flow", "kg/h", 0.1),
        ("5B", "flow_temperature", "degC", 1),
        ("5C", "return_temperature", "degC", 0.001),
        ("62", "temperature_difference", "K", 0.1),
        ("66", "external_temperature", "degC", 0.1),
        ("6B", "pressure", "bar", 1),
        ("6E", "hca_units", "HCA", 1),
        ("72", "averaging_duration", "h", 1),
        ("77", "actuality_duration", "d", 1),
        ("78", "fabrication_number", "", 1),
        ("79", "enhanced_identification", "", 1),
        ("7A", "bus_address", "", 1),
        ("7E", "any", "", 1),
        ("FB00", "energy", "Wh", 100_000),
        ("FB03", "reactive_energy", "varh", 10_000),
        ("FB05", "apparent_energy", "VAh", 10_000),
        ("FB09", "energy", "J", 1_000_000_000),
        ("FB11", "volume", "m3", 1000),
        ("FB17", "reactive_power", "var", 1000),
        ("FB19", "mass", "kg", 1_000_000),
        ("FB1A", "relative_humidity", "%RH", 0.1),
        ("FB20", "volume", "ft3", 1),
        ("FB29", "power", "W", 1_000_000),
        ("FB2F", "frequency", "Hz", 1),
        ("FB31", "power", "J/h", 1_000_000_000),
        ("FB37", "apparent_power", "VA", 1000),
        ("FB5A", "flow_temperature", "degF", 0.1),
        ("FB67", "external_temperature", "degF", 1),
        ("FB74", "temperature_limit", "degC", 0.001),
        ("FB7F", "cumulative_max_power", "W", 10_000),
        ("FD0B", "parameter_set_identification", "", 1),
        ("FD0D", "hardware_version", "", 1),
        ("FD0E", "firmware_version", "", 1),
        ("FD0F", "software_version", "", 1),
        ("FD17", "error_flags", "", 1),
        ("FD26", "storage_interval", "h", 1),
        ("FD28", "storage_interval", "month", 1),
        ("FD3A", "dimensionless", "", 1),
        ("FD48", "voltage", "V", 0.1),
        ("FD4C", "voltage", "V", 1000),
        ("FD5C", "current", "A", 1),
        ("FD6F", "battery_operating_time", "year", 1),
        ("FD74", "remaining_battery_lifetime", "d", 1),
    ],
)
def test_vif_tables(vib: str, quantity: str, unit: str, value: float) -> None:
    (r,) = recs("01" + vib + "01")
    assert (r.quantity, r.unit, r.value) == (quantity, unit, value)


def test_tables_are_complete_and_typed() -> None:
    for table in (PRIMARY, FD_TABLE, FB_TABLE):
        assert len(table) == 128
        for quantity, unit, exponent, kind in table:
            assert quantity and quantity == quantity.lower() and " " not in quantity
            assert isinstance(unit, str) and isinstance(exponent, int) and isinstance(kind, int)


@pytest.mark.parametrize(
    ("vib", "unit", "modifiers", "value"),
    [
        ("9322", "m3/h", ("per_hour",), 0.01),
        ("9320", "m3/s", ("per_second",), 0.01),
        ("9326", "m3/year", ("per_year",), 0.01),
        ("933C", "m3", ("backward_flow",), 0.01),
        ("933B", "m3", ("forward_flow",), 0.01),
        ("933A", "m3", ("uncorrected",), 0.01),
        ("937E", "m3", ("future_value",), 0.01),
        ("9374", "m3", (), 0.0001),
        ("937D", "m3", (), 10),
        ("93FD22", "m3/h", ("per_hour",), 10),
        ("862C", "Wh/l", ("per_litre",), 10000),
        ("86FC01", "Wh", ("at_phase_l1",), 10000),
        ("86FC0C", "Wh", ("delta_import_export",), 10000),
        ("9328", "m3/pulse", ("increment_per_input_pulse_0",), 0.01),
        ("9378", "m3", ("additive_correction",), 0.011),
        ("9312", "m3", ("average",), 0.01),
    ],
)
def test_combinable_vifes(vib: str, unit: str, modifiers: tuple[str, ...], value: float) -> None:
    (r,) = recs("01" + vib + "0A")
    assert (r.quantity in ("volume", "energy"), r.unit, r.modifiers) == (True, unit, modifiers)
    assert r.value == pytest.approx(value)


def test_combinable_error_codes_and_timepoints() -> None:
    (err,) = recs("0293150100")
    assert (err.value, err.valid, err.modifiers) == (None, False, ("no_data_available",))
    (start,) = recs("049339" + datetime_f(2024, 2, 29, 13, 5).hex())
    assert (start.value, start.unit, start.modifiers) == ("2024-02-29T13:05", "", ("start_datetime_of",))
    (limit_date,) = recs("02DB43" + date_g(2023, 7, 1).hex())
    assert limit_date.value == "2023-07-01"
    assert limit_date.modifiers == ("lower_limit_first_exceed_end",)
    (count,) = recs("01DB4907")
    assert (count.value, count.unit, count.modifiers) == (7, "", ("upper_limit_exceed_count",))
    (duration,) = recs("02DB5A0500")
    assert (duration.value, duration.unit) == (5, "h")
    (mfr_tail,) = recs("0193FF8101" + "05")
    assert mfr_tail.modifiers == ("manufacturer_specific_vife",)
    assert mfr_tail.vif == "93FF8101"
    (type_c,) = recs("0193FC11FF")
    assert type_c.value is None  # all ones is "not set" also unsigned
    (type_c2,) = recs("0193FC11FE")
    assert type_c2.value == 0.254  # 254 unsigned, not -2


def test_manufacturer_vif_keeps_all_vifes_raw() -> None:
    (r,) = recs("02FF8F7A3412")
    assert (r.vif, r.quantity, r.value, r.raw) == ("FF8F7A", "manufacturer_specific", 0x1234, "3412")


def test_plain_text_vif() -> None:
    (r,) = recs("027C03" + b"hPa"[::-1].hex() + "E803")
    assert (r.quantity, r.unit, r.value) == ("plain_text", "hPa", 1000)
    assert r.vif == "7C03615068"
    (s,) = recs("02FC2203" + b"hPa"[::-1].hex() + "E803")
    assert (s.unit, s.modifiers) == ("hPa/h", ("per_hour",))


def test_vife_limit_and_missing_vife() -> None:
    eleven = "01" + "93" + "A2" * 10 + "22" + "01"
    result = decode_records(bytes.fromhex(eleven))
    assert not result.complete and "more than 10 VIFEs" in result.errors[0]
    assert not decode_records(bytes.fromhex("01FD")).complete
    assert not decode_records(bytes.fromhex("0193")).complete


def test_extension_pointers_without_extension_bit_are_reserved() -> None:
    (r,) = recs("017D05")
    assert (r.quantity, r.value) == ("reserved_vif_7d", 5)


# --- dates -----------------------------------------------------------------------------------


def test_date_types() -> None:
    assert dates.type_g(bytes.fromhex("BE2B")) == "2021-11-30"
    assert dates.type_g(bytes.fromhex("FFFF")) is None
    assert dates.type_g(bytes.fromhex("0000")) is None
    assert dates.type_g(date_g(2023, 2, 29)) is None
    assert dates.type_g(date_g(2024, 2, 29)) == "2024-02-29"
    assert dates.type_f(bytes.fromhex("32371F15")) == "2008-05-31T23:50"
    assert dates.type_f(bytes.fromhex("B2371F15")) is None  # IV bit
    assert dates.type_f(bytes.fromhex("FFFFFFFF")) is None
    assert dates.type_f(bytes.fromhex("3C371F15")) is None  # minute 60
    assert dates.type_f(bytes.fromhex("2A06D825")) == "2022-05-24T06:42"  # hundred-year field 0
    assert dates.type_f(bytes.fromhex("2A46D825")) == "2122-05-24T06:42"
    assert dates.type_j(bytes.fromhex("1E2D17")) == "23:45:30"
    assert dates.type_j(bytes.fromhex("FFFFFF")) is None
    assert dates.type_i(bytes.fromhex("1E2D17D82500")) == "2022-05-24T23:45:30"
    assert dates.type_i(bytes.fromhex("1EAD17D82500")) is None
    assert dates.decode_timepoint(b"\x01") is None
    (i,) = recs("066D1E2D17D82500")
    assert i.value == "2022-05-24T23:45:30"
    (j,) = recs("036D1E2D17")
    assert j.value == "23:45:30"
    (g,) = recs("026DBE2B")
    assert g.value == "2021-11-30"


@given(st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2099, 12, 31)))
def test_date_g_round_trip(day: datetime.date) -> None:
    assert dates.type_g(date_g(day.year, day.month, day.day)) == day.isoformat()


# --- corpus (telegrams copied from the peer corpus; APL located by a simple helper) ----------


def locate_apl(frame: bytes) -> bytes | None:
    """The APL of a CRC-free frame with a short (0x7A), long (0x72) or no (0x78) TPL header,
    optionally behind an ELL-I (0x8C) or ELL-II (0x8D); None for encrypted payloads."""
    pos = 10
    ci = frame[pos]
    if ci == 0x8C:
        pos += 3
    elif ci == 0x8D:
        pos += 9
    ci = frame[pos]
    if ci == 0x7A:
        start, cf = pos + 5, frame[pos + 3 : pos + 5]
    elif ci == 0x72:
        start, cf = pos + 13, frame[pos + 11 : pos + 13]
    elif ci == 0x78:
        start, cf = pos + 1, b"\0\0"
    else:
        return None
    apl = frame[start:]
    if cf[1] & 0x1F and not apl.startswith(b"\x2f\x2f"):
        return None
    return apl


CORPUS = [
    # aquastream
    (
        "4644B42557920410050E7237329305B42501075B0030252F2F04130342000084101300000000046D0D30F62B441349180000426CFF2A02FD17000002FD74DB152F2F2F2F2F2F2F",
        [
            ("datetime", "", "2023-11-22T16:13", 0),
            ("date", "", "2023-10-31", 1),
            ("volume", "m3", 6.217, 1),
            ("volume", "m3", 16.899, 0),
        ],
    ),
    # aventieshca
    (
        "76442104260190605508722601906021045508060060052F2F0B6E660100426EA60082016EA600C2016E9E0082026E7E00C2026E5B0082036E4200C2036E770182046E5B01C2046E4C0182056E4701C2056E3E0182066E3B01C2066E3B0182076E3B01C2076E3B0182086E1301C2086E9C0002FD170000",
        [
            ("hca_units", "HCA", 166, 0),
            ("hca_units", "HCA", 166, 0),
            ("hca_units", "HCA", 166, 0),
            ("hca_units", "HCA", 158, 3),
        ],
    ),
    # aventieswm
    (
        "76442104720007612507727200076121042507B50060052F2F0413281E0700431404B60083011440B300C30114A5AF00830214CBAC00C3021463A8008303149EA500C3031433A200830414C79F00C304148F9C00830514989900C30514CF9700830614269400C30614069100830714C88B0002FD171111",
        [
            ("volume", "m3", 466.472, 0),
            ("volume", "m3", 465.96, 1),
            ("volume", "m3", 458.88, 2),
            ("volume", "m3", 449.65, 3),
        ],
    ),
    # cma12w
    (
        "2744961566666666201B7AF90000202F2F02651E094265180902FD1B30030DFD0F05302E302E340F",
        [("external_temperature", "degC", 23.34, 0), ("external_temperature", "degC", 23.28, 1)],
    ),
    # ei6500
    (
        "58442515747209010C1A7A8B0000000BFD0F070101046D2A06D82502FD17000082206CD825426CD0238440FF2C000F11008250FD61000082506C01018260FD6100008360FD3100000082606C01018270FD61000082706C0101",
        [
            ("date", "", "2000-01-01", 0),
            ("datetime", "", "2022-05-24T06:42", 0),
            ("tariff_duration", "min", 0, 0),
            ("date", "", "2000-01-01", 0),
        ],
    ),
    # elster
    (
        "3644A511640010253837722550100593158103E70020052F2F0374E602000C137034220302FD74EE0F2F2F2F2F2F2F2F2F2F2F2F2F2F2F",
        [("actuality_duration", "s", 742, 0), ("volume", "m3", 3223.47, 0)],
    ),
    # elvsense
    (
        "1844961557890080501B7AEA00012002656F0802FD46610E0F",
        [("voltage", "V", 3.681, 0), ("external_temperature", "degC", 21.59, 0)],
    ),
    # emerlin868
    (
        "2E4492159293949511377ABE0020252F2F04135515000004FD971D80800000441300000000426C000002FDFD02B300",
        [("volume", "m3", 5.461, 0), ("volume", "m3", 0.0, 1)],
    ),
    # engelmann-faw
    (
        "8F44C5145502004301077260402520C51400076B0000002F2F426CBF2C441322E9000001FD17008401133C340100C40113AE2D010084021303290100C402137E21010084031313180100C403138A0E010084041337060100C40413B2FC00008405139AF30000C4051322E90000840613C1DF0000C40613CDD5000084071365CE0000C407136DC500008408138DBF0000",
        [
            ("date", "", "2021-12-31", 1),
            ("volume", "m3", 59.682, 1),
            ("volume", "m3", 78.908, 2),
            ("volume", "m3", 77.23, 3),
        ],
    ),
    # eurisii
    (
        "7644C5250188018855087201880188C5255508010000002F2F0B6E332211426E110182016E1102C2016E110382026E1104C2026E110582036E1106C2036E110782046E1108C2046E110982056E1110C2056E111182066E1112C2066E111382076E1114C2076E111582086E1116C2086E111702FD172100",
        [
            ("hca_units", "HCA", 112233, 0),
            ("hca_units", "HCA", 273, 1),
            ("hca_units", "HCA", 273, 1),
            ("hca_units", "HCA", 529, 2),
        ],
    ),
    # gwfgas
    (
        "3644E61E32616600020E7250521123E61E3C031B0020652F2F03745E00000413FE8D0100441300000000426C000002FD74B10F0F0100A8",
        [("actuality_duration", "s", 94, 0), ("volume", "m3", 0.0, 1), ("volume", "m3", 101.886, 0)],
    ),
    # gwfwater
    (
        "3144E61E31102220010E8C04F47ABE0420452F2F037410000004133E0000004413FFFFFFFF426CFFFF0F0120012F2F2F2F2F",
        [("actuality_duration", "s", 16, 0), ("volume", "m3", 0.062, 0)],
    ),
    # hcae2
    (
        "2D46C5141731425431087A0A0B00002F2F046D24344535036E000000426C5E34436E000000317F1A346D00335B34",
        [
            ("hca_units", "HCA", 0, 0),
            ("hca_units", "HCA", 0, 0),
            ("hca_units", "HCA", 0, 0),
            ("date", "", "2026-04-30", 1),
        ],
    ),
    # hydrocalm3
    (
        "8E44B409747372710B0D7A798080052F2F0C0E59600100046D1D36B9290C13679947000C0E000000000C13590000000C13000000000C13000000000A5A18020A5E11020F823D06003D06003D06003D0600140600620500480400E402001601000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002F2F",
        [
            ("energy", "J", 16059000000, 0),
            ("energy", "J", 0, 0),
            ("datetime", "", "2021-09-25T22:29", 0),
            ("volume", "m3", 479.967, 0),
        ],
    ),
    # hydrocalm4
    (
        "2C44B409381317051A0D8C00497A76000000046D25AA153A0C03000000000C13000000000F6400000000000000",
        [("datetime", "", "2024-10-21T10:37", 0), ("energy", "Wh", 0, 0), ("volume", "m3", 0.0, 0)],
    ),
    # hydrodigit
    (
        "4E44B4098686868613077AF00040052F2F0C1366380000046D27287E2A0F150E00000000C10000D10000E60000FD00000C01002F0100410100540100680100890000A00000B30000002F2F2F2F2F2F",
        [("datetime", "", "2019-10-30T08:39", 0), ("volume", "m3", 3.866, 0)],
    ),
    # hydrus
    (
        "4E44A5116464646470077AED0040052F2F01FD08300C13741100007C1300000000FC101300000000FC201300000000726C00000B3B00000002FD748713025A6800C4016D3B177F2ACC011300020000",
        [
            ("volume", "m3", 1.174, 0),
            ("volume_flow", "m3/h", 0.0, 0),
            ("flow_temperature", "degC", 10.4, 0),
            ("datetime", "", "2019-10-31T23:59", 3),
        ],
    ),
    # multical603
    (
        "42442D2C3636363635048D20E18025B62087D0780406A500000004FF072B01000004FF089C000000041421020000043B120000000259D014025D000904FF2200000000",
        [
            ("energy", "Wh", 165000, 0),
            ("volume", "m3", 5.45, 0),
            ("volume_flow", "m3/h", 0.018, 0),
            ("flow_temperature", "degC", 53.28, 0),
        ],
    ),
    # multical403
    (
        "88442D2C02017878340A8D208D529C132037FC78040E2D0A000004FF07F8FF000004FF08401801000413C1900500844014000000008480401400000000043BED0000000259BC06025DCD07142DE7FFFFFF84100E0000000084200E0000000004FF2200000000026C9228440E5F0300004413960D0200C4401400000000C480401400000000426C8128",
        [
            ("power", "W", -2500, 0),
            ("date", "", "2020-08-18", 0),
            ("flow_temperature", "degC", 17.24, 0),
            ("return_temperature", "degC", 19.97, 0),
        ],
    ),
    # multical602
    (
        "7A442D2C012815781C048D206450E7632234467802F9FF1511130406690B010004EEFF07C1BC020004EEFF0890D401000414A925040084401400000000848040140000000002FD170000026CB929426CBF284406100A01004414D81A0400C4401400000000C480401400000000043B3900000002592A17025D2912",
        [
            ("date", "", "2021-09-25", 0),
            ("flow_temperature", "degC", 59.3, 0),
            ("return_temperature", "degC", 46.49, 0),
            ("date", "", "2021-08-31", 1),
        ],
    ),
    # multical803
    (
        "88442D2C8180808039048D208640513220EA7978040FA000000004FF070200000004FF08090000000414FF000000844014000000008480401400000000043B0000000002590000025D0000142D0000000084100F0000000084200F0000000004FF2260000100026C892B440F00000000441400000000C4401400000000C480401400000000426C812B",
        [
            ("power", "W", 0, 0),
            ("date", "", "2020-11-09", 0),
            ("flow_temperature", "degC", 0.0, 0),
            ("flow_temperature", "degC", 0.0, 0),
        ],
    ),
    # kamheat
    (
        "5E442D2C78787878400C7A6E0050252F2F04056C2B000004138A0B070004FF07C657020004FF08FD36020002594B09025DFA08023B000002FF220000026CF42144052F000000441302AD0000426CE1212F2F2F2F2F2F2F2F2F2F2F2F2F2F2F",
        [
            ("energy", "Wh", 1111600, 0),
            ("volume", "m3", 461.706, 0),
            ("volume_flow", "m3/h", 0.0, 0),
            ("flow_temperature", "degC", 23.79, 0),
        ],
    ),
    # kampress
    (
        "32442D2C1703007701188D280080E39322DB8F7822696600126967000269660005FF091954A33A05FF0A99BD823A02FD170800",
        [("pressure", "bar", 1.02, 0), ("pressure", "bar", 1.03, 0), ("pressure", "bar", 1.02, 0)],
    ),
    # multical21
    (
        "2A442D2C998734761B168D2091D37CAC21576C7802FF207100041308190000441308190000615B7F616713",
        [
            ("external_temperature", "degC", 19, 1),
            ("flow_temperature", "degC", 127, 1),
            ("volume", "m3", 6.408, 0),
            ("volume", "m3", 6.408, 0),
        ],
    ),
]


@pytest.mark.parametrize(("telegram", "expected"), CORPUS, ids=[c[0][:24] for c in CORPUS])
def test_corpus_telegrams(telegram: str, expected: list[tuple[str, str, object, int]]) -> None:
    apl = locate_apl(bytes.fromhex(telegram))
    assert apl is not None
    result = decode_records(apl)
    assert result.complete, result.errors
    found = {(r.quantity, r.unit, r.value, r.storage) for r in result.records}
    for item in expected:
        assert item in found


# --- properties ------------------------------------------------------------------------------

VIBS: list[tuple[bytes, str, str, int, tuple[str, ...]]] = [
    (b"\x03", "energy", "Wh", 0, ()),
    (b"\x06", "energy", "Wh", 3, ()),
    (b"\x0e", "energy", "J", 6, ()),
    (b"\x13", "volume", "m3", -3, ()),
    (b"\x14", "volume", "m3", -2, ()),
    (b"\x1b", "mass", "kg", 0, ()),
    (b"\x22", "on_time", "h", 0, ()),
    (b"\x2b", "power", "W", 0, ()),
    (b"\x3b", "volume_flow", "m3/h", -3, ()),
    (b"\x59", "flow_temperature", "degC", -2, ()),
    (b"\x5e", "return_temperature", "degC", -1, ()),
    (b"\x61", "temperature_difference", "K", -2, ()),
    (b"\x6a", "pressure", "bar", -1, ()),
    (b"\x6e", "hca_units", "HCA", 0, ()),
    (b"\xfb\x01", "energy", "Wh", 6, ()),
    (b"\xfb\x1a", "relative_humidity", "%RH", -1, ()),
    (b"\xfd\x3a", "dimensionless", "", 0, ()),
    (b"\xfd\x48", "voltage", "V", -1, ()),
    (b"\xfd\x59", "current", "A", -3, ()),
    (b"\x93\x22", "volume", "m3/h", -3, ("per_hour",)),
    (b"\x93\x3c", "volume", "m3", -3, ("backward_flow",)),
    (b"\x93\x74", "volume", "m3", -5, ()),
    (b"\x93\x7d", "volume", "m3", 0, ()),
    (b"\x86\xfc\x02", "energy", "Wh", 3, ("at_phase_l2",)),
]

CODINGS = sorted([*INT_WIDTH, *BCD_DIGITS, REAL32])


@st.composite
def specs(draw: st.DrawFn) -> tuple[Spec, tuple[bytes, str, str, int, tuple[str, ...]]]:
    coding = draw(st.sampled_from(CODINGS))
    vib = draw(st.sampled_from(VIBS))
    if coding in INT_WIDTH:
        bits = 8 * INT_WIDTH[coding]
        value: int | float = draw(
            st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1).filter(lambda v: v != -1)
        )
    elif coding in BCD_DIGITS:
        digits = BCD_DIGITS[coding]
        value = draw(st.integers(-(10 ** (digits - 1) - 1), 10**digits - 1))
    else:
        value = struct.unpack("<f", struct.pack("<f", draw(st.floats(-(2.0**100), 2.0**100, width=32))))[0]
    spec = Spec(
        coding=coding,
        vib=vib[0],
        value=value,
        storage=draw(st.integers(0, (1 << 41) - 1)),
        tariff=draw(st.integers(0, (1 << 20) - 1)),
        subunit=draw(st.integers(0, (1 << 10) - 1)),
        function=draw(st.integers(0, 3)),
    )
    return spec, vib


def expected_value(raw: int | float, exponent: int) -> int | float:
    if exponent >= 0:
        return raw * 10**exponent
    return raw / 10**-exponent


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_encoder_decoder_round_trip(item: tuple[Spec, tuple[bytes, str, str, int, tuple[str, ...]]]) -> None:
    spec, (vib, quantity, unit, exponent, modifiers) = item
    (r,) = recs(spec.encode().hex())
    assert (
        r.dif == encode_dib(spec.coding, spec.storage, spec.tariff, spec.subunit, spec.function).hex().upper()
    )
    assert r.vif == vib.hex().upper()
    assert (r.quantity, r.unit, r.modifiers) == (quantity, unit, modifiers)
    assert (r.storage, r.tariff, r.subunit) == (spec.storage, spec.tariff, spec.subunit)
    assert r.function == ("instantaneous", "maximum", "minimum", "during_error")[spec.function]
    assert r.raw == spec.data().hex().upper()
    assert r.valid
    want = expected_value(spec.value, exponent)
    if isinstance(spec.value, float):
        assert r.value == pytest.approx(want, rel=1e-12)
    else:
        assert r.value == want
        assert type(r.value) is (int if exponent >= 0 else float)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(specs(), min_size=1, max_size=8), st.lists(st.integers(0, 3), min_size=9, max_size=9))
def test_sequences_with_fill_round_trip(items: list[tuple[Spec, object]], fills: list[int]) -> None:
    apl = (
        b"".join(b"\x2f" * fills[i] + spec.encode() for i, (spec, _) in enumerate(items))
        + b"\x2f" * fills[-1]
    )
    result = decode_records(apl)
    assert result.complete and len(result.records) == len(items)
    headers = b"".join(spec.header() for spec, _ in items)
    assert result.signature == crc16(headers) == format_signature(result.records)
    for (spec, _), r in zip(items, result.records, strict=True):
        assert r.raw == spec.data().hex().upper()
        assert apl[r.offset : r.offset + len(spec.header())] == spec.header()


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = decode_records(data)
    assert isinstance(result, DecodedRecords)
    json.dumps(result.to_dict())
    try:
        strict = walk_records(data)
    except RecordError:
        assert not result.complete
    except MinolcoreError as exc:  # pragma: no cover - would be a bug
        pytest.fail(f"unexpected error type {type(exc).__name__}")
    else:
        assert result.complete and strict == result.records


@settings(max_examples=300)
@given(st.binary(max_size=60))
def test_arbitrary_record_bodies_after_valid_prefix(data: bytes) -> None:
    result = decode_records(bytes.fromhex("0C1427048502") + data)
    assert result.records[0].value == 28504.27


# Little-endian REAL32: +inf, -inf, NaN, NaN with every mantissa bit set.
@pytest.mark.parametrize("data", ["0000807F", "000080FF", "0000C07F", "FFFFFF7F"])
def test_a_real_that_is_no_number_is_not_set(data: str) -> None:
    (record,) = decode_records(bytes.fromhex("0513" + data)).records
    assert (record.value, record.valid) == (None, False)
