"""The stored form of an uplink's receptions.

An uplink row keeps the copies it was heard in as JSON text, ``[[gateway_id,
received_at_ms, rssi, snr], ...]``: distinct copies in time order (then gateway, RSSI, SNR),
with NaN and a missing level as ``null`` and -0.0 as 0.0. Two ways make the same text:

- :func:`encode_receptions` from the :class:`ReceptionRow` objects of one uplink;
- :func:`encode_reception_columns` for a whole batch of uplinks from per-copy columns: the
  order and the duplicates are settled in numpy, each distinct gateway and level is encoded
  once, and the C core (``mc_join_receptions``, with its Python twin) puts the arrays
  together, with no object per copy.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any, cast

import msgspec
import numpy as np
import numpy.typing as npt

from minolcore import _native
from minolcore.errors import InputError
from minolcore.store.base import ReceptionRow

__all__ = ["EncodedReceptions", "canonical_receptions", "encode_reception_columns", "encode_receptions"]

_encode = msgspec.json.Encoder().encode
_NULL = b"null"
# The longest copy beyond its pieces: brackets, three commas, a 20-character int64, the comma
# before it.
_COPY_OVERHEAD = 26


class EncodedReceptions:
    """Per uplink: its receptions' stored text and its first and last reception time (ms
    since the epoch), as columns: uplink ``i``'s text is ``data[offsets[i]:offsets[i + 1]]``
    (UTF-8), its times ``first[i]`` and ``last[i]`` (int64)."""

    __slots__ = ("data", "first", "last", "offsets")

    def __init__(
        self,
        data: bytes,
        offsets: npt.NDArray[np.int64],
        first: npt.NDArray[np.int64],
        last: npt.NDArray[np.int64],
    ) -> None:
        self.data = data
        self.offsets = offsets
        self.first = first
        self.last = last

    @property
    def texts(self) -> list[str]:
        """Every uplink's text."""
        bounds = self.offsets.tolist()
        if self.data.isascii():
            # One str for the batch, sliced: the offsets are character offsets too.
            text = self.data.decode("ascii")
            return [text[a:b] for a, b in itertools.pairwise(bounds)]
        return [self.data[a:b].decode() for a, b in itertools.pairwise(bounds)]

    @property
    def first_ms(self) -> list[int]:
        return cast(list[int], self.first.tolist())

    @property
    def last_ms(self) -> list[int]:
        return cast(list[int], self.last.tolist())


