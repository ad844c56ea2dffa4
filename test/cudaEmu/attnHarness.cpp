// Runs libfastgen's decode attention (cuda/attention.cu's narrow tiles, cuda/rope.cu) on emu.h's
// CPU model of CUDA and checks, bit for bit, the two ways its key splits can be merged:
//   A: the RoPE kernel (bias, qk-norm, rotation, K/V into the cache), then attention, key splits
//      merged by attn_combine_kernel (no split counters);
//   B: the RoPE kernel, then attention with split counters (the last CTA of a tile merges the
//      splits), attention run twice (the counters must be back to zero, the second run equal to
//      the first);
// on the same inputs: the attention outputs and the K/V written must be the same bits, no NaN.
//   attn_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>

#include <cuda_fp8.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/attention.cuh"
#include "cuda/attention_fp8_direct.cuh"
#include "cuda/attention_hopper.cuh"
#include "cuda/rope.cuh"

// The kernels this harness does not build (sm_90 PTX): never taken here.
namespace fgcu {
bool attn_hopper_takes(const AttnArgs &) { return false; }
int attn_hopper_wide(const AttnArgs &, int, cudaStream_t, char *err) { snprintf(err, 512, "emu: no Hopper kernel"); return 1; }
bool attn_fp8_direct_takes(const AttnArgs &) { return false; }
int attn_fp8_direct_narrow(const AttnArgs &, int, cudaStream_t, char *err) { snprintf(err, 512, "emu: no direct FP8 kernel"); return 1; }
}  // namespace fgcu

