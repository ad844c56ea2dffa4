// A CUDA execution model on the CPU for kernel tests without a GPU. Every thread of a block is a
// fiber (its own stack, an x86-64 register switch) of one OS thread that runs until it blocks on
// __syncthreads or on a warp collective (shuffles, ldmatrix, mma.sync); a collective completes
// once every live lane of the warp has arrived. To make races show up as wrong answers: warps run
// in a random order, each as far as it can before the next starts; cp.async copies land at once
// in even blocks and only at cp.async.wait_group in odd ones; a block's shared memory starts as
// NaNs. Blocks run one after another. Fragment layouts follow the PTX ISA, written here
// independently of the kernels (mma m16n8k16 .bf16, g = lane / 4, t = lane % 4: A a0 (row g, k
// 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..); B b0 (k 2t..2t+1, col g), b1 (k
// 2t+8..); C c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..)).
// Built by test/cudaEmu/build.ts with g++ against the CUDA headers (host parts only).
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

using std::max;  // device code's integer min / max
using std::min;

// cuda_runtime.h's typed overload (nvcc only), for the launch code's kernel attributes
template <typename T>
inline cudaError_t cudaFuncSetAttribute(T *entry, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute((const void *)entry, attr, value);
}
template <typename T>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, T *entry, int threads, size_t smem) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, (const void *)entry, threads, smem);
}

namespace emu {

uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();
int lane_id();
void syncthreads();
// __syncthreads_or: a barrier that returns, in every thread, whether any thread passed nonzero.
int syncthreads_or(int p);
// Waits until every live lane of this thread's warp has called warp_sync the same number of times.
void warp_sync();
// This warp's exchange slots: 32 lanes x 16 words.
uint32_t *warp_slots();
// cp.async: queue a copy (zero fill when !ok), close the open group, land all but the newest n groups.
void cp_async(void *dst, const void *src, int bytes, bool ok);
void cp_commit();
void cp_wait(int n);
void run_grid(dim3 grid, dim3 block, size_t smem_bytes, const std::function<void()> &body);
// The block's dynamic shared memory (256 KiB), its launch's bytes filled with 0xff (bf16 / fp32
// NaNs) before each block, so that a read of anything the block did not write poisons the result.
unsigned char *smem();
// A static __shared__ array of the running block (build.ts rewrites the declarations to this);
// NaN-poisoned at each block's start like the dynamic buffer.
void *smem_static(size_t bytes, size_t align);

template <typename T>
T shfl_idx(T v, int src) {
  static_assert(sizeof(T) == 4, "4-byte shuffles");
  uint32_t *s = warp_slots();
  memcpy(&s[lane_id() * 16], &v, 4);
  warp_sync();
  T r;
  memcpy(&r, &s[(src & 31) * 16], 4);
  warp_sync();
  return r;
}
template <typename T>
T shfl_xor(T v, int mask) { return shfl_idx(v, lane_id() ^ mask); }
inline bool any(bool p) {
  uint32_t *s = warp_slots();
  s[lane_id() * 16] = p;
  warp_sync();
  bool r = false;
  for (int l = 0; l < 32; l++) r |= s[l * 16] != 0;
  warp_sync();
  return r;
}

inline float bf16_lo(uint32_t w) { uint32_t u = w << 16; float f; memcpy(&f, &u, 4); return f; }
inline float bf16_hi(uint32_t w) { uint32_t u = w & 0xffff0000u; float f; memcpy(&f, &u, 4); return f; }

// ldmatrix .x4 (.trans): lane l names row l % 8 of matrix l / 8 (16 bytes at p).
inline void ldmatrix_x4(uint32_t *r, const void *p, bool trans) {
  uint32_t *s = warp_slots();
  const uintptr_t a = (uintptr_t)p;
  memcpy(&s[lane_id() * 16], &a, sizeof a);
  warp_sync();
  const int l = lane_id(), g = l / 4, t = l % 4;
  for (int i = 0; i < 4; i++) {
    auto row = [&](int rr) { uintptr_t q; memcpy(&q, &s[(8 * i + rr) * 16], sizeof q); return (const uint16_t *)q; };
    uint16_t lo, hi;
    if (!trans) lo = row(g)[2 * t], hi = row(g)[2 * t + 1];
    else lo = row(2 * t)[g], hi = row(2 * t + 1)[g];
    r[i] = (uint32_t)lo | ((uint32_t)hi << 16);
  }
  warp_sync();
}

// d[16x8] += a[16x16] b[16x8], bf16 in, fp32 accumulate.
inline void mma16816(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
  uint32_t *s = warp_slots();
  uint32_t *mine = &s[lane_id() * 16];
  mine[0] = a[0], mine[1] = a[1], mine[2] = a[2], mine[3] = a[3], mine[4] = b0, mine[5] = b1;
  warp_sync();
  auto A = [&](int row, int k) {  // register (row / 8) + 2 (k / 8) of lane 4 (row % 8) + (k % 8) / 2
    const uint32_t w = s[(4 * (row % 8) + (k % 8) / 2) * 16 + (row / 8) + 2 * (k / 8)];
    return k % 2 ? bf16_hi(w) : bf16_lo(w);
  };
  auto B = [&](int k, int col) {  // b(k / 8) of lane 4 col + (k % 8) / 2
    const uint32_t w = s[(4 * col + (k % 8) / 2) * 16 + 4 + k / 8];
    return k % 2 ? bf16_hi(w) : bf16_lo(w);
  };
  const int g = lane_id() / 4, t = lane_id() % 4;
  float out[4];
  for (int e = 0; e < 4; e++) {
    const int row = g + 8 * (e / 2), col = 2 * t + e % 2;
    float acc = d[e];
    for (int k = 0; k < 16; k++) acc += A(row, k) * B(k, col);
    out[e] = acc;
  }
  warp_sync();
  for (int e = 0; e < 4; e++) d[e] = out[e];
}

// A harness's main: run(c, rng) for each case whose name contains argv[1] (every case without
// one), which prints its line and returns whether it passed; then the count. Exit status 1 on a
// failure.
template <class Case, class Run>
int run_cases(const std::vector<Case> &cases, Run run, unsigned seed, int argc, char **argv) {
  std::mt19937 rng(seed);
  int failed = 0, ran = 0;
  for (const Case &c : cases) {
    if (argc > 1 && std::string(c.name).find(argv[1]) == std::string::npos) continue;
    ran++;
    failed += !run(c, rng);
    fflush(stdout);
  }
  printf("%d of %d cases passed\n", ran - failed, ran);
  return failed ? 1 : 0;
}

template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, cudaStream_t, A... args) {
  run_grid(grid, block, smem_bytes, [&] { kernel(static_cast<P>(args)...); });
}

}  // namespace emu

