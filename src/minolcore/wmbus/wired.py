"""Wired M-Bus long frames (EN 13757-2): ``68 L L 68 C A CI data CS 16``.

The application layer behind the CI is the same as for wireless M-Bus, so a wired
frame yields the same TPL header and payload offsets for the record decoder.
"""

from __future__ import annotations

from minolcore._model import Record
from minolcore.errors import ChecksumError, InputError, WiredFrameError
from minolcore.wmbus.headers import Address, TPLHeader, parse_layers

__all__ = ["WiredFrame", "build_wired_frame", "parse_wired_frame"]

_START = 0x68
_STOP = 0x16
_OVERHEAD = 6  # 68 L L 68 ... CS 16


class WiredFrame(Record):
    """A validated wired M-Bus long frame; ``data`` is the whole frame, offsets index it."""

    data: bytes
    c_field: int
    address: int
    ci: int
    tpl: TPLHeader | None
    tpl_ci: int
    payload_offset: int
    payload_end: int

    @property
    def payload(self) -> bytes:
        """The application data after the CI and its header (records), without CS and stop byte."""
        return self.data[self.payload_offset : self.payload_end]

    @property
    def meter_address(self) -> Address | None:
        """The meter's address from a long (0x72) header, if there is one."""
        return None if self.tpl is None else self.tpl.address


def parse_wired_frame(data: bytes | bytearray | memoryview) -> WiredFrame:
    """Validate a wired M-Bus long frame (start, length, checksum and stop bytes) and parse
    its header. Raises :class:`WiredFrameError`, :class:`ChecksumError` or a header error."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError(f"expected bytes, got {type(data).__name__}")
    frame = bytes(data)
    if len(frame) < _OVERHEAD + 3:
        raise WiredFrameError(f"{len(frame)} bytes, a long frame needs at least {_OVERHEAD + 3}")
    if frame[0] != _START or frame[3] != _START:
        raise WiredFrameError("start bytes are not 68 .. .. 68")
    length = frame[1]
    if frame[2] != length:
        raise WiredFrameError(f"the two length bytes differ ({frame[1]} and {frame[2]})")
    if len(frame) != length + _OVERHEAD:
        raise WiredFrameError(f"L={length} needs {length + _OVERHEAD} bytes, got {len(frame)}")
    if length < 3:
        raise WiredFrameError(f"L={length} leaves no room for C, A and CI")
    if frame[-1] != _STOP:
        raise WiredFrameError(f"stop byte is 0x{frame[-1]:02X}, not 0x16")
    end = 4 + length
    checksum = sum(frame[4:end]) & 0xFF
    if checksum != frame[end]:
        raise ChecksumError(frame[end], checksum)
    # parse_layers sees only the user data, so no header can reach into CS or the stop byte.
    user = frame[:end]
    layers = parse_layers(user, 6)
    return WiredFrame(
        data=frame,
        c_field=frame[4],
        address=frame[5],
        ci=frame[6],
        tpl=layers.tpl,
        tpl_ci=frame[6] if layers.tpl_ci is None else layers.tpl_ci,
        payload_offset=layers.payload_offset,
        payload_end=end,
    )


def build_wired_frame(*, c_field: int, address: int, ci: int, data: bytes) -> bytes:
    """Encode a wired M-Bus long frame around ``data`` (the bytes after the CI)."""
    body = bytes((c_field, address, ci)) + data
    if len(body) > 255:
        raise InputError(f"user data of {len(body)} bytes exceeds the L-field's range")
    return bytes((_START, len(body), len(body), _START)) + body + bytes((sum(body) & 0xFF, _STOP))
