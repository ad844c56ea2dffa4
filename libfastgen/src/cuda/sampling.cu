// Device sampling (see sampling.cuh). One block of 1024 threads per row:
//   1. z = logits + penalties (HF repetition, OpenAI presence/frequency) + logit bias
//   2. greedy: argmax(z) (NaN ranks as -inf, ties to the lowest id)
//      else z /= T; unsorted walk (no top-k/top-p) or radix select + bitonic sort, then
//      top-p prefix, min-p drop, draw at u * kept
//   3. log-softmax of the raw logits: the sampled id's logprob and the top num_logprobs
#include "cuda/sampling.cuh"

#include <limits.h>

namespace fgcu {
namespace {

constexpr int kThreads = 1024;
constexpr int kCap = 4096;  // sorted candidates held in shared memory

__host__ __device__ inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
__host__ __device__ inline double uniform01(uint64_t seed, uint64_t counter) {
  const uint64_t h = splitmix64(seed ^ splitmix64(counter ^ 0x5851F42D4C957F2Dull));
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

// Larger float -> larger key; NaN must be mapped to -inf before.
__device__ __forceinline__ uint32_t sort_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float rank_val(float x) { return isnan(x) ? -INFINITY : x; }

struct Smem {
  unsigned long long list[kCap];  // sorted candidates: key << 32 | ~id
  float hist[256];
  double dscratch[32];
  float fscratch[32];
  int iscratch[32];
  int count, found, chosen;
  float need;
  uint32_t digit;
};

// (value, id) pairs: better = larger value, then lower id.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}
__device__ void block_best(float &v, int &i, Smem &sm) {
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, off);
    const int oi = __shfl_xor_sync(0xffffffffu, i, off);
    if (better(ov, oi, v, i)) v = ov, i = oi;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) sm.fscratch[warp] = v, sm.iscratch[warp] = i;
  __syncthreads();
  v = sm.fscratch[0], i = sm.iscratch[0];
  for (int w = 1; w < kThreads / 32; w++)
    if (better(sm.fscratch[w], sm.iscratch[w], v, i)) v = sm.fscratch[w], i = sm.iscratch[w];
}

// Exclusive prefix sum over the block (thread order); *total gets the sum.
__device__ double block_exclusive_scan(double x, double *total, Smem &sm) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  double inc = x;
  for (int off = 1; off < 32; off <<= 1) {
    const double y = __shfl_up_sync(0xffffffffu, inc, off);
    if (lane >= off) inc += y;
  }
  __syncthreads();
  if (lane == 31) sm.dscratch[warp] = inc;
  __syncthreads();
  double before = 0, all = 0;
  for (int w = 0; w < kThreads / 32; w++) {
    if (w < warp) before += sm.dscratch[w];
    all += sm.dscratch[w];
  }
  *total = all;
  return before + inc - x;
}

// Over weights w(0..n) (>= 0), in index order: the first i with w(i) > 0 whose inclusive
// prefix sum passes `target` (> target, or >= target when ge). Each thread sums a contiguous
// segment sequentially, so the walk inside the crossing segment repeats the segment's sum
// exactly. Returns -1 when no prefix passes. *total gets the sum of all weights.
template <class W>
__device__ int scan_find(int n, W w, double target, bool ge, double *total, Smem &sm) {
  const int seg = (n + kThreads - 1) / kThreads;
  const int b = threadIdx.x * seg, e = min(n, b + seg);
  double s = 0;
  for (int i = b; i < e; i++) s += w(i);
  const double excl = block_exclusive_scan(s, total, sm);
  if (threadIdx.x == 0) sm.found = INT_MAX;
  __syncthreads();
  const double end = excl + s;
  if (s > 0 && (ge ? end >= target : end > target)) {
    double cum = excl;
    for (int i = b; i < e; i++) {
      const double x = w(i);
      cum += x;
      if (x > 0 && (ge ? cum >= target : cum > target)) {
        atomicMin(&sm.found, i);
        break;
      }
    }
  }
  __syncthreads();
  const int f = sm.found;
  __syncthreads();
  return f == INT_MAX ? -1 : f;
}

// The largest index with w(i) > 0, or -1.
template <class W>
__device__ int last_positive(int n, W w, Smem &sm) {
  int best = -1;
  for (int i = threadIdx.x; i < n; i += kThreads)
    if (w(i) > 0) best = i;
  for (int off = 16; off > 0; off >>= 1) best = max(best, __shfl_xor_sync(0xffffffffu, best, off));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sm.iscratch[threadIdx.x >> 5] = best;
  __syncthreads();
  int r = -1;
  for (int k = 0; k < kThreads / 32; k++) r = max(r, sm.iscratch[k]);
  return r;
}

