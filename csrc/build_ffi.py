"""cffi build script of the C core (out-of-line API mode), run by setuptools via setup.py.

``MINOLCORE_SANITIZE=1`` builds with AddressSanitizer and UBSan for the CI's
sanitizer job; such a build only loads with the runtime preloaded (see .ci/run).
"""

from __future__ import annotations

import os
import pathlib
import re

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


CDEF = """
typedef struct {
    uint64_t fingerprint;
    int64_t out_offset;
    uint32_t id;
    uint32_t meter_id;
    uint32_t message_counter;
    uint16_t manufacturer;
    uint16_t meter_manufacturer;
    uint16_t out_length;
    uint16_t trailing;
    uint8_t status;
    uint8_t crc_shape;
    uint8_t flags;
    uint8_t c_field;
    uint8_t version;
    uint8_t device_type;
    uint8_t ci;
    uint8_t tpl_ci;
    uint8_t meter_version;
    uint8_t meter_device_type;
    uint8_t acc;
    uint8_t security_mode;
    uint8_t encrypted_blocks;
    uint8_t reserved[7];
} mc_frame_info;

const char *mc_version(void);
uint16_t mc_crc16(const uint8_t *data, size_t len);
uint64_t mc_siphash24(const uint8_t *key, const uint8_t *data, size_t len);
void mc_scan(const uint8_t *buf, const int64_t *offsets, const int32_t *lengths, size_t n,
             int mode, const uint8_t *key, uint8_t *out, mc_frame_info *info);

typedef struct mc_dedupe mc_dedupe;
typedef struct {
    uint64_t count;
    uint64_t capacity;
    uint64_t max_capacity;
    int64_t next_id;
    int64_t watermark;
    int64_t last_sweep_watermark;
    uint64_t overflow;
    uint64_t expired;
    uint64_t sweeps;
    int64_t retention_ms;
} mc_dedupe_stats;
mc_dedupe *mc_dedupe_new(uint64_t initial_capacity, uint64_t max_capacity, int64_t retention_ms);
void mc_dedupe_free(mc_dedupe *table);
int mc_dedupe_batch(mc_dedupe *table, const uint64_t *fingerprints, const int64_t *times_ms, size_t n,
                    int64_t window_ms, int64_t *uplink_ids, uint8_t *is_new);
void mc_dedupe_get_stats(const mc_dedupe *table, mc_dedupe_stats *out);
size_t mc_dedupe_export(const mc_dedupe *table, uint64_t *fingerprints, int64_t *first_seen_ms,
                        int64_t *uplink_ids, size_t max_entries);
int mc_dedupe_restore(mc_dedupe *table, const uint64_t *fingerprints, const int64_t *first_seen_ms,
                      const int64_t *uplink_ids, size_t n, const mc_dedupe_stats *state);
"""

SOURCES = sorted(str(path.relative_to(ROOT)) for path in HERE.glob("mc_*.c"))

compile_args = ["-std=c99", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]
link_args: list[str] = []
if os.environ.get("MINOLCORE_SANITIZE") == "1":
    sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args = [*compile_args[:1], "-O1", "-g", *sanitize]
    link_args = sanitize

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "minolcore._minolcore_cffi",
    '#include "minolcore.h"',
    sources=SOURCES,
    include_dirs=[str(HERE.relative_to(ROOT))],
    define_macros=[("MC_VERSION_STAMP", f'"{_stamp()}"')],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    optional=True,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
