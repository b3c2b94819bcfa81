"""The fast path's mode-7 decryption (``pipeline_fast._unseal_mode7``) returns exactly what
the object path's calls return (parse_frame, then unseal): for every AFL variant the
builder makes, right and wrong keys, bit flips, truncations, bytes beyond L, the OMS
vectors, and through ``fast_records`` on a simulated building."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minolcore import pipeline as pipeline_module
from minolcore import pipeline_fast
from minolcore._layout_plans import telegram_rows
from minolcore.pipeline import Pipeline
from minolcore.pipeline_fast import FastRead
from minolcore.simulator import Simulation, simulate
from minolcore.store import SQLiteStore
from minolcore.wmbus.builder import build_frame
from minolcore.wmbus.frame import parse_frame
from minolcore.wmbus.headers import (
    AFL_KI_PRESENT,
    AFL_MAC_LENGTHS,
    AFL_MAC_PRESENT,
    AFL_MCL_PRESENT,
    AFL_MCR_PRESENT,
    AFL_ML_PRESENT,
    Address,
    AFLHeader,
    ELLHeader,
    TPLHeader,
    TPLKind,
)
from minolcore.wmbus.security import OMSKey, encrypt_mode7, open_mode7

Unsealed7 = tuple[bytes, int] | None

# --- OMS vectors (from ../shared/spec/vectors.md, format A with CRCs) ---------------------------

# V2: OMS Annex N, ELL-I + AFL (MCL 0x25: CMAC truncated to 8 bytes) + short TPL, mode 7.
V2_FRAME = (
    "434493157856341233037AC98C2075900F002C25B30A000021924D4FBA372FB66E017A75002007109058475F4BC9D128"
    "1DF878B80A1B0F98B629024AAC7279429398BFC549233C0140829B93BAA1"
)
# V3: OMS Annex N, ELL-III + AFL + long TPL (the KDF uses the TPL's ID), mode 7.
V3_FRAME = (
    "53082448443322110337D0468E80753A63665544330A31900F002C25E00AB30A0000AF5D74DF73A600D972785634C027"
    "129315330375002007109058475F4BC955CF1DF878B80A1B0F98B629024AAC7279429398BFC549233C0140829B93BAA1"
)
VECTOR_KEY = "000102030405060708090A0B0C0D0E0F"
# Both decrypt to the plaintext of V1 (OMS Annex N.2.1).
VECTOR_PLAINTEXT = "2F2F0C1427048502046D32371F1502FD1700002F2F2F2F2F2F2F2F2F2F2F2F2F"
ELL_I_LENGTH = 3
ELL_III_LENGTH = 11


# The reference: the object path's own calls (parse_frame, unseal), as _unseal_mode7 made
# them before it read the bytes itself. Bound here, so tests that forbid the module's
# fallback still have it.
reference_unseal_mode7 = pipeline_fast._unseal_mode7_objects


def canonical(hex_frame: str) -> bytes:
    return parse_frame(hex_frame).data


def without_ell(frame: bytes, ell_length: int) -> bytes:
    """The canonical frame without the ELL after its link header. The ELL is covered neither
    by the AFL MAC nor by the KDF, so the MAC still verifies."""
    return bytes((frame[0] - ell_length,)) + frame[1:10] + frame[10 + ell_length :]


@pytest.fixture
def objects_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the test fail when ``_unseal_mode7`` hands the telegram to the frame objects."""

    def refuse(raw: bytes, key: Any) -> Unsealed7:
        raise AssertionError("the fast shape took the object path")

    monkeypatch.setattr(pipeline_fast, "_unseal_mode7_objects", refuse)


def test_vectors_with_their_ell_take_the_object_path(monkeypatch: pytest.MonkeyPatch) -> None:
    key = OMSKey.from_hex(VECTOR_KEY)
    taken: list[bytes] = []
    objects = pipeline_fast._unseal_mode7_objects

    def counted(raw: bytes, key: Any) -> tuple[bytes, int] | None:
        taken.append(raw)
        return objects(raw, key)

    monkeypatch.setattr(pipeline_fast, "_unseal_mode7_objects", counted)
    for vector in (V2_FRAME, V3_FRAME):
        frame = canonical(vector)
        expected = (bytes.fromhex(VECTOR_PLAINTEXT), 0)
        assert reference_unseal_mode7(frame, key) == expected
        assert pipeline_fast._unseal_mode7(frame, key) == expected
        assert taken[-1] == frame
    assert len(taken) == 2


