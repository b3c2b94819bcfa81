#include "minolcore.h"

#ifndef MC_VERSION_STAMP
#error "MC_VERSION_STAMP must be defined by the build (csrc/build_ffi.py)"
#endif

const char *mc_version(void) { return MC_VERSION_STAMP; }
