// test/cudaEmu's stand-in for libfastgen/src/cuda/ldmatrix.cuh (emu.h's warp collective).
#pragma once
#include "cuda/cp_async.cuh"

namespace fgcu {

inline void ldmatrix_x4(uint32_t *r, const void *p) { ::emu::ldmatrix_x4(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t *r, const void *p) { ::emu::ldmatrix_x4(r, p, true); }

}  // namespace fgcu