@pytest.mark.usefixtures("objects_forbidden")
def test_vectors_without_their_ell_decrypt_on_the_fast_path() -> None:
    key = OMSKey.from_hex(VECTOR_KEY)
    for vector, ell_length in ((V2_FRAME, ELL_I_LENGTH), (V3_FRAME, ELL_III_LENGTH)):
        frame = without_ell(canonical(vector), ell_length)
        assert pipeline_fast._unseal_mode7(frame, key) == (bytes.fromhex(VECTOR_PLAINTEXT), 0)
        assert pipeline_fast._unseal_mode7(frame, OMSKey(bytes(16))) is None
        assert pipeline_fast._unseal_mode7(frame + b"\x00" * 5, key) == (bytes.fromhex(VECTOR_PLAINTEXT), 0)


def test_vectors_under_every_single_bit_flip_and_truncation() -> None:
    key = OMSKey.from_hex(VECTOR_KEY)
    for vector, ell_length in ((V2_FRAME, ELL_I_LENGTH), (V3_FRAME, ELL_III_LENGTH)):
        for frame in (canonical(vector), without_ell(canonical(vector), ell_length)):
            for position in range(len(frame)):
                for bit in range(8):
                    flipped = bytearray(frame)
                    flipped[position] ^= 1 << bit
                    data = bytes(flipped)
                    assert pipeline_fast._unseal_mode7(data, key) == reference_unseal_mode7(data, key)
            for end in range(len(frame) + 1):
                assert pipeline_fast._unseal_mode7(frame[:end], key) == reference_unseal_mode7(
                    frame[:end], key
                )


# --- generated telegrams ----------------------------------------------------------------------------

_FCL_FIELDS = AFL_MCL_PRESENT | AFL_ML_PRESENT | AFL_MCR_PRESENT | AFL_MAC_PRESENT | AFL_KI_PRESENT
_CF_SHAPE = 0x1FF0  # mode (bits 12-8) and encrypted blocks (bits 7-4)


@st.composite
def afl_headers(draw: st.DrawFn) -> AFLHeader:
    """Every AFL the builder makes for mode 7: each MAC length, KI and ML present or not,
    any other MCL and FCL bits (fragment id, more fragments, reserved)."""
    auth_type = draw(st.sampled_from(sorted(AFL_MAC_LENGTHS)))
    with_ki = draw(st.booleans())
    with_ml = draw(st.booleans())
    fcl = 0x2C00 | (0x0200 if with_ki else 0) | (0x1000 if with_ml else 0)
    fcl |= draw(st.integers(0, 0xFFFF)) & ~_FCL_FIELDS & 0xFFFF
    return AFLHeader(
        afll=0,
        fcl=fcl,
        mcl=(draw(st.integers(0, 15)) << 4) | auth_type,
        ki=draw(st.integers(0, 0xFFFF)) if with_ki else None,
        mcr=draw(st.integers(0, 0xFFFFFFFF)),
        mac=bytes(AFL_MAC_LENGTHS[auth_type]),
        ml=draw(st.integers(0, 0xFFFF)) if with_ml else None,
    )


class Telegram(NamedTuple):
    """A generated mode-7 telegram: the canonical sealed frame, its key, the application
    layer it decrypts to, its STS, encrypted blocks and KDF selection."""

    frame: bytes
    key: bytes
    plain: bytes
    sts: int
    blocks: int
    kdf_selection: int


