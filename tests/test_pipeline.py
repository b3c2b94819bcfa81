"""The pipeline end to end on hand-built traffic: every reading stored once, under the
right unit; every fault rejected for its reason; idempotent and order-independent."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore.keys import KeyStore
from minolcore.pipeline import Pipeline, StoredUplink
from minolcore.reception import Reception
from minolcore.site import SiteRegistry, WMBusAddress
from minolcore.store import SQLiteStore
from minolcore.store._reader import StoreReader
from minolcore.wmbus.frame import a_format_length
from minolcore.wmbus.headers import TPLHeader, TPLKind
from minolcore.wmbus.security import seal_frame
from tests.record_encoder import date_g, datetime_f, encode_bcd

KEY_A = bytes(range(16))
KEY_B = bytes(range(16, 32))
T0 = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC).timestamp()


def hca_frame(meter_id: str, key: bytes, *, units: int, day: int, acc: int, shape: str = "A") -> bytes:
    """A mode-5 HCA telegram: current units with a type F time, due-date units and date."""
    apl = (
        b"\x04\x6d" + datetime_f(2026, 1, day, 12, 0)
        + b"\x0b\x6e" + encode_bcd(units, 6)
        + b"\x42\x6c" + date_g(2025, 12, 31)
        + b"\x4b\x6e" + encode_bcd(1000, 6)
    )  # fmt: skip
    tpl = TPLHeader(ci=0x7A, kind=TPLKind.SHORT, acc=acc, sts=0, cf=0x0500)
    return seal_frame(
        key,
        manufacturer="QDS",
        id=meter_id,
        version=0x55,
        device_type=0x08,
        tpl=tpl,
        payload=apl,
        shape=shape,
    )  # type: ignore[arg-type]


def make_site() -> tuple[SiteRegistry, KeyStore]:
    site = SiteRegistry(timezone="UTC")
    for gateway in ("GW-1", "GW-2", "GW-3"):
        site.add_gateway(gateway)
    site.add_building("B1", "Test street 1")
    site.add_unit("B1-01", "B1", "left", 60.0)
    site.add_unit("B1-02", "B1", "right", 40.0)
    site.install(
        WMBusAddress.of("QDS", "10000001", 0x55, 8),
        dt.date(2025, 1, 1),
        kind="heat_cost_allocator",
        unit="B1-01",
    )
    site.install(
        WMBusAddress.of("QDS", "10000002"), dt.date(2025, 1, 1), kind="heat_cost_allocator", unit="B1-02"
    )
    keys = KeyStore()
    keys.add_oms_key("QDS", "10000001", KEY_A)
    keys.add_oms_key("QDS", "10000002", KEY_B)
    return site, keys


def traffic() -> tuple[list[Reception], dict[str, int]]:
    """Three days of two HCAs heard by up to three gateways, with every kind of fault."""
    receptions = []
    for day in (10, 11, 12):
        for meter, key, gateways in (
            ("10000001", KEY_A, ("GW-1", "GW-2", "GW-3")),
            ("10000002", KEY_B, ("GW-2",)),
        ):
            frame = hca_frame(meter, key, units=100 * day, day=day, acc=day)
            canonical = hca_frame(meter, key, units=100 * day, day=day, acc=day, shape="none")
            at = T0 + day * 86_400
            for offset, gateway in enumerate(gateways):
                payload = frame if offset % 2 == 0 else canonical  # gateways deliver different shapes
                receptions.append(
                    Reception(gateway_id=gateway, received_at=at + offset * 0.3, payload=payload)
                )
    corrupted = bytearray(hca_frame("10000001", KEY_A, units=1, day=13, acc=13))
    corrupted[20] ^= 0x04
    receptions.append(Reception(gateway_id="GW-1", received_at=T0 + 13 * 86_400, payload=bytes(corrupted)))
    stranger = hca_frame("99999999", KEY_A, units=5, day=13, acc=1)
    receptions.append(Reception(gateway_id="GW-1", received_at=T0 + 13 * 86_400, payload=stranger))
    foreign = hca_frame("10000001", KEY_A, units=1300, day=13, acc=13)
    receptions.append(Reception(gateway_id="GW-9", received_at=T0 + 13 * 86_400, payload=foreign))
    wrong_key = hca_frame("10000002", KEY_A, units=1300, day=13, acc=13)
    receptions.append(Reception(gateway_id="GW-2", received_at=T0 + 13 * 86_400, payload=wrong_key))
    expected = {"bad_crc": 1, "unknown_device": 1, "unknown_gateway": 1}
    return receptions, expected


def run(receptions: list[Reception], batch: int = 1000) -> tuple[SQLiteStore, Pipeline, list[StoredUplink]]:
    site, keys = make_site()
    store = SQLiteStore(":memory:")
    seen: list[StoredUplink] = []
    pipeline = Pipeline(site=site, keys=keys, store=store, gateways=site.gateways, on_uplink=seen.append)
    pipeline.run(receptions, batch_size=batch)
    return store, pipeline, seen


def test_readings_stored_once_under_the_right_unit() -> None:
    receptions, expected = traffic()
    store, pipeline, seen = run(receptions)
    stats = pipeline.stats()
    assert stats.received == len(receptions) == 16
    assert stats.uplinks == 7  # 6 genuine transmissions and the one with the wrong key
    assert stats.duplicates_merged == 6
    assert stats.rejected == expected
    assert stats.not_decoded == {"wrong_key": 1}
    assert stats.devices_by_kind == {"heat_cost_allocator": 6}
    current = StoreReader(store).readings(quantity="hca_units", since="2026-01-01")
    assert [(r.unit_id, r.reading_time, r.value) for r in current] == [
        ("B1-01", f"2026-01-{day}T12:00", 100.0 * day) for day in (10, 11, 12)
    ] + [("B1-02", f"2026-01-{day}T12:00", 100.0 * day) for day in (10, 11, 12)]
    due = StoreReader(store).readings(quantity="hca_units", until="2025-12-31T23:59")
    assert [(r.unit_id, r.reading_time, r.value, r.storage) for r in due] == [
        ("B1-01", "2025-12-31T00:00", 1000.0, 1),
        ("B1-02", "2025-12-31T00:00", 1000.0, 1),
    ]
    counts = store.counts()
    assert counts["receptions"] == 13 and counts["uplinks"] == 7 and counts["rejected"] == 3
    assert sorted(store.rejected_by_reason().items()) == sorted(expected.items())
    assert sum(1 for s in seen if s.model is not None) == 6


def test_feeding_twice_changes_nothing() -> None:
    receptions, _ = traffic()
    store, _, _ = run(receptions)
    once = StoreReader(store).dump()
    site, keys = make_site()
    again = Pipeline(site=site, keys=keys, store=store, gateways=site.gateways)
    again.run(receptions)
    assert StoreReader(store).dump() == once


@settings(max_examples=15)
@given(st.randoms(use_true_random=False), st.integers(1, 20))
def test_order_and_batching_do_not_change_the_store(rng: random.Random, batch: int) -> None:
    receptions, _ = traffic()
    reference, _, _ = run(receptions)
    shuffled = list(receptions)
    rng.shuffle(shuffled)
    store, _, _ = run(shuffled, batch=batch)
    assert StoreReader(store).dump() == StoreReader(reference).dump()


def test_the_site_declares_how_gateways_hand_over_frames() -> None:
    site, keys = make_site()
    site.add_gateway("GW-1", crc="present")
    site.add_gateway("GW-3", crc="absent")
    pipeline = Pipeline(site=site, keys=keys, store=None, gateways=site.gateways)
    assert pipeline.network.gateway_crc == {"GW-1": "present", "GW-2": "auto", "GW-3": "absent"}
    # Declarations of gateways the pipeline does not admit are left out, not an error.
    narrow = Pipeline(site=site, keys=keys, store=None, gateways=["GW-1", "GW-2"])
    assert narrow.network.gateway_crc == {"GW-1": "present", "GW-2": "auto"}


def test_a_late_copy_is_read_in_its_gateways_crc_mode() -> None:
    """A CRC-free copy with bytes beyond L that give it the length of a format-A frame: read
    as its gateway is declared ("absent"), it joins its uplink, as the network stage read it."""
    site, keys = make_site()
    site.add_gateway("GW-1", crc="present")
    site.add_gateway("GW-3", crc="absent")
    store = SQLiteStore(":memory:")
    pipeline = Pipeline(site=site, keys=keys, store=store, gateways=site.gateways)
    frame = hca_frame("10000001", KEY_A, units=500, day=10, acc=10)
    canonical = hca_frame("10000001", KEY_A, units=500, day=10, acc=10, shape="none")
    padded = canonical + bytes(a_format_length(canonical[0]) - len(canonical))
    at = T0 + 10 * 86_400
    pipeline.feed([Reception(gateway_id="GW-1", received_at=at, payload=frame)])
    pipeline.feed([Reception(gateway_id="GW-3", received_at=at + 0.4, payload=padded)])
    stats = pipeline.stats()
    assert (stats.uplinks, stats.late_receptions, stats.rejected) == (1, 1, {})
    assert store.counts()["receptions"] == 2


def test_a_reception_with_an_impossible_time_is_a_rejected_row_and_the_batch_goes_on() -> None:
    receptions, _ = traffic()
    bad = Reception(gateway_id="GW-1", received_at=float("nan"), payload=receptions[0].payload)
    late_ms = Reception(gateway_id="GW-1", received_at=receptions[0].received_at * 1000, payload=b"\x01")
    for models in (True, False):
        site, keys = make_site()
        store = SQLiteStore(":memory:")
        pipeline = Pipeline(site=site, keys=keys, store=store, gateways=site.gateways)
        pipeline.feed([bad, *receptions, late_ms], models=models)
        assert pipeline.stats().rejected["bad_time"] == 2
        rows = [row for row in store.rejected() if row.reason == "bad_time"]
        assert sorted(row.detail for row in rows) == sorted(
            [f"received_at {float('nan')!r} s", f"received_at {late_ms.received_at!r} s"]
        )
        assert all(row.received_at_ms == 0 for row in rows)
        assert store.counts()["readings"] > 0


def test_a_site_changed_between_batches_assigns_the_next_ones_anew() -> None:
    """The columnar path remembers each meter's span of one assignment; a change of the
    site (a move to the other flat) must end what it remembered."""
    site, keys = make_site()
    store = SQLiteStore(":memory:")
    pipeline = Pipeline(site=site, keys=keys, store=store, gateways=site.gateways)

    def feed(day: int) -> None:
        frame = hca_frame("10000001", KEY_A, units=100 * day, day=day, acc=day)
        pipeline.feed(
            [Reception(gateway_id="GW-1", received_at=T0 + day * 86_400, payload=frame)], models=False
        )

    feed(10)
    feed(11)  # in the span remembered for day 10
    site.remove(WMBusAddress.of("QDS", "10000001", 0x55, 8), dt.date(2026, 1, 21))
    site.install(
        WMBusAddress.of("QDS", "10000001", 0x55, 8),
        dt.date(2026, 1, 22),
        kind="heat_cost_allocator",
        unit="B1-02",
    )
    feed(12)  # 2026-01-27: after the move
    current = StoreReader(store).readings(quantity="hca_units", since="2026-01-01")
    assert [(r.reading_time[:10], r.unit_id) for r in current] == [
        ("2026-01-10", "B1-01"),
        ("2026-01-11", "B1-01"),
        ("2026-01-12", "B1-02"),
    ]


def time_of_day_frame(day: int) -> bytes:
    """A mode-5 HCA telegram whose date-time record holds a time of day alone (type J, 3
    bytes: 12:34:56), then the current units and a due-date value with its date."""
    apl = (
        b"\x03\x6d" + bytes([56, 34, 12])
        + b"\x0b\x6e" + encode_bcd(100 * day, 6)
        + b"\x42\x6c" + date_g(2025, 12, 31)
        + b"\x4b\x6e" + encode_bcd(1000, 6)
    )  # fmt: skip
    tpl = TPLHeader(ci=0x7A, kind=TPLKind.SHORT, acc=day, sts=0, cf=0x0500)
    return seal_frame(
        KEY_A, manufacturer="QDS", id="10000001", version=0x55, device_type=0x08, tpl=tpl, payload=apl
    )  # type: ignore[arg-type]


def test_a_time_of_day_alone_is_no_reading_time_on_either_path() -> None:
    """Such a record names no day: the current values take the reception's minute, and the
    batch is stored (a text like "12:34:56T00:00" would make the store refuse it)."""
    digests = []
    for models in (True, False):
        site, keys = make_site()
        store = SQLiteStore(":memory:")
        pipeline = Pipeline(site=site, keys=keys, store=store, gateways=site.gateways)
        for day in (10, 11):
            at = T0 + day * 86_400
            pipeline.feed(
                [Reception(gateway_id="GW-1", received_at=at, payload=time_of_day_frame(day))], models=models
            )
        rows = StoreReader(store).readings(quantity="hca_units")
        assert [(r.reading_time, r.value) for r in rows] == [
            ("2025-12-31T00:00", 1000.0),
            ("2026-01-25T12:00", 1000.0),
            ("2026-01-26T12:00", 1100.0),
        ]
        digests.append(store.digest())
    assert digests[0] == digests[1]