// Key tau such that {key >= tau} holds the `need` largest by count (mass == false) or at least
// `need` of the mass exp(z - zmax) (mass == true), walking 8 bits at a time from the top.
__device__ uint32_t radix_select(const float *z, int V, float zmax, bool mass, float need, Smem &sm) {
  uint32_t prefix = 0, mask = 0;
  for (int pass = 0; pass < 4; pass++) {
    const int shift = 24 - 8 * pass;
    for (int i = threadIdx.x; i < 256; i += kThreads) sm.hist[i] = 0.f;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += kThreads) {
      const uint32_t k = sort_key(z[i]);
      if ((k & mask) == prefix) atomicAdd(&sm.hist[(k >> shift) & 255], mass ? __expf(z[i] - zmax) : 1.f);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float acc = 0.f;
      int digit = 0;
      for (int d = 255; d >= 0; d--) {
        if (acc + sm.hist[d] >= need) {
          digit = d;
          break;
        }
        acc += sm.hist[d];
      }
      sm.digit = (uint32_t)digit;
      sm.need = need - acc;
    }
    __syncthreads();
    prefix |= sm.digit << shift;
    mask |= 0xFFu << shift;
    need = sm.need;
    __syncthreads();
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs a) {
  __shared__ Smem sm;
  const int r = blockIdx.x, V = a.V, tid = threadIdx.x;
  const SampleRow p = a.rows[r];
  const float *lg = a.logits + (size_t)r * V;
  float *z = a.z + (size_t)r * V;

  // 1. penalties and bias on a copy
  const bool rep = p.repetition != 1.f, pf = p.presence != 0.f || p.frequency != 0.f;
  const bool pen = p.pen_end > p.pen_begin && (rep || pf);
  for (int i = tid; i < V; i += kThreads) z[i] = lg[i];
  if (pen) {
    int *cnt = a.counts + (size_t)r * V;
    for (int i = tid; i < V; i += kThreads) cnt[i] = 0;
    __syncthreads();
    for (int j = p.pen_begin + tid; j < p.pen_end; j += kThreads) atomicAdd(&cnt[a.pen_ids[j]], 1);
    __syncthreads();
    for (int i = tid; i < V; i += kThreads) {
      const int c = cnt[i];
      if (c == 0) continue;
      float l = z[i];
      if (rep) l = l > 0 ? l / p.repetition : l * p.repetition;
      if (pf) l -= p.presence + p.frequency * (float)c;
      z[i] = l;
    }
  }
  __syncthreads();
  for (int j = p.bias_begin + tid; j < p.bias_end; j += kThreads) atomicAdd(&z[a.bias_ids[j]], a.bias_vals[j]);
  __syncthreads();

  // 2. choose
  int chosen;
  if (p.temperature == 0.f) {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = tid; i < V; i += kThreads)
      if (better(rank_val(z[i]), i, bv, bi)) bv = rank_val(z[i]), bi = i;
    block_best(bv, bi, sm);
    chosen = bi;
  } else {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = tid; i < V; i += kThreads) {
      float v = isnan(z[i]) ? -INFINITY : z[i] / p.temperature;
      if (v == 0.f) v = 0.f;  // -0 -> +0: the sort keys must tie like the CPU's comparisons
      z[i] = v;
      if (better(v, i, bv, bi)) bv = v, bi = i;
    }
    block_best(bv, bi, sm);  // also orders the z writes before the reads below
    const float zmax = bv;
    const double u = uniform01(p.seed, (uint64_t)p.position);
    const bool topk = p.top_k > 0 && p.top_k < V, topp = p.top_p < 1.f;
    const float min_p = p.min_p;
    if (zmax == -INFINITY) {
      chosen = bi;
    } else if (!topk && !topp) {
      // Candidates in id order: e_i = exp(z_i - zmax) > 0, minus those under min_p.
      auto w = [&](int i) {
        const double e = exp((double)z[i] - (double)zmax);
        return (min_p > 0.f && e < (double)min_p) ? 0.0 : e;
      };
      double kept;
      {  // the kept mass first, then the crossing of u * kept
        const int seg = (V + kThreads - 1) / kThreads, b = tid * seg, e = min(V, b + seg);
        double s = 0;
        for (int i = b; i < e; i++) s += w(i);
        block_exclusive_scan(s, &kept, sm);
      }
      const int f = scan_find(V, w, u * kept, false, &kept, sm);
      chosen = f >= 0 ? f : last_positive(V, w, sm);
    } else {
      // tau: the k-th largest (top-k), else the mass threshold holding top_p (with margin; the
      // exact prefix is found on the sorted candidates).
      float total_f = 0.f;
      if (!topk) {
        float s = 0.f;
        for (int i = tid; i < V; i += kThreads) s += __expf(z[i] - zmax);
        total_f = block_sum(s, sm.fscratch);
      }
      const float need = topk ? (float)p.top_k : fminf(total_f, p.top_p * total_f * 1.001f + 1e-6f);
      const uint32_t tau = radix_select(z, V, zmax, !topk, need, sm);
      if (tid == 0) sm.count = 0;
      __syncthreads();
      for (int i = tid; i < V; i += kThreads) {
        const uint32_t k = sort_key(z[i]);
        if (k < tau) continue;
        const int slot = atomicAdd(&sm.count, 1);
        if (slot < kCap) sm.list[slot] = ((unsigned long long)k << 32) | (uint32_t)~(uint32_t)i;
      }
      __syncthreads();
      const int count = sm.count;
      if (count > kCap) {
        // Too many to sort: walk {key >= tau} in id order (same distribution, other order).
        auto w = [&](int i) {
          if (sort_key(z[i]) < tau) return 0.0;
          const double e = exp((double)z[i] - (double)zmax);
          return (min_p > 0.f && e < (double)min_p) ? 0.0 : e;
        };
        double kept;
        {
          const int seg = (V + kThreads - 1) / kThreads, b = tid * seg, e = min(V, b + seg);
          double s = 0;
          for (int i = b; i < e; i++) s += w(i);
          block_exclusive_scan(s, &kept, sm);
        }
        const int f = scan_find(V, w, u * kept, false, &kept, sm);
        chosen = f >= 0 ? f : last_positive(V, w, sm);
      } else {
        int P = 2;
        while (P < count) P <<= 1;
        for (int i = count + tid; i < P; i += kThreads) sm.list[i] = 0ull;
        __syncthreads();
        for (int k = 2; k <= P; k <<= 1)
          for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = tid; i < P; i += kThreads) {
              const int ixj = i ^ j;
              if (ixj > i) {
                const unsigned long long x = sm.list[i], y = sm.list[ixj];
                if ((x < y) == ((i & k) == 0)) sm.list[i] = y, sm.list[ixj] = x;
              }
            }
            __syncthreads();
          }
        auto id_at = [&](int i) { return (int)~(uint32_t)(sm.list[i] & 0xFFFFFFFFull); };
        auto e_at = [&](int i) { return exp((double)z[id_at(i)] - (double)zmax); };
        const int n = topk ? min(p.top_k, count) : count;
        int keep = n;
        if (topp) {
          double total;
          if (topk) {
            const int seg = (n + kThreads - 1) / kThreads, b = tid * seg, e = min(n, b + seg);
            double s = 0;
            for (int i = b; i < e; i++) s += e_at(i);
            block_exclusive_scan(s, &total, sm);
          } else {
            double s = 0;
            for (int i = tid; i < V; i += kThreads) s += exp((double)z[i] - (double)zmax);
            block_exclusive_scan(s, &total, sm);
          }
          double dummy;
          const int f = scan_find(n, e_at, (double)p.top_p * total, true, &dummy, sm);
          if (f >= 0) keep = f + 1;
        }
        auto w = [&](int i) {
          const double e = e_at(i);
          return (min_p > 0.f && e < (double)min_p) ? 0.0 : e;
        };
        double kept;
        {
          const int seg = (keep + kThreads - 1) / kThreads, b = tid * seg, e = min(keep, b + seg);
          double s = 0;
          for (int i = b; i < e; i++) s += w(i);
          block_exclusive_scan(s, &kept, sm);
        }
        const int f = scan_find(keep, w, u * kept, false, &kept, sm);
        const int at = f >= 0 ? f : last_positive(keep, w, sm);
        chosen = id_at(at >= 0 ? at : 0);
      }
    }
  }

  // 3. log-softmax of the raw logits
  const int L = a.num_logprobs;
  if (tid == 0) a.out_ids[r] = chosen;
  if (!a.out_logprob && L == 0) return;
  float mx = -INFINITY;
  for (int i = tid; i < V; i += kThreads) mx = fmaxf(mx, lg[i]);
  mx = block_max(mx, sm.fscratch);
  double s = 0;
  for (int i = tid; i < V; i += kThreads) s += exp((double)lg[i] - (double)mx);
  double sum;
  block_exclusive_scan(s, &sum, sm);
  const double lse = (double)mx + log(sum);
  if (tid == 0 && a.out_logprob) a.out_logprob[r] = (float)((double)lg[chosen] - lse);
  float pv = INFINITY;
  int pi = -1;
  for (int k = 0; k < L; k++) {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = tid; i < V; i += kThreads) {
      const float v = rank_val(lg[i]);
      if (better(pv, pi, v, i) && better(v, i, bv, bi)) bv = v, bi = i;
    }
    block_best(bv, bi, sm);
    const bool ok = bi != INT_MAX;
    if (tid == 0) {
      a.out_top_ids[(size_t)r * L + k] = ok ? bi : -1;
      a.out_top_logprobs[(size_t)r * L + k] = ok ? (float)((double)lg[bi] - lse) : -INFINITY;
    }
    pv = bv, pi = bi;
  }
}

}  // namespace

double uniform01_host(uint64_t seed, uint64_t counter) { return uniform01(seed, counter); }

int sample(const SampleArgs &a, cudaStream_t stream, char *err) {
  if (a.R <= 0) return 0;
  sample_kernel<<<a.R, kThreads, 0, stream>>>(a);
  FGCU_LAUNCHED("sample_kernel");
  return 0;
}

}  // namespace fgcu