@st.composite
def mode7_telegrams(draw: st.DrawFn) -> Telegram:
    """Telegrams with every AFL of :func:`afl_headers`, a short or long TPL header, 0-15
    encrypted blocks, possibly an unencrypted tail, now and then a KDF selection other
    than the OMS one or an ELL-I in front of the AFL."""
    key = draw(st.binary(min_size=16, max_size=16))
    afl = draw(afl_headers())
    blocks = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 11, 0]))
    # The encrypted blocks (plaintext starting 2F2F), then an unencrypted tail.
    plain = b"\x2f\x2f" + draw(st.binary(min_size=max(blocks * 16 - 2, 0), max_size=blocks * 16 + 20))
    sts = draw(st.integers(0, 255))
    cf = (draw(st.integers(0, 0xFFFF)) & ~_CF_SHAPE) | (7 << 8) | (blocks << 4)
    kdf_selection = draw(st.sampled_from([1, 1, 1, 1, 0, 2, 3]))
    cf_ext_rest = (draw(st.integers(0, 3)) << 6) | draw(st.integers(0, 15))  # bits 7-6 and key id
    address = None
    if draw(st.booleans()):
        address = Address(
            manufacturer_code=draw(st.integers(0, 0xFFFF)),
            id_value=draw(st.integers(0, 0xFFFFFFFF)),
            version=draw(st.integers(0, 255)),
            device_type=draw(st.integers(0, 255)),
        )
    tpl = TPLHeader(
        ci=0x7A if address is None else 0x72,
        kind=TPLKind.SHORT if address is None else TPLKind.LONG,
        acc=draw(st.integers(0, 255)),
        sts=sts,
        cf=cf,
        cf_ext=cf_ext_rest | (1 << 4),  # encrypt_mode7 derives keys with selection 1 only
        address=address,
    )
    ell = None
    if draw(st.integers(0, 9)) == 0:  # the object path's shape
        ell = ELLHeader(ci=0x8C, cc=draw(st.integers(0, 255)), acc=draw(st.integers(0, 255)))
    plain_frame = build_frame(
        manufacturer=draw(st.integers(0, 0xFFFF)),
        id=draw(st.integers(0, 0xFFFFFFFF)),
        version=draw(st.integers(0, 255)),
        device_type=draw(st.integers(0, 255)),
        c_field=draw(st.integers(0, 255)),
        ell=ell,
        afl=afl,
        tpl=tpl,
        payload=plain,
        shape="none",
    )
    sealed = bytearray(encrypt_mode7(plain_frame, key))
    cf_ext_at = parse_frame(bytes(sealed), crc="absent").payload_offset - 1
    sealed[cf_ext_at] = cf_ext_rest | (kdf_selection << 4)
    return Telegram(bytes(sealed), key, plain, sts, blocks, kdf_selection)


@st.composite
def received(draw: st.DrawFn) -> tuple[bytes, Any]:
    """A generated telegram as it may reach ``_unseal_mode7``: bytes beyond L, bit flips
    or new bytes anywhere, truncated; with the right key in any form ``as_key`` takes, a
    wrong key, a malformed key or none."""
    telegram = draw(mode7_telegrams())
    data = bytearray(telegram.frame + draw(st.binary(max_size=24)))
    # Intact telegrams often enough that many decrypt (and the fast path is compared there).
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):
        position = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[position] ^= 1 << draw(st.integers(0, 7))
        else:
            data[position] = draw(st.integers(0, 255))
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    key = telegram.key
    key_form = draw(st.sampled_from(["oms", "oms", "oms", "bytes", "hex", "wrong", "none", "malformed"]))
    given_key: Any = {
        "oms": OMSKey(key),
        "bytes": key,
        "hex": key.hex(),
        "wrong": OMSKey(bytes(b ^ 0x01 for b in key)),
        "none": None,
        "malformed": key[:15],
    }[key_form]
    return bytes(data), given_key


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(received())
def test_same_result_as_the_object_path_for_any_bytes(case: tuple[bytes, Any]) -> None:
    raw, key = case
    assert pipeline_fast._unseal_mode7(raw, key) == reference_unseal_mode7(raw, key)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mode7_telegrams(), st.binary(max_size=24))
def test_intact_telegrams_decrypt_as_sealed(telegram: Telegram, beyond: bytes) -> None:
    raw = telegram.frame + beyond
    found = pipeline_fast._unseal_mode7(raw, OMSKey(telegram.key))
    assert found == reference_unseal_mode7(raw, OMSKey(telegram.key))
    # Without encrypted blocks the object path says "not encrypted"; a KDF other than the
    # OMS one is unsupported.
    if telegram.blocks and telegram.kdf_selection == 1:
        assert found == (telegram.plain, telegram.sts)
    else:
        assert found is None
    assert pipeline_fast._unseal_mode7(raw, OMSKey(bytes(b ^ 0x80 for b in telegram.key))) is None


@settings(max_examples=300, deadline=None)
@given(mode7_telegrams(), st.binary(max_size=24), st.booleans())
def test_intact_telegrams_without_an_ell_never_take_the_object_path(
    telegram: Telegram, beyond: bytes, right_key: bool
) -> None:
    if telegram.frame[10] != 0x90:
        return  # generated with an ELL
    raw = telegram.frame + beyond
    given_key = OMSKey(telegram.key if right_key else bytes(16))
    calls: list[bytes] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_fast, "_unseal_mode7_objects", lambda raw, key: calls.append(raw))
        found = pipeline_fast._unseal_mode7(raw, given_key)
    assert not calls
    assert found == reference_unseal_mode7(raw, given_key)


