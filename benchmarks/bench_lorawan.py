"""Throughput of LoRaWAN MIC verification and uplink decoding.

Run: PYTHONPATH=src python -m pytest benchmarks/bench_lorawan.py --benchmark-only
Each benchmark processes one batch of uplinks; ``extra_info['uplinks_per_s']`` gives the
rate from the mean round time.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from benchmarks.conftest import record_rate
from minolcore.lorawan import AesKey, build_data_frame, decode_uplink, verify_mics
from minolcore.lorawan.crypto import compute_data_mic

DEVICES = 100
FRAMES_PER_DEVICE = 20
BATCH = DEVICES * FRAMES_PER_DEVICE


@pytest.fixture(scope="module")
def traffic() -> dict[str, Any]:
    """2000 uplinks of 100 ABP devices, 24-byte application payloads, some FOpts."""
    rng = os.urandom
    keys = [(AesKey(rng(16)), AesKey(rng(16))) for _ in range(DEVICES)]
    phys: list[bytes] = []
    nwk: list[AesKey] = []
    app: list[AesKey] = []
    last: list[int | None] = []
    for n in range(FRAMES_PER_DEVICE):
        for d, (nk, ak) in enumerate(keys):
            fcnt = 70_000 + n
            phys.append(
                build_data_frame(
                    dev_addr=0x26000000 + d,
                    fcnt=fcnt,
                    fport=2,
                    payload=rng(24),
                    fopts=b"\x06\xfe\x10" if n % 5 == 0 else b"",
                    nwk_s_key=nk,
                    app_s_key=ak,
                )
            )
            nwk.append(nk)
            app.append(ak)
            last.append(fcnt - 1)
    return {"phys": phys, "nwk": nwk, "app": app, "last": last, "raw_nwk": [k.reveal() for k in nwk]}


def _rate(benchmark: Any) -> None:
    record_rate(benchmark, "uplinks_per_s", BATCH)


def test_verify_mics_batch(benchmark: Any, traffic: dict[str, Any]) -> None:
    result = benchmark(verify_mics, traffic["phys"], traffic["nwk"], traffic["last"])
    assert result.all()
    _rate(benchmark)


def test_verify_mics_batch_raw_key_bytes(benchmark: Any, traffic: dict[str, Any]) -> None:
    # Keys given as bytes: wrapped once per distinct key per call.
    result = benchmark(verify_mics, traffic["phys"], traffic["raw_nwk"], traffic["last"])
    assert result.all()
    _rate(benchmark)


def test_mic_one_by_one_fresh_keys(benchmark: Any, traffic: dict[str, Any]) -> None:
    # Baseline: a new key object (and so a new CMAC context) per frame.
    phys, raw, last = traffic["phys"], traffic["raw_nwk"], traffic["last"]

    def run() -> int:
        ok = 0
        for phy, key, prev in zip(phys, raw, last, strict=True):
            mic = compute_data_mic(
                key, phy[:-4], dev_addr=int.from_bytes(phy[1:5], "little"), fcnt32=prev + 1, uplink=True
            )
            ok += mic == phy[-4:]
        return ok

    assert benchmark(run) == BATCH
    _rate(benchmark)


def test_decode_uplink(benchmark: Any, traffic: dict[str, Any]) -> None:
    phys, nwk, app, last = traffic["phys"], traffic["nwk"], traffic["app"], traffic["last"]

    def run() -> int:
        ok = 0
        for phy, nk, ak, prev in zip(phys, nwk, app, last, strict=True):
            ok += decode_uplink(phy, nwk_s_key=nk, app_s_key=ak, last_fcnt=prev).mic_valid
        return ok

    assert benchmark(run) == BATCH
    _rate(benchmark)
