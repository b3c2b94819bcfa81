"""The network server: admission, multi-gateway dedupe, replay protection, snapshot/restore.

Traffic is built with the real frame builders (wireless M-Bus format A/B/CRC-free, LoRaWAN
data frames with real MICs). Runs on both backends (MINOLCORE_PUREPYTHON=1 for the reference).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore._reference.dedupe import ReferenceDedupeTable
from minolcore.dedupe import DedupeSnapshot, DedupeTable
from minolcore.errors import ConfigError, InputError
from minolcore.lorawan import Session, build_data_frame
from minolcore.network import (
    NetworkBatch,
    NetworkServer,
    NetworkState,
    Outcome,
    RejectReason,
    _times_ms,
    _to_ms,
    decode_state,
    encode_state,
    wmbus_device_key,
)
from minolcore.reception import Radio, Reception
from minolcore.wmbus import AFLHeader, TPLHeader, TPLKind, build_frame
from minolcore.wmbus.frame import CRC_MODE_NAMES, CRCMode
from minolcore.wmbus.headers import Address
from minolcore.wmbus.link import encode_id, encode_manufacturer
from minolcore.wmbus.scan import pack_frames, scan_frames

FP_KEY = bytes(range(16))
GATEWAYS = ("gw-a", "gw-b", "gw-c", "gw-d")
WMBUS_WINDOW = 10_000
LORAWAN_WINDOW = 1_000
T0 = 1_700_000_000.0  # s since the epoch

PLAIN = Address(
    manufacturer_code=encode_manufacturer("QDS"), id_value=encode_id("12345678"), version=1, device_type=7
)
BEHIND = Address(
    manufacturer_code=encode_manufacturer("ELS"), id_value=encode_id("87654321"), version=2, device_type=4
)
CONVERTER = Address(
    manufacturer_code=encode_manufacturer("TCH"), id_value=encode_id("00000042"), version=3, device_type=0x37
)
STRANGER = Address(
    manufacturer_code=encode_manufacturer("KAM"), id_value=encode_id("99999999"), version=1, device_type=7
)
NWK = [bytes([i]) * 16 for i in (1, 2)]
APP = [bytes([i]) * 16 for i in (3, 4)]
DEV_ADDRS = ("26011BDA", "26011BDB")


def sessions() -> list[Session]:
    return [Session(addr, nwk, app) for addr, nwk, app in zip(DEV_ADDRS, NWK, APP, strict=True)]


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "gateways": GATEWAYS,
        "wmbus_devices": [PLAIN, BEHIND],
        "lorawan_devices": sessions(),
        "fingerprint_key": FP_KEY,
        "wmbus_window_ms": WMBUS_WINDOW,
        "lorawan_window_ms": LORAWAN_WINDOW,
    }
    base.update(overrides)
    return base


def plain_frame(seq: int, shape: str = "A", address: Address = PLAIN) -> bytes:
    """A mode-5 telegram (no message counter) whose payload carries ``seq``."""
    tpl = TPLHeader(ci=0x7A, kind=TPLKind.SHORT, acc=seq & 0xFF, cf=0x0510)
    return build_frame(
        manufacturer=address.manufacturer_code,
        id=address.id_value,
        version=address.version,
        device_type=address.device_type,
        tpl=tpl,
        payload=seq.to_bytes(4, "little") + bytes(12),
        shape=shape,  # type: ignore[arg-type]
    )


def mode7_frame(mcr: int, shape: str = "A", payload: bytes = b"") -> bytes:
    """A mode-7 telegram of BEHIND sent through CONVERTER (long TPL header, AFL with MCR)."""
    afl = AFLHeader(afll=6, fcl=0x2800, mcl=0x05, mcr=mcr)
    tpl = TPLHeader(ci=0x72, kind=TPLKind.LONG, acc=mcr & 0xFF, cf=0x0710, cf_ext=0, address=BEHIND)
    return build_frame(
        manufacturer=CONVERTER.manufacturer_code,
        id=CONVERTER.id_value,
        version=CONVERTER.version,
        device_type=CONVERTER.device_type,
        afl=afl,
        tpl=tpl,
        payload=payload or mcr.to_bytes(4, "little") + bytes(12),
        shape=shape,  # type: ignore[arg-type]
    )


def lora_frame(device: int, fcnt: int, payload: bytes = b"\x01\x02") -> bytes:
    return build_data_frame(
        dev_addr=DEV_ADDRS[device],
        fcnt=fcnt,
        nwk_s_key=NWK[device],
        app_s_key=APP[device],
        fport=2,
        payload=payload,
    )


def wrx(payload: bytes, gateway: str = "gw-a", at: float = T0, rssi: float = -80.0) -> Reception:
    return Reception(gateway_id=gateway, received_at=at, payload=payload, radio=Radio.WMBUS, rssi=rssi)


def lrx(payload: bytes, gateway: str = "gw-a", at: float = T0, snr: float = 7.5) -> Reception:
    return Reception(
        gateway_id=gateway, received_at=at, payload=payload, radio=Radio.LORAWAN, rssi=-100.0, snr=snr
    )


# --- examples ---------------------------------------------------------------------------------


def test_copies_in_every_crc_shape_merge_into_one_uplink() -> None:
    server = NetworkServer(**config())
    copies = [
        wrx(plain_frame(1, "A"), "gw-a", T0 + 0.2, -70.0),
        wrx(plain_frame(1, "B"), "gw-b", T0, -90.0),
        wrx(plain_frame(1, "none"), "gw-c", T0 + 0.1, -60.0),
    ]
    batch = server.feed(copies)
    assert batch.rejected == () and batch.late_receptions == {}
    (uplink,) = batch.uplinks
    assert uplink.radio is Radio.WMBUS
    assert uplink.device == "QDS-12345678-01-07"
    assert uplink.address == PLAIN
    assert uplink.frame == plain_frame(1, "none")
    assert uplink.received_at == T0
    assert uplink.counter is None
    assert sorted((r.gateway_id, r.received_at, r.rssi) for r in uplink.receptions) == [
        ("gw-a", T0 + 0.2, -70.0),
        ("gw-b", T0, -90.0),
        ("gw-c", T0 + 0.1, -60.0),
    ]
    stats = server.stats()
    assert (stats.received, stats.uplinks, stats.merged, stats.late) == (3, 1, 2, 0)
    assert stats.gateways["gw-a"].received == 1 and stats.gateways["gw-d"].received == 0


def test_lorawan_copies_merge_and_decrypt() -> None:
    server = NetworkServer(**config())
    phy = lora_frame(0, 5, b"hello")
    batch = server.feed([lrx(phy, g, T0 + i * 0.05) for i, g in enumerate(GATEWAYS)])
    (uplink,) = batch.uplinks
    assert uplink.radio is Radio.LORAWAN and uplink.device == DEV_ADDRS[0]
    assert uplink.frame == phy and uplink.counter == 5
    assert uplink.lorawan is not None and uplink.lorawan.payload == b"hello" and uplink.lorawan.mic_valid
    assert len(uplink.receptions) == 4 and uplink.uplink_id % 2 == 1


def test_same_bytes_after_the_window_is_a_new_uplink_and_a_late_copy_merges() -> None:
    server = NetworkServer(**config())
    frame = plain_frame(7)
    first = server.feed([wrx(frame, "gw-a", T0)])
    (uplink,) = first.uplinks
    late = server.feed([wrx(plain_frame(7, "B"), "gw-b", T0 + 9.0)])
    assert late.uplinks == () and late.rejected == ()
    assert [(r.gateway_id, r.received_at) for r in late.late_receptions[uplink.uplink_id]] == [
        ("gw-b", T0 + 9.0)
    ]
    again = server.feed([wrx(frame, "gw-c", T0 + WMBUS_WINDOW / 1000 + 1)])
    (repeat,) = again.uplinks
    assert repeat.uplink_id != uplink.uplink_id and repeat.frame == uplink.frame
    assert server.stats().late == 1 and server.stats().uplinks == 2


def test_every_refusal_has_its_reason_and_is_counted() -> None:
    server = NetworkServer(**config())
    good = plain_frame(1)
    corrupted = bytearray(good)
    corrupted[12] ^= 0xFF  # inside the first block, so its CRC fails
    bad_mic = bytearray(lora_frame(0, 3))
    bad_mic[-1] ^= 0x01
    server.feed([wrx(mode7_frame(10), "gw-a", T0), lrx(lora_frame(1, 20), "gw-a", T0)])
    receptions = [
        wrx(good, "gw-zz", T0 + 100),
        wrx(plain_frame(1, address=STRANGER), "gw-a", T0 + 100),
        wrx(bytes(corrupted), "gw-b", T0 + 100),
        wrx(b"\x02\x44", "gw-b", T0 + 100),
        lrx(bytes(bad_mic), "gw-c", T0 + 100),
        wrx(mode7_frame(9), "gw-c", T0 + 100),
        lrx(lora_frame(1, 19), "gw-d", T0 + 100),
        lrx(build_data_frame(dev_addr="01020304", fcnt=1, nwk_s_key=NWK[0]), "gw-d", T0 + 100),
    ]
    batch = server.feed(receptions)
    assert batch.uplinks == () and batch.late_receptions == {}
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (0, RejectReason.UNKNOWN_GATEWAY),
        (1, RejectReason.UNKNOWN_DEVICE),
        (2, RejectReason.BAD_CRC),
        (3, RejectReason.MALFORMED),
        (4, RejectReason.BAD_MIC),
        (5, RejectReason.REPLAY),
        (6, RejectReason.REPLAY),
        (7, RejectReason.UNKNOWN_DEVICE),
    ]
    assert all(r.reception is receptions[r.index] for r in batch.rejected)
    stats = server.stats()
    assert stats.rejected == {
        "unknown_gateway": 1,
        "unknown_device": 2,
        "bad_crc": 1,
        "malformed": 1,
        "bad_mic": 1,
        "replay": 2,
    }
    assert stats.unknown_gateways == {"gw-zz": 1}
    assert stats.gateways["gw-b"].rejected == {"bad_crc": 1, "malformed": 1}
    assert stats.gateways["gw-c"].rejected == {"bad_mic": 1, "replay": 1}
    assert stats.gateways["gw-d"].rejected == {"replay": 1, "unknown_device": 1}
    assert stats.gateways["gw-a"].uplinks == 2 and stats.received == 10


def test_copies_of_a_refused_uplink_share_its_reason() -> None:
    server = NetworkServer(**config())
    server.feed([wrx(mode7_frame(10), "gw-a", T0)])
    replay = mode7_frame(5)
    batch = server.feed([wrx(replay, "gw-a", T0 + 60), wrx(replay, "gw-b", T0 + 60.1)])
    assert [r.reason for r in batch.rejected] == [RejectReason.REPLAY] * 2
    later = server.feed([wrx(replay, "gw-c", T0 + 61)])
    assert [r.reason for r in later.rejected] == [RejectReason.REPLAY]
    assert later.late_receptions == {}


def test_mcr_must_increase_but_a_copy_inside_the_window_merges() -> None:
    server = NetworkServer(**config())
    first = server.feed([wrx(mode7_frame(100), "gw-a", T0)])
    (uplink,) = first.uplinks
    assert uplink.device == "ELS-87654321-02-04" and uplink.counter == 100 and uplink.address == BEHIND
    merged = server.feed([wrx(mode7_frame(100, "B"), "gw-b", T0 + 5)])
    assert list(merged.late_receptions) == [uplink.uplink_id]
    other_bytes = server.feed([wrx(mode7_frame(100, payload=b"\xee" * 16), "gw-b", T0 + 5)])
    assert [r.reason for r in other_bytes.rejected] == [RejectReason.REPLAY]
    outside = server.feed([wrx(mode7_frame(100), "gw-a", T0 + 20)])
    assert [r.reason for r in outside.rejected] == [RejectReason.REPLAY]
    same_batch = server.feed([wrx(mode7_frame(103), "gw-a", T0 + 30), wrx(mode7_frame(102), "gw-b", T0 + 30)])
    assert [u.counter for u in same_batch.uplinks] == [103]
    assert [r.reason for r in same_batch.rejected] == [RejectReason.REPLAY]


def test_lorawan_fcnt_replay_and_retransmission() -> None:
    # The session's last counter seeds the 32-bit rebuild (70_000 is past one 16-bit wrap).
    seeded = [Session(DEV_ADDRS[0], NWK[0], APP[0], fcnt_up=69_990)]
    server = NetworkServer(**config(lorawan_devices=seeded))
    phy = lora_frame(0, 70_000)
    (uplink,) = server.feed([lrx(phy, "gw-a", T0)]).uplinks
    assert uplink.counter == 70_000
    retransmission = server.feed([lrx(phy, "gw-b", T0 + 0.5)])
    assert list(retransmission.late_receptions) == [uplink.uplink_id]
    for at, frame in (
        (T0 + 5, phy),
        (T0 + 5, lora_frame(0, 70_000, b"other")),
        (T0 + 6, lora_frame(0, 69_999)),
    ):
        batch = server.feed([lrx(frame, "gw-a", at)])
        assert [r.reason for r in batch.rejected] == [RejectReason.REPLAY]
    # 16-bit wrap: 70_000 - 65_536 = 4_464 rebuilds as 135_536 and fails the MIC, but is a replay.
    batch = server.feed([lrx(lora_frame(0, 4_464), "gw-a", T0 + 7)])
    assert [r.reason for r in batch.rejected] == [RejectReason.REPLAY]
    (nxt,) = server.feed([lrx(lora_frame(0, 70_001), "gw-a", T0 + 8)]).uplinks
    assert nxt.counter == 70_001


def test_radio_converter_is_not_the_registered_meter() -> None:
    only_converter = NetworkServer(**config(wmbus_devices=[CONVERTER]))
    batch = only_converter.feed([wrx(mode7_frame(1))])
    assert [r.reason for r in batch.rejected] == [RejectReason.UNKNOWN_DEVICE]


def test_columnar_entry_point_matches_feed() -> None:
    frames = [plain_frame(i % 5, "AB"[i % 2]) for i in range(20)] + [plain_frame(1, address=STRANGER)]
    gateways = [i % 3 for i in range(20)] + [-1]
    times = [int(T0 * 1000) + 10 * i for i in range(21)]
    server = NetworkServer(**config())
    buffer, offsets, lengths = pack_frames(frames)
    columns = server.feed_wmbus_columns(buffer, offsets, lengths, gateways, times)
    assert columns.outcome.tolist() == [0] * 5 + [1] * 15 + [Outcome.UNKNOWN_GATEWAY]
    assert columns.uplink_id[:5].tolist() == [0, 2, 4, 6, 8]
    assert columns.device_key[0] == wmbus_device_key(PLAIN)
    twin = NetworkServer(**config())
    batch = twin.feed(
        [
            wrx(f, GATEWAYS[g] if g >= 0 else "nowhere", t / 1000)
            for f, g, t in zip(frames, gateways, times, strict=True)
        ]
    )
    assert [u.uplink_id for u in batch.uplinks] == [0, 2, 4, 6, 8]
    assert twin.stats().gateways == server.stats().gateways
    assert "NetworkServer" in repr(server) and "5 new uplinks" in repr(columns)


def test_keys_stay_out_of_reprs_and_snapshots() -> None:
    server = NetworkServer(**config())
    server.feed([lrx(lora_frame(0, 1)), wrx(plain_frame(1))])
    encoded = encode_state(server.snapshot())
    text = repr(server) + encoded.decode()
    for key in [FP_KEY, *NWK, *APP]:
        assert key.hex() not in text.lower() and key.hex().upper() not in text
        assert key not in encoded
    assert decode_state(encoded) == server.snapshot()
    with pytest.raises(ConfigError):
        NetworkServer.restore(server.snapshot(), **config(fingerprint_key=bytes(16)))


def test_restore_keeps_dedupe_counters_and_stats() -> None:
    server = NetworkServer(**config())
    server.feed(
        [wrx(mode7_frame(50), "gw-a", T0), lrx(lora_frame(1, 9), "gw-b", T0), wrx(b"\x01", "gw-x", T0)]
    )
    state = decode_state(encode_state(server.snapshot()))
    restored = NetworkServer.restore(state, **config())
    assert restored.stats() == server.stats()
    follow = [wrx(mode7_frame(50, "B"), "gw-c", T0 + 1), lrx(lora_frame(1, 9), "gw-c", T0 + 0.3)]
    assert restored.feed(follow) == server.feed(follow)
    assert restored.snapshot() == server.snapshot()


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError):
        NetworkServer(gateways=(), fingerprint_key=b"short")
    with pytest.raises(ConfigError):
        NetworkServer(gateways=(), wmbus_window_ms=100, wmbus_retention_ms=10)
    state = NetworkServer(**config()).snapshot()
    with pytest.raises(ConfigError):
        NetworkServer.restore(msgspec.structs.replace(state, version=99), **config())


# --- properties -------------------------------------------------------------------------------

SPACING_MS = 3_000  # between transmissions: more than the LoRaWAN window plus jitter
SHAPES = ("A", "B", "none")


@st.composite
def traffic(draw: st.DrawFn) -> dict[str, Any]:
    """Transmissions (in time order) with their copies, an arrival order and batch cuts."""
    kinds = draw(
        st.lists(st.sampled_from(["plain", "mode7", "lora0", "lora1", "bad_mic", "stranger"]), max_size=14)
    )
    counters: dict[str, int] = defaultdict(int)
    items: list[tuple[float, Reception]] = []
    valid: dict[tuple[str, bytes], set[tuple[str, float]]] = {}
    for k, kind in enumerate(kinds):
        counters[kind] += draw(st.integers(1, 3))
        seq = counters[kind]
        gateways = draw(st.lists(st.sampled_from(GATEWAYS), min_size=1, max_size=4, unique=True))
        base = T0 + k * SPACING_MS / 1000
        copies: list[Reception] = []
        for g, gateway in enumerate(gateways):
            at = base + draw(st.integers(0, 400)) / 1000
            if kind in ("plain", "mode7", "stranger"):
                shape = draw(st.sampled_from(SHAPES))
                if kind == "plain":
                    frame = plain_frame(seq, shape)
                elif kind == "mode7":
                    frame = mode7_frame(seq, shape)
                else:
                    frame = plain_frame(seq, shape, STRANGER)
                copies.append(wrx(frame, gateway, at, rssi=-50.0 - g))
            else:
                phy = lora_frame(1 if kind == "lora1" else 0, seq)
                if kind == "bad_mic":
                    phy = phy[:-1] + bytes([phy[-1] ^ 0x80])
                copies.append(lrx(phy, gateway, at))
        if kind in ("plain", "mode7"):
            device = "QDS-12345678-01-07" if kind == "plain" else "ELS-87654321-02-04"
            canonical = plain_frame(seq, "none") if kind == "plain" else mode7_frame(seq, "none")
            valid[(device, canonical)] = {(c.gateway_id, c.received_at) for c in copies}
        elif kind in ("lora0", "lora1"):
            valid[(DEV_ADDRS[kind == "lora1"], copies[0].payload)] = {
                (c.gateway_id, c.received_at) for c in copies
            }
        # Arrival key: the first copy of transmission k arrives in [k, k+1), so transmissions of
        # one device keep their order; the others may trail up to three transmissions behind.
        for g, copy in enumerate(copies):
            lag = draw(st.floats(0, 0.999)) if g == 0 else draw(st.floats(0, 3))
            items.append((k + lag, copy))
    items.sort(key=lambda pair: pair[0])
    ordered = [reception for _, reception in items]
    cuts = sorted(draw(st.lists(st.integers(0, len(ordered)), max_size=4)))
    return {
        "receptions": ordered,
        "cuts": cuts,
        "valid": valid,
        "snapshot_at": draw(st.integers(0, len(cuts))),
    }


def batches(receptions: list[Reception], cuts: list[int]) -> list[list[Reception]]:
    bounds = [0, *cuts, len(receptions)]
    return [receptions[a:b] for a, b in itertools.pairwise(bounds)]


def run(
    chunks: list[list[Reception]], snapshot_at: int | None = None
) -> tuple[list[NetworkBatch], NetworkServer]:
    server = NetworkServer(**config())
    outputs = []
    for i, chunk in enumerate(chunks):
        if i == snapshot_at:
            state = msgspec.json.decode(msgspec.json.encode(server.snapshot()), type=NetworkState)
            server = NetworkServer.restore(state, **config())
        outputs.append(server.feed(chunk))
    return outputs, server


def merged_view(outputs: list[NetworkBatch]) -> dict[tuple[str, bytes], set[tuple[str, float]]]:
    by_id: dict[int, tuple[str, bytes]] = {}
    view: dict[tuple[str, bytes], set[tuple[str, float]]] = {}
    for batch in outputs:
        for uplink in batch.uplinks:
            key = (uplink.device, uplink.frame)
            assert key not in view, "one transmission, one uplink"
            by_id[uplink.uplink_id] = key
            view[key] = {(r.gateway_id, r.received_at) for r in uplink.receptions}
        for uid, infos in batch.late_receptions.items():
            view[by_id[uid]] |= {(r.gateway_id, r.received_at) for r in infos}
    return view


@settings(max_examples=60)
@given(traffic())
def test_any_order_any_split_gives_the_same_uplinks(case: dict[str, Any]) -> None:
    receptions: list[Reception] = case["receptions"]
    whole, _ = run([receptions])
    split, server = run(batches(receptions, case["cuts"]))
    assert merged_view(whole) == merged_view(split) == case["valid"]
    outputs = split
    accounted = sum(len(u.receptions) for b in outputs for u in b.uplinks)
    accounted += sum(len(v) for b in outputs for v in b.late_receptions.values())
    accounted += sum(len(b.rejected) for b in outputs)
    assert accounted == len(receptions) == server.stats().received
    for batch in outputs:
        for rejected in batch.rejected:
            assert rejected.reason in (RejectReason.BAD_MIC, RejectReason.UNKNOWN_DEVICE)
    sequences: dict[str, list[int]] = defaultdict(list)
    for batch in outputs:
        for uplink in batch.uplinks:
            if uplink.counter is not None:
                sequences[uplink.device].append(uplink.counter)
    for sequence in sequences.values():
        assert all(a < b for a, b in itertools.pairwise(sequence))


@settings(max_examples=40)
@given(traffic())
def test_snapshot_and_restore_mid_stream_changes_nothing(case: dict[str, Any]) -> None:
    chunks = batches(case["receptions"], case["cuts"])
    plain, plain_server = run(chunks)
    resumed, resumed_server = run(chunks, snapshot_at=case["snapshot_at"])
    assert plain == resumed
    assert plain_server.stats() == resumed_server.stats()
    assert plain_server.snapshot() == resumed_server.snapshot()


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(st.sampled_from(["mode7", "lora0"]), st.integers(0, 40), st.integers(0, 60_000)),
        max_size=30,
    ),
    st.lists(st.integers(0, 30), max_size=3),
)
def test_accepted_counters_strictly_increase(sends: list[tuple[str, int, int]], cuts: list[int]) -> None:
    """Counters in any order, repeated and replayed at any time: accepted ones only go up."""
    receptions = [
        wrx(mode7_frame(c), "gw-a", T0 + t / 1000)
        if kind == "mode7"
        else lrx(lora_frame(0, c), "gw-b", T0 + t / 1000)
        for kind, c, t in sends
    ]
    outputs, _ = run(batches(receptions, sorted(min(c, len(receptions)) for c in cuts)))
    sequences: dict[str, list[int]] = defaultdict(list)
    for batch in outputs:
        for uplink in batch.uplinks:
            assert uplink.counter is not None
            sequences[uplink.device].append(uplink.counter)
        assert {r.reason for r in batch.rejected} <= {RejectReason.REPLAY}
    for sequence in sequences.values():
        assert all(a < b for a, b in itertools.pairwise(sequence))


# --- the dedupe table against its reference twin ------------------------------------------------


def _pow2(value: int) -> int:
    result = 8
    while result < value:
        result <<= 1
    return result


def reference_stats(ref: ReferenceDedupeTable) -> dict[str, int]:
    return {
        "count": len(ref.entries),
        "capacity": ref.capacity,
        "max_capacity": ref.max_capacity,
        "next_id": ref.next_id,
        "watermark": ref.watermark,
        "last_sweep_watermark": ref.last_sweep_watermark,
        "overflow": ref.overflow,
        "expired": ref.expired,
        "sweeps": ref.sweeps,
        "retention_ms": ref.retention_ms,
    }


dedupe_streams = st.tuples(
    st.lists(
        st.lists(st.tuples(st.integers(0, 40), st.integers(0, 2_000)), max_size=60),
        max_size=6,
    ),
    st.integers(0, 300),  # window, ms
    st.integers(0, 400),  # retention, ms
    st.integers(1, 64),  # initial capacity
    st.integers(1, 128),  # max capacity
)


@pytest.mark.equivalence
@settings(max_examples=150)
@given(dedupe_streams)
def test_dedupe_table_matches_reference(
    stream: tuple[list[list[tuple[int, int]]], int, int, int, int],
) -> None:
    chunks, window, retention, initial, maximum = stream
    table = DedupeTable(initial_capacity=initial, max_capacity=maximum, retention_ms=retention)
    ref = ReferenceDedupeTable(_pow2(initial), _pow2(max(maximum, initial)), retention)
    fp_pool = [0, 1, 2**64 - 1, *(0x9E3779B97F4A7C15 * i % 2**64 for i in range(2, 41))]
    for chunk in chunks:
        fps = [fp_pool[i] for i, _ in chunk]
        times = [t for _, t in chunk]
        ids, new = table.process(np.array(fps, dtype=np.uint64), np.array(times, dtype=np.int64), window)
        ref_ids, ref_new = ref.process(fps, times, window)
        assert ids.tolist() == ref_ids and new.tolist() == ref_new
        assert msgspec.structs.asdict(table.stats()) == reference_stats(ref)


@pytest.mark.equivalence
@settings(max_examples=100)
@given(dedupe_streams, st.integers(0, 6))
def test_dedupe_table_snapshot_restore(
    stream: tuple[list[list[tuple[int, int]]], int, int, int, int], split: int
) -> None:
    chunks, window, retention, initial, maximum = stream

    def make() -> DedupeTable:
        return DedupeTable(initial_capacity=initial, max_capacity=maximum, retention_ms=retention)

    plain, resumed = make(), make()
    for i, chunk in enumerate(chunks):
        if i == split:
            raw = msgspec.json.encode(resumed.snapshot())
            resumed = DedupeTable.restore(msgspec.json.decode(raw, type=DedupeSnapshot))
            assert resumed.stats() == plain.stats()
        fps = np.array([0x51AB * i + 7 for i, _ in chunk], dtype=np.uint64)
        times = np.array([t for _, t in chunk], dtype=np.int64)
        a = plain.process(fps, times, window)
        b = resumed.process(fps, times, window)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
    assert plain.stats() == resumed.stats() and plain.snapshot() == resumed.snapshot()


@pytest.mark.equivalence
def test_dedupe_restore_at_full_load_keeps_capacity() -> None:
    table = DedupeTable(initial_capacity=8, max_capacity=8, retention_ms=0)
    table.process(np.arange(1, 5, dtype=np.uint64), np.zeros(4, dtype=np.int64), 0)
    assert table.stats().count * 2 == table.stats().capacity
    assert DedupeTable.restore(table.snapshot()).stats() == table.stats()


@given(st.lists(st.floats(0, 4e9) | st.sampled_from([0.0005, 0.0015, 2.5e-3, 1712397689.1315]), max_size=50))
def test_times_in_ms_round_as_one_by_one(seconds: list[float]) -> None:
    assert _times_ms(seconds).tolist() == [_to_ms(value) for value in seconds]


# --- per-gateway CRC modes ----------------------------------------------------------------------


def _corrupt_crc(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


def test_a_gateway_declared_with_crcs_rejects_a_format_b_frame_whose_crc_fails() -> None:
    server = NetworkServer(**config(gateway_crc={"gw-a": "present"}))
    assert server.gateway_crc == {"gw-a": "present", "gw-b": "auto", "gw-c": "auto", "gw-d": "auto"}
    bad = _corrupt_crc(plain_frame(1, "B"))
    batch = server.feed([wrx(bad, "gw-a"), wrx(bad, "gw-b", T0 + 0.1)])
    assert [(r.index, r.reason) for r in batch.rejected] == [(0, RejectReason.BAD_CRC)]
    # Undeclared, the same bytes read as a CRC-free frame (two bytes longer): the ambiguity
    # the declaration removes.
    assert len(batch.uplinks) == 1 and batch.uplinks[0].receptions[0].gateway_id == "gw-b"


def test_gateways_in_different_crc_modes_merge_copies_of_one_transmission() -> None:
    modes = {"gw-a": "present", "gw-b": "absent", "gw-c": "auto"}
    server = NetworkServer(**config(gateway_crc=modes))
    copies = [
        wrx(plain_frame(3, "B"), "gw-a"),
        wrx(plain_frame(3, "none"), "gw-b", T0 + 0.2),
        wrx(plain_frame(3, "A"), "gw-c", T0 + 0.1),
    ]
    batch = server.feed(copies)
    assert len(batch.uplinks) == 1
    assert batch.uplinks[0].frame == plain_frame(3, "none")
    assert [r.gateway_id for r in batch.uplinks[0].receptions] == ["gw-a", "gw-b", "gw-c"]
    assert batch.rejected == ()


def test_gateway_crc_must_name_registered_gateways_and_known_modes() -> None:
    with pytest.raises(ConfigError, match="not a registered gateway"):
        NetworkServer(**config(gateway_crc={"gw-x": "present"}))
    with pytest.raises(ConfigError, match="must be one of auto, present, absent"):
        NetworkServer(**config(gateway_crc={"gw-a": "yes"}))


@st.composite
def gateway_batches(draw: st.DrawFn) -> tuple[bytes, Any, Any, list[int], dict[str, Any]]:
    """Frames of several kinds and shapes, some with a bit flipped anywhere, packed with gaps
    and out of order (offsets as lists or arrays), each from a gateway index (-1 and past
    the end: unknown), and a CRC mode per gateway."""
    frames = []
    for _ in range(draw(st.integers(0, 12))):
        seq, shape = draw(st.integers(1, 300)), draw(st.sampled_from(SHAPES))
        frame = draw(st.sampled_from((plain_frame, mode7_frame)))(seq, shape)
        if draw(st.booleans()):
            bit = draw(st.integers(0, len(frame) * 8 - 1))
            frame = frame[: bit // 8] + bytes([frame[bit // 8] ^ (1 << bit % 8)]) + frame[bit // 8 + 1 :]
        frames.append(frame)
    order = draw(st.permutations(range(len(frames))))
    buffer, offsets = bytearray(), [0] * len(frames)
    for i in order:
        buffer += bytes(draw(st.integers(0, 3)))
        offsets[i] = len(buffer)
        buffer += frames[i]
    lengths = [len(frame) for frame in frames]
    as_arrays = draw(st.booleans())
    gateways = [draw(st.integers(-1, len(GATEWAYS))) for _ in frames]
    modes = draw(
        st.fixed_dictionaries(
            {}, optional={g: st.sampled_from(("auto", "present", "absent")) for g in GATEWAYS}
        )
    )
    return (
        bytes(buffer),
        np.array(offsets) if as_arrays else offsets,
        np.array(lengths, dtype=np.int32) if as_arrays else lengths,
        gateways,
        modes,
    )


@settings(max_examples=200, deadline=None)
@given(gateway_batches())
def test_each_frame_is_scanned_in_its_gateways_crc_mode(
    batch: tuple[bytes, Any, Any, list[int], dict[str, Any]],
) -> None:
    """The batch scan equals scanning every frame alone in its gateway's mode (unknown
    gateways: auto), and keeps each frame's room in batch order."""
    buffer, offsets, lengths, gateways, modes = batch
    server = NetworkServer(**config(gateway_crc=modes))
    columns = server.feed_wmbus_columns(buffer, offsets, lengths, gateways, [0] * len(gateways))
    info, output = columns.scan.info, columns.scan.output
    rooms = np.cumsum(np.asarray(lengths, dtype=np.int64)) - np.asarray(lengths)
    assert info["out_offset"].tolist() == rooms.tolist()
    for i, gateway in enumerate(gateways):
        frame = buffer[offsets[i] : offsets[i] + lengths[i]]
        mode = modes.get(GATEWAYS[gateway], "auto") if 0 <= gateway < len(GATEWAYS) else "auto"
        alone = scan_frames([frame], crc=mode, key=FP_KEY)
        expected = alone.info[0].copy()
        expected["out_offset"] = rooms[i]
        assert info[i].tobytes() == expected.tobytes()
        start, length = int(info[i]["out_offset"]), int(info[i]["out_length"])
        assert (
            output[start : start + length].tobytes() == alone.output[: alone.info[0]["out_length"]].tobytes()
        )