namespace {

struct Case {
  const char *name;
  int nh, nkv, hd, rot, bs;
  bool interleaved, qk_norm, bias, fp8;
  int window;
  float softcap;
  int splits;  // 0: attn_choose_splits
  std::vector<std::pair<int, int>> seqs;  // context, tokens this pass (rows = tokens * group <= 16)
};

const std::vector<Case> kCases = {
    {"GQA 8/2 hd 128: decodes at contexts 0..700, automatic splits", 8, 2, 128, 128, 16, false, false, false, false, 0, 0, 0,
     {{0, 1}, {16, 1}, {300, 1}, {700, 1}}},
    {"GQA 8/2 hd 128: 3 forced splits (empty ones at short contexts)", 8, 2, 128, 128, 16, false, false, false, false, 0, 0, 3,
     {{700, 1}, {33, 1}, {0, 1}}},
    {"qk-norm, biases, partial rotary 32 of hd 64, block 7, 4 splits", 8, 4, 64, 32, 7, false, true, true, false, 0, 0, 4,
     {{120, 1}, {9, 1}}},
    {"interleaved pairs (GPT-J), hd 64, MHA, 2 splits", 4, 4, 64, 64, 16, true, false, true, false, 0, 0, 2, {{90, 1}, {1, 1}}},
    {"several tokens a tile: 3 and 4 tokens at group 4 (verification), 2 splits", 8, 2, 128, 128, 16, false, true, false,
     false, 0, 0, 2, {{100, 3}, {20, 4}, {0, 2}}},
    {"FP8 cache, hd 128, qk-norm, 3 splits", 8, 2, 128, 128, 16, false, true, true, true, 0, 0, 3, {{400, 1}, {5, 2}}},
    {"hd 256, group 2, sliding window 40, softcap 30, 3 splits", 4, 2, 256, 256, 16, false, false, false, false, 40, 30.f, 3,
     {{130, 1}, {30, 2}}},
    {"hd 16 (fixture size), block 4, no rotation", 4, 2, 16, 0, 4, false, false, false, false, 0, 0, 2, {{9, 1}, {3, 1}}},
    {"the any-size RoPE kernel: rotary 24 of hd 64, qk-norm, biases, 2 splits", 8, 2, 64, 24, 16, false, true, true, false, 0, 0, 2,
     {{50, 1}, {7, 2}}},
};

typedef __nv_bfloat16 bf16;

bool same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

bool run(const Case &c, std::mt19937 &rng) {
  const int nh = c.nh, nkv = c.nkv, hd = c.hd, bs = c.bs, S = (int)c.seqs.size(), G = nh / nkv;
  const int width = (nh + 2 * nkv) * hd;
  std::vector<int> cu(S + 1, 0), ctx(S), indptr(S + 1, 0), tseq, pos;
  for (int s = 0; s < S; s++) {
    ctx[s] = c.seqs[s].first;
    cu[s + 1] = cu[s] + c.seqs[s].second;
    indptr[s + 1] = indptr[s] + (ctx[s] + c.seqs[s].second + bs - 1) / bs;
    for (int i = 0; i < c.seqs[s].second; i++) tseq.push_back(s), pos.push_back(ctx[s] + i);
  }
  const int T = cu[S], nb = indptr[S];
  std::vector<int> blocks(nb);
  for (int i = 0; i < nb; i++) blocks[i] = i;
  std::shuffle(blocks.begin(), blocks.end(), rng);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const size_t elem = c.fp8 ? 1 : 2, pool = (size_t)nb * nkv * bs * hd * elem;
  std::vector<unsigned char> k0(pool), v0(pool);
  const float k_scale = c.fp8 ? 0.02f : 1.f, v_scale = c.fp8 ? 0.015f : 1.f;
  for (size_t i = 0; i < pool / elem; i++) {
    const float a = u(rng), b = u(rng);
    if (c.fp8) {
      k0[i] = __nv_cvt_float_to_fp8(a / k_scale, __NV_SATFINITE, __NV_E4M3);
      v0[i] = __nv_cvt_float_to_fp8(b / v_scale, __NV_SATFINITE, __NV_E4M3);
    } else {
      ((bf16 *)k0.data())[i] = __float2bfloat16_rn(a);
      ((bf16 *)v0.data())[i] = __float2bfloat16_rn(b);
    }
  }
  std::vector<bf16> qkv0((size_t)T * width);
  for (auto &x : qkv0) x = __float2bfloat16_rn(u(rng));
  std::vector<float> bias(width), qn(hd), kn(hd);
  for (auto &x : bias) x = 0.2f * u(rng);
  for (auto &x : qn) x = 1.f + 0.3f * u(rng);
  for (auto &x : kn) x = 1.f + 0.3f * u(rng);
  std::vector<double> inv_freq(std::max(1, c.rot / 2));
  for (int i = 0; i < c.rot / 2; i++) inv_freq[i] = pow(10000.0, -2.0 * i / c.rot);

  std::vector<fgcu::AttnTile> wide(fgcu::attn_num_tiles_bound(T, S, G)), narrow(wide.size());
  int num_wide = 0, num_narrow = 0;
  fgcu::attn_make_tiles(S, cu.data(), G, wide.data(), &num_wide, narrow.data(), &num_narrow);
  if (num_wide > 0) {
    printf("FAIL %s: wide tiles (rows > 16): not a decode case\n", c.name);
    return false;
  }
  int max_context = 0;
  for (int s = 0; s < S; s++) max_context = std::max(max_context, ctx[s] + c.seqs[s].second);
  const int splits = c.splits > 0 ? c.splits : fgcu::attn_choose_splits(num_narrow, nkv, max_context, 132);

  struct Run {
    std::vector<bf16> qkv, out;
    std::vector<unsigned char> k, v;
    std::vector<float> part_o, part_lse;
    std::vector<int> done;
  };
  auto fresh = [&]() {
    Run r;
    r.qkv = qkv0, r.k = k0, r.v = v0;
    r.out.assign((size_t)T * nh * hd, __float2bfloat16_rn(NAN));
    r.part_o.assign((size_t)splits * T * nh * hd, NAN), r.part_lse.assign((size_t)splits * T * nh, NAN);
    r.done.assign((size_t)num_narrow * nkv, 0);
    return r;
  };
  auto rope_args = [&](Run &r) {
    fgcu::RopeArgs ra;
    memset(&ra, 0, sizeof ra);
    ra.qkv = r.qkv.data(), ra.bias = c.bias ? bias.data() : nullptr;
    ra.positions = pos.data(), ra.token_seq = tseq.data(), ra.block_indptr = indptr.data(), ra.block_indices = blocks.data();
    ra.inv_freq = c.rot > 0 ? inv_freq.data() : nullptr, ra.attn_factor = 1.f;
    ra.q_norm = c.qk_norm ? qn.data() : nullptr, ra.k_norm = c.qk_norm ? kn.data() : nullptr, ra.eps = 1e-6f;
    ra.nh = nh, ra.nkv = nkv, ra.hd = hd, ra.rot = c.rot > 0 ? c.rot : 0, ra.block_size = bs, ra.interleaved = c.interleaved;
    ra.k_cache = (bf16 *)r.k.data(), ra.v_cache = (bf16 *)r.v.data(), ra.kv_fp8 = c.fp8;
    ra.k_scale = k_scale, ra.v_scale = v_scale;
    return ra;
  };
  auto attend = [&](Run &r, bool rope, bool counters) {
    fgcu::AttnArgs a;
    memset(&a, 0, sizeof a);
    a.q = r.qkv.data(), a.q_stride = width, a.k_cache = (bf16 *)r.k.data(), a.v_cache = (bf16 *)r.v.data();
    a.out = r.out.data(), a.out_stride = nh * hd;
    a.cu_seqlens = cu.data(), a.context_lens = ctx.data(), a.block_indptr = indptr.data(), a.block_indices = blocks.data();
    a.token_seq = tseq.data(), a.wide = wide.data(), a.narrow = narrow.data(), a.num_wide = 0, a.num_narrow = num_narrow;
    a.splits = splits, a.part_o = r.part_o.data(), a.part_lse = r.part_lse.data();
    a.split_done = counters && splits > 1 ? r.done.data() : nullptr;
    a.num_tokens = T, a.num_heads = nh, a.num_kv_heads = nkv, a.head_dim = hd, a.block_size = bs, a.window = c.window;
    a.scale = 1.f / sqrtf((float)hd), a.softcap = c.softcap;
    a.kv_fp8 = c.fp8, a.k_scale = k_scale, a.v_scale = v_scale;
    char err[512] = "";
    if (rope) {
      const fgcu::RopeArgs ra = rope_args(r);
      if (fgcu::qkv_rope_kv_write(ra, T, nullptr, err)) return std::string("rope: ") + err;
    }
    if (fgcu::paged_attention(a, nullptr, err)) return std::string("attention: ") + err;
    return std::string();
  };
  Run A = fresh(), B = fresh();
  std::string e = attend(A, true, false);
  if (e.empty()) e = attend(B, true, true);
  std::vector<bf16> first = B.out;
  if (e.empty()) e = attend(B, false, true);  // attention again: the counters must have gone back to zero
  if (!e.empty()) {
    printf("FAIL %s: %s\n", c.name, e.c_str());
    return false;
  }
  const size_t ob = A.out.size() * 2;
  bool nan = false;
  for (const bf16 &x : A.out) nan |= std::isnan(__bfloat162float(x));
  const bool out_ab = same_bits(A.out.data(), B.out.data(), ob), again = same_bits(first.data(), B.out.data(), ob);
  const bool kv = A.k == B.k && A.v == B.v;
  bool zero = true;
  for (int x : B.done) zero &= x == 0;
  const bool ok = !nan && out_ab && again && kv && zero;
  printf("%s %s (T %d, %d narrow tiles, splits %d):%s%s%s%s%s\n", ok ? "ok" : "FAIL", c.name, T, num_narrow, splits,
         nan ? " NaN in the output" : "", out_ab ? "" : " merged-in-kernel output differs",
         again ? "" : " second run differs", kv ? "" : " K/V written differ", zero ? "" : " counters not zero");
  return ok;
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 4321, argc, argv); }
