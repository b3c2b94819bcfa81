"""The stored form of receptions built from columns equals the form built from row objects,
and the C join equals its Python twin on any input, valid or not."""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore import _native
from minolcore._reference.receptions import join_receptions_into
from minolcore.errors import InputError
from minolcore.store.base import ReceptionRow
from minolcore.store.receptions import encode_reception_columns, encode_receptions

GATEWAYS = ["GW-2", "GW-1", "gw-\u00e4", "A", '"quoted"']
LEVELS = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, -68.2, 1e22, 5e-324]),
    st.floats(allow_nan=True),
    st.integers(-200, 200),
)
COPY = st.tuples(
    st.integers(0, len(GATEWAYS) - 1),
    st.sampled_from([0, 1, 1704081572337, 1704081572338, 2**62]),
    LEVELS,
    LEVELS,
)


def stored_from_rows(copies: list[tuple[int, int, object, object]]) -> tuple[str, int, int]:
    """The object path: ReceptionRow objects, put in canonical order and encoded."""
    rows = [
        ReceptionRow(gateway_id=GATEWAYS[g], received_at_ms=ms, rssi=rssi, snr=snr)  # type: ignore[arg-type]
        for g, ms, rssi, snr in copies
    ]
    first_ms, last_ms, text = encode_receptions(rows)
    return text, first_ms, last_ms


