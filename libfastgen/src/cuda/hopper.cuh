// Hopper (sm_90a) primitives as inline PTX, for the warp-specialized kernels (attention_hopper.cu):
// mbarriers, named barriers, the async-proxy fence, setmaxnreg, and wgmma (warpgroup MMA,
// bf16 in, fp32 accumulate) with its shared-memory matrix descriptors. We have no CUTLASS.
//
// Bodies compile only for sm_90a (FG_SM90A); elsewhere they are empty, and the host never
// launches a kernel that uses them (attention_hopper.cu checks the device first).
//
// wgmma m64nNk16 fragments, thread t of the warpgroup (warp w = t / 32, lane):
//   D (fp32, N / 2 per thread): d[4 * nb + e] = D[16 w + lane / 4 + 8 * (e / 2)][8 nb + 2 (lane % 4) + e % 2]
//   A from registers (bf16 pairs, 4 words): word i holds A[16 w + lane / 4 + 8 (i % 2)][8 (i / 2) + 2 (lane % 4) + {0, 1}]
// so a D tile converted pairwise to bf16 is the A operand of the next MMA: word i of k-step kk is
// (d[8 kk + 2 i], d[8 kk + 2 i + 1]).
//
// Shared-memory operands, 128-byte swizzle: a panel is R rows of 64 bf16 (128 bytes), rows at
// 128-byte stride, 8-row groups (1024 bytes, 1024-aligned) in which 16-byte chunk c of row r
// sits at chunk c ^ (r % 8). A [R, 64 j] tile is j panels one after the other (swz_offset).
//   K-major operand (A = Q [64 rows, k], B = K [N keys, k]): rows are M or N, 64 k per panel;
//     descriptor SBO = 1024 (8-row groups), LBO unused (1); k-step kk starts 32 kk % 128 bytes
//     into panel kk / 4 (the swizzle is applied to the address, so offsets inside an atom work).
//   MN-major operand (B = V [keys = k, N = head dims], transposed by the instruction): rows are
//     k, 64 N per panel; SBO = 1024 (the next 8 k), LBO = the panel stride (the next 64 N);
//     k-step kk starts at row 16 kk.
//   (PTX ISA, "Matrix Descriptor Format" and the canonical layouts
//    ((8,m),(T,2k)):((8T,SBO),(1,T)) for K-major and ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)) for
//    MN-major, T = 8 bf16.)
#pragma once
#include "cuda/common.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FG_SM90A 1
#else
#define FG_SM90A 0
#endif

namespace fgcu {
namespace sm90 {

// Byte offset of 16-byte chunk c (8 bf16) of row r in a swizzled [R, 64 j] tile (see above).
__host__ __device__ constexpr uint32_t swz_offset(int r, int c, int R) {
  return (uint32_t)((c >> 3) * R * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

// Matrix descriptor of a 128-byte-swizzled operand at shared address addr (1024-aligned atoms).
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo_bytes >> 4) << 16) |
         ((uint64_t)(sbo_bytes >> 4) << 32) | (1ull << 62);
}
// The same descriptor moved by `bytes` (a multiple of 16): the start address is the low field.
__device__ __forceinline__ uint64_t desc_add(uint64_t desc, uint32_t bytes) { return desc + (bytes >> 4); }

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
#if FG_SM90A
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}
// Makes the initialized barriers visible (then a __syncthreads).
__device__ __forceinline__ void mbar_fence_init() {
#if FG_SM90A
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if FG_SM90A
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}
// Waits until the phase of the given parity has completed. A fresh barrier is in phase 0, so
// waiting for parity 1 returns at once (the "slot is free" start of a producer).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if FG_SM90A
  asm volatile(
      "{\n.reg .pred done;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#endif
}

// Named barriers 1..15 (0 is __syncthreads): sync waits for `threads` arrivals including its own.
__device__ __forceinline__ void bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void bar_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Orders this thread's generic-proxy shared-memory writes (st.shared, completed cp.async) before
// later async-proxy reads (wgmma operands) that a barrier hands to other threads.
__device__ __forceinline__ void fence_proxy_async() {
#if FG_SM90A
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
#if FG_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
#if FG_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// Before a batch of wgmma: orders earlier register writes (accumulators, A fragments) before it.
__device__ __forceinline__ void wgmma_fence() {
#if FG_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if FG_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits until at most N committed wgmma groups of this warpgroup are pending.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if FG_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Pins registers at this point of the program: code that reads an accumulator after
// wgmma_wait (or writes an A fragment) cannot be moved above the wait by the compiler.
template <int N>
__device__ __forceinline__ void pin(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void pin(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) asm volatile("" : "+r"(r[i][j])::"memory");
}

// "+f" operand lists of the accumulators.
#define FG_F4(d, i) "+f"(d[(i)]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3])
#define FG_F16(d, i) FG_F4(d, i), FG_F4(d, (i) + 4), FG_F4(d, (i) + 8), FG_F4(d, (i) + 12)
#define FG_F32(d, i) FG_F16(d, i), FG_F16(d, (i) + 16)
#define FG_F64(d, i) FG_F32(d, i), FG_F32(d, (i) + 32)
#define FG_F128(d, i) FG_F64(d, i), FG_F64(d, (i) + 64)

// wgmma_ss: d[64 x N] (+)= A[64 x 16] * B[16 x N], both K-major in shared memory (descriptors a,
// b); accumulate 0 overwrites d. N = 2 * (size of d).
// wgmma_rs: d[64 x N] (+)= A[64 x 16] from registers * B[16 x N], B MN-major (transposed).
// Operand lists written out (asm takes no loops); generated, one per N used.
__device__ __forceinline__ void wgmma_ss(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
#if FG_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : FG_F32(d, 0)
      : "l"(a), "l"(b), "r"(accumulate));
#endif
}
__device__ __forceinline__ void wgmma_ss(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
#if FG_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, "
      "%40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, "
      "%56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : FG_F64(d, 0)
      : "l"(a), "l"(b), "r"(accumulate));
#endif
}
__device__ __forceinline__ void wgmma_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t b, int accumulate) {
#if FG_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : FG_F32(d, 0)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
#endif
}
__device__ __forceinline__ void wgmma_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b, int accumulate) {
#if FG_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, "
      "%40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, "
      "%56, %57, %58, %59, %60, %61, %62, %63"
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : FG_F64(d, 0)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
#endif
}
__device__ __forceinline__ void wgmma_rs(float (&d)[128], const uint32_t (&a)[4], uint64_t b, int accumulate) {
#if FG_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, "
      "%40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, "
      "%56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, "
      "%72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, "
      "%88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, "
      "%104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, "
      "%120, %121, %122, %123, %124, %125, %126, %127"
      "}, {%128, %129, %130, %131}, %132, p, 1, 1, 1;\n}\n"
      : FG_F128(d, 0)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
#endif
}

#undef FG_F4
#undef FG_F16
#undef FG_F32
#undef FG_F64
#undef FG_F128

}  // namespace sm90
}  // namespace fgcu
