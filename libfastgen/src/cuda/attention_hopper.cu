// Hopper paged prefill attention (attention_hopper.cuh): the FlashAttention-3 design, written for
// our paged ragged layout.
//
//   CTA = one wide tile (128 rows) x one kv head, 384 threads in three warpgroups:
//     WG 0 producer (setmaxnreg 40-56): gathers the K and V rows of each key tile from the pool
//          (block table per row, cp.async, 128-byte swizzle applied by hand) into a ring of
//          kStages slots; mbarriers full_k / full_v (producer -> consumers) and empty_k /
//          empty_v (consumers -> producer) hand the slots over.
//     WG 1, 2 consumers (setmaxnreg 224-232), rows [0, 64) and [64, 128) of the tile: Q in shared
//          memory (loaded once), S = Q K^T by wgmma (both operands in shared memory), online
//          softmax in fp32 registers (exp2, scale folded in), O += P V by wgmma with P from
//          registers (the S accumulator converted to bf16 in place) and V transposed by the
//          instruction.
//   Overlap: a consumer issues S(j) and O += P(j-1) V(j-1) together, then runs the softmax of
//   S(j) while the P V product is in flight (intra-warpgroup pipelining); named barriers 3/4
//   make the two consumers take turns issuing (ping-pong), so one's softmax runs under the
//   other's GEMMs.
//   Masks: per element only on key tiles that cross the diagonal or the window edge of the
//   warpgroup's rows (others are full), causal tiles past the last row never loaded.
//
// Shared memory (1024-aligned; hopper.cuh has the swizzle and the descriptors):
//   Q [HD / 64 panels][128 rows][128 B] | K [kStages][HD / 64][BN][128 B] | V alike | mbarriers
//
// Rows past the tile's end are zero in Q and never written out; keys past the last row are
// zero-filled (V must be finite: masked P are 0, and 0 * NaN would not be).
#include "cuda/attention_hopper.cuh"
#include "cuda/cp_async.cuh"
#include "cuda/hopper.cuh"

namespace fgcu {
namespace {

using namespace sm90;

constexpr int kRows = 128;  // rows of a wide tile (attn_wide_rows() must agree)
constexpr int kThreads = 384;
// Launch bounds 384 x 1 give 168 registers a thread; setmaxnreg moves them from the producer
// to the consumers (Shape), and configure() checks ptxas gave 168.
constexpr int kLaunchRegs = 168;

// Keys a tile (BN), ring slots and the register split per head size. BN 128 as
// FlashAttention-3 for causal hd <= 128; hd 256 takes 64 (O alone is 128 registers a thread).
// Registers (ptxas -v, sm_90a, no spills): hd 128 needs 56 in the producer (its unrolled
// gather; 40 spills), hd 256 232 in the consumers (224 spills).
template <int HD>
struct Shape {
  static constexpr int BN = HD == 256 ? 64 : 128, kStages = 2;
  static constexpr int kProducerRegs = HD == 256 ? 40 : 56, kConsumerRegs = HD == 256 ? 232 : 224;
  static_assert(128 * kProducerRegs + 256 * kConsumerRegs <= kThreads * kLaunchRegs, "register split");
  static constexpr int kQBytes = HD * kRows * 2, kKVBytes = HD * BN * 2;  // Q; one K or V slot
  static constexpr int kSmem = 1024 + kQBytes + 2 * kStages * kKVBytes + 4 * kStages * 8;
};

struct HopperCfg {
  int trigger;  // pdl_launch_dependents at the start (attention's PDL mode 2)
  int serial;   // no overlap: each GEMM waited for at once, no ping-pong (a check and an A/B)
};

#if FG_SM90A  // device helpers of the kernel body (compiled for sm_90a only)

__device__ __forceinline__ float tanh_approx(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ void cp_async16_s(uint32_t dst, const void *src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0));
}
#endif

// One tile of key positions [k0, k0 + BN) into ring slot (kdst, vdst): warp w of the producer
// takes keys [w BN / 4, (w + 1) BN / 4), lane l computes the pool row of key w BN / 4 + l (one
// block-table read and division a tile), and each step copies 4 keys x 8 chunks of a panel, so a
// warp instruction covers four whole 128-byte rows. Keys past s_hi are zero-filled.
template <int HD, int BN>
struct KvGather {
  static constexpr int KPW = BN / 4, STEPS = KPW / 4, PANELS = HD / 64;
  static_assert(KPW <= 32 && KPW % 4 == 0, "keys per producer warp");
  const bf16 *k, *v;
  const int *btab;
  int num_kv_heads, kvh, block_size, s_hi;

