// Runs libfastgen's latent attention (cuda/attention_mla.cu, and attention_mla_mma.cu under
// FASTGEN_MLA_KERNEL=mma*) on emu.h's CPU model of CUDA against a double-precision reference,
// over test/gpu/mla.test.ts's cases plus FP8 caches. Prints one line a case; exit 1 on a failure.
//   mla_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>

#include <cuda_fp8.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/attention_mla.cuh"

namespace {

struct Case {
  const char *name;
  int nh, latent, rope, bs, window;
  float softcap;
  int splits;         // 0: mla_choose_splits
  bool fp8;
  std::vector<std::pair<int, int>> seqs;  // context, tokens this pass
};

const std::vector<Case> kCases = {
    {"V2-Lite widths: decodes at contexts 0..700", 16, 512, 64, 16, 0, 0, 0, false, {{0, 1}, {16, 1}, {300, 1}, {700, 1}}},
    {"V2-Lite widths: prompt chunk of 45 after 37, block 7, with decodes", 16, 512, 64, 7, 0, 0, 0, false, {{37, 45}, {100, 1}, {0, 13}}},
    {"V2-Lite widths: one long decode, automatic splits", 16, 512, 64, 64, 0, 0, 0, false, {{2000, 1}}},
    {"V2-Lite widths: forced 5 splits, decodes and a short chunk", 16, 512, 64, 16, 0, 0, 5, false, {{700, 1}, {33, 3}, {0, 1}}},
    {"V2 widths: 128 heads (8 head groups)", 128, 512, 64, 16, 0, 0, 0, false, {{200, 1}, {40, 9}}},
    {"fixture widths: 4 heads, 32 + 8, block 4", 4, 32, 8, 4, 0, 0, 0, false, {{9, 7}, {3, 1}, {0, 20}}},
    {"8 heads, latent 96 + 16, prefill of 150", 8, 96, 16, 16, 0, 0, 0, false, {{0, 150}}},
    {"20 heads: a partial second head group, latent 128 + 32", 20, 128, 32, 5, 0, 0, 0, false, {{61, 1}, {10, 40}}},
    {"sliding window 24 with a chunk and decodes", 16, 256, 64, 8, 24, 0, 0, false, {{40, 30}, {90, 1}, {5, 1}}},
    {"window 100 with 4 forced splits", 16, 512, 64, 16, 100, 0, 4, false, {{900, 1}, {60, 1}}},
    {"logit softcap 2", 4, 64, 16, 16, 0, 2, 0, false, {{30, 12}, {70, 1}}},
    {"latent 30 + rope 2 (D 32, latent not a multiple of 16)", 6, 30, 2, 3, 0, 0, 0, false, {{5, 9}, {17, 1}}},
    {"latent 200 + rope 48 (D % 16 == 8), splits 3", 3, 200, 48, 8, 0, 0, 3, false, {{50, 5}, {0, 2}}},
    {"fp8: V2-Lite widths, chunk and decodes", 16, 512, 64, 16, 0, 0, 0, true, {{20, 19}, {300, 1}}},
    {"fp8: fixture widths, 3 splits", 4, 32, 8, 4, 0, 0, 3, true, {{9, 7}, {40, 1}}},
    {"fp8: window 10, softcap 3, 20 heads", 20, 128, 32, 8, 10, 3, 0, true, {{30, 12}, {2, 1}}},
};

float bf16_round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

bool run(const Case &c, std::mt19937 &rng) {
  const int nh = c.nh, L = c.latent, R = c.rope, D = L + R, bs = c.bs, S = (int)c.seqs.size();
  std::vector<int> cu(S + 1, 0), ctx(S), indptr(S + 1, 0), tseq;
  for (int s = 0; s < S; s++) {
    ctx[s] = c.seqs[s].first;
    cu[s + 1] = cu[s] + c.seqs[s].second;
    indptr[s + 1] = indptr[s] + (ctx[s] + c.seqs[s].second + bs - 1) / bs;
    for (int i = 0; i < c.seqs[s].second; i++) tseq.push_back(s);
  }
  const int T = cu[S], nb = indptr[S];
  std::vector<int> blocks(nb);
  for (int i = 0; i < nb; i++) blocks[i] = i;
  std::shuffle(blocks.begin(), blocks.end(), rng);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const float kv_scale = c.fp8 ? 0.0125f : 1.f;  // stored values up to 80, inside E4M3's 448
  std::vector<__nv_bfloat16> q((size_t)T * nh * D), cache_bf((size_t)nb * bs * D);
  std::vector<unsigned char> cache_f8((size_t)nb * bs * D);
  std::vector<double> qd(q.size()), rows(cache_bf.size());  // what the kernel sees, widened
  for (size_t i = 0; i < q.size(); i++) q[i] = __float2bfloat16_rn(u(rng)), qd[i] = __bfloat162float(q[i]);
  for (size_t i = 0; i < rows.size(); i++) {
    const float x = u(rng);
    if (c.fp8) {
      cache_f8[i] = __nv_cvt_float_to_fp8(x / kv_scale, __NV_SATFINITE, __NV_E4M3);
      rows[i] = (double)__half2float(__half(__nv_cvt_fp8_to_halfraw(cache_f8[i], __NV_E4M3))) * kv_scale;
    } else {
      cache_bf[i] = __float2bfloat16_rn(x), rows[i] = __bfloat162float(cache_bf[i]);
    }
  }
  const float scale = 1.f / sqrtf(3.f * R);
  // reference
  std::vector<double> ref((size_t)T * nh * L, 0.0);
  for (int t = 0; t < T; t++) {
    const int s = tseq[t], pos = ctx[s] + t - cu[s], lo = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
    for (int h = 0; h < nh; h++) {
      const double *qv = &qd[((size_t)t * nh + h) * D];
      std::vector<double> sc;
      double mx = -INFINITY;
      for (int j = lo; j <= pos; j++) {
        const double *row = &rows[((size_t)blocks[indptr[s] + j / bs] * bs + j % bs) * D];
        double dot = 0;
        for (int d = 0; d < D; d++) dot += qv[d] * row[d];
        double x = scale * dot;
        if (c.softcap > 0) x = c.softcap * tanh(x / c.softcap);
        sc.push_back(x), mx = std::max(mx, x);
      }
      double sum = 0;
      for (double &x : sc) x = exp(x - mx), sum += x;
      double *o = &ref[((size_t)t * nh + h) * L];
      for (int j = lo; j <= pos; j++) {
        const double *row = &rows[((size_t)blocks[indptr[s] + j / bs] * bs + j % bs) * D];
        for (int d = 0; d < L; d++) o[d] += sc[j - lo] / sum * row[d];
      }
    }
  }
  // the kernel
  int max_context = 0;
  for (int s = 0; s < S; s++) max_context = std::max(max_context, ctx[s] + c.seqs[s].second);
  const int splits = c.splits > 0 ? c.splits : fgcu::mla_choose_splits(T, nh, max_context, 132);
  std::vector<__nv_bfloat16> out((size_t)T * nh * L);
  memset(out.data(), 0xff, out.size() * 2);  // NaN where nothing writes
  std::vector<float> part_o((size_t)splits * T * nh * L), part_lse((size_t)splits * T * nh);
  fgcu::MlaAttnArgs a;
  memset(&a, 0, sizeof a);
  a.q = q.data();
  a.cache = c.fp8 ? (const __nv_bfloat16 *)cache_f8.data() : cache_bf.data();
  a.out = out.data();
  a.cu_seqlens = cu.data(), a.context_lens = ctx.data(), a.block_indptr = indptr.data();
  a.block_indices = blocks.data(), a.token_seq = tseq.data();
  a.num_tokens = T, a.num_heads = nh, a.latent = L, a.rope = R, a.block_size = bs, a.window = c.window;
  a.scale = scale, a.softcap = c.softcap, a.splits = splits, a.part_o = part_o.data(), a.part_lse = part_lse.data();
  a.kv_fp8 = c.fp8, a.kv_scale = kv_scale;
  char err[512] = "";
  const int rc = fgcu::mla_attention(a, nullptr, err);
  if (rc != 0) {
    printf("FAIL %s: status %d %s\n", c.name, rc, err);
    return false;
  }
  double num = 0, den = 0;
  bool nan = false;
  for (size_t i = 0; i < ref.size(); i++) {
    const double v = __bfloat162float(out[i]);
    nan |= std::isnan(v);
    num += (v - ref[i]) * (v - ref[i]), den += ref[i] * ref[i];
  }
  const double rel = sqrt(num / den);
  const bool ok = !nan && rel < 1e-2;
  printf("%s %s (T %d, splits %d): rel err %.2e%s\n", ok ? "ok" : "FAIL", c.name, T, splits, rel, nan ? " NaN" : "");
  return ok;
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 1234, argc, argv); }
