"""LoRaWAN 1.0.x MAC commands: the CID tables and splitting a command sequence.

MAC commands travel in FOpts (plaintext in 1.0.x) or, on FPort 0, in the FRMPayload
(encrypted with the NwkSKey). A sequence has no length prefixes: each command's
payload length follows from its CID and the direction, so the tables below are what
makes splitting possible. The same CID means different commands up and down
(0x02 is LinkCheckReq uplink and LinkCheckAns downlink).

An unknown CID stops the split: its length is unknown, so the command and every byte
after it are reported as one :class:`MACCommand` with ``name=None`` instead of guessing.
A known command cut short by the end of the data is reported with ``truncated=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from minolcore._model import Record
from minolcore.errors import InputError, LoRaWANError

__all__ = [
    "DOWNLINK_COMMANDS",
    "PROPRIETARY_CID_MIN",
    "UPLINK_COMMANDS",
    "MACCommand",
    "MACCommandEncodeError",
    "MACCommandSpec",
    "command_table",
    "encode_mac_commands",
    "parse_mac_commands",
]

PROPRIETARY_CID_MIN = 0x80
"""CIDs 0x80..0xFF are reserved for proprietary network command extensions."""


class MACCommandSpec(Record, frozen=True, gc=False, kw_only=True):
    """One row of a CID table: ``length`` is the payload size in bytes (CID not counted)."""

    cid: int
    name: str
    length: int
    uplink: bool


class MACCommand(Record, frozen=True, gc=False, kw_only=True):
    """One MAC command as found in FOpts or an FPort-0 payload.

    ``name`` is ``None`` for a CID this table does not know (``payload`` then holds every
    remaining byte); ``truncated`` is set when a known command's payload is cut short.
    """

    cid: int
    name: str | None
    payload: bytes
    truncated: bool = False

    @property
    def known(self) -> bool:
        """True when the CID is in the LoRaWAN 1.0.x table of this direction."""
        return self.name is not None


class MACCommandEncodeError(LoRaWANError, InputError):
    """A MAC command to encode that is unknown for the direction or has the wrong payload length."""

    def __init__(self, command: int | str, reason: str) -> None:
        label = f"0x{command:02X}" if isinstance(command, int) else command
        super().__init__(f"MAC command {label}: {reason}")
        self.command = command
        self.reason = reason


def _table(rows: Iterable[tuple[int, str, int]], *, uplink: bool) -> Mapping[int, MACCommandSpec]:
    return MappingProxyType(
        {cid: MACCommandSpec(cid=cid, name=name, length=length, uplink=uplink) for cid, name, length in rows}
    )


# Sent by the end device (uplink), LoRaWAN 1.0.x (1.0.2 added 0x09/0x0A, 1.0.3 added 0x0D).
UPLINK_COMMANDS: Mapping[int, MACCommandSpec] = _table(
    [
        (0x02, "LinkCheckReq", 0),
        (0x03, "LinkADRAns", 1),  # Status
        (0x04, "DutyCycleAns", 0),
        (0x05, "RXParamSetupAns", 1),  # Status
        (0x06, "DevStatusAns", 2),  # Battery, Margin
        (0x07, "NewChannelAns", 1),  # Status
        (0x08, "RXTimingSetupAns", 0),
        (0x09, "TxParamSetupAns", 0),
        (0x0A, "DlChannelAns", 1),  # Status
        (0x0D, "DeviceTimeReq", 0),
    ],
    uplink=True,
)

# Sent by the network server (downlink).
DOWNLINK_COMMANDS: Mapping[int, MACCommandSpec] = _table(
    [
        (0x02, "LinkCheckAns", 2),  # Margin, GwCnt
        (0x03, "LinkADRReq", 4),  # DataRate_TXPower, ChMask (2), Redundancy
        (0x04, "DutyCycleReq", 1),  # DutyCyclePL
        (0x05, "RXParamSetupReq", 4),  # DLsettings, Frequency (3)
        (0x06, "DevStatusReq", 0),
        (0x07, "NewChannelReq", 5),  # ChIndex, Freq (3), DrRange
        (0x08, "RXTimingSetupReq", 1),  # Settings
        (0x09, "TxParamSetupReq", 1),  # EIRP_DwellTime
        (0x0A, "DlChannelReq", 4),  # ChIndex, Freq (3)
        (0x0D, "DeviceTimeAns", 5),  # seconds since GPS epoch (4), fractional second (1/256 s)
    ],
    uplink=False,
)

_BY_NAME_UP = {spec.name: spec for spec in UPLINK_COMMANDS.values()}
_BY_NAME_DOWN = {spec.name: spec for spec in DOWNLINK_COMMANDS.values()}


def command_table(*, uplink: bool) -> Mapping[int, MACCommandSpec]:
    """The CID table of one direction (read-only)."""
    return UPLINK_COMMANDS if uplink else DOWNLINK_COMMANDS


def parse_mac_commands(data: bytes, *, uplink: bool) -> tuple[MACCommand, ...]:
    """Split a MAC command sequence (FOpts or FPort-0 payload) into commands; never raises."""
    table = UPLINK_COMMANDS if uplink else DOWNLINK_COMMANDS
    out: list[MACCommand] = []
    pos = 0
    end = len(data)
    while pos < end:
        cid = data[pos]
        spec = table.get(cid)
        if spec is None:
            out.append(MACCommand(cid=cid, name=None, payload=bytes(data[pos + 1 :])))
            break
        stop = pos + 1 + spec.length
        payload = bytes(data[pos + 1 : stop])
        truncated = stop > end
        out.append(MACCommand(cid=cid, name=spec.name, payload=payload, truncated=truncated))
        pos = stop
    return tuple(out)


def encode_mac_commands(commands: Iterable[tuple[int | str, bytes]], *, uplink: bool) -> bytes:
    """Serialise (CID or name, payload) pairs, checking each payload length against the table."""
    table = UPLINK_COMMANDS if uplink else DOWNLINK_COMMANDS
    by_name = _BY_NAME_UP if uplink else _BY_NAME_DOWN
    parts: list[bytes] = []
    direction = "uplink" if uplink else "downlink"
    for command, payload in commands:
        spec = by_name.get(command) if isinstance(command, str) else table.get(command)
        if spec is None:
            raise MACCommandEncodeError(command, f"not a LoRaWAN 1.0.x {direction} command")
        if len(payload) != spec.length:
            raise MACCommandEncodeError(command, f"payload is {len(payload)} bytes, {spec.length} expected")
        parts.append(bytes((spec.cid,)) + bytes(payload))
    return b"".join(parts)
