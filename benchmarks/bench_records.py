"""EN 13757-3 record walker over a mix of real telegrams (the corpus cases and spec vectors of
tests/test_records.py), and compact-frame decoding through the format-signature cache.

Throughput = APLs (or records) per round / median time; the figures are stored in
``extra_info``. Run:
    python -m pytest benchmarks/bench_records.py --benchmark-only --benchmark-columns=median,ops
"""

from __future__ import annotations

from tests.test_compact import MC403_COMPACT, MC403_FULL, MC602_COMPACT, MC602_FULL, apl_of
from tests.test_records import (
    CORPUS,
    V1_PLAIN,
    V4_PLAIN,
    V6_RECORDS,
    V7_PLAIN,
    V9_NEGATIVE_BCD_APL,
    V10_APL,
    V11_APL,
    locate_apl,
)

from benchmarks.conftest import record_rate
from minolcore.wmbus.compact import FormatSignatureCache
from minolcore.wmbus.records import decode_records


def _apls() -> list[bytes]:
    apls = [
        bytes.fromhex(h)
        for h in (V1_PLAIN, V4_PLAIN, V6_RECORDS, V7_PLAIN, V9_NEGATIVE_BCD_APL, V10_APL, V11_APL)
    ]
    for telegram, _ in CORPUS:
        apl = locate_apl(bytes.fromhex(telegram))
        assert apl is not None
        apls.append(apl)
    apls += [apl_of(MC602_FULL), apl_of(MC403_FULL)]
    return apls


APLS = _apls()
RECORDS_PER_ROUND = sum(len(decode_records(apl).records) for apl in APLS)


def _decode_all() -> int:
    count = 0
    for apl in APLS:
        count += len(decode_records(apl).records)
    return count


def test_decode_records_mix(benchmark) -> None:
    count = benchmark(_decode_all)
    assert count == RECORDS_PER_ROUND
    benchmark.extra_info["apls_per_round"] = len(APLS)
    benchmark.extra_info["records_per_round"] = RECORDS_PER_ROUND
    record_rate(benchmark, "apls_per_s", len(APLS))
    record_rate(benchmark, "records_per_s", RECORDS_PER_ROUND)


def test_decode_compact_frames(benchmark) -> None:
    cache = FormatSignatureCache()
    cache.learn(decode_records(apl_of(MC602_FULL)))
    cache.learn(decode_records(apl_of(MC403_FULL)))
    payloads = [apl_of(MC602_COMPACT), apl_of(MC403_COMPACT)] * 10

    def run() -> int:
        return sum(len(cache.decode_compact_frame(p).records) for p in payloads)

    count = benchmark(run)
    assert count > 0
    record_rate(benchmark, "compact_frames_per_s", len(payloads))
