"""Batch frame scanning: one call into the C core for a whole batch of frames.

Input is one contiguous byte buffer plus offsets and lengths (no per-frame Python
objects); output is numpy columns with a status per frame, so a bad frame gets its
reason and the batch goes on.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from minolcore import _native
from minolcore.errors import InputError
from minolcore.wmbus.frame import CRCMode, CRCModeName, FrameStatus

__all__ = ["FRAME_INFO_DTYPE", "Flag", "ScanResult", "pack_frames", "scan", "scan_frames"]


class Flag(enum.IntFlag):
    """Bits of the ``flags`` column. The numbers are shared with the C core."""

    ELL = 1
    AFL = 2
    TPL = 4
    LONG_TPL = 8  # meter_* columns name the real meter behind a radio converter
    MCR = 16  # message_counter holds the AFL message counter
    L_REWRITTEN = 32  # format B frame whose L was rewritten as if format A
    HIDDEN = 64  # an ELL with AES-CTR hides the layers behind it


# One row per frame; the layout matches mc_frame_info in csrc/minolcore.h.
FRAME_INFO_DTYPE = np.dtype(
    [
        ("fingerprint", "<u8"),
        ("out_offset", "<i8"),
        ("id", "<u4"),
        ("meter_id", "<u4"),
        ("message_counter", "<u4"),
        ("manufacturer", "<u2"),
        ("meter_manufacturer", "<u2"),
        ("out_length", "<u2"),
        ("trailing", "<u2"),
        ("apl_offset", "<u2"),
        ("status", "u1"),
        ("crc_shape", "u1"),
        ("flags", "u1"),
        ("c_field", "u1"),
        ("version", "u1"),
        ("device_type", "u1"),
        ("ci", "u1"),
        ("tpl_ci", "u1"),
        ("meter_version", "u1"),
        ("meter_device_type", "u1"),
        ("acc", "u1"),
        ("security_mode", "u1"),
        ("encrypted_blocks", "u1"),
        ("reserved", "u1", (5,)),
    ]
)

_DEFAULT_KEY = os.urandom(16)

if _native.BACKEND == "cffi" and _native.ffi.sizeof("mc_frame_info") != FRAME_INFO_DTYPE.itemsize:
    raise ImportError("mc_frame_info and FRAME_INFO_DTYPE disagree: rebuild the C core")


class ScanResult:
    """Columns of a scanned batch.

    ``info`` is a structured array with one row per frame (see :data:`FRAME_INFO_DTYPE`);
    each field is also an attribute (``result.status``, ``result.fingerprint``, ...).
    ``output`` holds the canonical CRC-free frames, packed in batch order (each frame has
    room for as many bytes as it had on input): frame ``i`` is
    ``output[out_offset[i] : out_offset[i] + out_length[i]]``, followed by its
    ``trailing[i]`` bytes received beyond L. ``apl_offset`` is where the bytes after the last
    parsed header start, counted from the frame's first byte (the payload of
    :attr:`Frame.payload`; with an encrypted ELL, the first ciphertext byte).
    """

    __slots__ = ("info", "output")

    def __init__(self, info: npt.NDArray[np.void], output: npt.NDArray[np.uint8]) -> None:
        self.info = info
        self.output = output

    def __len__(self) -> int:
        return len(self.info)

    def __getattr__(self, name: str) -> npt.NDArray[Any]:
        if name in FRAME_INFO_DTYPE.names:  # type: ignore[operator]
            column: npt.NDArray[Any] = self.info[name]
            return column
        raise AttributeError(name)

    def frame(self, index: int) -> bytes:
        """The canonical CRC-free frame ``index`` (empty if its status is a CRC-level failure)."""
        row = self.info[index]
        start = int(row["out_offset"])
        return self.output[start : start + int(row["out_length"])].tobytes()

    def ok(self) -> npt.NDArray[np.bool_]:
        """Boolean mask of the frames whose status is OK."""
        mask: npt.NDArray[np.bool_] = self.info["status"] == FrameStatus.OK
        return mask

    def __repr__(self) -> str:
        ok = int(np.count_nonzero(self.ok()))
        return f"<ScanResult {len(self)} frames, {ok} ok>"


def pack_frames(
    frames: Sequence[bytes],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Pack a list of frames into one buffer with offsets and lengths (in bytes)."""
    lengths = np.fromiter(map(len, frames), dtype=np.int32, count=len(frames))
    offsets = np.zeros(len(frames), dtype=np.int64)
    if len(frames) > 1:
        np.cumsum(lengths[:-1], out=offsets[1:])
    buffer = np.frombuffer(b"".join(frames), dtype=np.uint8)
    return buffer, offsets, lengths


