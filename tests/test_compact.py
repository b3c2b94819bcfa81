"""Tests of compact profiles and the format-signature cache (minolcore.wmbus.compact)."""

from __future__ import annotations

import json
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minolcore._reference.crc import crc16
from minolcore.errors import InputError
from minolcore.wmbus.compact import (
    FormatSignatureCache,
    UnknownSignatureError,
    full_frame_crc,
    parse_profile,
    shift_time,
)
from minolcore.wmbus.records import DataRecord, decode_records
from tests.record_encoder import Spec, date_g, datetime_f, encode_dib, encode_record, profile_body
from tests.test_records import specs

# V10 (Minomess water meter, telegram already decrypted): APL after the long TPL header.
V10_APL = "2F2F0C1359000000026CBE2B82046CA12B8C0413FFFFFFFF8D0493132CFBFE" + "FF" * 42 + "02FD1700002F2F"

# Kamstrup multical602 full frame (CI 0x78 behind ELL-II) and the compact frame (CI 0x79)
# that follows it; the APL / compact payload starts at byte 20.
MC602_FULL = (
    "7A442D2C012815781C048D206450E7632234467802F9FF1511130406690B010004EEFF07C1BC020004EEFF0890D401000414"
    "A925040084401400000000848040140000000002FD170000026CB929426CBF284406100A01004414D81A0400C44014000000"
    "00C480401400000000043B3900000002592A17025D2912"
)
MC602_COMPACT = (
    "4F442D2C012815781C048D206551E76322BE7679008430051113690B0100C1BC020090D40100A925040000000000000000"
    "000000B929BF28100A0100D81A04000000000000000000390000002A172912"
)
# Kamstrup multical403: full frame, then a compact frame with other data (the full-frame CRC
# in the compact frame is the CRC of the records rebuilt from it, 0xD77E).
MC403_FULL = (
    "88442D2C02017878340A8D208D529C132037FC78040E2D0A000004FF07F8FF000004FF08401801000413C19005008440"
    "14000000008480401400000000043BED0000000259BC06025DCD07142DE7FFFFFF84100E0000000084200E0000000004FF"
    "2200000000026C9228440E5F0300004413960D0200C4401400000000C480401400000000426C8128"
)
MC403_COMPACT = (
    "5B442D2C02017878340A8D2096809C1320EF2B7934147ED72D0A0000FAFF000043180100CE9005000000000000000000EE00"
    "0000BA06CB07E7FFFFFF00000000000000000000000092285F030000960D020000000000000000008128"
)


def apl_of(frame_hex: str) -> bytes:
    return bytes.fromhex(frame_hex)[20:]


# --- compact profiles ------------------------------------------------------------------------


def test_v10_inverse_compact_profile_monthly_all_invalid() -> None:
    records = decode_records(bytes.fromhex(V10_APL)).records
    profile = records[4]
    assert profile.profile_mode == "signed_difference"
    assert profile.spacing == "1 month"
    assert profile.elements == (None,) * 14
    assert profile.series is not None
    assert [d for d, _ in profile.series] == [
        "2021-10-01",
        "2021-09-01",
        "2021-08-01",
        "2021-07-01",
        "2021-06-01",
        "2021-05-01",
        "2021-04-01",
        "2021-03-01",
        "2021-02-01",
        "2021-01-01",
        "2020-12-01",
        "2020-11-01",
        "2020-10-01",
        "2020-09-01",
    ]
    assert all(v is None for _, v in profile.series)
    assert profile.valid is False
    target = records[3]
    assert (target.storage, target.value, target.valid) == (8, None, False)
    out = profile.to_dict()
    assert out["series"][0] == ["2021-10-01", None]
    assert out["spacing"] == "1 month"


def test_inverse_profile_increments_reconstruct_history() -> None:
    apl = (
        encode_record(0xC, b"\x13", 12345, storage=1)  # base value 12.345 m3, 8-digit BCD
        + encode_dib(0x2, storage=1)
        + b"\x6c"
        + date_g(2024, 3, 31)
        + encode_dib(0xD, storage=1)
        + b"\x93\x13"
        + profile_body(mode=1, unit=3, coding=0x2, spacing=0xFE, elements=[100, 200, None, 50])
    )
    records = decode_records(apl).records
    profile = records[2]
    assert profile.profile_mode == "increment"
    assert profile.elements == (0.1, 0.2, None, 0.05)
    assert profile.series == (
        ("2024-02-29", 12.245),
        ("2024-01-31", 12.045),
        ("2023-12-31", None),
        ("2023-11-30", None),
    )
    assert profile.valid


