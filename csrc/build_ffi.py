"""cffi build script of the C core (out-of-line API mode), run by setuptools via setup.py.

``MINOLCORE_SANITIZE=1`` builds with AddressSanitizer and UBSan for the CI's
sanitizer job; such a build only loads with the runtime preloaded (see .ci/run).
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def _stamp() -> str:
    text = (ROOT / "src" / "minolcore" / "_version.py").read_text()
    version = re.search(r'__version__ = "([^"]+)"', text)
    abi = re.search(r"NATIVE_ABI = (\d+)", text)
    if version is None or abi is None:
        raise RuntimeError("src/minolcore/_version.py lacks __version__ or NATIVE_ABI")
    return f"{version.group(1)}+abi{abi.group(1)}"


def _cdef() -> str:
    """The declarations of minolcore.h, without its preprocessor lines (cffi parses plain C)."""
    header = (HERE / "minolcore.h").read_text()
    return "\n".join(line for line in header.splitlines() if not line.lstrip().startswith("#"))


SOURCES = sorted(str(path.relative_to(ROOT)) for path in HERE.glob("mc_*.c"))

compile_args = ["-std=c99", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]
link_args: list[str] = []
# dlopen and dlsym, and POSIX threads (mc_sqlite.c), are in libdl and libpthread before
# glibc 2.34; elsewhere in the C library.
libraries = ["dl", "pthread"] if sys.platform.startswith("linux") else []
if os.environ.get("MINOLCORE_SANITIZE") == "1":
    sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args = [*compile_args[:1], "-O1", "-g", *sanitize]
    link_args = sanitize

ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "minolcore._minolcore_cffi",
    '#include "minolcore.h"',
    sources=SOURCES,
    include_dirs=[str(HERE.relative_to(ROOT))],
    define_macros=[("MC_VERSION_STAMP", f'"{_stamp()}"')],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    libraries=libraries,
    optional=True,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
