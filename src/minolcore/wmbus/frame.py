"""Wireless M-Bus frames (EN 13757-4): CRC shapes, L-field semantics, the link header.

Gateways hand over frames in three shapes: format A with a CRC after each block,
format B with one or two CRCs, or with the CRCs already removed. :func:`parse_frame`
detects the shape (or takes the caller's word), checks every CRC, and returns the
frame in one canonical form: CRCs removed and ``L = len(data) - 1``, so that every
copy of one transmission has the same bytes, whichever shape a gateway delivered.

Policy for bytes beyond L (seen from meters that send more than L covers): in the
CRC-free shape they are kept in :attr:`Frame.trailing`, outside the canonical frame
and its fingerprint; the security layer may read an encrypted block past L from them.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args

from minolcore import _native
from minolcore._model import Record
from minolcore.errors import (
    CRCError,
    FrameTooShortError,
    HeaderTruncatedError,
    InputError,
    LFieldError,
)
from minolcore.wmbus.headers import Address, AFLHeader, ELLHeader, Layers, TPLHeader, parse_layers
from minolcore.wmbus.link import c_field_name, decode_id, decode_manufacturer, device_type_name

__all__ = [
    "CRC_MODE_NAMES",
    "CRCMode",
    "CRCShape",
    "Frame",
    "FrameStatus",
    "a_format_length",
    "parse_frame",
    "strip_crcs",
]

LINK_HEADER_LENGTH = 10  # L C M(2) A(6): the first block of format A
MIN_FRAME_LENGTH = 11  # the link header and one CI byte
FORMAT_B_FIRST_BLOCKS = 126  # bytes covered by the first CRC of format B
MAX_FRAME_INPUT = 512  # longer than any frame (format A with L = 255 is 290 bytes)
_MAX_L = 0xFF  # the L-field is one byte


class CRCShape(enum.IntEnum):
    """How the frame arrived. The numbers are shared with the C core."""

    NONE = 0  # CRCs already removed
    FORMAT_A = 1
    FORMAT_B = 2


class FrameStatus(enum.IntEnum):
    """Batch status of one frame. The numbers are shared with the C core."""

    OK = 0
    TOO_SHORT = 1
    L_FIELD = 2
    CRC = 3
    HEADER_TRUNCATED = 4


class CRCMode(enum.IntEnum):
    """What the caller knows about the CRCs. The numbers are shared with the C core."""

    AUTO = 0
    PRESENT = 1
    ABSENT = 2


CRCModeName = Literal["auto", "present", "absent"]
CRC_MODE_NAMES: tuple[CRCModeName, ...] = get_args(CRCModeName)
_MODE_BY_NAME: dict[str, CRCMode] = {
    "auto": CRCMode.AUTO,
    "present": CRCMode.PRESENT,
    "absent": CRCMode.ABSENT,
}

FrameTooShortError.status = FrameStatus.TOO_SHORT
LFieldError.status = FrameStatus.L_FIELD
CRCError.status = FrameStatus.CRC
HeaderTruncatedError.status = FrameStatus.HEADER_TRUNCATED


def a_format_length(l_field: int) -> int:
    """Bytes on the air of a format-A frame whose L-field is ``l_field`` (CRCs included)."""
    rest = l_field - (LINK_HEADER_LENGTH - 1)
    return l_field + 1 + 2 + 2 * ((rest + 15) // 16)


def _b_crc_length(total: int) -> int:
    """CRC bytes inside a format-B frame of ``total`` bytes (one CRC, or two past 128 bytes)."""
    return 2 if total <= FORMAT_B_FIRST_BLOCKS + 2 else 4


def _b_length_possible(total: int) -> bool:
    """Past its first CRC (after 126 bytes) a format-B frame has a second block of at least
    one byte and its CRC: 129 and 130 bytes are no format-B length."""
    return total <= FORMAT_B_FIRST_BLOCKS + 2 or total >= FORMAT_B_FIRST_BLOCKS + 5


def _crc_at(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(CRC stored big-endian at data[end:end+2], CRC computed over data[start:end])."""
    return (data[end] << 8) | data[end + 1], _native.crc16(data[start:end])


def _check_format_a(data: bytes, l_field: int) -> bytes:
    total = a_format_length(l_field)
    if len(data) != total:
        raise LFieldError(l_field, len(data), "format A")
    parts = []
    start, block = 0, 0
    end = LINK_HEADER_LENGTH
    while start < total:
        stored, computed = _crc_at(data, start, end)
        if stored != computed:
            raise CRCError(block, stored, computed)
        parts.append(data[start:end])
        start = end + 2
        end = min(start + 16, total - 2)
        block += 1
    return b"".join(parts)