def encode_reception_columns(
    uplinks: int,
    uplink: Any,
    gateway: Any,
    gateway_ids: Sequence[str],
    received_ms: Any,
    rssi: Any,
    snr: Any,
) -> EncodedReceptions:
    """The stored receptions of ``uplinks`` uplinks from one row per copy.

    Copy ``i`` belongs to uplink ``uplink[i]`` (0 .. uplinks - 1), was heard by gateway
    ``gateway_ids[gateway[i]]`` at ``received_ms[i]`` (ms since the epoch) with ``rssi[i]``
    dBm and ``snr[i]`` dB (NaN: not given). Every uplink needs at least one copy. Raises
    :class:`InputError` for columns that do not describe such a batch.
    """
    try:
        owner = np.ascontiguousarray(uplink, dtype=np.int64)
        gateway_of = np.ascontiguousarray(gateway, dtype=np.int64)
        times = np.ascontiguousarray(received_ms, dtype=np.int64)
        # + 0.0 turns -0.0 into 0.0, as the stored form wants.
        rssi_of = np.asarray(rssi, dtype=np.float64) + 0.0
        snr_of = np.asarray(snr, dtype=np.float64) + 0.0
    except (TypeError, ValueError, OverflowError) as error:
        raise InputError(f"reception columns: {error}") from None
    copies = len(owner)
    if any(column.shape != (copies,) for column in (gateway_of, times, rssi_of, snr_of)):
        raise InputError("reception columns need one value per copy")
    if copies and (owner.min() < 0 or owner.max() >= uplinks):
        raise InputError(f"an uplink index outside 0..{uplinks - 1}")
    if copies and (gateway_of.min() < 0 or gateway_of.max() >= len(gateway_ids)):
        raise InputError(f"a gateway index outside 0..{len(gateway_ids) - 1}")
    if not all(isinstance(name, str) for name in gateway_ids):
        raise InputError("gateway ids must be text")
    by_name = sorted(range(len(gateway_ids)), key=gateway_ids.__getitem__)
    rank = np.empty(len(gateway_ids), dtype=np.int64)
    rank[by_name] = np.arange(len(gateway_ids))
    gateway_rank = rank[gateway_of]
    rssi_given, snr_given = ~np.isnan(rssi_of), ~np.isnan(snr_of)
    rssi_value = np.where(rssi_given, rssi_of, 0.0)
    snr_value = np.where(snr_given, snr_of, 0.0)
    # Per uplink in stored order: time, gateway id, then RSSI and SNR (a missing one first).
    # The levels only order copies that one gateway reported twice at the same time: rare,
    # so the copies are sorted by the first three keys, and by all only if such a pair exists.
    keys = (snr_value, snr_given, rssi_value, rssi_given, gateway_rank, times, owner)
    order = np.lexsort(keys[4:])
    if copies > 1 and _adjacent_equal(keys[4:], order).any():
        order = np.lexsort(keys)
        # A copy equal to the one before it in every key is the same reception (a set).
        kept = np.ones(copies, dtype=np.bool_)
        kept[1:] = ~_adjacent_equal(keys, order)
        order = order[kept]
    counts = np.bincount(owner[order], minlength=uplinks)
    if uplinks and not counts.all():
        raise InputError("every uplink needs at least one reception")
    starts = np.zeros(uplinks + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    pieces, gateway_piece, rssi_piece, snr_piece = _pieces(
        gateway_ids,
        gateway_of[order],
        rssi_given[order],
        rssi_value[order],
        snr_given[order],
        snr_value[order],
    )
    ordered_times = times[order]
    data, offsets = _join(starts, gateway_piece, ordered_times, rssi_piece, snr_piece, pieces)
    return EncodedReceptions(data, offsets, ordered_times[starts[:-1]], ordered_times[starts[1:] - 1])


def _adjacent_equal(
    columns: tuple[npt.NDArray[Any], ...], order: npt.NDArray[np.intp]
) -> npt.NDArray[np.bool_]:
    """Per pair of neighbours in ``order``: whether they are equal in every column."""
    same = np.ones(len(order) - 1, dtype=np.bool_)
    for column in columns:
        ordered = column[order]
        same &= ordered[1:] == ordered[:-1]
    return same


def _pieces(
    gateway_ids: Sequence[str],
    gateway: npt.NDArray[np.int64],
    rssi_given: npt.NDArray[np.bool_],
    rssi: npt.NDArray[np.float64],
    snr_given: npt.NDArray[np.bool_],
    snr: npt.NDArray[np.float64],
) -> tuple[list[bytes], npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """The JSON texts the copies are made of (each gateway id, ``null``, each distinct level)
    and each copy's gateway, RSSI and SNR piece numbers."""
    try:
        pieces = [_encode(name) for name in gateway_ids]
    except (msgspec.EncodeError, UnicodeEncodeError, TypeError) as error:
        raise InputError(f"a gateway id that cannot be stored: {error}") from None
    null = len(pieces)
    pieces.append(_NULL)
    numbered = []
    for given, values in ((rssi_given, rssi), (snr_given, snr)):
        distinct, which = np.unique(values[given], return_inverse=True)
        number = np.full(len(values), null, dtype=np.int32)
        number[given] = which.reshape(-1) + len(pieces)
        # Encoded as msgspec encodes a float (shortest round trip; infinities as null).
        pieces.extend(_encode(value) for value in distinct.tolist())
        numbered.append(number)
    return pieces, gateway.astype(np.int32), numbered[0], numbered[1]


def _join(
    starts: npt.NDArray[np.int64],
    gateway_piece: npt.NDArray[np.int32],
    times: npt.NDArray[np.int64],
    rssi_piece: npt.NDArray[np.int32],
    snr_piece: npt.NDArray[np.int32],
    pieces: list[bytes],
) -> tuple[bytes, npt.NDArray[np.int64]]:
    """The texts of the uplinks, one after another, and where each starts (and the last ends)."""
    lengths = np.array([len(piece) for piece in pieces], dtype=np.int64)
    piece_offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum(lengths, out=piece_offsets[1:])
    capacity = int(
        2 * (len(starts) - 1)
        + len(times) * (_COPY_OVERHEAD + 1)
        + lengths[gateway_piece].sum()
        + lengths[rssi_piece].sum()
        + lengths[snr_piece].sum()
    )
    joined = b"".join(pieces)
    out = np.empty(capacity, dtype=np.uint8)
    out_offsets = np.empty(len(starts), dtype=np.int64)
    if _native.BACKEND == "cffi":
        join = join_receptions_native
    else:
        from minolcore._reference.receptions import join_receptions_into as join  # noqa: PLC0415
    written = join(
        starts, gateway_piece, times, rssi_piece, snr_piece, joined, piece_offsets, out, out_offsets
    )
    if written < 0:  # the bounds above make this unreachable; never read a partial buffer
        raise AssertionError("mc_join_receptions refused columns its caller checked")
    return out[:written].tobytes(), out_offsets


def join_receptions_native(
    group_starts: npt.NDArray[np.int64],
    gateway_piece: npt.NDArray[np.int32],
    received_ms: npt.NDArray[np.int64],
    rssi_piece: npt.NDArray[np.int32],
    snr_piece: npt.NDArray[np.int32],
    pieces: bytes,
    piece_offsets: npt.NDArray[np.int64],
    out: npt.NDArray[np.uint8],
    out_offsets: npt.NDArray[np.int64],
) -> int:
    """``mc_join_receptions`` of the C core, called as its twin
    :func:`minolcore._reference.receptions.join_receptions_into` is (the C core must be
    built): the bytes written to ``out``, or -1 when they would not fit."""
    ffi, lib = _native.ffi, _native.lib
    return int(
        lib.mc_join_receptions(
            ffi.from_buffer("int64_t[]", group_starts),
            len(group_starts) - 1,
            len(received_ms),
            ffi.from_buffer("int32_t[]", gateway_piece),
            ffi.from_buffer("int64_t[]", received_ms),
            ffi.from_buffer("int32_t[]", rssi_piece),
            ffi.from_buffer("int32_t[]", snr_piece),
            pieces,
            ffi.from_buffer("int64_t[]", piece_offsets),
            len(piece_offsets) - 1,
            ffi.from_buffer("uint8_t[]", out),
            len(out),
            ffi.from_buffer("int64_t[]", out_offsets),
        )
    )


# -- the same from row objects ---------------------------------------------------------------


def encode_receptions(copies: Sequence[ReceptionRow]) -> tuple[int, int, str]:
    """(first and last reception time in ms since the epoch, stored text) of an uplink heard
    in ``copies`` (at least one), as the uplinks table orders them: what
    :func:`encode_reception_columns` makes of the same copies."""
    if not copies:
        raise InputError("an uplink is stored with the copies it was heard in: none given")
    canonical = canonical_receptions(copies)
    # JSON text, not UTF-8 bytes: bytes would bind as a BLOB, and the stored column is text.
    return canonical[0].received_at_ms, canonical[-1].received_at_ms, _encode(canonical).decode()


_BY_TIME_AND_GATEWAY = operator.attrgetter("received_at_ms", "gateway_id")


def _reception_order(row: ReceptionRow) -> tuple[object, ...]:
    return (
        row.received_at_ms,
        row.gateway_id,
        row.rssi is not None,
        row.rssi or 0.0,
        row.snr is not None,
        row.snr or 0.0,
    )


def canonical_receptions(receptions: Sequence[ReceptionRow]) -> Sequence[ReceptionRow]:
    """Distinct receptions in time order (then gateway, RSSI, SNR): the stored form of a set.

    Values that compare equal but encode differently (an int RSSI, -0.0, NaN) are normalised
    first, so which of them came first cannot show in the stored text."""
    if len(receptions) == 1:
        row = receptions[0]
        return receptions if _is_normal(row) else (_normalised(row),)
    # Sorted first and deduplicated only where two copies share a time and gateway: hashing
    # every copy into a set costs more than the rare duplicate.
    rows = [row if _is_normal(row) else _normalised(row) for row in receptions]
    rows.sort(key=_BY_TIME_AND_GATEWAY)
    for one, other in itertools.pairwise(rows):
        if one.received_at_ms == other.received_at_ms and one.gateway_id == other.gateway_id:
            return sorted(set(rows), key=_reception_order)  # a gateway heard it twice at once
    return rows


def _is_normal(row: ReceptionRow) -> bool:
    """Whether the row is in the one form its values encode to (see :func:`_normalised`)."""
    rssi, snr = row.rssi, row.snr
    # One expression, not helper calls: this runs once per stored copy.
    return (
        (rssi is None or (type(rssi) is float and rssi == rssi and rssi != 0.0))  # noqa: PLR0124
        and (snr is None or (type(snr) is float and snr == snr and snr != 0.0))  # noqa: PLR0124
        and type(row.received_at_ms) is int
    )


def _normalised(row: ReceptionRow) -> ReceptionRow:
    return ReceptionRow(
        gateway_id=row.gateway_id,
        received_at_ms=int(row.received_at_ms),
        rssi=_normal_level(row.rssi),
        snr=_normal_level(row.snr),
    )


def _normal_level(value: float | None) -> float | None:
    if value is None or value != value:  # noqa: PLR0124  # NaN is stored as "not given"
        return None
    return float(value) + 0.0  # -0.0 + 0.0 is 0.0
