"""Gateway log files as ``minolcore ingest`` reads them: wireless M-Bus collector lines and
LoRaWAN packet-forwarder lines, in any mix.

Collector lines (JSON with a frame, or plain hex) are read by
:mod:`minolcore.adapters.collector`; a JSON line with ``rxpk`` (the body of a Semtech
PUSH_DATA and the gateway's id) or ``datagram`` (a whole UDP datagram in hex) by
:func:`minolcore.adapters.semtech.parse_log_line`, one reception per received packet.
Every line gives receptions or a :class:`~minolcore.adapters.collector.RejectedLine` with
its reason; packets whose radio CRC failed are dropped as the protocol says, and recorded
as one rejected line each line that had some, so nothing is lost silently.

:func:`iter_gateway_log_file` gives the items line by line; :func:`iter_log_batches` gives
the same in batches, the wireless M-Bus receptions as columns: the C core reads lines of the
common collector shape in bulk, and every other line goes through the line reader, in its
place (what ``minolcore ingest`` uses).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt

from minolcore.adapters.collector import (
    GATEWAY_DEFAULT,
    GATEWAY_UNKNOWN,
    LINE_READ,
    CollectorItem,
    RejectedLine,
    RejectReason,
    check_defaults,
    read_collector_block,
    read_numbered_line,
)
from minolcore.adapters.semtech import DatagramError, parse_log_line
from minolcore.errors import InputError
from minolcore.reception import Radio, Reception, ReceptionColumns

__all__ = ["LogBatch", "iter_gateway_log_file", "iter_log_batches"]

_PACKET_FORWARDER_KEYS = (b'"rxpk"', b'"datagram"')


def iter_gateway_log_file(
    path: str | PathLike[str], *, default_gateway: str, default_time: float
) -> Iterator[tuple[CollectorItem, ...]]:
    """Stream the items of a log file (``default_time`` in Unix seconds): one tuple per line,
    in line order, with what the line gave (usually one item; a packet-forwarder line one per
    packet, or none for a gateway's keep-alive).

    Raises :class:`~minolcore.errors.InputError` for bad defaults and :class:`OSError` for
    an unreadable file; bad lines never raise.
    """
    check_defaults(default_gateway, default_time)
    return _items(path, default_gateway, default_time)


def _items(
    path: str | PathLike[str], default_gateway: str, default_time: float
) -> Iterator[tuple[CollectorItem, ...]]:
    # One loop over the raw lines (read as bytes, as the collector reader does): a million
    # lines pass through one generator, not two.
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            yield _line_items(raw, line_no, default_gateway, default_time)


def _line_items(
    raw: bytes, line_no: int, default_gateway: str, default_time: float
) -> tuple[CollectorItem, ...]:
    """What line ``line_no`` gives: one item, or a packet-forwarder line's items."""
    item = read_numbered_line(raw, line_no, default_gateway, default_time)
    # A packet-forwarder line has no frame for the collector reader: only then is it read
    # again, so collector lines cost nothing more.
    if isinstance(item, RejectedLine) and item.reason is RejectReason.MISSING_FRAME:
        if line_no == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # the collector reader drops it too
        if any(key in raw for key in _PACKET_FORWARDER_KEYS):
            return tuple(_packet_forwarder_items(item, raw, default_gateway, default_time))
    return (item,)


def _packet_forwarder_items(
    item: RejectedLine, raw: bytes, default_gateway: str, default_time: float
) -> Iterator[CollectorItem]:
    try:
        batch = parse_log_line(raw, default_gateway=default_gateway, default_time=default_time)
    except DatagramError as exc:
        yield RejectedLine(
            line_no=item.line_no, reason=RejectReason.BAD_DATAGRAM, detail=str(exc), raw=item.raw
        )
        return
    yield from batch.receptions
    if batch.crc_failed:
        yield RejectedLine(
            line_no=item.line_no,
            reason=RejectReason.RADIO_CRC_FAILED,
            detail=f"{batch.crc_failed} packet(s) whose radio CRC failed (stat -1), dropped",
            raw=item.raw,
        )


class LogBatch:
    """Up to a batch of a log file's lines, read: ``lines`` (how many), the wireless M-Bus
    receptions as columns (in line order), the LoRaWAN receptions of packet-forwarder lines,
    and the lines that gave no reception, each with its reason."""

    __slots__ = ("lines", "lorawan", "rejected", "wmbus")

    def __init__(
        self, lines: int, wmbus: ReceptionColumns, lorawan: list[Reception], rejected: list[RejectedLine]
    ) -> None:
        self.lines = lines
        self.wmbus = wmbus
        self.lorawan = lorawan
        self.rejected = rejected


# Bytes read from the file at a time: about 20,000 collector lines.
_BLOCK_BYTES = 1 << 22


def iter_log_batches(
    path: str | PathLike[str],
    *,
    gateway_ids: Sequence[str],
    default_gateway: str,
    default_time: float,
    batch_lines: int = 20_000,
) -> Iterator[LogBatch]:
    """Stream a log file as batches of at most ``batch_lines`` lines: what
    :func:`iter_gateway_log_file` gives, read in bulk (``default_time`` in Unix seconds).

    ``gateway_ids`` is the table the columns' gateway indexes point into (the network
    server's gateways). Raises :class:`~minolcore.errors.InputError` for bad defaults, gateway
    ids that are not text or a batch size below 1, and :class:`OSError` for an unreadable
    file; bad lines never raise.
    """
    check_defaults(default_gateway, default_time)
    if not isinstance(batch_lines, int) or batch_lines < 1:
        raise InputError(f"batch_lines must be a positive integer, got {batch_lines!r}")
    if not all(isinstance(name, str) for name in gateway_ids):
        raise InputError("gateway ids must be strings")
    return _batches(path, tuple(gateway_ids), default_gateway, default_time, batch_lines)


def _batches(
    path: str | PathLike[str],
    table: tuple[str, ...],
    default_gateway: str,
    default_time: float,
    batch_lines: int,
) -> Iterator[LogBatch]:
    index = {name: i for i, name in enumerate(table)}
    line_no = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_BLOCK_BYTES)
            if not block:
                return
            if not block.endswith(b"\n"):
                # The block ends inside a line: the rest of it comes along, however long
                # (one copy of the block, rather than cutting and joining).
                block += handle.readline()
            rows, out = read_collector_block(block, table)
            for first in range(0, len(rows), batch_lines):
                part = rows[first : first + batch_lines]
                yield _log_batch(block, part, out, line_no + 1, table, index, default_gateway, default_time)
                line_no += len(part)