def _format_b_error(data: bytes) -> CRCError | None:
    total = len(data)
    if total < MIN_FRAME_LENGTH + 2:
        return CRCError(0, 0, 0)
    if _b_crc_length(total) == 2:
        stored, computed = _crc_at(data, 0, total - 2)
        return None if stored == computed else CRCError(0, stored, computed)
    stored, computed = _crc_at(data, 0, FORMAT_B_FIRST_BLOCKS)
    if stored != computed:
        return CRCError(0, stored, computed)
    stored, computed = _crc_at(data, FORMAT_B_FIRST_BLOCKS + 2, total - 2)
    return None if stored == computed else CRCError(1, stored, computed)


def _strip_format_b(data: bytes) -> bytes:
    total = len(data)
    if _b_crc_length(total) == 2:
        return data[: total - 2]
    return data[:FORMAT_B_FIRST_BLOCKS] + data[FORMAT_B_FIRST_BLOCKS + 2 : total - 2]


def _b_rewritten_total(l_field: int) -> int:
    """Total bytes of a format-B frame whose L was rewritten to count no CRC bytes."""
    total = l_field + 3
    return total if total <= FORMAT_B_FIRST_BLOCKS + 2 else l_field + 5


def strip_crcs(data: bytes, mode: CRCMode = CRCMode.AUTO) -> tuple[CRCShape, bytes, bytes, bool]:
    """Detect the CRC shape, check every CRC and remove them.

    Returns ``(shape, canonical, trailing, l_rewritten)``: the canonical frame has no CRCs
    and ``L = len(canonical) - 1``; ``trailing`` holds CRC-free bytes beyond L;
    ``l_rewritten`` is true for a format-B frame whose L was rewritten as if format A.
    Raises :class:`FrameTooShortError`, :class:`LFieldError` or :class:`CRCError`.

    In ``AUTO`` mode a frame whose first ten bytes carry a valid format-A CRC is format A;
    a frame of exactly format-A length is format A too (so a corrupted first block is
    reported, not mistaken for a CRC-free frame); a frame of L + 1 bytes whose format-B
    CRC verifies is format B; otherwise the frame is taken as CRC-free. A corrupted
    format-B frame cannot be told from a CRC-free one: callers that know their gateway
    delivers CRCs should say ``PRESENT``.
    """
    total = len(data)
    if total < MIN_FRAME_LENGTH:
        raise FrameTooShortError(total, MIN_FRAME_LENGTH)
    l_field = data[0]
    if l_field < MIN_FRAME_LENGTH - 1:
        raise LFieldError(l_field, total, "L-field below the link header")
    if total > MAX_FRAME_INPUT:
        raise LFieldError(l_field, total, "longer than any frame")

    if mode is not CRCMode.ABSENT:
        stored, computed = _crc_at(data, 0, LINK_HEADER_LENGTH) if total >= 12 else (-1, -2)
        if stored == computed:
            return CRCShape.FORMAT_A, _fix_l(_check_format_a(data, l_field)), b"", False
        b_error = None
        if total == l_field + 1 and _b_length_possible(total):
            b_error = _format_b_error(data)
            if b_error is None:
                return CRCShape.FORMAT_B, _fix_l(_strip_format_b(data)), b"", False
        elif total == _b_rewritten_total(l_field) and total - 1 <= _MAX_L:
            # The meter's CRC covers the original L, which counted the CRC bytes (and fits
            # in the L byte: a longer frame cannot be a rewritten format-B frame).
            original = bytes((total - 1,)) + data[1:]
            if _format_b_error(original) is None:
                return CRCShape.FORMAT_B, _fix_l(_strip_format_b(original)), b"", True
        if mode is CRCMode.PRESENT:
            if total == a_format_length(l_field):
                raise CRCError(0, stored, computed)
            if b_error is not None:
                raise b_error
            raise LFieldError(l_field, total, "format A or B")
        if total == a_format_length(l_field):
            raise CRCError(0, stored, computed)

    if total < l_field + 1:
        raise LFieldError(l_field, total, "CRC-free")
    return CRCShape.NONE, data[: l_field + 1], data[l_field + 1 :], False


def _fix_l(canonical: bytes) -> bytes:
    length = len(canonical)
    if length < MIN_FRAME_LENGTH:
        raise FrameTooShortError(length, MIN_FRAME_LENGTH)
    if canonical[0] == length - 1:
        return canonical
    return bytes((length - 1,)) + canonical[1:]


