// The CPU backend, the reference: fp32 weights in the engine's weight store, the KV pool in host
// memory (core/kv_pool.h), the forward pass (cpu/forward.h) on the engine's pass thread while the
// caller prepares the next one, sampling on the calling thread (core/sample_rows.h).
#include <vector>

#include "core/backend.h"
#include "core/batch.h"
#include "core/error.h"
#include "core/kv_pool.h"
#include "core/pass_thread.h"
#include "core/sample_rows.h"
#include "cpu/forward.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace {

// Logits kept between passes up to this many floats (64 MiB); a bigger pass (prompt logprobs
// over a long chunk) frees its buffer at finish.
constexpr size_t kKeepLogits = size_t(1) << 24;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const EngineState &s) : s_(s) {
    if (s.spec.tensor_parallel > 1)
      raise(FG_ERR_UNSUPPORTED, "engine: tensor_parallel %lld needs the CUDA backend (the CPU backend runs one rank)",
            (long long)s.spec.tensor_parallel);
  }

  void finalize(const fg_kv_config *kv) override {
    kv_.reset(new KvPool(s_.spec, kv));
    view_ = s_.weights.view();
    kv_layers_ = kv_layers(kv);
  }

  KvShape kv_shape() const override {
    KvShape k;
    if (kv_) k.num_blocks = kv_->num_blocks(), k.block_size = kv_->block_size();
    return k;
  }

  void info(fg_engine_info &i) const override {
    i.num_threads = cpu::num_threads();
    i.weight_bytes = s_.weights.bytes();
    i.kv_bytes = kv_ ? kv_->bytes() : 0;
  }

  void launch(const fg_batch &b, bool overlap) override {
    batch_ = b;
    token_seq_.resize(b.num_tokens);
    for (int32_t s = 0; s < b.num_seqs; s++)
      for (int32_t t = b.cu_seqlens[s]; t < b.cu_seqlens[s + 1]; t++) token_seq_[t] = s;
    logits_.resize((size_t)b.num_rows * s_.spec.vocab_size);
    started_ = false;
    if (!overlap) return;
    pass_thread_.start([this] { forward(); });
    started_ = true;
  }

  void finish(const fg_step_late *late, fg_step_output *out) override {
    Shrink shrink{logits_};
    if (started_) {
      started_ = false;
      pass_thread_.wait();  // rethrows the forward's failure
    } else {
      forward();
    }
    const fg_batch b = with_late(batch_, late);
    sample_rows(&b, logits_.data(), s_.spec.vocab_size, out, s_.penalties);
  }

  void drop() noexcept override {
    Shrink shrink{logits_};
    if (!started_) return;
    started_ = false;
    try {
      pass_thread_.wait();
    } catch (...) {
    }
  }

 private:
  struct Shrink {  // a pass's logits buffer past kKeepLogits goes when the pass ends
    std::vector<float> &logits;
    ~Shrink() {
      if (logits.capacity() > kKeepLogits) std::vector<float>().swap(logits);
    }
  };

  // batch_'s forward pass into logits_, on whichever thread calls it.
  void forward() {
    cpu::ForwardBatch fb;
    fb.paged = {batch_.num_tokens, batch_.positions, token_seq_.data(), batch_.block_indptr,
                batch_.block_indices, kv_->block_size()};
    fb.token_ids = batch_.token_ids;
    fb.logit_tokens = batch_.row_tokens;
    fb.num_logit_rows = batch_.num_rows;
    cpu::forward(s_.spec, view_, s_.rope, kv_layers_, fb, logits_.data());
  }

  // The layers' views of the pool; with an FP8 KV cache, values rounded at the layer's scales.
  std::vector<cpu::KvLayer> kv_layers(const fg_kv_config *kv) const {
    const bool fp8 = kv && kv->kv_dtype == FG_F8_E4M3;
    std::vector<cpu::KvLayer> layers;
    for (int64_t l = 0; l < s_.spec.num_layers; l++) {
      cpu::KvLayer layer{kv_->k(l), kv_->v(l)};
      layer.fp8 = fp8;
      if (fp8 && kv->k_scales) layer.k_scale = kv->k_scales[l];
      if (fp8 && kv->v_scales) layer.v_scale = kv->v_scales[l];
      layers.push_back(layer);
    }
    return layers;
  }

  const EngineState s_;
  std::unique_ptr<KvPool> kv_;  // set by finalize()
  ModelWeights view_;           // pointers into the weight store, set by finalize()
  std::vector<cpu::KvLayer> kv_layers_;
  fg_batch batch_{};                // the pass's struct; its arrays are the caller's
  std::vector<int32_t> token_seq_;  // [num_tokens] sequence of each token
  std::vector<float> logits_;       // [num_rows, vocab] of the sample rows' tokens
  bool started_ = false;            // the forward runs on the pass thread
  PassThread pass_thread_;          // last: stopped before the state its job reads goes away
};

}  // namespace

std::unique_ptr<Backend> create_cpu_backend(const EngineState &state) {
  return std::unique_ptr<Backend>(new CpuBackend(state));
}

}  // namespace fg
