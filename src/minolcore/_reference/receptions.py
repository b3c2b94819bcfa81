"""Reference twin of ``mc_join_receptions``: each uplink's receptions as one JSON array."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["join_receptions_into"]


def join_receptions_into(
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
    """Fill ``out`` and ``out_offsets`` exactly as ``mc_join_receptions`` does; returns the
    bytes written, or -1 where it returns -1."""
    bounds = piece_offsets.tolist()
    n_pieces = len(bounds) - 1
    texts = [pieces[bounds[p] : bounds[p + 1]] for p in range(n_pieces)]
    starts = group_starts.tolist()
    gateways, times = gateway_piece.tolist(), received_ms.tolist()
    rssis, snrs = rssi_piece.tolist(), snr_piece.tolist()
    capacity = len(out)
    written = bytearray()
    out_offsets[0] = 0
    for group in range(len(starts) - 1):
        first, end = starts[group], starts[group + 1]
        # The C function's checks, in its order: room for the brackets, then for each copy
        # at its longest (a 20-character number), before anything is written.
        if first < 0 or end < first or end > len(gateways) or len(written) + 2 > capacity:
            return -1
        written += b"["
        for copy in range(first, end):
            chosen = (gateways[copy], rssis[copy], snrs[copy])
            if any(piece < 0 or piece >= n_pieces for piece in chosen):
                return -1
            gateway, rssi, snr = (texts[piece] for piece in chosen)
            if len(written) + 26 + len(gateway) + len(rssi) + len(snr) + 1 > capacity:
                return -1
            if copy != first:
                written += b","
            written += b"[%s,%d,%s,%s]" % (gateway, times[copy], rssi, snr)
        written += b"]"
        out_offsets[group + 1] = len(written)
    out[: len(written)] = np.frombuffer(bytes(written), dtype=np.uint8)
    return len(written)