  __device__ __forceinline__ void row_of(int k0, int warp, int lane, uint32_t &row, bool &ok) const {
    const int pos = k0 + warp * KPW + (lane < KPW ? lane : 0);
    ok = pos <= s_hi;
    const int bi = ok ? pos / block_size : 0;
    row = ok ? (uint32_t)(((int64_t)btab[bi] * num_kv_heads + kvh) * block_size + (pos - bi * block_size)) : 0u;
  }
  __device__ __forceinline__ void copy(const bf16 *src, uint32_t dst, uint32_t row, bool ok, int warp, int lane) const {
    const int c8 = lane & 7;
#pragma unroll
    for (int st = 0; st < STEPS; st++) {
      const int key = st * 4 + (lane >> 3);  // within the warp's KPW keys
      const uint32_t r = __shfl_sync(0xffffffffu, row, key);
      const bool rok = __shfl_sync(0xffffffffu, (int)ok, key) != 0;
      const int tr = warp * KPW + key;  // row of the slot
#pragma unroll
      for (int h = 0; h < PANELS; h++)
        cp_async16_s(dst + swz_offset(tr, 8 * h + c8, BN), src + (size_t)r * HD + (8 * h + c8) * 8, rok);
    }
  }
};

template <int HD>
__global__ void __launch_bounds__(kThreads, 1) attn_hopper_kernel(AttnArgs p, HopperCfg cfg) {
#if FG_SM90A
  using S = Shape<HD>;
  constexpr int BN = S::BN, ST = S::kStages;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const uint32_t q_s = base, k_s = q_s + S::kQBytes, v_s = k_s + ST * S::kKVBytes;
  const uint32_t bars = v_s + ST * S::kKVBytes;
  // Slot s: full_k / full_v (the producer's 128 threads arrive when the copies have landed),
  // empty_k / empty_v (the consumers' 256 threads arrive when their wgmma reading it is done).
  auto full_k = [&](int s) { return bars + 8 * s; };
  auto full_v = [&](int s) { return bars + 8 * (ST + s); };
  auto empty_k = [&](int s) { return bars + 8 * (2 * ST + s); };
  auto empty_v = [&](int s) { return bars + 8 * (3 * ST + s); };

  // Heaviest tiles (the last of a sequence) first, as attention.cu.
  const AttnTile tile = p.wide[p.num_wide - 1 - blockIdx.x];
  const int kvh = blockIdx.y, G = p.num_heads / p.num_kv_heads;
  const int tok0 = p.cu_seqlens[tile.seq], ctx = p.context_lens[tile.seq];
  const int *btab = p.block_indices + p.block_indptr[tile.seq];
  const int pos_first = ctx + tile.row_begin / G, pos_last = ctx + (tile.row_end - 1) / G;
  const int kv_lo = p.window > 0 ? max(0, pos_first - p.window + 1) : 0;
  const int n_tiles = (pos_last - kv_lo) / BN + 1;

  if (threadIdx.x == 0) {
    for (int s = 0; s < ST; s++) {
      mbar_init(full_k(s), 128);
      mbar_init(full_v(s), 128);
      mbar_init(empty_k(s), 256);
      mbar_init(empty_v(s), 256);
    }
    mbar_fence_init();
  }
  __syncthreads();
  // q and this step's K/V come from the kernels before (launch_k): wait for them.
  pdl_wait();
  if (cfg.trigger) pdl_launch_dependents();

  const int wg = threadIdx.x / 128, tw = threadIdx.x % 128, warp = tw / 32, lane = tw % 32;
  if (wg == 0) {  // producer
    setmaxnreg_dec<S::kProducerRegs>();
    const KvGather<HD, BN> g = {p.k_cache, p.v_cache, btab, p.num_kv_heads, kvh, p.block_size, pos_last};
    uint32_t row;  // pool row of this lane's key of the next tile (read ahead of its slot)
    bool ok;
    g.row_of(kv_lo, warp, lane, row, ok);
    // K of a slot frees when S is done, V when P V is: K(j + ST) loads while the consumers
    // still run the softmax of tile j + ST - 1.
    for (int j = 0; j < n_tiles; j++) {
      const int s = j % ST;
      const uint32_t free_parity = ((j / ST) & 1) ^ 1;
      mbar_wait(empty_k(s), free_parity);
      g.copy(g.k, k_s + s * S::kKVBytes, row, ok, warp, lane);
      cp_async_commit();
      if (j > 0) {  // V of the tile before has landed (all but the newest group)
        cp_async_wait<1>();
        fence_proxy_async();
        mbar_arrive(full_v((j - 1) % ST));
      }
      mbar_wait(empty_v(s), free_parity);
      g.copy(g.v, v_s + s * S::kKVBytes, row, ok, warp, lane);
      cp_async_commit();
      if (j + 1 < n_tiles) g.row_of(kv_lo + (j + 1) * BN, warp, lane, row, ok);
      cp_async_wait<1>();  // this tile's K
      fence_proxy_async();
      mbar_arrive(full_k(s));
    }
    cp_async_wait<0>();
    fence_proxy_async();
    mbar_arrive(full_v((n_tiles - 1) % ST));
    return;
  }

  // Consumers: cw owns rows [64 cw, 64 cw + 64) of the tile.
  setmaxnreg_inc<S::kConsumerRegs>();
  const int cw = wg - 1;
  const int wrow0 = tile.row_begin + 64 * cw;
  {  // Q rows of this warpgroup: warp w rows 16 w + lane / 8 + 4 i, chunk lane % 8 of each panel
    const int c8 = lane & 7;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int row = 16 * warp + (lane >> 3) + 4 * i, r = wrow0 + row;
      const bf16 *src = r < tile.row_end ? p.q + (size_t)(tok0 + r / G) * p.q_stride + (kvh * G + r % G) * HD : nullptr;
#pragma unroll
      for (int h = 0; h < HD / 64; h++) {
        uint4 val = make_uint4(0, 0, 0, 0);
        if (src) val = *reinterpret_cast<const uint4 *>(src + (8 * h + c8) * 8);
        const uint32_t dst = q_s + swz_offset(64 * cw + row, 8 * h + c8, kRows);
        asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(val.x), "r"(val.y), "r"(val.z),
                     "r"(val.w)
                     : "memory");
      }
    }
    fence_proxy_async();
    bar_sync(1 + cw, 128);
  }

  // Positions of this warpgroup's real rows [wq_lo, wq_hi] and of this thread's two rows (-1:
  // past the tile, masked everywhere).
  const int wrow_end = min(tile.row_end, wrow0 + 64);
  const int wq_lo = ctx + wrow0 / G, wq_hi = wrow_end > wrow0 ? ctx + (wrow_end - 1) / G : -1;
  const int ra = wrow0 + 16 * warp + lane / 4, rb = ra + 8;
  const int qpa = ra < tile.row_end ? ctx + ra / G : -1, qpb = rb < tile.row_end ? ctx + rb / G : -1;
  // Scores stay raw until the exponent (scale_log2 > 0); with a softcap they are capped first
  // (scale folded in) and scale_log2 is log2(e) alone. Either way the row max commutes.
  const float scale_log2 = (p.softcap > 0.f ? 1.f : p.scale) * kLog2e;
  const float cap_mul = p.softcap > 0.f ? p.scale / p.softcap : 0.f;

  // Descriptors: Q panels 128 rows apart (this warpgroup's rows start 64 rows in), K panels BN
  // rows apart, V k-steps 16 rows apart with LBO = the V panel stride.
  const uint64_t dq = desc_sw128(q_s + 64 * cw * 128, 16, 1024);
  const uint64_t dk0 = desc_sw128(k_s, 16, 1024), dv0 = desc_sw128(v_s, BN * 128, 1024);
  auto issue_s = [&](float (&sc)[BN / 2], int s) {
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++)
      wgmma_ss(sc, desc_add(dq, (kk / 4) * kRows * 128 + (kk % 4) * 32),
               desc_add(dk0, s * S::kKVBytes + (kk / 4) * BN * 128 + (kk % 4) * 32), kk > 0);
    wgmma_commit();
    if (cfg.serial) wgmma_wait<0>();
  };
  float o[HD / 2];
  uint32_t pk[BN / 16][4];  // P (bf16 pairs): A fragments of k-step kk
  auto issue_pv = [&](int s) {
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; kk++) wgmma_rs(o, pk[kk], desc_add(dv0, s * S::kKVBytes + kk * 16 * 128), 1);
    wgmma_commit();
    if (cfg.serial) wgmma_wait<0>();
  };
  // Ping-pong: a consumer issues its GEMMs only on its turn (barrier 3 + cw) and then hands the
  // turn over. Each consumer passes n_tiles + 1 turns; consumer 1 opens consumer 0's first turn
  // and skips handing over after its last, so every bar.sync meets exactly one bar.arrive.
  auto turn_begin = [&] {
    if (!cfg.serial) bar_sync(3 + cw, 256);
  };
  auto turn_end = [&](bool last) {
    if (!cfg.serial && (!last || cw == 0)) bar_arrive(3 + (cw ^ 1), 256);
  };

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  // softcap, mask, new row maxima and sums; sc becomes P (fp32); alpha rescales older O.
  auto softmax = [&](float (&sc)[BN / 2], int k0, float (&alpha)[2]) {
    if (p.softcap > 0.f) {
#pragma unroll
      for (int i = 0; i < BN / 2; i++) sc[i] = p.softcap * tanh_approx(sc[i] * cap_mul);
    }
    const int kmax = k0 + BN - 1;
    const bool full = kmax <= wq_lo && (p.window == 0 || wq_hi - k0 < p.window);
    if (!full) {
#pragma unroll
      for (int i = 0; i < BN / 2; i++) {
        const int qp = (i & 2) ? qpb : qpa, kp = k0 + (i / 4) * 8 + 2 * (lane & 3) + (i & 1);
        if (!(kp <= qp && (p.window == 0 || qp - kp < p.window))) sc[i] = -INFINITY;
      }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = -INFINITY;
#pragma unroll
      for (int nb = 0; nb < BN / 8; nb++) mx = fmaxf(mx, fmaxf(sc[4 * nb + 2 * h], sc[4 * nb + 2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx * scale_log2);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      alpha[h] = ex2(m[h] - m_use);
      float rs = 0.f;
#pragma unroll
      for (int nb = 0; nb < BN / 8; nb++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          float &x = sc[4 * nb + 2 * h + e];
          x = ex2(fmaf(x, scale_log2, -m_use));
          rs += x;
        }
      l[h] = l[h] * alpha[h] + rs;
      m[h] = m_new;
    }
  };
  auto to_p = [&](const float (&sc)[BN / 2]) {
#pragma unroll
    for (int kk = 0; kk < BN / 16; kk++)
#pragma unroll
      for (int i = 0; i < 4; i++) pk[kk][i] = pack_bf16(sc[8 * kk + 2 * i], sc[8 * kk + 2 * i + 1]);
  };

#pragma unroll
  for (int i = 0; i < HD / 2; i++) o[i] = 0.f;
  if (cw == 1 && !cfg.serial) bar_arrive(3, 256);  // consumer 0 takes the first turn
  float sc[BN / 2], alpha[2];

  mbar_wait(full_k(0), 0);
  turn_begin();
  issue_s(sc, 0);
  turn_end(false);
  wgmma_wait<0>();
  pin(sc);
  mbar_arrive(empty_k(0));
  softmax(sc, kv_lo, alpha);  // O is still zero: alpha not needed
  to_p(sc);
  for (int j = 1; j < n_tiles; j++) {
    const int s = j % ST, sp = (j - 1) % ST;
    mbar_wait(full_k(s), (j / ST) & 1);
    mbar_wait(full_v(sp), ((j - 1) / ST) & 1);
    turn_begin();
    issue_s(sc, s);
    issue_pv(sp);
    turn_end(false);
    wgmma_wait<1>();  // S(j) done; P(j-1) V(j-1) may still run
    pin(sc);
    mbar_arrive(empty_k(s));
    softmax(sc, kv_lo + j * BN, alpha);
    wgmma_wait<0>();
    pin(o);
    pin(pk);
    mbar_arrive(empty_v(sp));
#pragma unroll
    for (int i = 0; i < HD / 2; i++) o[i] *= alpha[(i >> 1) & 1];
    to_p(sc);
  }
  const int sl = (n_tiles - 1) % ST;
  mbar_wait(full_v(sl), ((n_tiles - 1) / ST) & 1);
  turn_begin();
  issue_pv(sl);
  turn_end(true);
  wgmma_wait<0>();
  pin(o);

#pragma unroll
  for (int h = 0; h < 2; h++) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
  }
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int r = h ? rb : ra;
    if (r >= tile.row_end) continue;
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
    bf16 *dst = p.out + (size_t)(tok0 + r / G) * p.out_stride + (kvh * G + r % G) * HD + 2 * (lane & 3);
#pragma unroll
    for (int nb = 0; nb < HD / 8; nb++)
      *reinterpret_cast<__nv_bfloat162 *>(dst + 8 * nb) =
          __floats2bfloat162_rn(o[4 * nb + 2 * h] * inv, o[4 * nb + 2 * h + 1] * inv);
  }
