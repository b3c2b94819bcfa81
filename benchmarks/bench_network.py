"""The network stage: the dedupe table alone (C against the reference), wireless M-Bus
admission + dedupe over 1,000,000 frames from 3 gateways, and LoRaWAN MIC verification.

Throughput = items / median time. Run:
    python -m pytest benchmarks/bench_network.py --benchmark-only --benchmark-columns=median,rounds
"""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest

from benchmarks.conftest import realistic_frames
from minolcore import _native
from minolcore._reference.dedupe import ReferenceDedupeTable
from minolcore.dedupe import BYTES_PER_SLOT, DedupeTable
from minolcore.lorawan import Session, build_data_frame
from minolcore.network import NetworkServer, Outcome
from minolcore.reception import Radio, Reception
from minolcore.wmbus.headers import Address
from minolcore.wmbus.scan import scan_frames

KEY = bytes(range(16))
COPIES = 3
FINGERPRINTS = 1_000_000
REFERENCE_FINGERPRINTS = 30_000
WMBUS_FRAMES = 1_000_000
WMBUS_UNIQUE = 10_000
WINDOW_MS = 300_000


def dedupe_stream(count: int, seed: int = 7) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """``count`` fingerprints, 3 copies per transmission, copies up to 2 s apart and slightly
    out of order, one transmission every ms (times in ms)."""
    rng = np.random.default_rng(seed)
    transmissions = count // COPIES
    unique = rng.integers(1, 2**63, size=transmissions, dtype=np.uint64)
    base = np.arange(transmissions, dtype=np.int64) + 1_700_000_000_000
    fps = np.repeat(unique, COPIES)
    times = np.repeat(base, COPIES) + rng.integers(0, 2_000, size=transmissions * COPIES)
    # Arrival order: each copy may land up to ~100 items later than its transmission's slot.
    order = np.argsort(np.arange(len(fps)) + rng.integers(0, 100, size=len(fps)), kind="stable")
    return fps[order], times[order]


@pytest.mark.skipif(_native.BACKEND != "cffi", reason="measures the C core")
def test_dedupe_c_1m_fingerprints(benchmark) -> None:  # type: ignore[no-untyped-def]
    fps, times = dedupe_stream(FINGERPRINTS)

    def run() -> DedupeTable:
        table = DedupeTable(initial_capacity=1 << 16, max_capacity=1 << 22, retention_ms=10_000)
        table.process(fps, times, 5_000)
        return table

    table = benchmark.pedantic(run, rounds=7, iterations=1)
    stats = table.stats()
    assert stats.next_id == len(fps) // COPIES
    assert stats.count * 2 <= stats.capacity
    benchmark.extra_info["fingerprints"] = len(fps)
    benchmark.extra_info["live_entries"] = stats.count
    benchmark.extra_info["bytes_per_slot"] = BYTES_PER_SLOT
    benchmark.extra_info["bytes_per_live_entry"] = stats.memory_bytes / max(stats.count, 1)


def test_dedupe_reference(benchmark) -> None:  # type: ignore[no-untyped-def]
    fps, times = dedupe_stream(REFERENCE_FINGERPRINTS)
    fp_list, time_list = fps.tolist(), times.tolist()

    def run() -> int:
        table = ReferenceDedupeTable(1 << 16, 1 << 22, 10_000)
        table.process(fp_list, time_list, 5_000)
        return table.next_id

    assert benchmark.pedantic(run, rounds=3, iterations=1) == REFERENCE_FINGERPRINTS // COPIES
    benchmark.extra_info["fingerprints"] = REFERENCE_FINGERPRINTS


