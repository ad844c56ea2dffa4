// test/cudaEmu's stand-in for libfastgen/src/cuda/cp_async.cuh (same functions, emu.h's queued
// copies instead of PTX).
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

inline uint32_t smem_u32(const void *p) { return (uint32_t)(uintptr_t)p; }
inline void cp_async16(void *dst, const void *src, bool src_ok) { ::emu::cp_async(dst, src, 16, src_ok); }
inline void cp_async8(void *dst, const void *src, bool src_ok) { ::emu::cp_async(dst, src, 8, src_ok); }
inline void cp_async_commit() { ::emu::cp_commit(); }
template <int N>
inline void cp_async_wait() { ::emu::cp_wait(N); }

}  // namespace fgcu
