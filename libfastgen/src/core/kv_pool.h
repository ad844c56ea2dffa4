// The paged KV pool of a CPU engine: one allocation, per layer kv_cache_planes() planes of
// [num_blocks, block_size, kv_cache_row()] fp32.
//
//   standard:  layer l:  k = base + (2l) * layer_elems,  v = base + (2l + 1) * layer_elems
//              each [num_blocks, block_size, num_kv_heads, head_dim]
//   MLA:       layer l:  k = v = base + l * layer_elems
//              [num_blocks, block_size, kv_lora_rank + qk_rope_head_dim]: per token the
//              normalized latent c_kv, then the rotated k_pe, one row shared by every head
//              (DeepSeek-V2: 512 + 64 floats a token a layer instead of 2 * 128 heads * 128)
#pragma once
#include <cstdint>

#include "core/spec.h"
#include "fastgen.h"

namespace fg {

class KvPool {
 public:
  // Sizes the pool from kv (explicit num_blocks, else max_kv_bytes, else memory_fraction of the
  // available RAM, default 0.5) and allocates it lazily zeroed. Throws OUT_OF_MEMORY when not
  // even one block fits or the allocation fails.
  KvPool(const ModelSpec &spec, const fg_kv_config *kv);
  ~KvPool();
  KvPool(const KvPool &) = delete;
  KvPool &operator=(const KvPool &) = delete;

  float *k(int64_t layer) const { return base_ + (planes_ * layer) * layer_elems_; }
  float *v(int64_t layer) const { return base_ + (planes_ * layer + planes_ - 1) * layer_elems_; }
  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  uint64_t bytes() const { return bytes_; }

  // Bytes one block takes across all layers and planes.
  static uint64_t bytes_per_block(const ModelSpec &spec, int32_t block_size);

 private:
  float *base_ = nullptr;
  int64_t layer_elems_ = 0, planes_ = 2;
  int32_t num_blocks_ = 0, block_size_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace fg
