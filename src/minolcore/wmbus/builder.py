"""The frame builder: link header, optional ELL/AFL/TPL headers and a payload, encoded
as format A or B with correct CRCs, or CRC-free. Tests, benchmarks and the simulator
use it to make genuine traffic; :func:`parse_frame` is its inverse.
"""

from __future__ import annotations

import struct
from typing import Literal

from minolcore import _native
from minolcore.errors import InputError
from minolcore.wmbus.frame import FORMAT_B_FIRST_BLOCKS, LINK_HEADER_LENGTH
from minolcore.wmbus.headers import AFL_MAC_LENGTHS, AFLHeader, ELLHeader, TPLHeader, TPLKind
from minolcore.wmbus.link import encode_id, encode_manufacturer

__all__ = ["add_crcs", "build_frame", "encode_afl", "encode_ell", "encode_tpl"]

FrameShapeName = Literal["A", "B", "none"]

_ADDRESS = struct.Struct("<HIBB")
_LONG_TPL_ADDRESS = struct.Struct("<IHBB")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_MAX_FORMAT_B = 256


def encode_ell(header: ELLHeader, rest: bytes = b"") -> bytes:
    """ELL header bytes. For ELL II/IV without encryption and without a given payload CRC,
    the CRC is computed over ``rest`` (the bytes that follow it); an encrypting caller
    passes the header with its SN and puts the encrypted payload CRC into the ciphertext."""
    if header.ci not in (0x8C, 0x8D, 0x8E, 0x8F):
        raise InputError(f"CI 0x{header.ci:02X} is not an ELL CI")
    out = bytearray((header.ci, header.cc, header.acc))
    if header.ci in (0x8E, 0x8F):
        address = header.address
        if address is None:
            raise InputError("ELL III/IV needs the second address")
        out += _ADDRESS.pack(
            address.manufacturer_code, address.id_value, address.version, address.device_type
        )
    if header.ci in (0x8D, 0x8F):
        out += _U32.pack(header.sn or 0)
        if header.encryption == 0:
            crc = header.payload_crc if header.payload_crc is not None else _native.crc16(rest)
            out += _U16.pack(crc)
    return bytes(out)


def encode_afl(header: AFLHeader) -> bytes:
    """AFL header bytes (CI 0x90 and AFLL included); AFLL is computed from the fields."""
    body = bytearray(_U16.pack(header.fcl))
    if header.mcl is not None:
        body.append(header.mcl)
    if header.ki is not None:
        body += _U16.pack(header.ki)
    if header.mcr is not None:
        body += _U32.pack(header.mcr)
    if header.mac is not None:
        expected = AFL_MAC_LENGTHS.get((header.mcl or 0) & 0x0F)
        if expected is not None and expected != len(header.mac):
            raise InputError(f"MAC of {len(header.mac)} bytes does not fit the MCL ({expected} bytes)")
        body += header.mac
    if header.ml is not None:
        body += _U16.pack(header.ml)
    return bytes((0x90, len(body))) + bytes(body)


def encode_tpl(header: TPLHeader) -> bytes:
    """TPL header bytes: CI, [long address], ACC, STS, CF, [CF extension for mode 7]."""
    out = bytearray((header.ci,))
    if header.kind is TPLKind.LONG:
        address = header.address
        if address is None:
            raise InputError("a long TPL header needs an address")
        out += _LONG_TPL_ADDRESS.pack(
            address.id_value, address.manufacturer_code, address.version, address.device_type
        )
    elif header.kind is not TPLKind.SHORT:
        raise InputError("encode_tpl builds short and long headers only")
    out += bytes((header.acc, header.sts)) + _U16.pack(header.cf)
    if header.security_mode == 7:
        out.append(header.cf_ext or 0)
    return bytes(out)


def add_crcs(canonical: bytes, shape: FrameShapeName = "A") -> bytes:
    """Encode a canonical CRC-free frame (``L = len - 1``) as format A or B with CRCs."""
    if shape == "none":
        return canonical
    if shape == "A":
        parts = []
        for start, end in _a_blocks(len(canonical)):
            block = canonical[start:end]
            parts.append(block + _native.crc16(block).to_bytes(2, "big"))
        return b"".join(parts)
    if shape == "B":
        content = len(canonical)
        total = content + 2 if content + 2 <= FORMAT_B_FIRST_BLOCKS + 2 else content + 4
        if total > _MAX_FORMAT_B:
            raise InputError(f"a format-B frame holds at most {_MAX_FORMAT_B} bytes, this needs {total}")
        body = bytes((total - 1,)) + canonical[1:]
        if total == content + 2:
            return body + _native.crc16(body).to_bytes(2, "big")
        first, second = body[:FORMAT_B_FIRST_BLOCKS], body[FORMAT_B_FIRST_BLOCKS:]
        return (
            first
            + _native.crc16(first).to_bytes(2, "big")
            + second
            + _native.crc16(second).to_bytes(2, "big")
        )
    raise InputError(f"frame shape must be 'A', 'B' or 'none', got {shape!r}")


def _a_blocks(length: int) -> list[tuple[int, int]]:
    blocks = [(0, LINK_HEADER_LENGTH)]
    for start in range(LINK_HEADER_LENGTH, length, 16):
        blocks.append((start, min(start + 16, length)))
    return blocks


def build_frame(
    *,
    manufacturer: str | int,
    id: str | int,
    version: int,
    device_type: int,
    c_field: int = 0x44,
    ell: ELLHeader | None = None,
    afl: AFLHeader | None = None,
    tpl: TPLHeader | None = None,
    ci: int | None = None,
    payload: bytes = b"",
    shape: FrameShapeName = "A",
) -> bytes:
    """Encode one wireless M-Bus frame.

    Layers in order: link header, ``ell``, ``afl``, then ``tpl`` or, for a frame without a
    TPL header, the single CI byte ``ci`` (e.g. 0x78); then ``payload``. With an encrypted
    ELL (AES-CTR in its SN) the ``payload`` is the ciphertext from the payload CRC on, and
    ``afl``/``tpl``/``ci`` must be omitted (they are inside the ciphertext).
    """
    m_code = encode_manufacturer(manufacturer) if isinstance(manufacturer, str) else manufacturer
    link = bytes((c_field,)) + _ADDRESS.pack(m_code, encode_id(id), version, device_type)
    if tpl is not None and ci is not None:
        raise InputError("give either a TPL header or a bare CI, not both")
    inner = b""
    if afl is not None:
        inner += encode_afl(afl)
    if tpl is not None:
        inner += encode_tpl(tpl)
    elif ci is not None:
        inner += bytes((ci,))
    inner += payload
    if ell is not None:
        if ell.encryption and (afl is not None or tpl is not None or ci is not None):
            raise InputError("with an encrypted ELL the inner layers belong to the ciphertext")
        inner = encode_ell(ell, inner) + inner
    body = link + inner
    if len(body) > 255:
        raise InputError(f"frame of {len(body) + 1} bytes exceeds the L-field's range")
    return add_crcs(bytes((len(body),)) + body, shape)
