#include "core/kv_pool.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace fg {
namespace {

const int32_t kDefaultBlockSize = 16;

// MemAvailable from /proc/meminfo, else free physical pages.
uint64_t available_ram() {
  if (FILE *f = fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    if (kb) return kb * 1024ull;
  }
  long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

}  // namespace

uint64_t KvPool::bytes_per_block(const ModelSpec &s, int32_t block_size) {
  return (uint64_t)s.kv_cache_planes() * (uint64_t)s.num_layers * (uint64_t)block_size *
         (uint64_t)s.kv_cache_row() * 4ull;
}

KvPool::KvPool(const ModelSpec &s, const fg_kv_config *kv) {
  const fg_kv_config dflt{};
  if (!kv) kv = &dflt;
  if (kv->block_size < 0 || kv->block_size > 65536)
    raise(FG_ERR_INVALID_ARGUMENT, "kv config: block_size must be in [0, 65536], got %d", kv->block_size);
  if (kv->num_blocks < 0)
    raise(FG_ERR_INVALID_ARGUMENT, "kv config: num_blocks must be >= 0, got %d", kv->num_blocks);
  if (!(kv->memory_fraction >= 0 && kv->memory_fraction <= 1))
    raise(FG_ERR_INVALID_ARGUMENT, "kv config: memory_fraction must be in [0, 1], got %g",
          (double)kv->memory_fraction);
  block_size_ = kv->block_size ? kv->block_size : kDefaultBlockSize;
  const uint64_t per_block = bytes_per_block(s, block_size_);

  uint64_t blocks;
  if (kv->num_blocks > 0) {
    blocks = (uint64_t)kv->num_blocks;
  } else {
    uint64_t budget = kv->max_kv_bytes;
    if (!budget) budget = (uint64_t)(available_ram() * (kv->memory_fraction > 0 ? kv->memory_fraction : 0.5));
    blocks = std::min<uint64_t>(budget / per_block, INT32_MAX);
    if (blocks == 0)
      raise(FG_ERR_OUT_OF_MEMORY, "kv pool: a budget of %llu bytes holds no block of %llu bytes",
            (unsigned long long)budget, (unsigned long long)per_block);
  }
  num_blocks_ = (int32_t)blocks;
  planes_ = s.kv_cache_planes();
  layer_elems_ = (int64_t)blocks * block_size_ * s.kv_cache_row();
  bytes_ = blocks * per_block;
  // calloc maps large pools lazily: untouched blocks cost no RAM.
  base_ = (float *)calloc(bytes_ / 4, 4);
  if (!base_)
    raise(FG_ERR_OUT_OF_MEMORY, "kv pool: cannot allocate %llu bytes (%d blocks)",
          (unsigned long long)bytes_, num_blocks_);
}

KvPool::~KvPool() { free(base_); }

}  // namespace fg
