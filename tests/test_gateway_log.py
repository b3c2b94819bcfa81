"""Gateway log files: collector lines and packet-forwarder lines in one stream."""

from __future__ import annotations

import datetime as dt
import gc
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore import ingest
from minolcore.adapters import semtech
from minolcore.adapters.collector import RejectedLine, RejectReason
from minolcore.adapters.gateway_log import iter_gateway_log_file
from minolcore.ingest import fewer_collections, ingest_files
from minolcore.pipeline import Pipeline
from minolcore.reception import Radio, Reception
from minolcore.simulator import simulate, write_collector_log
from minolcore.store import SQLiteStore, StoreBatch
from tests.test_semtech import rxpk_json

FRAME_HEX = "2E4493157856341233037A2A0000002F2F0C1427048502046D32371F1502FD1700002F2F2F2F2F2F2F2F"
PHY = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")
NOON = 1_767_268_800.0  # 2026-01-01T12:00:00Z
DEFAULT_TIME = 1_700_000_000.0


def rxpk(stat: int = 1, **extra: object) -> dict[str, object]:
    return rxpk_json(PHY, stat=stat, **extra)


def read(tmp_path: Path, lines: list[str], prefix: bytes = b"") -> list[Reception | RejectedLine]:
    path = tmp_path / "log.jsonl"
    path.write_bytes(prefix + "".join(line + "\n" for line in lines).encode())
    per_line = list(iter_gateway_log_file(path, default_gateway="GW-0", default_time=DEFAULT_TIME))
    assert len(per_line) == len(lines)  # one entry per line
    return [item for items in per_line for item in items]


def test_a_mixed_log_gives_every_reception_and_every_rejection(tmp_path: Path) -> None:
    packet = semtech.Rxpk(data=PHY, tmst=1, freq=868.3, stat=1, modu="LORA", datr="SF9BW125", rssi=-90.0)
    push = semtech.push_data(7, "AA555A0000000000", [packet])
    lines = [
        json.dumps({"gateway": "GW-1", "received_at": NOON, "frame": FRAME_HEX}),
        json.dumps({"gateway": "LGW-1", "received_at": NOON, "rxpk": [rxpk(), rxpk(stat=-1), rxpk(stat=0)]}),
        json.dumps({"datagram": push.hex(), "received_at": "2026-01-01T12:00:01Z"}),
        json.dumps({"datagram": semtech.pull_data(8, "AA555A0000000000").hex(), "received_at": NOON}),
        json.dumps({"datagram": semtech.push_ack(7).hex()}),
        json.dumps({"rxpk": [rxpk(data="***")]}),
        '{"rxpk": [',
        json.dumps({"datagram": "zz"}),
        FRAME_HEX,
    ]
    items = read(tmp_path, lines)
    receptions = [item for item in items if isinstance(item, Reception)]
    rejected = [(item.line_no, item.reason) for item in items if isinstance(item, RejectedLine)]
    assert [(r.gateway_id, r.radio, r.received_at) for r in receptions] == [
        ("GW-1", Radio.WMBUS, NOON),
        ("LGW-1", Radio.LORAWAN, NOON),
        ("LGW-1", Radio.LORAWAN, NOON),  # no CRC (stat 0): the MIC still protects it
        ("AA555A0000000000", Radio.LORAWAN, NOON + 1),
        ("GW-0", Radio.WMBUS, DEFAULT_TIME),
    ]
    assert receptions[1].payload == PHY and receptions[1].rssi == -35 and receptions[1].snr == 5.1
    assert receptions[3].mode == "SF9BW125"
    assert rejected == [
        (2, RejectReason.RADIO_CRC_FAILED),
        (5, RejectReason.BAD_DATAGRAM),  # PUSH_ACK: servers send it, not gateways
        (6, RejectReason.BAD_DATAGRAM),
        (7, RejectReason.BAD_JSON),  # not JSON at all: the collector reader says so
        (8, RejectReason.BAD_DATAGRAM),
    ]
    bad_base64 = next(i for i in items if isinstance(i, RejectedLine) and i.line_no == 6)
    assert "base64" in bad_base64.detail


def test_a_packet_without_gateway_time_takes_the_line_time(tmp_path: Path) -> None:
    timed = rxpk(time="2026-01-01T12:00:00.250000Z")
    items = read(tmp_path, [json.dumps({"gateway": "L", "received_at": NOON + 9, "rxpk": [timed, rxpk()]})])
    assert [item.received_at for item in items if isinstance(item, Reception)] == [NOON + 0.25, NOON + 9]


def test_a_byte_order_mark_before_a_packet_forwarder_line(tmp_path: Path) -> None:
    line = json.dumps({"gateway": "LGW-1", "received_at": NOON, "rxpk": [rxpk()]})
    (item,) = read(tmp_path, [line], prefix=b"\xef\xbb\xbf")
    assert isinstance(item, Reception) and item.gateway_id == "LGW-1"


def test_a_packet_time_outside_1970_to_9999_is_rejected(tmp_path: Path) -> None:
    for moment in ("1969-06-01T00:00:00Z", "9999-12-31T23:59:59.999999-01:00"):
        (item,) = read(tmp_path, [json.dumps({"gateway": "L", "rxpk": [rxpk(time=moment)]})])
        assert isinstance(item, RejectedLine) and "1970 and 9999" in item.detail


def test_a_str_line_with_a_lone_surrogate_is_a_protocol_error() -> None:
    with pytest.raises(semtech.DatagramError):
        semtech.parse_log_line('{"rxpk": [], "gateway": "\ud800"}', default_gateway="G", default_time=NOON)


