"""Chooses the C core or its pure-Python reference, once, at import.

``BACKEND`` is ``"cffi"`` when the compiled extension loaded and its version stamp
matches this package, else ``"python"``. ``MINOLCORE_PUREPYTHON=1`` forces the
reference. A stale extension (built from other sources) is noticed by its stamp and
not used, with a warning.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

from minolcore._reference import crc as _ref_crc
from minolcore._reference import siphash as _ref_siphash
from minolcore._version import NATIVE_STAMP

__all__ = ["BACKEND", "crc16", "ffi", "from_buffer", "lib", "siphash24"]

ffi: Any = None
lib: Any = None
BACKEND: Literal["cffi", "python"] = "python"


def _load() -> None:
    global ffi, lib, BACKEND
    if os.environ.get("MINOLCORE_PUREPYTHON", "") not in ("", "0"):
        return
    try:
        from minolcore._minolcore_cffi import ffi as native_ffi  # noqa: PLC0415
        from minolcore._minolcore_cffi import lib as native_lib  # noqa: PLC0415
    except ImportError:
        warnings.warn(
            "minolcore's C core is not built; using the pure-Python reference (much slower)",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    stamp = native_ffi.string(native_lib.mc_version()).decode()
    if stamp != NATIVE_STAMP:
        warnings.warn(
            f"minolcore's C core is stale (built as {stamp}, package is {NATIVE_STAMP}); "
            "reinstall to rebuild it. Using the pure-Python reference.",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    ffi, lib, BACKEND = native_ffi, native_lib, "cffi"


_load()


def from_buffer(data: Any) -> Any:
    """A cffi ``uint8_t[]`` view of any buffer (bytes, bytearray, numpy array) without a copy."""
    return ffi.from_buffer("uint8_t[]", data)


if BACKEND == "cffi":

    def crc16(data: bytes | bytearray | memoryview) -> int:
        """CRC-16/EN-13757 of ``data`` (a 16-bit integer)."""
        return int(lib.mc_crc16(ffi.from_buffer(data), len(data)))

    def siphash24(key: bytes, data: bytes | bytearray | memoryview) -> int:
        """SipHash-2-4 of ``data`` under a 16-byte ``key`` (an unsigned 64-bit integer)."""
        return int(lib.mc_siphash24(key, ffi.from_buffer(data), len(data)))

else:

    def crc16(data: bytes | bytearray | memoryview) -> int:
        """CRC-16/EN-13757 of ``data`` (a 16-bit integer)."""
        return _ref_crc.crc16(data)

    def siphash24(key: bytes, data: bytes | bytearray | memoryview) -> int:
        """SipHash-2-4 of ``data`` under a 16-byte ``key`` (an unsigned 64-bit integer)."""
        return _ref_siphash.siphash24(key, bytes(data))