class WMBusTraffic:
    """10,000 unique frames, each heard by 3 gateways within 2 s, repeated at 15-minute
    intervals (each repeat is a new uplink: it lies outside the 5-minute window)."""

    def __init__(self) -> None:
        frames = realistic_frames(WMBUS_UNIQUE, seed=3)
        scanned = scan_frames(frames, key=KEY)
        self.devices = [
            Address(manufacturer_code=int(m), id_value=int(i), version=int(v), device_type=int(t))
            for m, i, v, t in zip(
                scanned.meter_manufacturer,
                scanned.meter_id,
                scanned.meter_version,
                scanned.meter_device_type,
                strict=True,
            )
        ]
        rounds = WMBUS_FRAMES // (WMBUS_UNIQUE * COPIES) + 1
        per_round = WMBUS_UNIQUE * COPIES
        lengths_unique = np.array([len(f) for f in frames], dtype=np.int32)
        offsets_unique = np.zeros(WMBUS_UNIQUE, dtype=np.int64)
        np.cumsum(lengths_unique[:-1], out=offsets_unique[1:])
        self.buffer = np.frombuffer(b"".join(frames), dtype=np.uint8)
        rng = np.random.default_rng(5)
        frame_index = np.tile(np.repeat(np.arange(WMBUS_UNIQUE), COPIES), rounds)[:WMBUS_FRAMES]
        self.offsets = offsets_unique[frame_index]
        self.lengths = lengths_unique[frame_index]
        self.gateways = np.tile(np.arange(COPIES), WMBUS_FRAMES // COPIES + 1)[:WMBUS_FRAMES]
        round_no = np.arange(WMBUS_FRAMES) // per_round
        self.times = (
            1_700_000_000_000
            + round_no * 900_000
            + (frame_index * 60) % 900_000
            + rng.integers(0, 2_000, size=WMBUS_FRAMES)
        ).astype(np.int64)


@pytest.fixture(scope="module")
def wmbus_traffic() -> WMBusTraffic:
    return WMBusTraffic()


# Format-A frames, every gateway "auto" or two declared "present" and one left "auto" (one
# scan call either way; the declared modes go to the C core as a mode per frame).
GATEWAY_CRC = {"auto": {}, "per_gateway": {"gw-0": "present", "gw-1": "present"}}


@pytest.mark.skipif(_native.BACKEND != "cffi", reason="measures the C core")
@pytest.mark.parametrize("crc", sorted(GATEWAY_CRC))
def test_network_wmbus_1m_frames(benchmark, wmbus_traffic: WMBusTraffic, crc: str) -> None:  # type: ignore[no-untyped-def]
    traffic = wmbus_traffic

    def setup() -> tuple[tuple[NetworkServer], dict[str, object]]:
        server = NetworkServer(
            gateways=["gw-0", "gw-1", "gw-2"],
            wmbus_devices=traffic.devices,
            fingerprint_key=KEY,
            wmbus_window_ms=WINDOW_MS,
            initial_capacity=1 << 16,
            gateway_crc=GATEWAY_CRC[crc],
        )
        return (server,), {}

    def run(server: NetworkServer) -> np.ndarray:  # type: ignore[type-arg]
        columns = server.feed_wmbus_columns(
            traffic.buffer, traffic.offsets, traffic.lengths, traffic.gateways, traffic.times
        )
        return columns.outcome

    outcome = benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    counts = np.bincount(outcome, minlength=len(Outcome))
    assert counts[Outcome.OPENED] == -(-WMBUS_FRAMES // COPIES)  # every transmission opens one uplink
    assert counts[Outcome.OPENED] + counts[Outcome.MERGED] == WMBUS_FRAMES
    benchmark.extra_info["frames"] = WMBUS_FRAMES


def test_network_lorawan_uplinks(benchmark) -> None:  # type: ignore[no-untyped-def]
    """2,000 uplinks of 200 devices, each heard by 3 gateways (6,000 receptions)."""
    rng = random.Random(9)
    devices = [(f"2601{i:04X}", rng.randbytes(16), rng.randbytes(16)) for i in range(200)]
    receptions: list[Reception] = []
    for n in range(2_000):
        addr, nwk, app = devices[n % len(devices)]
        phy = build_data_frame(
            dev_addr=addr,
            fcnt=n // len(devices),
            nwk_s_key=nwk,
            app_s_key=app,
            fport=2,
            payload=rng.randbytes(12),
        )
        for g in range(COPIES):
            at = 1_700_000_000 + n * 2 + g * 0.05
            receptions.append(
                Reception(gateway_id=f"gw-{g}", received_at=at, payload=phy, radio=Radio.LORAWAN)
            )

    def setup() -> tuple[tuple[NetworkServer], dict[str, object]]:
        server = NetworkServer(
            gateways=["gw-0", "gw-1", "gw-2"],
            lorawan_devices=[Session(a, n, p) for a, n, p in devices],
            fingerprint_key=KEY,
        )
        return (server,), {}

    def run(server: NetworkServer) -> int:
        return len(server.feed(receptions).uplinks)

    assert benchmark.pedantic(run, setup=setup, rounds=5, iterations=1) == 2_000
    benchmark.extra_info["uplinks"] = 2_000
    benchmark.extra_info["receptions"] = len(receptions)
