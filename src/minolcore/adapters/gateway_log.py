"""Gateway log files as ``minolcore ingest`` reads them: wireless M-Bus collector lines and
LoRaWAN packet-forwarder lines, in any mix.

Collector lines (JSON with a frame, or plain hex) are read by
:mod:`minolcore.adapters.collector`; a JSON line with ``rxpk`` (the body of a Semtech
PUSH_DATA and the gateway's id) or ``datagram`` (a whole UDP datagram in hex) by
:func:`minolcore.adapters.semtech.parse_log_line`, one reception per received packet.
Every line gives receptions or a :class:`~minolcore.adapters.collector.RejectedLine` with
its reason; packets whose radio CRC failed are dropped as the protocol says, and recorded
as one rejected line each line that had some, so nothing is lost silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike

from minolcore.adapters.collector import (
    CollectorItem,
    RejectedLine,
    RejectReason,
    check_defaults,
    read_numbered_line,
)
from minolcore.adapters.semtech import DatagramError, parse_log_line

__all__ = ["iter_gateway_log_file"]

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
            item = read_numbered_line(raw, line_no, default_gateway, default_time)
            # A packet-forwarder line has no frame for the collector reader: only then is it
            # read again, so collector lines cost nothing more.
            if isinstance(item, RejectedLine) and item.reason is RejectReason.MISSING_FRAME:
                if line_no == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")  # the collector reader drops it too
                if any(key in raw for key in _PACKET_FORWARDER_KEYS):
                    yield tuple(_packet_forwarder_items(item, raw, default_gateway, default_time))
                    continue
            yield (item,)


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
