"""What a gateway reports for one received radio packet, before any validation."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TypeGuard, overload

import numpy as np
import numpy.typing as npt

from minolcore._model import Record
from minolcore.errors import InputError

__all__ = ["MAX_EVENT_TIME", "Radio", "Reception", "ReceptionColumns", "is_event_time"]

# Year 10000 in Unix seconds: anything later is not a time a meter was heard at; most often a
# millisecond timestamp sent where seconds were expected.
MAX_EVENT_TIME = 253_402_300_800.0


def is_event_time(seconds: object) -> TypeGuard[float]:
    """Whether ``seconds`` is a Unix time (s) from 1970 up to :data:`MAX_EVENT_TIME`; NaN,
    the infinities and non-numbers are not."""
    if type(seconds) is float:  # the common case first: this runs once per reception
        return 0.0 <= seconds < MAX_EVENT_TIME
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
    M-Bus frame in any CRC shape, or a LoRaWAN PHYPayload). ``tmst`` is the gateway's
    concentrator counter at the end of the reception (µs, 32 bits, Semtech ``rxpk.tmst``)
    where the gateway gives one: a downlink answering the packet is timed from it.
    """

    gateway_id: str
    received_at: float
    payload: bytes
    radio: Radio = Radio.WMBUS
    rssi: float | None = None
    snr: float | None = None
    frequency: float | None = None
    mode: str = ""
    tmst: int | None = None


class ReceptionColumns(Sequence[Reception]):
    """Wireless M-Bus receptions as columns, as the log reader makes them in bulk.

    Row ``i`` was heard by gateway ``gateway_table[gateway[i]]`` (or, where ``gateway[i]``
    is -1, by ``other_gateways[i]``) at ``received_at[i]`` (s since the epoch) with
    ``rssi[i]`` dBm (NaN: not given); its payload is ``buffer[offsets[i] : offsets[i] +
    lengths[i]]``. Indexing gives the row's :class:`Reception`, built when asked for (the
    columns keep no SNR, frequency or radio mode: collector lines carry none that is stored).
    """

    __slots__ = (
        "buffer",
        "gateway",
        "gateway_table",
        "lengths",
        "offsets",
        "other_gateways",
        "received_at",
        "rssi",
    )

    def __init__(
        self,
        *,
        gateway_table: tuple[str, ...],
        gateway: npt.NDArray[np.int64],
        other_gateways: dict[int, str],
        received_at: npt.NDArray[np.float64],
        rssi: npt.NDArray[np.float64],
        buffer: bytes,
        offsets: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.int32],
    ) -> None:
        """Raises :class:`InputError` for columns that do not describe such a batch."""
        try:
            self.gateway = np.asarray(gateway, dtype=np.int64)
            self.received_at = np.asarray(received_at, dtype=np.float64)
            self.rssi = np.asarray(rssi, dtype=np.float64)
            self.offsets = np.asarray(offsets, dtype=np.int64)
            self.lengths = np.asarray(lengths, dtype=np.int32)
        except (TypeError, ValueError, OverflowError) as error:
            raise InputError(f"reception columns: {error}") from None
        self.gateway_table = tuple(gateway_table)
        self.other_gateways = other_gateways
        self.buffer = buffer
        count = len(self.gateway)
        if not isinstance(buffer, bytes) or not all(isinstance(name, str) for name in self.gateway_table):
            raise InputError("reception columns need a bytes buffer and gateway ids as text")
        columns = (self.gateway, self.received_at, self.rssi, self.offsets, self.lengths)
        if any(column.shape != (count,) for column in columns):
            raise InputError("reception columns need one value per reception")
        if count and (
            self.offsets.min() < 0
            or self.lengths.min() < 0
            or int((self.offsets + self.lengths).max()) > len(buffer)
            or self.gateway.min() < -1
            or self.gateway.max() >= len(self.gateway_table)
        ):
            raise InputError("reception columns name bytes or gateways that are not there")
        named = np.flatnonzero(self.gateway == -1).tolist()
        if sorted(other_gateways) != named or not all(
            isinstance(name, str) for name in other_gateways.values()
        ):
            raise InputError("every reception of gateway -1, and only those, needs its gateway id named")

    def __len__(self) -> int:
        return len(self.gateway)

    @classmethod
    def joined(cls, parts: Sequence[ReceptionColumns]) -> ReceptionColumns:
        """The rows of ``parts`` one after the other (all with the same gateway table)."""
        if len(parts) == 1:
            return parts[0]
        table = parts[0].gateway_table if parts else ()
        if any(part.gateway_table != table for part in parts):
            raise InputError("reception columns with different gateway tables cannot be joined")
        other: dict[int, str] = {}
        offsets = []
        first_row = first_byte = 0
        for part in parts:
            other.update((first_row + row, name) for row, name in part.other_gateways.items())
            offsets.append(part.offsets + first_byte)
            first_row += len(part)
            first_byte += len(part.buffer)
        return cls(
            gateway_table=table,
            gateway=np.concatenate([part.gateway for part in parts]) if parts else np.zeros(0, np.int64),
            other_gateways=other,
            received_at=np.concatenate([part.received_at for part in parts]) if parts else np.zeros(0),
            rssi=np.concatenate([part.rssi for part in parts]) if parts else np.zeros(0),
            buffer=b"".join(part.buffer for part in parts),
            offsets=np.concatenate(offsets) if parts else np.zeros(0, np.int64),
            lengths=np.concatenate([part.lengths for part in parts]) if parts else np.zeros(0, np.int32),
        )

    @overload
    def __getitem__(self, index: int) -> Reception: ...

    @overload
    def __getitem__(self, index: slice) -> list[Reception]: ...

    def __getitem__(self, index: int | slice) -> Reception | list[Reception]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError("reception index out of range")
        index %= len(self)
        gateway = int(self.gateway[index])
        start = int(self.offsets[index])
        rssi = float(self.rssi[index])
        return Reception(
            gateway_id=self.gateway_table[gateway] if gateway >= 0 else self.other_gateways[index],
            received_at=float(self.received_at[index]),
            payload=self.buffer[start : start + int(self.lengths[index])],
            rssi=None if rssi != rssi else rssi,  # noqa: PLR0124  # NaN: not given
        )