def test_the_checked_decryption_refuses_a_mac_of_no_known_length() -> None:
    # An empty MAC would "verify" against any key: open_mode7 only takes AFL MAC lengths.
    key = OMSKey(bytes(16))
    for mac in (b"", b"\x00", bytes(3), bytes(17)):
        assert open_mode7(key, bytes(8), b"", mac, bytes(16)) is None


# --- fast_records on a simulated building -------------------------------------------------------------


def _records_view(read: FastRead) -> list[tuple[Any, ...] | None]:
    by_columns = telegram_rows(read.columns, read.times)
    return [
        None
        if item is None
        else (
            item.readings or by_columns.get(telegram, []),
            read.times.text(item.event_minute),
            item.sts,
            item.status_key,
            item.apl,
            item.layout,
            item.signature,
        )
        for telegram, item in enumerate(read.records)
    ]


def _captured_fast_calls(monkeypatch: pytest.MonkeyPatch, simulation: Simulation) -> list[tuple[Any, ...]]:
    """The arguments of every fast_records call of a columnar pipeline run."""
    calls: list[tuple[Any, ...]] = []
    original = pipeline_fast.fast_records

    def spy(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline_module, "fast_records", spy)
        pipeline = Pipeline(
            site=simulation.site, keys=simulation.keys, store=None, gateways=simulation.gateways
        )
        for start in range(0, len(simulation.receptions), 400):
            pipeline.feed(simulation.receptions[start : start + 400], models=False)
    return calls


def _fast_outputs(
    monkeypatch: pytest.MonkeyPatch, unseal7: Callable[[bytes, Any], Unsealed7], args: tuple[Any, ...]
) -> tuple[list[tuple[Any, ...] | None], list[bool]]:
    with monkeypatch.context() as patch:
        patch.setattr(pipeline_fast, "_unseal_mode7", unseal7)
        read = pipeline_fast.fast_records(*args)
    return _records_view(read), read.dependent.tolist()


def _tampered(frames: list[bytes], seed: int) -> list[bytes]:
    chance = random.Random(seed)
    out = []
    for frame in frames:
        data = bytearray(frame)
        if chance.random() < 0.3:
            data[chance.randrange(len(data))] ^= 1 << chance.randrange(8)
        if chance.random() < 0.1:
            data = data[: chance.randrange(len(data) + 1)]
        out.append(bytes(data))
    return out


def test_fast_records_reads_the_same_mode7_telegrams(monkeypatch: pytest.MonkeyPatch) -> None:
    simulation = simulate(start=dt.date(2025, 10, 1), days=14, seed=7, units=2)
    calls = _captured_fast_calls(monkeypatch, simulation)
    decrypted = 0
    for args in calls:
        mode7 = np.flatnonzero(args[0].info["security_mode"] == 7).tolist()
        new = _fast_outputs(monkeypatch, pipeline_fast._unseal_mode7, args)
        assert new == _fast_outputs(monkeypatch, reference_unseal_mode7, args)
        decrypted += sum(new[0][row] is not None for row in mode7)
        # Frames that no longer match their scan (the function must not trust the scan).
        for seed in range(3):
            tampered = (*args[:5], _tampered(list(args[5]), seed))
            assert _fast_outputs(monkeypatch, pipeline_fast._unseal_mode7, tampered) == _fast_outputs(
                monkeypatch, reference_unseal_mode7, tampered
            )
    assert decrypted > 0


def test_pipeline_stores_the_same_rows_as_with_the_object_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    simulation = simulate(start=dt.date(2025, 10, 1), days=14, seed=3, units=2)

    def stored(unseal7: Callable[[bytes, Any], Unsealed7]) -> tuple[Any, ...]:
        store = SQLiteStore(":memory:")
        with monkeypatch.context() as patch:
            patch.setattr(pipeline_fast, "_unseal_mode7", unseal7)
            pipeline = Pipeline(
                site=simulation.site,
                keys=simulation.keys,
                store=store,
                gateways=simulation.gateways,
                fingerprint_key=bytes(range(16)),
            )
            pipeline.feed(simulation.receptions, models=False)
        result = store.digest(), store.counts(), pipeline.stats()
        store.close()
        return result

    assert stored(pipeline_fast._unseal_mode7) == stored(reference_unseal_mode7)