@pytest.mark.parametrize("base", ["0000807f", "0000c07f", "000080ff"])  # REAL32 +inf, NaN, -inf
def test_a_profile_on_a_base_value_that_is_not_finite_has_no_values(base: str) -> None:
    apl = bytes.fromhex("0513" + base + "0d931f0442010100")
    records = decode_records(apl).records
    profile = records[1]
    assert profile.elements == (0.001,)
    assert profile.series is not None and [value for _, value in profile.series] == [None]


def test_forward_compact_profile_signed_differences_quarter_hours() -> None:
    apl = (
        encode_record(0x4, b"\x03", 1000)  # 1000 Wh at the base time
        + b"\x04\x6d"
        + datetime_f(2024, 3, 1, 23, 30)
        + b"\x0d\x83\x1f"
        + profile_body(mode=3, unit=1, coding=0x1, spacing=15, elements=[5, -2, 3])
    )
    profile = decode_records(apl).records[2]
    assert profile.modifiers == ("compact_profile",)
    assert profile.spacing == "15 min"
    assert profile.series == (
        ("2024-03-01T23:45", 1005),
        ("2024-03-02T00:00", 1003),
        ("2024-03-02T00:15", 1006),
    )


def test_profile_absolute_and_decrement_modes_and_missing_base() -> None:
    absolute = (
        b"\x04\x6d"
        + datetime_f(2024, 3, 1, 12, 0)
        + b"\x0d\x93\x1e"
        + profile_body(mode=0, unit=2, coding=0x2, spacing=1, elements=[7, 8])
    )
    profile = decode_records(absolute).records[1]
    assert profile.modifiers == ("compact_profile_with_registers",)
    assert profile.series == (("2024-03-01T13:00", 0.007), ("2024-03-01T14:00", 0.008))
    decrement = (
        encode_record(0x2, b"\x13", 500)
        + b"\x02\x6c"
        + date_g(2024, 3, 10)
        + b"\x0d\x93\x13"
        + profile_body(mode=2, unit=3, coding=0x1, spacing=1, elements=[10, 20])
    )
    series = decode_records(decrement).records[2].series
    assert series == (("2024-03-09", 0.51), ("2024-03-08", 0.53))
    no_base = b"\x0d\x93\x13" + profile_body(mode=1, unit=3, coding=0x1, spacing=1, elements=[1])
    lonely = decode_records(no_base).records[0]
    assert lonely.series == ((None, None),)
    assert lonely.elements == (0.001,)


def test_profile_parsing_edges() -> None:
    assert parse_profile(b"") is None
    assert parse_profile(b"\x0d\x01") is None  # LVAR elements have no fixed length
    empty = parse_profile(b"\x41\x01")
    assert empty is not None and empty.elements == ()
    odd = parse_profile(b"\xf2\xff\x01\x00\x02")
    assert odd is not None and odd.elements == (1,) and odd.spacing == ""
    broken = decode_records(b"\x0d\x93\x13\x01\x0f").records[0]
    assert (broken.valid, broken.series) == (False, ())
    assert shift_time("2024-01-31", 1, 0, 1) == "2024-02-29"
    assert shift_time("2024-01-31T10:00:00", -1, 30, 0) == "2024-01-31T09:59:30"
    assert shift_time("not a date", 1, 60, 0) is None


# --- format signatures and the cache ---------------------------------------------------------


def test_multical602_full_then_compact_frame() -> None:
    full = decode_records(apl_of(MC602_FULL))
    assert full.complete
    assert full.signature == 0x8400
    assert full_frame_crc(full) == 0x0530
    cache = FormatSignatureCache()
    assert cache.learn(full) == 0x8400
    assert len(cache) == 1 and 0x8400 in cache
    compact = cache.decode_compact_frame(apl_of(MC602_COMPACT))
    assert compact.status == "ok", compact.errors
    assert compact.signature == 0x8400
    assert [(r.dif, r.vif, r.value) for r in compact.records] == [
        (r.dif, r.vif, r.value) for r in full.records
    ]
    energy = next(r for r in compact.records if r.vif == "06")
    assert (energy.quantity, energy.unit, energy.value) == ("energy", "Wh", 68457000)
    assert compact.records[0].offset == 0
    assert compact.records[1].offset == 2


