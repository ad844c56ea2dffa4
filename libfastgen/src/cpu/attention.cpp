// Paged attention, exact two-pass softmax per query row.
//
//   task = (query tile: up to QT consecutive tokens of one sequence) x (kv head)
//   rows of a task: every (token, q head of the kv group) pair, each with its key range
//     [lo, pos] (lo = pos - window + 1 with a sliding window, else 0)
//   1. scores[row, j] = q_row . k_j * scale   for j in the row's range (each K row read once per tile)
//   2. softmax per row over its range (after the optional logit softcap, as Gemma 2: scale, cap,
//      then the mask)
//   3. out[row] = sum_j p[row, j] v_j         (accumulated in registers over j; the first v_dim
//      of each value row, all of it but for MLA's latent attention)
//
// Every row is computed with the same operations in the same order whichever tile it lands in,
// so a token's output does not depend on how its sequence was chunked or batched.
#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/fast_math.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {
namespace {

constexpr int64_t QT = 16;               // tokens per query tile
constexpr int64_t kMaxScores = 1 << 22;  // floats of a tile's score buffer (16 MB)

struct Tile {
  int32_t seq, t0, t1;  // tokens [t0, t1) of sequence seq, consecutive positions
};

struct Ctx {
  const PagedBatch *b;
  const float *q, *k_cache, *v_cache;
  float *out;
  int64_t num_heads, num_kv_heads, head_dim, v_dim, window;
  float scale, softcap;  // softcap 0: none
  const std::vector<Tile> *tiles;
};

// Offset of (position p of sequence seq, kv head 0) in a layer's cache; row = kv_heads * head_dim.
FG_INLINE int64_t slot_offset(const PagedBatch &b, int32_t seq, int64_t p, int64_t row) {
  const int32_t block = b.block_indices[b.block_indptr[seq] + p / b.block_size];
  return ((int64_t)block * b.block_size + p % b.block_size) * row;
}

template <int VL>
FG_INLINE float dot(const float *a, const float *b, int64_t n) {
  using V = Vec<VL>;
  typename V::type acc = {};
  int64_t i = 0;
  for (; i + VL <= n; i += VL) acc += V::load(a + i) * V::load(b + i);
  float s = V::sum(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// o[0..hd) = scale * sum_j p[j] * v[j][0..hd), accumulating each output element in registers
// over j (in order), 4 vectors of the head at a time.
template <int VL>
FG_INLINE void weighted_sum(float *o, const float *p, const float *const *v, int64_t n, int64_t hd,
                            float scale) {
  using V = Vec<VL>;
  int64_t d = 0;
  for (; d + 4 * VL <= hd; d += 4 * VL) {
    typename V::type a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (int64_t j = 0; j < n; j++) {
      const typename V::type pj = V::splat(p[j]);
      const float *vj = v[j] + d;
      a0 += pj * V::load(vj);
      a1 += pj * V::load(vj + VL);
      a2 += pj * V::load(vj + 2 * VL);
      a3 += pj * V::load(vj + 3 * VL);
    }
    const typename V::type sc = V::splat(scale);
    V::store(o + d, a0 * sc);
    V::store(o + d + VL, a1 * sc);
    V::store(o + d + 2 * VL, a2 * sc);
    V::store(o + d + 3 * VL, a3 * sc);
  }
  for (; d + VL <= hd; d += VL) {
    typename V::type a = {};
    for (int64_t j = 0; j < n; j++) a += V::splat(p[j]) * V::load(v[j] + d);
    V::store(o + d, a * V::splat(scale));
  }
  for (; d < hd; d++) {
    float a = 0;
    for (int64_t j = 0; j < n; j++) a += p[j] * v[j][d];
    o[d] = a * scale;
  }
}

// s[0..n) = softcap * tanh(s / softcap), in fp32 like transformers' Gemma 2 eager attention.
FG_INLINE void softcap_scores(float *s, int64_t n, float softcap) {
  for (int64_t j = 0; j < n; j++) s[j] = std::tanh(s[j] / softcap) * softcap;
}

// s[0..n) = exp(s - max(s)); returns 1 / sum.
template <int VL>
FG_INLINE float softmax_unnormalized(float *s, int64_t n) {
  using V = Vec<VL>;
  float mx = s[0];
  for (int64_t j = 1; j < n; j++) mx = std::max(mx, s[j]);
  for (int64_t j = 0; j < n; j++) s[j] = fast_exp(s[j] - mx);
  typename V::type acc = {};
  int64_t j = 0;
  for (; j + VL <= n; j += VL) acc += V::load(s + j);
  float sum = V::sum(acc);
  for (; j < n; j++) sum += s[j];
  return 1.0f / sum;
}

template <int VL>
FG_INLINE void tile_task(const Ctx &c, int64_t task) {
  const PagedBatch &b = *c.b;
  const Tile tile = (*c.tiles)[task / c.num_kv_heads];
  const int64_t kvh = task % c.num_kv_heads, hd = c.head_dim;
  const int64_t group = c.num_heads / c.num_kv_heads, row = c.num_kv_heads * hd;
  const int64_t nt = tile.t1 - tile.t0, rows = nt * group;
  auto lo_of = [&](int64_t pos) { return c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0; };
  const int64_t first = lo_of(b.positions[tile.t0]), last = b.positions[tile.t1 - 1];
  const int64_t nk = last - first + 1;  // keys any row of the tile may see

  thread_local std::vector<const float *> krows, vrows;  // [nk] this kv head's cached rows
  krows.resize(nk);
  vrows.resize(nk);
  for (int64_t j = first; j <= last; j++) {
    const int64_t off = slot_offset(b, tile.seq, j, row) + kvh * hd;
    krows[j - first] = c.k_cache + off;
    vrows[j - first] = c.v_cache + off;
  }

  thread_local std::vector<float> scores;  // [rows, nk]; row r = (token r / group, head r % group)
  scores.resize(rows * nk);
  for (int64_t j = first; j <= last; j++) {
    const float *kj = krows[j - first];
    for (int64_t ti = 0; ti < nt; ti++) {
      const int64_t pos = b.positions[tile.t0 + ti];
      if (j > pos || j < lo_of(pos)) continue;
      const float *qt = c.q + ((tile.t0 + ti) * c.num_heads + kvh * group) * hd;
      for (int64_t g = 0; g < group; g++)
        scores[(ti * group + g) * nk + (j - first)] = dot<VL>(qt + g * hd, kj, hd) * c.scale;
    }
  }
  for (int64_t r = 0; r < rows; r++) {
    const int64_t pos = b.positions[tile.t0 + r / group], lo = lo_of(pos);
    float *p = &scores[r * nk + (lo - first)];
    if (c.softcap > 0) softcap_scores(p, pos - lo + 1, c.softcap);
    const float inv_sum = softmax_unnormalized<VL>(p, pos - lo + 1);
    float *o = c.out + ((tile.t0 + r / group) * c.num_heads + kvh * group + r % group) * c.v_dim;
    weighted_sum<VL>(o, p, &vrows[lo - first], pos - lo + 1, c.v_dim, inv_sum);
  }
}

FG_TARGET_AVX512 void task_avx512(const Ctx &c, int64_t t) { tile_task<16>(c, t); }
FG_TARGET_AVX2 void task_avx2(const Ctx &c, int64_t t) { tile_task<8>(c, t); }
void task_generic(const Ctx &c, int64_t t) { tile_task<4>(c, t); }

}  // namespace

void write_cache_rows(const PagedBatch &b, const float *rows, float *cache, int64_t row) {
  for (int64_t t = 0; t < b.num_tokens; t++)
    memcpy(cache + slot_offset(b, b.token_seq[t], b.positions[t], row), rows + t * row, row * sizeof(float));
}

void write_kv_cache(const PagedBatch &b, const float *k, const float *v, float *k_cache,
                    float *v_cache, int64_t num_kv_heads, int64_t head_dim) {
  write_cache_rows(b, k, k_cache, num_kv_heads * head_dim);
  write_cache_rows(b, v, v_cache, num_kv_heads * head_dim);
}

void paged_attention(const PagedBatch &b, const float *q, const float *k_cache,
                     const float *v_cache, float *out, int64_t num_heads, int64_t num_kv_heads,
                     int64_t head_dim, int64_t window, float scale, float softcap,
                     int64_t v_dim) {
  // A sequence's tokens are contiguous in the batch (cu_seqlens). Tiles stop at QT tokens, or
  // earlier when their score buffer [tokens * group, keys] would pass kMaxScores floats.
  const int64_t group = num_heads / num_kv_heads;
  std::vector<Tile> tiles;
  for (int64_t t = 0; t < b.num_tokens;) {
    const int32_t seq = b.token_seq[t];
    const int64_t first = window > 0 ? std::max<int64_t>(0, b.positions[t] - window + 1) : 0;
    int64_t end = t + 1;
    while (end < b.num_tokens && end - t < QT && b.token_seq[end] == seq &&
           (end - t + 1) * group * (b.positions[end] - first + 1) <= kMaxScores)
      end++;
    tiles.push_back({seq, (int32_t)t, (int32_t)end});
    t = end;
  }
  const Ctx c{&b, q, k_cache, v_cache, out, num_heads, num_kv_heads, head_dim,
              v_dim > 0 ? v_dim : head_dim, window, scale, softcap, &tiles};
  void (*task)(const Ctx &, int64_t) = cpu_isa() == Isa::Avx512 ? task_avx512
                                       : cpu_isa() == Isa::Avx2 ? task_avx2
                                                                : task_generic;
  parallel_for((int64_t)tiles.size() * num_kv_heads, [&](int64_t i) { task(c, i); });
}

}  // namespace cpu
}  // namespace fg