def test_crc_mode_names_follow_the_modes_numbers() -> None:
    assert [CRC_MODE_NAMES[mode] for mode in CRCMode] == [mode.name.lower() for mode in CRCMode]


def test_a_batch_described_wrongly_is_an_input_error_in_every_crc_mode() -> None:
    frame = plain_frame(1)
    for modes in ({}, {"gw-a": "present"}):
        server = NetworkServer(**config(gateway_crc=modes))
        for offsets, lengths in (([0, 5], [len(frame)]), ([0], [-1]), ([0], [len(frame) + 1])):
            with pytest.raises(InputError):
                server.feed_wmbus_columns(frame, offsets, lengths, [0, 1][: len(offsets)], [0] * len(offsets))
    with pytest.raises(ConfigError, match="must map gateway ids"):
        NetworkServer(**config(gateway_crc=["gw-a"]))


def test_a_reception_with_an_impossible_time_is_refused_alone() -> None:
    server = NetworkServer(**config())
    times = [float("nan"), -1.0, 1e12, float("inf"), T0]  # 1e12: milliseconds sent as seconds
    batch = server.feed([wrx(plain_frame(1), "gw-a", at) for at in times])
    assert [(r.index, r.reason) for r in batch.rejected] == [(i, RejectReason.BAD_TIME) for i in range(4)]
    assert len(batch.uplinks) == 1 and batch.uplinks[0].received_at == T0
    assert server.stats().gateways["gw-a"].rejected == {"bad_time": 4}


def test_a_damaged_state_is_a_library_error() -> None:
    server = NetworkServer(**config())
    server.feed([wrx(mode7_frame(50), "gw-a", T0), wrx(b"\x01", "gw-a", T0)])
    state = server.snapshot()
    good = encode_state(state)
    for data in (b"{", b"\xff\xfe", good.replace(b'"version":2', b'"version":"2"'), b"[" * 100_000):
        with pytest.raises(ConfigError, match="not a network state"):
            decode_state(data)
    bogus = msgspec.structs.replace(state, refused_uplinks={1: ("bogus", 5)})
    with pytest.raises(ConfigError, match="unknown reasons: 'bogus'"):
        NetworkServer.restore(bogus, **config())
    table = state.wmbus_dedupe
    for stats in (
        msgspec.structs.replace(table.stats, overflow=-1),
        msgspec.structs.replace(table.stats, capacity=2**63 + 1),
        msgspec.structs.replace(table.stats, capacity=2**40, max_capacity=2**40),
    ):
        damaged = msgspec.structs.replace(state, wmbus_dedupe=msgspec.structs.replace(table, stats=stats))
        with pytest.raises(InputError, match="snapshot"):
            NetworkServer.restore(damaged, **config())