#define __launch_bounds__(...)
#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
#define __syncthreads() ::emu::syncthreads()
#define __shfl_xor_sync(mask, v, off) ::emu::shfl_xor(v, off)
#define __shfl_sync(mask, v, src) ::emu::shfl_idx(v, src)
#define __any_sync(mask, p) ::emu::any(p)
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __fdiv_rn(a, b) ((a) / (b))
#define __syncthreads_or(p) ::emu::syncthreads_or(p)
// Blocks run one after another on one OS thread: atomics are plain read-modify-writes, fences
// have nothing to order, and every load sees every earlier store.
#define __threadfence() ((void)0)
#define __ldcg(p) (*(p))
#define __ldcs(p) (*(p))
#define __ldg(p) (*(p))
#define __fmaf_rn(a, b, c) fmaf(a, b, c)
#define __fmul_rn(a, b) ((a) * (b))
#define rsqrtf(x) (1.f / sqrtf(x))
template <typename T>
inline T atomicAdd(T *p, T v) { const T old = *p; *p = old + v; return old; }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
// prmt: byte i of the result is byte (s >> 4i) & 7 of {x, y} (y's bytes are 4..7); with bit 3 of
// that nibble set, that byte's sign replicated.
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long xy = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; i++) {
    const unsigned nib = (s >> (4 * i)) & 15, b = (unsigned)(xy >> (8 * (nib & 7))) & 0xffu;
    r |= ((nib & 8) ? ((b & 0x80u) ? 0xffu : 0u) : b) << (8 * i);
  }
  return r;
}
