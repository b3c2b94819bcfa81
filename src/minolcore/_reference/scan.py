"""Reference twin of ``mc_scan``: the frame layer's own Python functions, frame by frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from minolcore._reference.siphash import siphash24
from minolcore.errors import FrameError, HeaderTruncatedError
from minolcore.wmbus.frame import LINK_HEADER_LENGTH, CRCMode, CRCShape, FrameStatus, strip_crcs
from minolcore.wmbus.headers import TPLKind, parse_layers

__all__ = ["scan_into"]

_FLAG_ELL, _FLAG_AFL, _FLAG_TPL, _FLAG_LONG_TPL, _FLAG_MCR, _FLAG_L_REWRITTEN, _FLAG_HIDDEN = (
    1,
    2,
    4,
    8,
    16,
    32,
    64,
)


def scan_into(
    buffer: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int32],
    mode: CRCMode,
    key: bytes,
    output: npt.NDArray[np.uint8],
    info: npt.NDArray[Any],
    modes: npt.NDArray[np.uint8] | None = None,
) -> None:
    """Fill ``output`` and the rows of ``info`` exactly as ``mc_scan`` does (frame ``i`` in
    CRC mode ``modes[i]``, or all in ``mode`` when ``modes`` is None)."""
    raw_all = buffer.tobytes()
    cursor = 0
    for index in range(len(offsets)):
        offset = int(offsets[index])
        row = info[index]
        row["out_offset"] = out_offset = cursor
        raw = raw_all[offset : offset + int(lengths[index])]
        cursor += len(raw)
        try:
            shape, canonical, trailing, rewritten = strip_crcs(
                raw, mode if modes is None else CRCMode(modes[index])
            )
        except FrameError as error:
            row["status"] = error.status
            continue
        output[out_offset : out_offset + len(canonical) + len(trailing)] = np.frombuffer(
            canonical + trailing, dtype=np.uint8
        )
        _fill(row, canonical, shape, len(trailing), rewritten, key)


def _fill(row: Any, canonical: bytes, shape: CRCShape, trailing: int, rewritten: bool, key: bytes) -> None:
    row["crc_shape"] = shape
    row["out_length"] = len(canonical)
    row["trailing"] = trailing
    row["c_field"] = canonical[1]
    row["manufacturer"] = row["meter_manufacturer"] = canonical[2] | (canonical[3] << 8)
    row["id"] = row["meter_id"] = int.from_bytes(canonical[4:8], "little")
    row["version"] = row["meter_version"] = canonical[8]
    row["device_type"] = row["meter_device_type"] = canonical[9]
    row["ci"] = canonical[10]
    row["fingerprint"] = siphash24(key, canonical)
    flags = _FLAG_L_REWRITTEN if rewritten else 0
    try:
        layers = parse_layers(canonical, LINK_HEADER_LENGTH)
    except HeaderTruncatedError:
        row["status"] = FrameStatus.HEADER_TRUNCATED
        row["flags"] = flags
        return
    row["status"] = FrameStatus.OK
    row["apl_offset"] = layers.payload_offset
    if layers.ell is not None:
        flags |= _FLAG_ELL
        row["acc"] = layers.ell.acc
    if layers.hidden:
        row["flags"] = flags | _FLAG_HIDDEN
        return
    if layers.afl is not None:
        flags |= _FLAG_AFL
        if layers.afl.mcr is not None:
            flags |= _FLAG_MCR
            row["message_counter"] = layers.afl.mcr
    row["tpl_ci"] = layers.tpl_ci or 0
    tpl = layers.tpl
    if tpl is not None:
        flags |= _FLAG_TPL
        row["acc"] = tpl.acc
        row["security_mode"] = tpl.security_mode
        row["encrypted_blocks"] = tpl.encrypted_blocks
        if tpl.kind is TPLKind.LONG and tpl.address is not None:
            flags |= _FLAG_LONG_TPL
            row["meter_manufacturer"] = tpl.address.manufacturer_code
            row["meter_id"] = tpl.address.id_value
            row["meter_version"] = tpl.address.version
            row["meter_device_type"] = tpl.address.device_type
    row["flags"] = flags
