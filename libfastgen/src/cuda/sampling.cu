// Device sampling (see sampling.cuh). One block of 1024 threads per row:
//   1. z = logits + penalties (HF repetition, OpenAI presence/frequency; a verification row's
//      drafts count as outputs) + logit bias, then masked ids -inf
//   2. greedy: argmax(z) (NaN ranks as -inf, ties to the lowest id)
//      else z /= T; unsorted walk (no top-k/top-p) or radix select + bitonic sort, then
//      top-p prefix, min-p drop, draw at u * kept
//   3. log-softmax of the raw logits: the sampled id's logprob and the top num_logprobs
#include "cuda/sampling.cuh"

#include <float.h>
#include <limits.h>

namespace fgcu {
namespace {

constexpr int kThreads = 1024;

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
  double hist[256];
  double dscratch[32];
  float fscratch[32];
  int iscratch[32];
  int found, digit;
  double need;
  unsigned long long best;
};

// (value, id) pairs: better = larger value, then lower id.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}
// The same order as one integer: sortable value key above ~id (ids >= 0; INT_MAX = no element).
__device__ __forceinline__ unsigned long long pack(float v, int i) {
  return ((unsigned long long)sort_key(rank_val(v)) << 32) | (uint32_t)~(uint32_t)i;
}
__device__ __forceinline__ float unpack_value(unsigned long long k) {
  const uint32_t h = (uint32_t)(k >> 32);
  return __uint_as_float((h & 0x80000000u) ? (h & 0x7fffffffu) : ~h);
}
__device__ __forceinline__ int unpack_id(unsigned long long k) { return (int)~(uint32_t)k; }

// Largest key over the block: warp shuffles, then one shared atomicMax per warp.
__device__ unsigned long long block_max_key(unsigned long long k, Smem &sm) {
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long o = __shfl_xor_sync(0xffffffffu, k, off);
    k = o > k ? o : k;
  }
  __syncthreads();
  if (threadIdx.x == 0) sm.best = 0ull;
  __syncthreads();
  if ((threadIdx.x & 31) == 0) atomicMax(&sm.best, k);
  __syncthreads();
  return sm.best;
}
__device__ void block_best(float &v, int &i, Smem &sm) {
  const unsigned long long k = block_max_key(pack(v, i), sm);
  v = unpack_value(k);
  i = unpack_id(k);
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

// Sum of w(i) over [0, n), in per-thread contiguous segments (the order scan_find uses).
template <class W>
__device__ double segment_total(int n, W w, Smem &sm) {
  const int seg = (n + kThreads - 1) / kThreads, b = threadIdx.x * seg, e = min(n, b + seg);
  double s = 0;
  for (int i = b; i < e; i++) s += w(i);
  double total;
  block_exclusive_scan(s, &total, sm);
  return total;
}

// In id order: the first i with w(i) > 0 whose inclusive prefix sum passes target (> target).
// Each thread sums a contiguous segment sequentially, so the walk inside the crossing segment
// repeats the segment's sum exactly. -1 when no prefix passes.
template <class W>
__device__ int scan_find(int n, W w, double target, Smem &sm) {
  const int seg = (n + kThreads - 1) / kThreads;
  const int b = threadIdx.x * seg, e = min(n, b + seg);
  double s = 0;
  for (int i = b; i < e; i++) s += w(i);
  double total;
  const double excl = block_exclusive_scan(s, &total, sm);
  if (threadIdx.x == 0) sm.found = INT_MAX;
  __syncthreads();
  if (s > 0 && excl + s > target) {
    double cum = excl;
    for (int i = b; i < e; i++) {
      const double x = w(i);
      cum += x;
      if (x > 0 && cum > target) {
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

// A place in the sorted order (key descending, then id ascending): the elements at or before
// it are those with key > b.key, or key == b.key and id <= b.id.
struct Bound {
  uint32_t key;
  int id;
};
__device__ __forceinline__ bool at_or_before(uint32_t k, int i, Bound b) {
  return k > b.key || (k == b.key && i <= b.id);
}

// The first element, in the sorted order, at which the inclusive cumulative weight passes x
// (>= x when ge, else > x); weights are >= 0 (0 = not a candidate). Radix descent: 4 x 8 bits
// of the key from the top, then 4 x 8 bits of the id among that key's ties from the bottom,
// each pass a 256-bin weight histogram. found = false when the whole sum does not pass x.
template <class W>
__device__ Bound find_crossing(const float *z, int V, W w, double x, bool ge, bool *found, Smem &sm) {
  uint32_t prefix = 0, mask = 0, idp = 0, idmask = 0;
  double need = x;
  bool ok = true;
  for (int pass = 0; pass < 8 && ok; pass++) {
    const bool by_key = pass < 4;
    const int shift = by_key ? 24 - 8 * pass : 24 - 8 * (pass - 4);
    for (int b = threadIdx.x; b < 256; b += kThreads) sm.hist[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += kThreads) {
      const uint32_t k = sort_key(z[i]);
      if ((k & mask) != prefix) continue;
      if (!by_key && ((uint32_t)i & idmask) != idp) continue;
      const double wi = w(i, k);
      if (wi > 0) atomicAdd(&sm.hist[by_key ? (k >> shift) & 255 : ((uint32_t)i >> shift) & 255], wi);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double acc = 0;
      int digit = -1;
      for (int t = 0; t < 256; t++) {
        const int d = by_key ? 255 - t : t;  // keys descend, ids ascend
        const double c = acc + sm.hist[d];
        if (sm.hist[d] > 0 && (ge ? c >= need : c > need)) {
          digit = d;
          break;
        }
        acc = c;
      }
      sm.digit = digit;
      sm.need = need - acc;
    }
    __syncthreads();
    if (sm.digit < 0) {
      ok = false;
    } else if (by_key) {
      prefix |= (uint32_t)sm.digit << shift;
      mask |= 0xFFu << shift;
    } else {
      idp |= (uint32_t)sm.digit << shift;
      idmask |= 0xFFu << shift;
    }
    need = sm.need;
    __syncthreads();
  }
  *found = ok;
  return Bound{prefix, (int)idp};
}

// The last element with positive weight in the sorted order (the CPU's `last` fallback): the
// smallest packed key (smallest value, then largest id).
template <class W>
__device__ int last_in_order(const float *z, int V, W w, Smem &sm) {
  unsigned long long best = 0ull;  // max of ~key
  for (int i = threadIdx.x; i < V; i += kThreads) {
    const uint32_t k = sort_key(z[i]);
    if (w(i, k) > 0) {
      const unsigned long long nk = ~pack(z[i], i);
      best = nk > best ? nk : best;
    }
  }
  return unpack_id(~block_max_key(best, sm));
}

// z = logits + penalties (HF repetition, OpenAI presence/frequency) + logit bias, masked ids
// -inf, then for sampled rows z / temperature (NaN -> -inf, -0 -> +0). Its own launch, so the
// sampling kernel only reads z.
__global__ void __launch_bounds__(kThreads) sample_prepare_kernel(SampleArgs a) {
  const int r = blockIdx.x, V = a.V, tid = threadIdx.x;
  const SampleRow p = a.rows[r];
  const float *lg = a.logits + (size_t)r * V;
  float *z = a.z + (size_t)r * V;
  const bool rep = p.repetition != 1.f, pf = p.presence != 0.f || p.frequency != 0.f;
  const bool pen = (p.pen_end > p.pen_begin || p.draft_end > p.draft_begin) && (rep || pf);
  if (pen) {
    int *cnt = a.counts + (size_t)r * V;
    for (int i = tid; i < V; i += kThreads) cnt[i] = 0;
    __syncthreads();
    // count = outputs + kPromptSeen per prompt occurrence: a prompt id gets the repetition
    // penalty only, presence / frequency count outputs (cpu/sampling.cpp, vLLM)
    constexpr int kPromptSeen = 1 << 24;
    const int prompt_end = p.pen_begin + p.pen_prompt;
    for (int j = p.pen_begin + tid; j < p.pen_end; j += kThreads)
      atomicAdd(&cnt[a.pen_ids[j]], j < prompt_end ? kPromptSeen : 1);
    for (int j = p.draft_begin + tid; j < p.draft_end; j += kThreads) atomicAdd(&cnt[a.token_ids[j]], 1);
    __syncthreads();
    for (int i = tid; i < V; i += kThreads) {
      float l = lg[i];
      const int c = atomicAdd(&cnt[i], 0);  // read through L2, after every increment
      const int outputs = c & (kPromptSeen - 1);
      if (c > 0) {
        if (rep) l = l > 0 ? l / p.repetition : l * p.repetition;
        if (pf && outputs > 0) l -= p.presence + p.frequency * (float)outputs;
      }
      z[i] = l;
    }
  } else {
    for (int i = tid; i < V; i += kThreads) z[i] = lg[i];
  }
  if (p.bias_end > p.bias_begin) {
    __syncthreads();
    for (int j = p.bias_begin + tid; j < p.bias_end; j += kThreads) atomicAdd(&z[a.bias_ids[j]], a.bias_vals[j]);
  }
  if (p.mask >= 0) {
    __syncthreads();  // after every bias atomic: a masked id stays -inf whatever its bias
    const uint32_t *mask = a.masks + p.mask;
    for (int i = tid; i < V; i += kThreads)
      if (!((mask[i >> 5] >> (i & 31)) & 1u)) z[i] = -INFINITY;
  }
  if (p.temperature == 0.f) return;
  __syncthreads();
  for (int i = tid; i < V; i += kThreads) {
    const float x = atomicAdd(&z[i], 0.f);  // read through L2: bias atomics may have changed it
    float v = isnan(x) ? -INFINITY : x / p.temperature;
    if (v == 0.f) v = 0.f;  // -0 -> +0: the sort keys must tie like the CPU's comparisons
    // +inf (a tiny penalty or T, an overflowing bias) -> FLT_MAX, as cpu scaled_logit: with zmax
    // = +inf every weight was NaN and no id was chosen (issue #25)
    if (v == INFINITY) v = FLT_MAX;
    z[i] = v;
  }
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs a) {
  __shared__ Smem sm;
  const int r = blockIdx.x, V = a.V, tid = threadIdx.x;
  const SampleRow p = a.rows[r];
  const float *lg = a.logits + (size_t)r * V;
  const float *z = a.z + (size_t)r * V;

  // 1. z was prepared by sample_prepare_kernel (read only here)
  // 2. choose
  int chosen;
  if (p.forced >= 0) {
    chosen = p.forced;
  } else if (p.temperature == 0.f) {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = tid; i < V; i += kThreads)
      if (better(rank_val(z[i]), i, bv, bi)) bv = rank_val(z[i]), bi = i;
    block_best(bv, bi, sm);
    chosen = bi;
  } else {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = tid; i < V; i += kThreads)
      if (better(z[i], i, bv, bi)) bv = z[i], bi = i;
    block_best(bv, bi, sm);
    const float zmax = bv;
    const double u = uniform01(p.seed, (uint64_t)p.position);
    const bool topk = p.top_k > 0 && p.top_k < V, topp = p.top_p < 1.f;
    const float min_p = p.min_p;
    auto e_of = [&](int i) { return exp((double)z[i] - (double)zmax); };
    if (zmax == -INFINITY) {
      chosen = bi;
    } else if (!topk && !topp) {
      // Candidates in id order: e_i = exp(z_i - zmax) > 0, minus those under min_p.
      auto w = [&](int i) {
        const double e = e_of(i);
        return (min_p > 0.f && e < (double)min_p) ? 0.0 : e;
      };
      const double kept = segment_total(V, w, sm);
      const int f = scan_find(V, w, u * kept, sm);
      if (f >= 0) {
        chosen = f;
      } else {
        int last = -1;
        for (int i = tid; i < V; i += kThreads)
          if (w(i) > 0) last = i;
        for (int off = 16; off > 0; off >>= 1) last = max(last, __shfl_xor_sync(0xffffffffu, last, off));
        __syncthreads();
        if ((tid & 31) == 0) sm.iscratch[tid >> 5] = last;
        __syncthreads();
        for (int k = 0; k < kThreads / 32; k++) last = max(last, sm.iscratch[k]);
        chosen = last;
      }
    } else {
      // The CPU walks candidates sorted by (value desc, id asc): top-k, then the top-p prefix,
      // minus min-p, then the draw. Each cut is a prefix of that order, found by radix descent.
      bool found;
      Bound keep{0, INT_MAX};  // everything
      if (topk) {
        auto one = [&](int, uint32_t) { return 1.0; };
        keep = find_crossing(z, V, one, (double)p.top_k, true, &found, sm);
      }
      if (topp) {
        auto in_k = [&](int i, uint32_t k) { return at_or_before(k, i, keep) ? e_of(i) : 0.0; };
        double total = 0;
        {
          double s = 0;
          for (int i = tid; i < V; i += kThreads) s += topk ? in_k(i, sort_key(z[i])) : e_of(i);
          block_exclusive_scan(s, &total, sm);
        }
        const Bound bp = find_crossing(z, V, in_k, (double)p.top_p * total, true, &found, sm);
        if (found) keep = bp;
      }
      auto w = [&](int i, uint32_t k) {
        if (!at_or_before(k, i, keep)) return 0.0;
        const double e = e_of(i);
        return (min_p > 0.f && e < (double)min_p) ? 0.0 : e;
      };
      double kept;
      {
        double s = 0;
        for (int i = tid; i < V; i += kThreads) s += w(i, sort_key(z[i]));
        block_exclusive_scan(s, &kept, sm);
      }
      const Bound d = find_crossing(z, V, w, u * kept, false, &found, sm);
      chosen = found ? d.id : last_in_order(z, V, w, sm);
    }
  }

  // Never hand back an id outside the vocabulary, whatever the floats did above.
  if (chosen < 0 || chosen >= V) chosen = 0;

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
  sample_prepare_kernel<<<a.R, kThreads, 0, stream>>>(a);
  FGCU_LAUNCHED("sample_prepare_kernel");
  sample_kernel<<<a.R, kThreads, 0, stream>>>(a);
  FGCU_LAUNCHED("sample_kernel");
  return 0;
}

}  // namespace fgcu