def test_ingest_counts_lines_not_items(tmp_path: Path) -> None:
    simulation = simulate(start=dt.date(2025, 1, 1), days=7, seed=2, units=1)
    path = tmp_path / "log.jsonl"
    lines = [
        json.dumps({"gateway": "GW-1", "received_at": NOON, "rxpk": [rxpk(), rxpk(stat=-1), rxpk(stat=0)]}),
        json.dumps({"datagram": semtech.pull_data(8, "AA555A0000000000").hex(), "received_at": NOON}),
    ]
    path.write_text("".join(line + "\n" for line in lines))
    pipeline = Pipeline(site=simulation.site, keys=simulation.keys, store=None, gateways=simulation.gateways)
    summary = ingest_files([path], pipeline)
    assert summary.lines == 2
    assert summary.bad_lines == {"radio_crc_failed": 1}
    assert summary.pipeline.received == 2


def test_small_files_are_fed_together_and_store_what_one_file_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulation = simulate(start=dt.date(2025, 1, 1), days=30, seed=4, units=2)
    whole = tmp_path / "whole.jsonl"
    write_collector_log(whole, simulation.receptions)
    lines = whole.read_bytes().splitlines(keepends=True)
    parts = []
    for number, start in enumerate(range(0, len(lines), 40)):
        part = tmp_path / f"part-{number:03}.jsonl"
        part.write_bytes(b"".join(lines[start : start + 40]))
        parts.append(part)
    fed: list[int] = []
    feed = Pipeline.feed

    def counting_feed(self: Pipeline, receptions: object, *, models: bool = True) -> object:
        fed.append(len(receptions))  # type: ignore[arg-type]
        return feed(self, receptions, models=models)  # type: ignore[arg-type]

    def stored(paths: list[Path], name: str) -> tuple[dict[str, str], int]:
        store = SQLiteStore(tmp_path / name)
        pipeline = Pipeline(
            site=simulation.site, keys=simulation.keys, store=store, gateways=simulation.gateways
        )
        summary = ingest_files(paths, pipeline, batch_size=500)
        digest = store.digest()
        store.close()
        return digest, summary.pipeline.received

    monkeypatch.setattr(Pipeline, "feed", counting_feed)
    in_parts = stored(parts, "parts.sqlite")
    # A pipeline batch per 500 lines, not per 40-line file.
    assert len(fed) <= len(lines) // 500 + 2 and max(fed) <= 500
    assert in_parts == stored([whole], "whole.sqlite")


@pytest.mark.parametrize(
    "line",
    [
        {"rxpk": [], "received_at": "yesterday"},
        {"rxpk": [], "received_at": 1e15},
        {"rxpk": "no list"},
        {"datagram": "02"},
    ],
)
def test_bad_packet_forwarder_lines_are_rejected(tmp_path: Path, line: dict[str, object]) -> None:
    (item,) = read(tmp_path, [json.dumps(line)])
    assert isinstance(item, RejectedLine) and item.reason is RejectReason.BAD_DATAGRAM


values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["rxpk", "datagram", "gateway", "received_at", "stat", "frame"]),
            values | st.lists(st.dictionaries(st.sampled_from(list(rxpk())), values), max_size=3),
        ),
        max_size=8,
    )
)
def test_arbitrary_packet_forwarder_lines_never_raise(
    tmp_path_factory: pytest.TempPathFactory, objects: list[dict[str, object]]
) -> None:
    lines = [json.dumps(obj) for obj in objects]
    items = read(tmp_path_factory.mktemp("log"), lines)
    # Only receptions and rejected lines come out, in line order, whatever the objects hold.
    assert all(isinstance(item, Reception | RejectedLine) for item in items)
    numbered = [item.line_no for item in items if isinstance(item, RejectedLine)]
    assert numbered == sorted(numbered) and all(1 <= n <= len(lines) for n in numbered)


def test_fewer_collections_switches_automatic_collection_off_and_restores_it() -> None:
    before = gc.get_threshold()
    try:
        with fewer_collections():
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(RuntimeError), fewer_collections():
            raise RuntimeError("a failing ingest")
        assert gc.isenabled()
        gc.disable()  # a process that switched automatic collection off is left so
        with fewer_collections():
            assert not gc.isenabled()
        assert not gc.isenabled()
        gc.enable()
        gc.set_threshold(0, 5, 5)  # and so is one that did it with a threshold of 0
        with fewer_collections():
            assert gc.isenabled() and gc.get_threshold() == (0, 5, 5)
    finally:
        gc.enable()
        gc.set_threshold(*before)


def test_ingest_inside_fewer_collections_collects_after_each_store_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "STORE_BATCH", 50)  # several store writes
    simulation = simulate(start=dt.date(2025, 1, 1), days=20, seed=2, units=2)
    path = tmp_path / "log.jsonl"
    write_collector_log(path, simulation.receptions)
    writes: list[int] = []
    collections: list[tuple[int, int]] = []  # (generation, store writes before it)

    class CountingStore(SQLiteStore):
        def write(self, batch: StoreBatch) -> None:
            super().write(batch)
            writes.append(len(batch.uplink_values) + sum(map(len, batch.uplink_blocks)))

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append((info["generation"], len(writes)))

    store = CountingStore(":memory:")
    pipeline = Pipeline(site=simulation.site, keys=simulation.keys, store=store, gateways=simulation.gateways)
    gc.callbacks.append(on_collection)
    try:
        with fewer_collections():
            ingest_files([path], pipeline, batch_size=50)
            written = len(writes)
    finally:
        gc.callbacks.remove(on_collection)
    assert written >= 2
    # Only the young generations, once right after each write: never in between.
    assert collections == [(1, n) for n in range(1, written + 1)]
    assert store.counts()["uplinks"] == sum(writes)
