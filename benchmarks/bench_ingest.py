"""Gateway ingestion throughput: collector lines, Semtech datagrams, envelope opening.

Run with ``PYTHONPATH=src python -m pytest benchmarks/bench_ingest.py --benchmark-only``; each
benchmark stores its rate (lines/s, datagrams/s, envelopes/s) in ``extra_info``.
``python benchmarks/bench_ingest.py`` streams one million collector lines and prints lines/s.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.conftest import record_rate
from minolcore import _native
from minolcore._reference.lines import read_collector_lines_into
from minolcore.adapters import semtech
from minolcore.adapters.collector import (
    COLLECTOR_LINE_DTYPE,
    LINE_READ,
    iter_collector_lines,
    read_collector_block,
    read_numbered_line,
)
from minolcore.adapters.gateway_log import iter_gateway_log_file, iter_log_batches
from minolcore.envelope import EnvelopeOpener, seal
from minolcore.reception import Reception

FRAME_HEX = "2E4493157856341233037A2A0000002F2F0C1427048502046D32371F1502FD1700002F2F2F2F2F2F2F2F"
BASE_TIME = 1_767_268_800


def collector_lines(count: int) -> list[bytes]:
    """A realistic upload mix: 3/5 JSON with ISO time, 1/5 JSON with Unix time, 1/5 hex, 1 in 1000 garbage."""
    lines: list[bytes] = []
    for i in range(count):
        if i % 1000 == 999:
            line = "not a telegram"
        elif i % 5 == 0:
            line = FRAME_HEX
        elif i % 5 == 1:
            line = json.dumps(
                {
                    "gateway": "GW-1",
                    "received_at": BASE_TIME + i,
                    "rssi": -70,
                    "mode": "T1",
                    "frame": FRAME_HEX,
                }
            )
        else:
            stamp = f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
            line = json.dumps(
                {"gateway": "GW-2", "time": stamp, "rssi": -81, "mode": "C1", "frame": FRAME_HEX}
            )
        lines.append(line.encode())
    return lines


def consume(lines: Sequence[bytes | str]) -> int:
    count = 0
    for _ in iter_collector_lines(lines, default_gateway="GW-0", default_time=float(BASE_TIME)):
        count += 1
    return count


def test_collector_lines_bytes(benchmark: Any) -> None:
    lines = collector_lines(200_000)
    assert benchmark.pedantic(consume, args=(lines,), rounds=5, iterations=1) == len(lines)
    record_rate(benchmark, "lines_per_s", len(lines))


def test_collector_lines_str(benchmark: Any) -> None:
    lines = [line.decode() for line in collector_lines(200_000)]
    assert benchmark.pedantic(consume, args=(lines,), rounds=5, iterations=1) == len(lines)
    record_rate(benchmark, "lines_per_s", len(lines))


def push_datagrams(count: int) -> list[bytes]:
    rxpk = [
        {
            "time": "2026-01-01T12:00:00.000000Z",
            "tmst": 3512348611 + n,
            "chan": n,
            "rfch": 0,
            "freq": 868.1,
            "stat": 1,
            "modu": "LORA",
            "datr": "SF7BW125",
            "codr": "4/5",
            "rssi": -60,
            "lsnr": 7.5,
            "size": 23,
            "data": base64.b64encode(bytes(range(n, n + 23))).decode(),
        }
        for n in range(3)
    ]
    body = json.dumps({"rxpk": rxpk}).encode()
    eui = bytes.fromhex("AA555A0000000000")
    return [b"\x02" + (i % 65536).to_bytes(2, "big") + b"\x00" + eui + body for i in range(count)]


def test_semtech_push_data(benchmark: Any) -> None:
    datagrams = push_datagrams(20_000)

    def run() -> int:
        ingest = semtech.GatewayIngest()
        for datagram in datagrams:
            ingest.receive(datagram, received_at=float(BASE_TIME))
        return ingest.rxpk_ok

    assert benchmark.pedantic(run, rounds=5, iterations=1) == 3 * len(datagrams)
    record_rate(benchmark, "datagrams_per_s", len(datagrams))


def test_envelope_open(benchmark: Any) -> None:
    key = bytes(range(16))
    batch = b"\n".join(collector_lines(100))
    envelopes = [seal(batch, gateway_id="GW-1", sequence=n, key=key) for n in range(5_000)]

    def run() -> int:
        opener = EnvelopeOpener({"GW-1": key})
        return sum(len(opener.open(envelope).batch) for envelope in envelopes)

    assert benchmark.pedantic(run, rounds=5, iterations=1) == len(batch) * len(envelopes)
    record_rate(benchmark, "envelopes_per_s", len(envelopes))


def _time(label: str, run: Callable[[], int], count: int) -> None:
    start = time.perf_counter()
    assert run() == count
    elapsed = time.perf_counter() - start
    print(f"{label}: {count:,} lines in {elapsed:.2f} s = {count / elapsed:,.0f} lines/s")


if __name__ == "__main__":
    million = collector_lines(1_000_000)
    _time("bytes lines", lambda: consume(million), len(million))
    as_text = [line.decode() for line in million]
    _time("str lines", lambda: consume(as_text), len(as_text))


def simulator_block(count: int, times: str = "seconds") -> bytes:
    """``count`` collector lines as the simulator writes them (gateway, Unix time, frame, RSSI,
    mode). ``times``: "seconds" to the millisecond, "precise" to 17 digits as
    ``json.dumps(time.time())`` writes them, "iso" as UTC text ("...T12:00:00.731Z")."""
    lines = []
    for i in range(count):
        when: float | str = BASE_TIME + i * 0.731
        if times == "precise":
            when += 0.0000123
        elif times == "iso":
            moment = dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="milliseconds")
            when = moment.replace("+00:00", "Z")
        line = {"gateway": f"GW-{i % 3 + 1}", "received_at": when, "frame": FRAME_HEX}
        line.update({"rssi": -60.0 - (i % 400) / 10, "mode": "T1"})
        lines.append(json.dumps(line, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


BLOCK_LINES = 100_000
GATEWAY_IDS = ("GW-1", "GW-2", "GW-3")


@pytest.mark.parametrize("reader", ["bulk", "bulk-reference", "line by line"])
def test_collector_block(benchmark: Any, reader: str) -> None:
    """The C core's part of the log reader: a block of lines into rows and frame bytes (its
    pure-Python twin on a tenth of them), against the line reader making a reception per
    line. test_log_file times the whole reader, columns included."""
    count = BLOCK_LINES // 10 if reader == "bulk-reference" else BLOCK_LINES
    block = simulator_block(count)

    def bulk() -> int:
        rows, _ = read_collector_block(block, GATEWAY_IDS)
        return int(np.count_nonzero(rows["status"] == LINE_READ))

    def reference() -> int:
        rows = np.zeros(count + 1, dtype=COLLECTOR_LINE_DTYPE)
        out = np.zeros(len(block) // 2, dtype=np.uint8)
        done = read_collector_lines_into(block, [name.encode() for name in GATEWAY_IDS], rows, out)
        return int(np.count_nonzero(rows["status"][:done] == LINE_READ))

    def line_by_line() -> int:
        return sum(
            isinstance(read_numbered_line(line, n, "GW-0", float(BASE_TIME)), Reception)
            for n, line in enumerate(block.splitlines(keepends=True), 1)
        )

    run = {"bulk": bulk, "bulk-reference": reference, "line by line": line_by_line}[reader]
    if reader == "bulk" and _native.BACKEND != "cffi":
        pytest.fail("the bulk reader's benchmark needs the C core")
    assert benchmark.pedantic(run, rounds=5, iterations=1) == count
    record_rate(benchmark, "lines_per_s", count)


@pytest.mark.parametrize("times", ["seconds", "precise", "iso"])
@pytest.mark.parametrize("reader", ["batches", "line by line"])
def test_log_file(benchmark: Any, tmp_path: Path, reader: str, times: str) -> None:
    """A log file as the ingest reads it (file reading, the C core, the reception columns
    with their gateway names and times), against the line reader's receptions; times as
    Unix seconds (to the millisecond, or to 17 digits) or as ISO 8601 UTC text."""
    path = tmp_path / "log.jsonl"
    path.write_bytes(simulator_block(BLOCK_LINES, times))

    def batches() -> int:
        found = iter_log_batches(path, gateway_ids=GATEWAY_IDS, default_gateway="GW-0", default_time=1.0)
        return sum(len(batch.wmbus) for batch in found)

    def line_by_line() -> int:
        found = iter_gateway_log_file(path, default_gateway="GW-0", default_time=1.0)
        return sum(isinstance(item, Reception) for items in found for item in items)

    if reader == "batches" and _native.BACKEND != "cffi":
        pytest.fail("the bulk reader's benchmark needs the C core")
    run = batches if reader == "batches" else line_by_line
    assert benchmark.pedantic(run, rounds=5, iterations=1) == BLOCK_LINES
    record_rate(benchmark, "lines_per_s", BLOCK_LINES)