class Frame(Record):
    """A validated wireless M-Bus frame, CRCs removed, with its decoded headers.

    ``data`` is the canonical frame (no CRCs, ``L = len(data) - 1``); offsets index it.
    """

    data: bytes
    trailing: bytes
    crc_shape: CRCShape
    l_field: int
    l_rewritten: bool
    c_field: int
    manufacturer_code: int
    id_value: int
    version: int
    device_type: int
    ci: int
    ell: ELLHeader | None
    afl: AFLHeader | None
    tpl: TPLHeader | None
    tpl_ci: int | None
    tpl_offset: int
    payload_offset: int
    hidden: bool

    @property
    def manufacturer(self) -> str:
        """Three-letter manufacturer code of the link layer, e.g. "ELS"."""
        return decode_manufacturer(self.manufacturer_code)

    @property
    def id(self) -> str:
        """The link-layer ID as 8 characters, e.g. "12345678"."""
        return decode_id(self.id_value)

    @property
    def c_field_name(self) -> str:
        return c_field_name(self.c_field)

    @property
    def device_type_name(self) -> str:
        return device_type_name(self.device_type)

    @property
    def link_address(self) -> Address:
        """The sender's address from the link layer."""
        return Address(
            manufacturer_code=self.manufacturer_code,
            id_value=self.id_value,
            version=self.version,
            device_type=self.device_type,
        )

    @property
    def meter_address(self) -> Address:
        """The real meter: a long TPL header's address (behind a radio converter) or the link address."""
        if self.tpl is not None and self.tpl.address is not None:
            return self.tpl.address
        return self.link_address

    @property
    def payload(self) -> bytes:
        """Bytes after the last parsed header (the application layer, possibly encrypted)."""
        return self.data[self.payload_offset :]

    @property
    def security_mode(self) -> int:
        """TPL security mode (0 when there is no TPL header)."""
        return 0 if self.tpl is None else self.tpl.security_mode

    @property
    def acc(self) -> int:
        """Access number: the TPL's, else the ELL's, else 0."""
        if self.tpl is not None:
            return self.tpl.acc
        return 0 if self.ell is None else self.ell.acc


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        text = "".join(data.split())
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise InputError(f"not a hex string ({len(text)} characters)") from None
    raise InputError(f"expected bytes or a hex string, got {type(data).__name__}")


def frame_from_canonical(
    canonical: bytes,
    trailing: bytes = b"",
    shape: CRCShape = CRCShape.NONE,
    l_field: int | None = None,
    l_rewritten: bool = False,
) -> Frame:
    """Build a :class:`Frame` from a canonical CRC-free frame (its headers parsed here)."""
    layers: Layers = parse_layers(canonical, LINK_HEADER_LENGTH)
    return Frame(
        data=canonical,
        trailing=trailing,
        crc_shape=shape,
        l_field=canonical[0] if l_field is None else l_field,
        l_rewritten=l_rewritten,
        c_field=canonical[1],
        manufacturer_code=canonical[2] | (canonical[3] << 8),
        id_value=int.from_bytes(canonical[4:8], "little"),
        version=canonical[8],
        device_type=canonical[9],
        ci=canonical[10],
        ell=layers.ell,
        afl=layers.afl,
        tpl=layers.tpl,
        tpl_ci=layers.tpl_ci,
        tpl_offset=layers.tpl_offset,
        payload_offset=layers.payload_offset,
        hidden=layers.hidden,
    )


def parse_frame(data: bytes | bytearray | memoryview | str, *, crc: CRCModeName = "auto") -> Frame:
    """Validate one wireless M-Bus frame and decode its link, ELL, AFL and TPL headers.

    ``data`` is the frame as received (bytes, or a hex string); ``crc`` says whether the
    data-link CRCs are ``"present"``, ``"absent"`` or to be detected (``"auto"``). Raises
    only :class:`~minolcore.errors.FrameError` subclasses (and :class:`InputError` for a
    wrong argument), whatever the bytes.
    """
    mode = _MODE_BY_NAME.get(crc) if isinstance(crc, str) else None
    if mode is None:
        raise InputError(f"crc must be 'auto', 'present' or 'absent', got {crc!r}")
    raw = _as_bytes(data)
    shape, canonical, trailing, l_rewritten = strip_crcs(raw, mode)
    return frame_from_canonical(canonical, trailing, shape, raw[0], l_rewritten)
