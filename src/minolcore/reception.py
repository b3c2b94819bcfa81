"""What a gateway reports for one received radio packet, before any validation."""

from __future__ import annotations

import enum
from typing import TypeGuard

from minolcore._model import Record

__all__ = ["MAX_EVENT_TIME", "Radio", "Reception", "is_event_time"]

# Year 10000 in Unix seconds: anything later is not a time a meter was heard at; most often a
# millisecond timestamp sent where seconds were expected.
MAX_EVENT_TIME = 253_402_300_800.0


def is_event_time(seconds: object) -> TypeGuard[float]:
    """Whether ``seconds`` is a Unix time (s) from 1970 up to :data:`MAX_EVENT_TIME`; NaN,
    the infinities and non-numbers are not."""
    return isinstance(seconds, int | float) and 0.0 <= seconds < MAX_EVENT_TIME


class Radio(enum.Enum):
    """Which radio protocol carried the packet."""

    WMBUS = "wmbus"
    LORAWAN = "lorawan"


class Reception(Record):
    """One copy of one transmission, as one gateway heard it.

    ``received_at`` is the event time in seconds since the Unix epoch (UTC) at which the
    gateway heard the packet (not when it reached the cloud), from 0 up to
    :data:`MAX_EVENT_TIME` (the network stage refuses others as ``bad_time``); ``rssi`` is in dBm, ``snr``
    in dB, ``frequency`` in MHz. ``payload`` is the packet exactly as delivered (a wireless
    M-Bus frame in any CRC shape, or a LoRaWAN PHYPayload).
    """

    gateway_id: str
    received_at: float
    payload: bytes
    radio: Radio = Radio.WMBUS
    rssi: float | None = None
    snr: float | None = None
    frequency: float | None = None
    mode: str = ""
