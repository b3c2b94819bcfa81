"""Shared test configuration: Hypothesis profiles and the corpus fixture."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

DATA = pathlib.Path(__file__).parent / "data"

# No deadlines: the machine is shared and the pure-Python reference is slow by design.
settings.register_profile(
    "default", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def load_corpus() -> list[dict[str, Any]]:
    """The 275 real telegrams with a peer decoder's expected output (copied from the spec folder)."""
    with (DATA / "wmbus-peer-cases.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    return load_corpus()