#endif
}

// Per device: an sm_90 GPU, and the kernel's ptxas register count as the setmaxnreg split needs.
template <int HD>
int configure(bool *ok, char *err) {
  static unsigned checked = 0, usable = 0;  // one bit per device
  int dev = 0;
  FGCU_TRY(cudaGetDevice(&dev));
  const unsigned bit = 1u << (dev & 31);
  if (!(__atomic_load_n(&checked, __ATOMIC_ACQUIRE) & bit)) {
    int major = 0, minor = 0;
    FGCU_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    FGCU_TRY(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    cudaFuncAttributes fa;
    const bool good = major == 9 && minor == 0 && cudaFuncGetAttributes(&fa, attn_hopper_kernel<HD>) == cudaSuccess &&
                      fa.numRegs == kLaunchRegs &&
                      cudaFuncSetAttribute(attn_hopper_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           Shape<HD>::kSmem) == cudaSuccess;
    if (!good) cudaGetLastError();  // a refusal must not surface as the next launch's error
    if (good) __atomic_fetch_or(&usable, bit, __ATOMIC_RELAXED);
    __atomic_fetch_or(&checked, bit, __ATOMIC_RELEASE);
  }
  *ok = (__atomic_load_n(&usable, __ATOMIC_ACQUIRE) & bit) != 0;
  return 0;
}

// 0: not this kernel; 1: overlapped; 2: serial (HopperCfg), from a.wide_kernel or the knob.
int mode_of(const AttnArgs &a) {
  static const int knob = [] {
    const int k = fg_knob_int(FG_KNOB_ATTN_HOPPER);
    return k >= 0 && k <= 2 ? k : 1;
  }();
  const int m = a.wide_kernel == 0 ? knob : a.wide_kernel - 1;
  return m == 1 || m == 2 ? m : 0;
}

template <int HD>
int launch(const AttnArgs &a, int pdl_mode, cudaStream_t s, char *err) {
  bool ok = false;
  FGCU_CHECK(configure<HD>(&ok, err));
  if (!ok) {
    snprintf(err, 512, "attn_hopper_kernel: not usable on this device");
    return FG_ERR_UNSUPPORTED;
  }
  const HopperCfg cfg = {pdl_mode == 2, mode_of(a) == 2};
  const dim3 grid(a.num_wide, a.num_kv_heads);
  if (pdl_mode > 0) launch_k(attn_hopper_kernel<HD>, grid, dim3(kThreads), Shape<HD>::kSmem, s, a, cfg);
  else attn_hopper_kernel<HD><<<grid, kThreads, Shape<HD>::kSmem, s>>>(a, cfg);
  FGCU_LAUNCHED("attn_hopper_kernel");
  return 0;
}

template <int HD>
bool usable() {
  bool ok = false;
  char err[512];
  return configure<HD>(&ok, err) == 0 && ok;
}

}  // namespace

bool attn_hopper_takes(const AttnArgs &a) {
  if (mode_of(a) == 0) return false;
  // bf16 caches only: an FP8 cache (--kv-cache-dtype fp8) stays on paged_attention's own kernels.
  if (a.kv_fp8 || a.num_wide == 0 || attn_wide_rows() != kRows || !(a.scale > 0.f)) return false;
  switch (a.head_dim) {
    case 64: return usable<64>();
    case 128: return usable<128>();
    case 256: return usable<256>();
    default: return false;
  }
}

int attn_hopper_wide(const AttnArgs &a, int pdl_mode, cudaStream_t s, char *err) {
  switch (a.head_dim) {
    case 64: return launch<64>(a, pdl_mode, s, err);
    case 128: return launch<128>(a, pdl_mode, s, err);
    case 256: return launch<256>(a, pdl_mode, s, err);
    default:
      snprintf(err, 512, "attn_hopper_wide: head_dim %d", a.head_dim);
      return FG_ERR_UNSUPPORTED;
  }
}

}  // namespace fgcu
