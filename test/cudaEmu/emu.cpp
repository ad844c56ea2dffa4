// The CPU execution model of emu.h: fibers, the scheduler, barriers, cp.async landing early or late,
// and the few CUDA runtime calls the launch code makes (one device: 132 SMs, 227 KiB of opt-in
// shared memory, as an H100).
#include "emu.h"

#include <stdio.h>
#include <stdlib.h>

#include <vector>

namespace emu {
namespace {

enum State { RUN, AT_BARRIER, AT_WARP, DONE };

struct Copy {
  void *dst;
  const void *src;
  int bytes;
  bool ok;
};

// x86-64 context switch: push the callee-saved registers, save the stack pointer to *save, load
// `load`, pop the other context's registers and return into it (no signal-mask syscall, unlike
// swapcontext).
extern "C" void emu_switch(void **save, void *load);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size emu_switch, .-emu_switch
)");

struct Fiber {
  void *sp = nullptr;
  State state = RUN;
  long warp_calls = 0;  // warp_sync calls so far
  std::vector<Copy> open;
  std::vector<std::vector<Copy>> groups;  // committed, oldest first
  size_t static_used = 0;                 // bytes of static shared memory declared so far
};

constexpr size_t kStack = 128 * 1024;
std::vector<char *> stacks;  // one a thread, kept across blocks

struct Block {
  uint3 idx;
  dim3 dim;
  int n = 0, cur = -1;
  std::vector<Fiber> fibers;
  std::vector<uint32_t> slots;  // [warps][32][16]
  void *sched = nullptr;
  const std::function<void()> *body = nullptr;
  bool land_early = false;
};

Block *B = nullptr;
dim3 g_grid;
alignas(128) unsigned char g_smem[256 * 1024];
alignas(128) unsigned char g_static[64 * 1024];  // a block's static __shared__ arrays

Fiber &me() { return B->fibers[B->cur]; }
void yield() { emu_switch(&me().sp, B->sched); }

void land(std::vector<Copy> &g) {
  for (const Copy &c : g) {
    if (c.ok) memcpy(c.dst, c.src, c.bytes);
    else memset(c.dst, 0, c.bytes);
  }
}

// Lets warp w's lanes go on when every live one waits at the same collective; false otherwise.
bool release_warp(Block &blk, int w) {
  int waiting = 0, live = 0;
  long calls = -1;
  for (int l = 0; l < 32; l++) {
    Fiber &f = blk.fibers[w * 32 + l];
    if (f.state == DONE) continue;
    live++;
    if (f.state != AT_WARP) continue;
    waiting++;
    if (calls >= 0 && f.warp_calls != calls) {
      fprintf(stderr, "emu: block (%u,%u) warp %d: lanes at different collectives\n", blk.idx.x, blk.idx.y, w);
      abort();
    }
    calls = f.warp_calls;
  }
  if (live == 0 || waiting < live) return false;
  for (int l = 0; l < 32; l++)
    if (blk.fibers[w * 32 + l].state == AT_WARP) blk.fibers[w * 32 + l].state = RUN;
  return true;
}

void fiber_main() {
  (*B->body)();
  me().state = DONE;
  yield();  // never resumed
  abort();
}

// A fresh fiber's stack: six zero registers for emu_switch to pop, then fiber_main as the return
// address, above it a dummy slot so that fiber_main starts with rsp = 8 mod 16 as after a call.
void *fresh_stack(char *base) {
  uintptr_t top = ((uintptr_t)base + kStack) & ~(uintptr_t)15;
  void **sp = (void **)(top - 8);
  *--sp = (void *)&fiber_main;
  for (int i = 0; i < 6; i++) *--sp = nullptr;
  return sp;
}

}  // namespace

uint3 thread_idx() {
  const int t = B->cur;
  return make_uint3(t % B->dim.x, (t / B->dim.x) % B->dim.y, t / (B->dim.x * B->dim.y));
}
uint3 block_idx() { return B->idx; }
unsigned char *smem() { return g_smem; }
// Every thread of a block declares the same static arrays in the same order, so the n-th
// declaration lands at the same offset in each of them.
void *smem_static(size_t bytes, size_t align) {
  Fiber &f = me();
  const size_t at = (f.static_used + align - 1) / align * align;
  if (at + bytes > sizeof g_static) {
    fprintf(stderr, "emu: more than %zu bytes of static shared memory\n", sizeof g_static);
    abort();
  }
  f.static_used = at + bytes;
  return g_static + at;
}
dim3 block_dim() { return B->dim; }
dim3 grid_dim() { return g_grid; }
int lane_id() { return B->cur % 32; }
uint32_t *warp_slots() { return &B->slots[(size_t)(B->cur / 32) * 32 * 16]; }

