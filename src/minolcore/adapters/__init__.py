"""Gateway ingestion: each protocol as a sans-IO codec plus a thin I/O adapter.

- :mod:`minolcore.adapters.semtech`: Semtech UDP packet-forwarder protocol v2 (bytes in, events out).
- :mod:`minolcore.adapters.udp`: an asyncio UDP server around that codec.
- :mod:`minolcore.adapters.collector`: wireless M-Bus collector upload lines (JSON lines, hex lines).

Importing this package imports no submodule, so using the codecs never pulls in asyncio.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_event_time"]


def parse_event_time(text: str) -> float:
    """Parse an ISO 8601 time (``2026-01-01T12:00:00.123456Z``) into Unix seconds (UTC).

    A time without an offset is taken as UTC, because gateways and collectors report UTC;
    reading it as local time would shift every reading by the server's zone.
    Raises ``ValueError`` if the text is not an ISO 8601 date or time.
    """
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, OverflowError) as exc:
        raise ValueError(str(exc)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