def _log_batch(
    block: bytes,
    rows: npt.NDArray[Any],
    out: npt.NDArray[np.uint8],
    first_line_no: int,
    table: tuple[str, ...],
    index: dict[str, int],
    default_gateway: str,
    default_time: float,
) -> LogBatch:
    """The batch of ``rows`` (lines of ``block``, the first numbered ``first_line_no``):
    lines the bulk reader left are read by the line reader, in place."""
    keep = rows["status"] == LINE_READ
    gateway = rows["gateway"].astype(np.int64)
    received_at = rows["received_at"].copy()
    rssi = rows["rssi"].copy()
    # The batch's frames are one span of the block's (the reader writes them in line order).
    span_start = int(rows["payload_offset"][0]) if len(rows) else 0
    span_end = int(rows["payload_offset"][-1] + rows["payload_length"][-1]) if len(rows) else 0
    offsets = rows["payload_offset"] - span_start
    lengths = rows["payload_length"].copy()
    other: dict[int, str] = {}
    lorawan: list[Reception] = []
    rejected: list[RejectedLine] = []
    extra: list[bytes] = []
    extra_at = span_end - span_start
    for row in np.flatnonzero(~keep).tolist():
        start = int(rows["line_offset"][row])
        raw = block[start : start + int(rows["line_length"][row])]
        for item in _line_items(raw, first_line_no + row, default_gateway, default_time):
            if isinstance(item, RejectedLine):
                rejected.append(item)
            elif item.radio is Radio.LORAWAN:
                lorawan.append(item)
            else:  # a collector line of a shape the bulk reader leaves: its row after all
                keep[row] = True
                gateway[row] = index.get(item.gateway_id, GATEWAY_UNKNOWN)
                if gateway[row] == GATEWAY_UNKNOWN:
                    other[row] = item.gateway_id
                received_at[row] = item.received_at
                rssi[row] = np.nan if item.rssi is None else item.rssi
                offsets[row], lengths[row] = extra_at, len(item.payload)
                extra.append(item.payload)
                extra_at += len(item.payload)
    for row in np.flatnonzero(keep & (gateway < 0)).tolist():
        found = int(gateway[row])
        if found == GATEWAY_DEFAULT:
            other[row] = default_gateway
        elif found == GATEWAY_UNKNOWN and row not in other:
            start = int(rows["line_offset"][row] + rows["gateway_offset"][row])
            other[row] = block[start : start + int(rows["gateway_length"][row])].decode("ascii")
    for row, name in list(other.items()):
        # The default gateway may be one of the table's after all.
        if name in index:
            gateway[row] = index[name]
            del other[row]
    received_at[np.isnan(received_at) & keep] = default_time
    kept = np.flatnonzero(keep)
    named = sorted(other)
    renumber = dict(zip(named, np.searchsorted(kept, named).tolist(), strict=True))
    frames = out[span_start:span_end].tobytes()
    buffer = frames + b"".join(extra) if extra else frames
    columns = ReceptionColumns(
        gateway_table=table,
        gateway=np.where(gateway[kept] < 0, GATEWAY_UNKNOWN, gateway[kept]),
        other_gateways={renumber[row]: name for row, name in other.items()},
        received_at=received_at[kept],
        rssi=rssi[kept],
        buffer=buffer,
        offsets=offsets[kept],
        lengths=lengths[kept],
    )
    return LogBatch(len(rows), columns, lorawan, rejected)
