// Mixture-of-experts MLP (see moe.cuh): route, scatter, per-expert GEMMs, combine.
#include <stdlib.h>

#include "cuda/moe.cuh"
#include "cuda/ops.cuh"

namespace fgcu {
namespace {

constexpr int kRouteWarps = 4;
constexpr int kScatterThreads = 1024;
constexpr int kMaxExperts = 4096;  // spec.cpp's bound; the routing kernels keep [E] in shared memory

// One warp per token: k passes of an argmax over the experts not yet taken, then Mixtral's
// weights exp(l[id] - l[id_0]) / sum over the k (the softmax denominator cancels), or with
// renormalize false the plain softmax weights exp(l[id] - l[id_0]) / sum over all E (Qwen2-MoE,
// DeepSeek), times r.scale. Group-limited (r.num_groups > 1, DeepSeek-V2): the experts of every
// group but the r.topk_groups groups with the highest best logit count as taken from the start.
//   logits: [T, E]; ids, weights: [T, k]; dynamic shared: kRouteWarps * 2E bytes (taken [E],
//   then the chosen groups [num_groups <= E], per warp)
// Matches cpu moe_route's sequential scan `best < 0 || l[e] > l[best]` exactly: ties go to the
// lower id (and the lower group), and NaN logits only win when the first expert not taken is NaN.
__global__ void __launch_bounds__(kRouteWarps * 32)
    route_kernel(const float *logits, int T, MoeRoute r, int *ids, float *weights) {
  extern __shared__ unsigned char taken_all[];
  const int E = r.num_experts, k = r.top_k, G = r.num_groups;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x * kRouteWarps + warp;
  if (t >= T) return;
  unsigned char *taken = taken_all + warp * E, *chosen = taken_all + (kRouteWarps + warp) * E;
  for (int e = lane; e < E; e += 32) taken[e] = 0;
  const float *l = logits + (size_t)t * E;
  if (G > 1) {
    const int size = E / G;
    for (int g = lane; g < G; g += 32) chosen[g] = 0;
    __syncwarp();
    for (int j = 0; j < r.topk_groups; j++) {
      int bg = -1;
      float bv = 0.f;
      for (int g = lane; g < G; g += 32) {
        if (chosen[g]) continue;
        float best = -INFINITY;  // the group's best logit (its best softmax probability)
        for (int e = g * size; e < (g + 1) * size; e++) best = fmaxf(best, l[e]);
        if (bg < 0 || best > bv) bg = g, bv = best;
      }
      for (int off = 16; off > 0; off >>= 1) {
        const int og = __shfl_xor_sync(0xffffffffu, bg, off);
        const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
        if (og >= 0 && (bg < 0 || ov > bv || (ov == bv && og < bg))) bg = og, bv = ov;
      }
      if (lane == 0) chosen[bg] = 1;
      __syncwarp();
    }
    for (int e = lane; e < E; e += 32) taken[e] = !chosen[e / size];
  }
  __syncwarp();
  int *id = ids + (size_t)t * k;
  for (int j = 0; j < k; j++) {
    int first = 0x7fffffff, best = -1;  // first expert not taken; best non-NaN one
    float bv = 0.f;
    for (int e = lane; e < E; e += 32) {
      if (taken[e]) continue;
      const float v = l[e];
      if (first == 0x7fffffff) first = e;
      if (!isnan(v) && (best < 0 || v > bv)) best = e, bv = v;
    }
    for (int off = 16; off > 0; off >>= 1) {
      const int of = __shfl_xor_sync(0xffffffffu, first, off);
      const int ob = __shfl_xor_sync(0xffffffffu, best, off);
      const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
      first = min(first, of);
      if (ob >= 0 && (best < 0 || ov > bv || (ov == bv && ob < best))) best = ob, bv = ov;
    }
    const int pick = isnan(l[first]) ? first : best;
    if (lane == 0) taken[pick] = 1, id[j] = pick;
    __syncwarp();
  }
  const double top = l[id[0]];
  double sum = 0;  // in double, like the CPU: the k in slot order, or all E over the lanes
  if (r.renormalize) {
    for (int j = 0; j < k; j++) sum += exp((double)l[id[j]] - top);
  } else {
    for (int e = lane; e < E; e += 32) sum += exp((double)l[e] - top);
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  }
  for (int j = lane; j < k; j += 32)
    weights[(size_t)t * k + j] = (float)(exp((double)l[id[j]] - top) / sum * (double)r.scale);
}

// Single block: counts per expert, their padded prefix sum, then a stable scatter (slot order,
// hence token order, within an expert) by one warp, 32 slots per step.
//   ids: [N = T*k]; meta: offsets [E + 1] then counts [E]; row_of: [N]
// Each non-empty expert's rows start at a multiple of `pad` rows, so its slices of the
// workspaces keep the 256-byte alignment that cuBLASLt's heuristic assumes by default.
__global__ void __launch_bounds__(kScatterThreads)
    scatter_kernel(const int *ids, int N, int E, int pad, int *meta, int *row_of) {
  extern __shared__ int fill[];  // [E]
  for (int e = threadIdx.x; e < E; e += blockDim.x) fill[e] = 0;
  __syncthreads();
  for (int s = threadIdx.x; s < N; s += blockDim.x) atomicAdd(&fill[ids[s]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int run = 0;
    for (int e = 0; e < E; e++) {
      const int c = fill[e];
      meta[e] = fill[e] = run;
      meta[E + 1 + e] = c;
      run += (c + pad - 1) / pad * pad;
    }
    meta[E] = run;
  }
  __syncthreads();
  if (threadIdx.x >= 32) return;
  const int lane = threadIdx.x;
  const unsigned below = (1u << lane) - 1;
  for (int base = 0; base < N; base += 32) {
    const int s = base + lane;
    const int e = s < N ? ids[s] : -1;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    const int leader = __ffs(peers) - 1;
    int start = 0;
    if (e >= 0 && lane == leader) {
      start = fill[e];
      fill[e] = start + __popc(peers);
    }
    start = __shfl_sync(0xffffffffu, start, leader);
    if (e >= 0) row_of[s] = start + __popc(peers & below);
    __syncwarp();
  }
}

// xs[row_of[s]] = x[s / k], one block per slot. x: [T, H], xs: [rows, H].
__global__ void gather_kernel(const bf16 *x, const int *row_of, int k, int H, bool vec, bf16 *xs) {
  const int s = blockIdx.x;
  const bf16 *src = x + (size_t)(s / k) * H;
  bf16 *dst = xs + (size_t)row_of[s] * H;
  if (vec)
    for (int i = threadIdx.x * 8; i < H; i += blockDim.x * 8)
      *reinterpret_cast<uint4 *>(dst + i) = *reinterpret_cast<const uint4 *>(src + i);
  else
    for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = src[i];
}

// h[t] = (accumulate ? h[t] : 0) + sum_j weights[t, j] * ys[row_of[t*k + j]], j in slot order
// so a token's sum does not depend on the batch. One block per token.
__global__ void combine_kernel(const float *ys, const int *row_of, const float *weights, int k,
                               int H, bool accumulate, float *h) {
  const size_t t = blockIdx.x;
  float *out = h + t * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) {
    float acc = accumulate ? out[i] : 0.f;
    for (int j = 0; j < k; j++) acc += weights[t * k + j] * ys[(size_t)row_of[t * k + j] * H + i];
    out[i] = acc;
  }
}

bool gated_act(int act) { return act <= kGatedGeluTanh; }

// The shared expert's gate: act[t, :I] *= sigmoid(x[t] . gate), one block per token.
//   x: [T, H] bf16, gate: [H] bf16, act: [T, I] bf16
__global__ void gate_rows_kernel(const bf16 *x, const bf16 *gate, int H, int I, bf16 *act) {
  __shared__ float scratch[32];
  const size_t t = blockIdx.x;
  float dot = 0.f;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dot += to_f(x[t * H + i]) * to_f(gate[i]);
  dot = block_sum(dot, scratch);
  const float s = 1.f / (1.f + expf(-dot));
  for (int i = threadIdx.x; i < I; i += blockDim.x) act[t * I + i] = to_bf(to_f(act[t * I + i]) * s);
}

// Rows per alignment unit: pad * width * elem_size is a multiple of 256 bytes for every
// workspace (xs, mid, act: bf16 of H, mlp_rows, I; ys: fp32 of H). 1 for real models.
int row_pad(int H, int I) {
  int a = H, b = I;
  while (b) { const int r = a % b; a = b, b = r; }
  int p = 128;
  while (p > 1 && a % 2 == 0) p /= 2, a /= 2;
  return p;
}

int check_shape(int T, int H, int I, int E, int k, int act, char *err) {
  if (T < 0 || H < 1 || I < 1 || E < 1 || E > kMaxExperts || k < 1 || k > E || act < 0 || act > kRelu ||
      (int64_t)T * k > 0x7fffffff) {
    snprintf(err, 512, "moe: bad shape T=%d H=%d I=%d E=%d k=%d act=%d (need 1 <= k <= E <= %d)", T, H, I,
             E, k, act, kMaxExperts);
    return FG_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

// spec.cpp checked the groups against the spec; this guards the kernel's indexing.
int check_route(const MoeRoute &r, char *err) {
  const int G = r.num_groups;
  if (G < 1 || r.num_experts % G != 0 || r.topk_groups < 1 || r.topk_groups > G ||
      r.top_k > r.topk_groups * (r.num_experts / G)) {
    snprintf(err, 512, "moe: bad routing groups: %d groups of %d experts, top %d groups, top-%d", G, r.num_experts,
             r.topk_groups, r.top_k);
    return FG_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

}  // namespace

int moe_route(const float *logits, int T, const MoeRoute &route, int pad, int *ids, float *weights, int *meta,
              int *row_of, cudaStream_t st, char *err) {
  FGCU_CHECK(check_route(route, err));
  const int E = route.num_experts;
  if (T > 0) {
    route_kernel<<<ceil_div(T, kRouteWarps), kRouteWarps * 32, 2 * kRouteWarps * E, st>>>(logits, T, route, ids,
                                                                                           weights);
    FGCU_LAUNCHED("moe route_kernel");
  }
  scatter_kernel<<<1, kScatterThreads, E * sizeof(int), st>>>(ids, T * route.top_k, E, pad, meta, row_of);
  FGCU_LAUNCHED("moe scatter_kernel");
  return 0;
}

int expert_gate_rows(const bf16 *x, const bf16 *gate, int T, int H, int I, bf16 *act, cudaStream_t st, char *err) {
  if (T == 0) return 0;
  gate_rows_kernel<<<T, 256, 0, st>>>(x, gate, H, I, act);
  FGCU_LAUNCHED("shared expert gate_rows_kernel");
  return 0;
}

int moe_work_reserve(MoeWork &w, int T, int H, int I, int E, int k, int act, char *err) {
  FGCU_CHECK(check_shape(T, H, I, E, k, act, err));
  const size_t N = (size_t)T * k, mlp_rows = gated_act(act) ? 2 * (size_t)I : I;
  const size_t rows = N + (N < (size_t)E ? N : E) * (row_pad(H, I) - 1);
  FGCU_CHECK(ensure(w.logits, (size_t)T * E * 4, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.ids, N * 4, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.weights, N * 4, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.row_of, N * 4, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.meta, (2 * (size_t)E + 1) * 4, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.xs, rows * H * 2, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.mid, rows * mlp_rows * 2, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.act, rows * I * 2, "the MoE workspace", err));
  FGCU_CHECK(ensure(w.ys, rows * H * 4, "the MoE workspace", err));
  if (w.meta_host_cap < 2 * E + 1) {
    if (w.meta_host) cudaFreeHost(w.meta_host);
    w.meta_host = nullptr, w.meta_host_cap = 0;
    FGCU_TRY(cudaMallocHost(&w.meta_host, (2 * (size_t)E + 1) * 4));
    w.meta_host_cap = 2 * E + 1;
  }
  return 0;
}

void moe_work_release(MoeWork &w) {
  DevBuf *bufs[] = {&w.logits, &w.ids, &w.weights, &w.row_of, &w.meta, &w.xs, &w.mid, &w.act, &w.ys};
  for (DevBuf *b : bufs) release(*b);
  if (w.meta_host) cudaFreeHost(w.meta_host);
  w = MoeWork();
}

int moe_forward(const Gemms &g, MoeWork &w, const MoeLayer &L, const bf16 *x, float *h, bool accumulate,
                int T, int H, int I, const MoeRoute &route, int act, cudaStream_t st, char *err) {
  const int E = route.num_experts, k = route.top_k;
  FGCU_CHECK(check_shape(T, H, I, E, k, act, err));
  FGCU_CHECK(check_route(route, err));
  if (T == 0) return 0;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  FGCU_TRY(cudaStreamIsCapturing(st, &cap));
  if (cap != cudaStreamCaptureStatusNone) {
    snprintf(err, 512, "moe: cannot run inside a CUDA graph capture (it waits for expert counts)");
    return FG_ERR_INTERNAL;
  }
  FGCU_CHECK(moe_work_reserve(w, T, H, I, E, k, act, err));
  const int N = T * k, mlp_rows = gated_act(act) ? 2 * I : I;
  int *ids = (int *)w.ids.p, *row_of = (int *)w.row_of.p, *meta = (int *)w.meta.p;
  float *logits = (float *)w.logits.p, *weights = (float *)w.weights.p, *ys = (float *)w.ys.p;
  bf16 *xs = (bf16 *)w.xs.p, *mid = (bf16 *)w.mid.p, *actv = (bf16 *)w.act.p;

  FGCU_CHECK(gemm(g.bf16, x, L.router, logits, true, false, T, E, H, st, err));
  FGCU_CHECK(moe_route(logits, T, route, row_pad(H, I), ids, weights, meta, row_of, st, err));
  FGCU_TRY(cudaMemcpyAsync(w.meta_host, meta, (2 * (size_t)E + 1) * 4, cudaMemcpyDeviceToHost, st));
  const bool vec = H % 8 == 0 && (uintptr_t)x % 16 == 0;
  gather_kernel<<<N, 128, 0, st>>>(x, row_of, k, H, vec, xs);
  FGCU_LAUNCHED("moe gather_kernel");
  // The one host wait of the layer: the GEMM shapes below are the expert counts.
  FGCU_TRY(cudaStreamSynchronize(st));

  const int *offsets = w.meta_host, *counts = w.meta_host + E + 1;
  for (int e = 0; e < E; e++) {
    const int n = counts[e];
    if (n == 0) continue;
    if (!L.mlp_in[e].p || !L.down[e].p) {
      snprintf(err, 512, "moe: expert %d has no weights on the device", e);
      return FG_ERR_INTERNAL;
    }
    const size_t r0 = offsets[e];
    const bf16 *xe = xs + r0 * H;
    bf16 *me = mid + r0 * mlp_rows, *ae = actv + r0 * I;
    float *ye = ys + r0 * H;
    const float *in_b = L.mlp_in_b ? L.mlp_in_b[e] : nullptr;
    if (linear_gated(xe, L.mlp_in[e], in_b, act, ae, n, mlp_rows, H, st)) {
      FGCU_LAUNCHED("moe gemv_gated");
    } else {
      FGCU_CHECK(linear(g, xe, L.mlp_in[e], me, false, false, n, mlp_rows, H, st, err));
      FGCU_CHECK(activation(me, in_b, ae, n, I, (ActKind)act, st, err));
    }
    FGCU_CHECK(linear(g, ae, L.down[e], ye, true, false, n, H, I, st, err));
    // Per expert, before the weighting: the CPU's expert mlp() adds down_bias inside its GEMM.
    if (L.down_b && L.down_b[e]) FGCU_CHECK(add_bias_rows(ye, L.down_b[e], n, H, st, err));
  }
  combine_kernel<<<T, 256, 0, st>>>(ys, row_of, weights, k, H, accumulate, h);
  FGCU_LAUNCHED("moe combine_kernel");
  return 0;
}

int shared_expert_forward(const Gemms &g, const SharedExpert &s, const bf16 *x, float *h, int T, int H, int act,
                          bf16 *mid, bf16 *actv, cudaStream_t st, char *err) {
  if (T == 0) return 0;
  const int I = s.width, rows = gated_act(act) ? 2 * I : I;
  if (linear_gated(x, s.mlp_in, nullptr, act, actv, T, rows, H, st)) {
    FGCU_LAUNCHED("shared expert gemv_gated");
  } else {
    FGCU_CHECK(linear(g, x, s.mlp_in, mid, false, false, T, rows, H, st, err));
    FGCU_CHECK(activation(mid, nullptr, actv, T, I, (ActKind)act, st, err));
  }
  // down(a * g) = g * down(a): the gate scales the activations, then one GEMM adds
  if (s.gate) FGCU_CHECK(expert_gate_rows(x, s.gate, T, H, I, actv, st, err));
  return linear(g, actv, s.down, h, true, true, T, H, I, st, err);
}

}  // namespace fgcu