def test_multical403_compact_frame_with_new_data_checks_full_frame_crc() -> None:
    cache = FormatSignatureCache()
    assert cache.learn(decode_records(apl_of(MC403_FULL))) == 0x1434
    compact = cache.decode_compact_frame(apl_of(MC403_COMPACT))
    assert compact.status == "ok", compact.errors
    volume = next(r for r in compact.records if r.dif == "04" and r.vif == "13")
    assert volume.value == 364.75
    power = next(r for r in compact.records if r.dif == "14")
    assert (power.quantity, power.function, power.value) == ("power", "maximum", -2500)
    tampered = bytearray(apl_of(MC403_COMPACT))
    tampered[-1] ^= 0x01
    bad = cache.decode_compact_frame(bytes(tampered))
    assert bad.status == "crc_mismatch"
    assert "full-frame CRC" in bad.errors[-1]
    assert bad.records  # kept, but flagged


def test_unknown_signature_and_malformed_compact_data() -> None:
    cache = FormatSignatureCache()
    unknown = cache.decode_compact(0x8400, b"\x00\x01")
    assert unknown.status == "unknown_signature"
    assert unknown.records == () and not unknown.complete
    assert "0x8400" in unknown.errors[0]
    with pytest.raises(UnknownSignatureError) as info:
        cache.layout(0x8400)
    assert info.value.signature == 0x8400
    cache.learn(decode_records(apl_of(MC602_FULL)))
    short = cache.decode_compact(0x8400, apl_of(MC602_COMPACT)[4:10])
    assert short.status == "malformed" and short.records == ()
    extra = cache.decode_compact(0x8400, apl_of(MC602_COMPACT)[4:] + b"\x01")
    assert extra.status == "malformed"
    padded = cache.decode_compact(0x8400, apl_of(MC602_COMPACT)[4:] + b"\x2f\x2f")
    assert padded.status == "ok"
    assert cache.decode_compact_frame(b"\x00").status == "malformed"
    with pytest.raises(InputError):
        cache.decode_compact(0x8400, "00")  # type: ignore[arg-type]
    assert cache.learn(decode_records(b"\x0c\x14\x01")) is None  # incomplete frames teach nothing


def test_save_and_load(tmp_path: pathlib.Path) -> None:
    cache = FormatSignatureCache()
    cache.learn(decode_records(apl_of(MC602_FULL)))
    cache.learn(decode_records(apl_of(MC403_FULL)))
    path = tmp_path / "signatures.json"
    cache.save(path)
    loaded = FormatSignatureCache.load(path)
    assert sorted(loaded) == sorted(cache) == [0x1434, 0x8400]
    assert loaded.layout(0x8400) == cache.layout(0x8400)
    assert loaded.layout(0x8400)[0] == "02F9FF15"
    document = json.loads(path.read_text())
    document["layouts"]["8400"][0] = "02F9FF16"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match="does not match its signature"):
        FormatSignatureCache.load(path)
    path.write_text("{not json")
    with pytest.raises(InputError):
        FormatSignatureCache.load(path)
    with pytest.raises(InputError):
        FormatSignatureCache.load(tmp_path / "missing.json")
    with pytest.raises(InputError):
        FormatSignatureCache.from_json({"format": "other"})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(specs(), min_size=1, max_size=10), st.binary(max_size=12))
def test_learn_then_compact_round_trip(items: list[tuple[Spec, object]], mfr: bytes) -> None:
    specs_ = [spec for spec, _ in items]
    full_apl = b"\x2f\x2f" + b"".join(s.encode() for s in specs_) + (b"\x0f" + mfr if mfr else b"")
    full = decode_records(full_apl)
    assert full.complete
    cache = FormatSignatureCache()
    signature = cache.learn(full)
    assert (
        signature == full.signature == crc16(b"".join(s.header() for s in specs_) + (b"\x0f" if mfr else b""))
    )
    data = b"".join(s.data() for s in specs_) + mfr
    payload = bytes([signature & 0xFF, signature >> 8]) + full_frame_crc(full).to_bytes(2, "little") + data
    compact = cache.decode_compact_frame(payload)
    assert compact.status == "ok", compact.errors
    assert [_strip(r) for r in compact.records] == [_strip(r) for r in full.records]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(specs(), min_size=1, max_size=5), min_size=1, max_size=5))
def test_save_load_round_trip(tmp_path: pathlib.Path, frames: list[list[tuple[Spec, object]]]) -> None:
    cache = FormatSignatureCache()
    for frame in frames:
        cache.learn(decode_records(b"".join(spec.encode() for spec, _ in frame)))
    path = tmp_path / "cache.json"
    cache.save(path)
    loaded = FormatSignatureCache.load(path)
    assert len(loaded) == len(cache)
    for signature in cache:
        assert loaded.layout(signature) == cache.layout(signature)


def _strip(record: DataRecord) -> DataRecord:
    return record.evolve(offset=0)