def level(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


@pytest.mark.equivalence
@given(st.lists(st.lists(COPY, min_size=1, max_size=5), max_size=6), st.randoms())
def test_columns_give_the_text_of_the_row_objects(
    uplinks: list[list[tuple[int, int, object, object]]], random: object
) -> None:
    flat = [(position, *copy) for position, copies in enumerate(uplinks) for copy in copies]
    random.shuffle(flat)  # type: ignore[attr-defined]
    encoded = encode_reception_columns(
        len(uplinks),
        [copy[0] for copy in flat],
        [copy[1] for copy in flat],
        GATEWAYS,
        [copy[2] for copy in flat],
        [level(copy[3]) for copy in flat],
        [level(copy[4]) for copy in flat],
    )
    for position, copies in enumerate(uplinks):
        assert (encoded.texts[position], encoded.first_ms[position], encoded.last_ms[position]) == (
            stored_from_rows(copies)
        )


def test_a_gateway_that_heard_a_copy_twice_is_stored_once() -> None:
    encoded = encode_reception_columns(
        1, [0, 0, 0], [1, 1, 0], GATEWAYS, [10, 10, 10], [-70.0, -70.0, math.nan], [math.nan] * 3
    )
    assert encoded.texts == ['[["GW-1",10,-70.0,null],["GW-2",10,null,null]]']
    assert (encoded.first_ms, encoded.last_ms) == ([10], [10])


def test_no_uplinks_and_no_copies() -> None:
    encoded = encode_reception_columns(0, [], [], GATEWAYS, [], [], [])
    assert (encoded.texts, encoded.first_ms, encoded.last_ms) == ([], [], [])


@pytest.mark.parametrize(
    ("uplinks", "owner", "gateway", "times", "message"),
    [
        (2, [0], [0], [1], "at least one reception"),
        (1, [1], [0], [1], "uplink index"),
        (1, [-1], [0], [1], "uplink index"),
        (1, [0], [len(GATEWAYS)], [1], "gateway index"),
        (1, [0], [-1], [1], "gateway index"),
        (1, [0, 0], [0], [1, 2], "one value per copy"),
        (1, [0], [0], ["soon"], "reception columns"),
    ],
)
def test_columns_that_describe_no_batch_are_refused(
    uplinks: int, owner: list[int], gateway: list[int], times: list[object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        encode_reception_columns(
            uplinks, owner, gateway, GATEWAYS, times, [math.nan] * len(owner), [0.0] * len(owner)
        )


class JoinColumns(NamedTuple):
    """The arguments of ``mc_join_receptions`` besides the output."""

    starts: npt.NDArray[np.int64]
    gateway: npt.NDArray[np.int32]
    times: npt.NDArray[np.int64]
    rssi: npt.NDArray[np.int32]
    snr: npt.NDArray[np.int32]
    pieces: bytes
    piece_offsets: npt.NDArray[np.int64]


Joined = tuple[int, bytes, list[int]]


def native_join(columns: JoinColumns, capacity: int) -> Joined:
    """``mc_join_receptions`` (its twin under MINOLCORE_PUREPYTHON=1)."""
    if _native.BACKEND != "cffi":
        return twin_join(columns, capacity)
    ffi, lib = _native.ffi, _native.lib
    out = np.zeros(capacity, dtype=np.uint8)
    out_offsets = np.zeros(len(columns.starts), dtype=np.int64)
    written = int(
        lib.mc_join_receptions(
            ffi.from_buffer("int64_t[]", columns.starts),
            len(columns.starts) - 1,
            len(columns.gateway),
            ffi.from_buffer("int32_t[]", columns.gateway),
            ffi.from_buffer("int64_t[]", columns.times),
            ffi.from_buffer("int32_t[]", columns.rssi),
            ffi.from_buffer("int32_t[]", columns.snr),
            columns.pieces,
            ffi.from_buffer("int64_t[]", columns.piece_offsets),
            len(columns.piece_offsets) - 1,
            ffi.from_buffer("uint8_t[]", out),
            capacity,
            ffi.from_buffer("int64_t[]", out_offsets),
        )
    )
    return written, out[: max(written, 0)].tobytes(), out_offsets.tolist() if written >= 0 else []


def twin_join(columns: JoinColumns, capacity: int) -> Joined:
    out = np.zeros(capacity, dtype=np.uint8)
    out_offsets = np.zeros(len(columns.starts), dtype=np.int64)
    written = join_receptions_into(*columns, out, out_offsets)
    return written, out[: max(written, 0)].tobytes(), out_offsets.tolist() if written >= 0 else []


def model_join(columns: JoinColumns) -> Joined:
    """What the join means, given room enough: -1 for columns naming what is not there."""
    bounds = columns.piece_offsets.tolist()
    texts = [columns.pieces[a:b] for a, b in itertools.pairwise(bounds)]
    gateway, times = columns.gateway.tolist(), columns.times.tolist()
    rssi, snr = columns.rssi.tolist(), columns.snr.tolist()
    out, offsets = b"", [0]
    for first, end in itertools.pairwise(columns.starts.tolist()):
        if not 0 <= first <= end <= len(gateway):
            return -1, b"", []
        arrays = []
        for copy in range(first, end):
            chosen = (gateway[copy], rssi[copy], snr[copy])
            if not all(0 <= piece < len(texts) for piece in chosen):
                return -1, b"", []
            g, r, n = (texts[piece] for piece in chosen)
            arrays.append(b"[%s,%d,%s,%s]" % (g, times[copy], r, n))
        out += b"[" + b",".join(arrays) + b"]"
        offsets.append(len(out))
    return len(out), out, offsets


PIECE = st.binary(max_size=6)
INDEX = st.integers(-2, 6)
COPY_PIECES = st.tuples(INDEX, st.integers(-(2**63), 2**63 - 1), INDEX, INDEX)
JOIN_INPUT = (
    st.lists(st.integers(-1, 9), min_size=1, max_size=5),
    st.lists(COPY_PIECES, max_size=8),
    st.lists(PIECE, max_size=5),
)


def join_columns(
    starts: list[int], copies: list[tuple[int, int, int, int]], pieces: list[bytes]
) -> JoinColumns:
    bounds = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([len(piece) for piece in pieces], out=bounds[1:])
    return JoinColumns(
        np.array(starts, dtype=np.int64),
        np.array([c[0] for c in copies], dtype=np.int32),
        np.array([c[1] for c in copies], dtype=np.int64),
        np.array([c[2] for c in copies], dtype=np.int32),
        np.array([c[3] for c in copies], dtype=np.int32),
        b"".join(pieces),
        bounds,
    )


@given(*JOIN_INPUT)
def test_the_join_writes_what_the_columns_mean(
    starts: list[int], copies: list[tuple[int, int, int, int]], pieces: list[bytes]
) -> None:
    columns = join_columns(starts, copies, pieces)
    roomy = 2 * len(starts) + len(copies) * (27 + 3 * len(columns.pieces))
    assert native_join(columns, roomy) == model_join(columns)


@pytest.mark.equivalence
@given(*JOIN_INPUT, st.integers(0, 300))
def test_c_join_equals_its_twin_on_any_columns(
    starts: list[int], copies: list[tuple[int, int, int, int]], pieces: list[bytes], capacity: int
) -> None:
    """Group starts out of order or beyond the copies, piece numbers out of range and any
    capacity: both refuse alike (-1) or write the same bytes and offsets."""
    columns = join_columns(starts, copies, pieces)
    assert native_join(columns, capacity) == twin_join(columns, capacity)


def test_gateway_ids_that_are_not_text_are_refused() -> None:
    with pytest.raises(InputError, match="text"):
        encode_reception_columns(1, [0], [0], ["GW-1", 7], [1], [math.nan], [math.nan])  # type: ignore[list-item]
