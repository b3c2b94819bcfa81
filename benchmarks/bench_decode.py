"""Telegram decoding throughput: mode-5 decryption plus record decoding through the batch
API, and ``minolcore decode --jsonl`` over 100,000 lines.

The traffic is real: application layers of corpus telegrams from heat cost allocators,
water, heat and smoke meters and pulse/other devices, sealed again in mode 5 under a test
key with :func:`seal_frame` (same link address, long or short header as sent), so every
telegram is decrypted from genuine ciphertext. Rates are stored in ``extra_info``. Run:

    python -m pytest benchmarks/bench_decode.py --benchmark-only --benchmark-columns=median,ops
"""

from __future__ import annotations

import io
import json
import pathlib
from collections import Counter
from typing import Any

from benchmarks.conftest import record_rate
from minolcore.wmbus.decode_cli import run_decode
from minolcore.wmbus.frame import parse_frame
from minolcore.wmbus.headers import TPLHeader, TPLKind
from minolcore.wmbus.security import OMSKey, decrypt_mode5_batch, mode5_iv, seal_frame
from minolcore.wmbus.telegram import decode, decode_batch

KEY_HEX = "000102030405060708090A0B0C0D0E0F"
KEY = OMSKey.from_hex(KEY_HEX)
CORPUS = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "wmbus-peer-cases.jsonl"
BATCH_SIZE = 10_000
JSONL_LINES = 100_000

# Device type -> category of the mix.
CATEGORIES = {
    0x08: "hca",
    0x06: "water",
    0x07: "water",
    0x15: "water",
    0x16: "water",
    0x04: "heat",
    0x0C: "heat",
    0x0D: "heat",
    0x1A: "smoke",
    0x00: "pulse/other",
    0x02: "pulse/other",
    0x03: "pulse/other",
}


def _resealed(hex_frame: str) -> tuple[bytes, str] | None:
    """The corpus telegram's records sealed again in mode 5, or None if it has no plain
    application layer with a TPL header (compact, manufacturer-specific, encrypted, ...)."""
    try:
        telegram = decode(hex_frame, strict=False)
        frame = parse_frame(hex_frame)
    except Exception:
        return None
    tpl = frame.tpl
    if (
        telegram.errors
        or not telegram.records
        or telegram.compact
        or tpl is None
        or frame.hidden
        or frame.ell is not None
        or frame.afl is not None
        or telegram.security is None
        or telegram.security.status not in ("not_encrypted", "already_decrypted")
    ):
        return None
    address = frame.meter_address
    category = CATEGORIES.get(address.device_type)
    if category is None:
        return None
    payload = frame.payload
    sealed_tpl = TPLHeader(ci=tpl.ci, kind=tpl.kind, acc=tpl.acc, sts=tpl.sts, cf=0x0500, address=tpl.address)
    if tpl.kind not in (TPLKind.SHORT, TPLKind.LONG) or len(payload) > 15 * 16 - 2:
        return None
    sealed = seal_frame(
        KEY,
        manufacturer=frame.manufacturer_code,
        id=frame.id_value,
        version=frame.version,
        device_type=frame.device_type,
        c_field=frame.c_field,
        tpl=sealed_tpl,
        payload=payload,
    )
    return sealed, category


def _mix() -> tuple[list[bytes], Counter[str]]:
    frames: list[bytes] = []
    categories: Counter[str] = Counter()
    with CORPUS.open() as handle:
        for line in handle:
            case = json.loads(line)
            hex_frame = case["telegram_hex"]
            if len(hex_frame) % 2 or hex_frame.startswith("68"):
                continue
            result = _resealed(hex_frame)
            if result is not None:
                frames.append(result[0])
                categories[result[1]] += 1
    return frames, categories


MIX, MIX_CATEGORIES = _mix()
BATCH = [MIX[i % len(MIX)] for i in range(BATCH_SIZE)]


def test_mix_is_real_ciphertext() -> None:
    assert len(MIX) >= 40 and len(MIX_CATEGORIES) >= 4
    for frame in MIX:
        telegram = decode(frame, KEY)
        assert telegram.security is not None and telegram.security.status == "decrypted"
        assert telegram.records


def test_decode_batch_mode5(benchmark: Any) -> None:
    telegrams = benchmark(decode_batch, BATCH, KEY)
    assert len(telegrams) == BATCH_SIZE
    assert all(t.security is not None and t.security.status == "decrypted" for t in telegrams)
    benchmark.extra_info["telegrams_per_round"] = BATCH_SIZE
    benchmark.extra_info["mix"] = dict(MIX_CATEGORIES)
    record_rate(benchmark, "telegrams_per_s", BATCH_SIZE)


def test_decrypt_only_mode5_batch(benchmark: Any) -> None:
    # The crypto share alone: IV and ciphertext slices prepared, then one batch call.
    items = []
    for raw in BATCH:
        frame = parse_frame(raw)
        assert frame.tpl is not None
        size = frame.tpl.encrypted_blocks * 16
        start = frame.payload_offset
        items.append((KEY, mode5_iv(frame.meter_address, frame.acc), frame.data[start : start + size]))
    plains = benchmark(decrypt_mode5_batch, items)
    assert all(p[:2] == b"\x2f\x2f" for p in plains)
    record_rate(benchmark, "telegrams_per_s", len(items))


def test_decode_single_mode5(benchmark: Any) -> None:
    def run() -> int:
        return sum(len(decode(frame, KEY).records) for frame in MIX)

    assert benchmark(run) > 0
    record_rate(benchmark, "telegrams_per_s", len(MIX))


def test_jsonl_100k_lines(benchmark: Any) -> None:
    lines = "".join(f"{MIX[i % len(MIX)].hex().upper()} {KEY_HEX}\n" for i in range(JSONL_LINES))

    def run() -> int:
        out = io.StringIO()
        code = run_decode(
            None,
            key=None,
            as_json=False,
            jsonl=True,
            stdin=io.StringIO(lines),
            stdout=out,
            stderr=io.StringIO(),
        )
        assert code == 0
        return out.getvalue().count("\n")

    count = benchmark.pedantic(run, rounds=1, iterations=1)
    assert count == JSONL_LINES
    record_rate(benchmark, "lines_per_s", JSONL_LINES)