void syncthreads() {
  me().state = AT_BARRIER;
  yield();
}
int syncthreads_or(int p) {
  static int any = 0;  // one block runs at a time
  syncthreads();
  if (B->cur == 0) any = 0;
  syncthreads();
  if (p) any = 1;
  syncthreads();
  const int r = any;
  syncthreads();
  return r;
}
void warp_sync() {
  me().warp_calls++;
  me().state = AT_WARP;
  yield();
}

// Blocks alternate between copies landing at once (a buffer refilled while some warp still
// reads it shows) and at the wait (a tile read before its wait shows).
void cp_async(void *dst, const void *src, int bytes, bool ok) {
  Copy c{dst, src, bytes, ok};
  if (B->land_early) {
    std::vector<Copy> one{c};
    land(one);
  } else {
    me().open.push_back(c);
  }
}
void cp_commit() {
  me().groups.push_back(std::move(me().open));
  me().open.clear();
}
void cp_wait(int n) {
  auto &g = me().groups;
  while ((int)g.size() > n) {
    land(g.front());
    g.erase(g.begin());
  }
}

void run_grid(dim3 grid, dim3 block, size_t smem_bytes, const std::function<void()> &body) {
  const int n = block.x * block.y * block.z;
  if (n % 32 != 0) {
    fprintf(stderr, "emu: blocks of whole warps only (%d threads)\n", n);
    abort();
  }
  g_grid = grid;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        Block blk;
        blk.idx = make_uint3(bx, by, bz);
        blk.dim = block;
        blk.n = n;
        blk.fibers.resize(n);
        blk.slots.assign((size_t)n / 32 * 32 * 16, 0u);
        blk.body = &body;
        blk.land_early = (bx + by + bz) % 2 == 0;
        B = &blk;
        memset(g_smem, 0xff, smem_bytes < sizeof g_smem ? smem_bytes : sizeof g_smem);
        memset(g_static, 0xff, sizeof g_static);
        while ((int)stacks.size() < n) stacks.push_back((char *)malloc(kStack));
        for (int t = 0; t < n; t++) blk.fibers[t].sp = fresh_stack(stacks[t]);
        // Warps in a random order a block, each run as far as it can (to a barrier or its end)
        // before the next starts: the most skew between warps, so a missing barrier shows.
        std::vector<int> order(n / 32);
        for (int w = 0; w < n / 32; w++) order[w] = w;
        uint32_t seed = 2654435761u * (bx + 1) + 40503u * (by + 1) + 97u * bz;
        for (int w = n / 32 - 1; w > 0; w--) {
          seed = seed * 1664525u + 1013904223u;
          std::swap(order[w], order[(seed >> 8) % (w + 1)]);
        }
        for (;;) {
          for (int w : order)
            for (;;) {
              for (int l = 0; l < 32; l++)
                if (blk.fibers[w * 32 + l].state == RUN) {
                  blk.cur = w * 32 + l;
                  emu_switch(&blk.sched, blk.fibers[w * 32 + l].sp);
                }
              if (!release_warp(blk, w)) break;
            }
          int done = 0, at_bar = 0;
          for (auto &f : blk.fibers) done += f.state == DONE, at_bar += f.state == AT_BARRIER;
          if (done == n) break;
          if (at_bar + done < n) {
            fprintf(stderr, "emu: block (%u,%u,%u) deadlocked (a barrier or collective some threads never reach)\n", bx, by, bz);
            abort();
          }
          for (auto &f : blk.fibers) if (f.state == AT_BARRIER) f.state = RUN;
        }
        B = nullptr;
      }
}

}  // namespace emu

// The CUDA runtime calls of the launch code (one device).
extern "C" {
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int) {
  *v = attr == cudaDevAttrMultiProcessorCount ? 132 : attr == cudaDevAttrMaxSharedMemoryPerBlockOptin ? 232448 : 0;
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *, cudaFuncAttribute, int) { return cudaSuccess; }
// Two blocks an SM (what the small-M GEMV's persistent grid assumes on an H100).
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, const void *, int, size_t) {
  *n = 2;
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t) { return "emu"; }
// Host memory stands in for the device's (the cuBLASLt workspace of gemm.cu's setup, never run here).
cudaError_t cudaMalloc(void **p, size_t bytes) { *p = malloc(bytes); return *p ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
}
