"""The columnar path of the pipeline (``feed(..., models=False)``) stores exactly what the
object path stores: same rows in every table, same statistics, whatever the batch size
or the arrival order."""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minolcore import pipeline as pipeline_module
from minolcore.devices import ProfileRegistry
from minolcore.devices.profiles import GenericProfile
from minolcore.pipeline import Pipeline, PipelineStats, StoredUplink
from minolcore.pipeline_fast import scan_uplink_frames
from minolcore.reception import Radio, Reception
from minolcore.simulator import Simulation, simulate
from minolcore.store import SQLiteStore

FINGERPRINT_KEY = bytes(range(16))


@functools.cache
def building(days: int, seed: int, units: int) -> Simulation:
    return simulate(start=dt.date(2025, 10, 1), days=days, seed=seed, units=units)


def run(
    simulation: Simulation,
    receptions: Sequence[Reception],
    *,
    models: bool,
    batch_size: int,
    profiles: ProfileRegistry | None = None,
) -> tuple[dict[str, str], dict[str, int], PipelineStats]:
    store = SQLiteStore(":memory:")
    pipeline = Pipeline(
        site=simulation.site,
        keys=simulation.keys,
        store=store,
        gateways=simulation.gateways,
        fingerprint_key=FINGERPRINT_KEY,
        profiles=profiles,
    )
    for start in range(0, len(receptions), batch_size):
        pipeline.feed(receptions[start : start + batch_size], models=models)
    result = store.digest(), store.counts(), pipeline.stats()
    store.close()
    return result


def test_simulated_building_stores_the_same_rows() -> None:
    simulation = building(60, 11, 3)
    objects = run(simulation, simulation.receptions, models=True, batch_size=20_000)
    columns = run(simulation, simulation.receptions, models=False, batch_size=20_000)
    assert objects[1]["readings"] > 0 and objects[1]["status_events"] > 0
    assert columns == objects


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 1_000),
    batch_size=st.sampled_from([1, 7, 64, 500, 5_000]),
    shuffle=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
)
def test_same_rows_for_any_seed_batch_size_and_order(seed: int, batch_size: int, shuffle: int | None) -> None:
    simulation = building(14, seed, 2)
    receptions = list(simulation.receptions)
    if shuffle is not None:
        random.Random(shuffle).shuffle(receptions)
    objects = run(simulation, receptions, models=True, batch_size=batch_size)
    columns = run(simulation, receptions, models=False, batch_size=batch_size)
    assert columns == objects


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 400), st.integers(2, 9))
def test_damaged_copies_among_clean_ones_store_the_same_rows(seed: int, batch_size: int, every: int) -> None:
    """Copies damaged in transit and handed over without CRCs (a gateway that strips them)
    decode on the object path with wrong values, next to clean telegrams of the same meters
    on the columnar path. A historic value keeps the first row of its batch, so both paths
    must keep the rows in batch order (they did not: the object path's came first)."""
    simulation = building(40, 5, 3)
    rng = random.Random(seed)
    receptions = list(simulation.receptions)
    for i in range(0, len(receptions), every):
        frame = bytearray(receptions[i].payload)
        frame[rng.randrange(12, len(frame))] ^= 1 << rng.randrange(8)
        receptions[i] = msgspec.structs.replace(receptions[i], payload=bytes(frame), gateway_id="GW-3")
    fast = run(simulation, receptions, models=False, batch_size=batch_size)
    slow = run(simulation, receptions, models=True, batch_size=batch_size)
    assert fast == slow


def test_a_registered_profile_takes_the_object_path_with_the_same_rows() -> None:
    # A profile of the user may read anything in the records, so its devices keep the
    # object path; the rows are still the same.
    simulation = building(14, 3, 2)
    profiles = ProfileRegistry()
    profiles.register(GenericProfile(), device_type=0x08)
    objects = run(simulation, simulation.receptions, models=True, batch_size=1_000, profiles=profiles)
    columns = run(simulation, simulation.receptions, models=False, batch_size=1_000, profiles=profiles)
    assert columns == objects
    assert "generic" in columns[2].devices_by_kind


def test_a_callback_gets_models_on_either_call() -> None:
    simulation = building(14, 5, 2)
    seen: list[StoredUplink] = []
    pipeline = Pipeline(
        site=simulation.site,
        keys=simulation.keys,
        store=None,
        gateways=simulation.gateways,
        on_uplink=seen.append,
    )
    result = pipeline.feed(simulation.receptions, models=False)
    assert seen and len(seen) == len(result.uplinks)
    assert all(uplink.model is not None for uplink in seen if not uplink.errors)


def _spy_fast_modes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the security mode of every telegram the columnar path reads itself."""
    modes: list[int] = []
    original = pipeline_module.fast_records

    def spy(*args: Any, **kwargs: Any) -> Any:
        read = original(*args, **kwargs)
        scanned = args[0]
        for mode, item in zip(scanned.info["security_mode"].tolist(), read.records, strict=True):
            if item is not None:
                modes.append(mode)
        return read

    monkeypatch.setattr(pipeline_module, "fast_records", spy)
    return modes


def test_mode7_telegrams_take_the_columnar_path(monkeypatch: pytest.MonkeyPatch) -> None:
    simulation = building(14, 7, 2)
    objects = run(simulation, simulation.receptions, models=True, batch_size=500)
    modes = _spy_fast_modes(monkeypatch)
    columns = run(simulation, simulation.receptions, models=False, batch_size=500)
    assert columns == objects
    assert 7 in modes and 5 in modes


def _mode7(reception: Reception) -> bool:
    scanned = scan_uplink_frames([reception.payload])
    return bool(scanned.info["status"][0] == 0 and scanned.info["security_mode"][0] == 7)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1_000), position=st.integers(1, 40), every=st.integers(1, 4))
def test_tampered_mode7_telegrams_store_the_same_rows(seed: int, position: int, every: int) -> None:
    # A flipped byte (MAC, ciphertext or header) makes the fast path hand the telegram to
    # the object path, which reports it: both paths still store the same rows.
    simulation = building(14, seed % 5, 2)
    receptions: list[Reception] = []
    tampered = 0
    for reception in simulation.receptions:
        if reception.radio is Radio.WMBUS and _mode7(reception):
            tampered += 1
            if tampered % every == 0:
                payload = bytearray(reception.payload)
                payload[-min(position, len(payload) - 1)] ^= 0x5A
                reception = msgspec.structs.replace(reception, payload=bytes(payload))
        receptions.append(reception)
    assert tampered
    objects = run(simulation, receptions, models=True, batch_size=300)
    columns = run(simulation, receptions, models=False, batch_size=300)
    assert columns == objects