def _check_batch(
    buffer: Any, offsets: Any, lengths: Any
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """The batch description as contiguous arrays (bytes, offsets and lengths in bytes), or
    :class:`InputError` if it is inconsistent (shapes, types, spans outside the buffer)."""
    try:
        buf = np.frombuffer(buffer, dtype=np.uint8) if not isinstance(buffer, np.ndarray) else buffer
        offs = np.ascontiguousarray(offsets, dtype=np.int64)
        lens = np.ascontiguousarray(lengths, dtype=np.int32)
    except (TypeError, ValueError) as error:
        raise InputError(f"scan needs a byte buffer and integer offsets/lengths: {error}") from None
    if buf.dtype != np.uint8 or buf.ndim != 1:
        raise InputError("scan buffer must be a 1-D uint8 array or a bytes-like object")
    buf = np.ascontiguousarray(buf)
    if offs.ndim != 1 or offs.shape != lens.shape:
        raise InputError("offsets and lengths must be 1-D and of equal length")
    if len(offs) and (int(offs.min()) < 0 or int(lens.min()) < 0 or int((offs + lens).max()) > len(buf)):
        raise InputError("an offset/length pair lies outside the buffer")
    return buf, offs, lens


def scan(
    buffer: Any,
    offsets: Any,
    lengths: Any,
    *,
    crc: CRCModeName = "auto",
    key: bytes | None = None,
    crc_per_frame: Any = None,
) -> ScanResult:
    """Validate, strip and fingerprint a batch of frames in one call.

    ``buffer`` holds the frames back to back (bytes-like or a uint8 array); frame ``i`` is
    ``buffer[offsets[i] : offsets[i] + lengths[i]]`` (offsets and lengths in bytes).
    ``key`` is the 16-byte SipHash key of the fingerprints: choose one per pipeline and keep
    it secret so nobody can make different frames collide; by default a random key of this
    process is used. ``crc_per_frame``, when given, holds one :class:`CRCMode` value per
    frame (the mode of the gateway that delivered it) and replaces ``crc``. Raises
    :class:`InputError` only for an inconsistent batch description.
    """
    mode = {"auto": CRCMode.AUTO, "present": CRCMode.PRESENT, "absent": CRCMode.ABSENT}.get(crc)
    if mode is None:
        raise InputError(f"crc must be 'auto', 'present' or 'absent', got {crc!r}")
    fingerprint_key = _DEFAULT_KEY if key is None else key
    if not isinstance(fingerprint_key, bytes) or len(fingerprint_key) != 16:
        raise InputError("the fingerprint key must be 16 bytes")
    buf, offs, lens = _check_batch(buffer, offsets, lengths)
    modes = None if crc_per_frame is None else _checked_modes(crc_per_frame, len(offs))
    if _native.BACKEND == "cffi":
        # mc_scan writes every row and every byte it reports, so nothing needs zeroing.
        info = np.empty(len(offs), dtype=FRAME_INFO_DTYPE)
        output = np.empty(int(lens.sum()), dtype=np.uint8)
        ffi, lib = _native.ffi, _native.lib
        lib.mc_scan(
            ffi.from_buffer("uint8_t[]", buf),
            ffi.from_buffer("int64_t[]", offs),
            ffi.from_buffer("int32_t[]", lens),
            len(offs),
            int(mode),
            ffi.NULL if modes is None else ffi.from_buffer("uint8_t[]", modes),
            fingerprint_key,
            ffi.from_buffer("uint8_t[]", output),
            ffi.from_buffer("mc_frame_info[]", info),
        )
    else:
        from minolcore._reference.scan import scan_into  # noqa: PLC0415

        info = np.zeros(len(offs), dtype=FRAME_INFO_DTYPE)
        output = np.zeros(int(lens.sum()), dtype=np.uint8)
        scan_into(buf, offs, lens, mode, fingerprint_key, output, info, modes)
    return ScanResult(info, output)


def _checked_modes(crc_per_frame: Any, count: int) -> npt.NDArray[np.uint8]:
    try:
        modes = np.ascontiguousarray(crc_per_frame)
    except (TypeError, ValueError):
        raise InputError("crc_per_frame must hold one CRC mode number per frame") from None
    if modes.shape != (count,) or (
        count and (modes.dtype.kind not in "iu" or modes.min() < 0 or modes.max() > max(CRCMode))
    ):
        raise InputError("crc_per_frame must hold one CRC mode number (0, 1 or 2) per frame")
    return modes.astype(np.uint8)


def scan_frames(
    frames: Sequence[bytes], *, crc: CRCModeName = "auto", key: bytes | None = None
) -> ScanResult:
    """:func:`scan` over a list of frames (packed into one buffer first)."""
    buffer, offsets, lengths = pack_frames(frames)
    return scan(buffer, offsets, lengths, crc=crc, key=key)
