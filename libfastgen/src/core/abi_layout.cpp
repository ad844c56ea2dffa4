// fg_abi_layout(): the byte layout of every struct fastgen.h passes by pointer, as this library
// was compiled. Bindings pack those structs by these offsets (src/native/structs.ts), so a field
// added, removed or moved on one side cannot silently shift the other: the binding compares the
// field names and types it writes with this list when the library loads.
//
// Each struct's fields are listed once, in declaration order. The static_asserts prove a list
// covers its struct (the bytes between listed fields are padding, the last ends at sizeof), and
// each field's type tag comes from its declared type, so the list cannot drift from fastgen.h.
#include <cstddef>
#include <cstdio>
#include <string>
#include <type_traits>

#include "fastgen.h"

namespace {

template <class T>
struct Kind;  // no definition: a field of any other type fails to compile here
template <>
struct Kind<int32_t> {
  static constexpr const char *name = "i32";
};
template <>
struct Kind<uint64_t> {
  static constexpr const char *name = "u64";
};
template <>
struct Kind<float> {
  static constexpr const char *name = "f32";
};
template <class T>
struct Kind<T *> {
  static constexpr const char *name = "ptr";
};

struct Field {
  const char *name, *type;
  size_t offset, size, align;
};

#define FG_FIELD(S, f)                                                                         \
  Field{#f, Kind<std::remove_cv_t<decltype(S::f)>>::name, offsetof(S, f), sizeof(S::f),       \
        alignof(decltype(S::f))},

#define FG_BATCH_FIELDS(X)                                                                     \
  X(fg_batch, num_tokens) X(fg_batch, num_seqs) X(fg_batch, token_ids) X(fg_batch, positions)  \
  X(fg_batch, cu_seqlens) X(fg_batch, context_lens) X(fg_batch, block_indptr)                  \
  X(fg_batch, block_indices) X(fg_batch, num_rows) X(fg_batch, num_masks)                      \
  X(fg_batch, row_indptr) X(fg_batch, row_tokens) X(fg_batch, row_targets)                     \
  X(fg_batch, row_masks) X(fg_batch, masks) X(fg_batch, temperature) X(fg_batch, top_p)        \
  X(fg_batch, top_k) X(fg_batch, min_p) X(fg_batch, seed) X(fg_batch, presence_penalty)        \
  X(fg_batch, frequency_penalty) X(fg_batch, repetition_penalty) X(fg_batch, penalty_indptr)   \
  X(fg_batch, penalty_ids) X(fg_batch, penalty_prompt_lens) X(fg_batch, penalty_slots)         \
  X(fg_batch, penalty_slot_keep) X(fg_batch, logit_bias_indptr)                                \
  X(fg_batch, logit_bias_ids) X(fg_batch, logit_bias_values) X(fg_batch, num_logprobs)         \
  X(fg_batch, _reserved)
#define FG_STEP_OUTPUT_FIELDS(X)                                                               \
  X(fg_step_output, ids) X(fg_step_output, logprobs) X(fg_step_output, top_ids)                \
  X(fg_step_output, top_logprobs) X(fg_step_output, logits)
#define FG_STEP_LATE_FIELDS(X)                                                                 \
  X(fg_step_late, num_masks) X(fg_step_late, _reserved) X(fg_step_late, row_masks)             \
  X(fg_step_late, masks)
#define FG_KV_CONFIG_FIELDS(X)                                                                 \
  X(fg_kv_config, block_size) X(fg_kv_config, num_blocks) X(fg_kv_config, memory_fraction)     \
  X(fg_kv_config, max_kv_bytes) X(fg_kv_config, kv_dtype) X(fg_kv_config, _reserved)           \
  X(fg_kv_config, k_scales) X(fg_kv_config, v_scales)
#define FG_ENGINE_INFO_FIELDS(X)                                                               \
  X(fg_engine_info, num_blocks) X(fg_engine_info, block_size) X(fg_engine_info, vocab_size)    \
  X(fg_engine_info, max_position_embeddings) X(fg_engine_info, backend)                       \
  X(fg_engine_info, num_threads) X(fg_engine_info, weight_bytes) X(fg_engine_info, kv_bytes)

constexpr Field kBatch[] = {FG_BATCH_FIELDS(FG_FIELD)};
constexpr Field kStepOutput[] = {FG_STEP_OUTPUT_FIELDS(FG_FIELD)};
constexpr Field kStepLate[] = {FG_STEP_LATE_FIELDS(FG_FIELD)};
constexpr Field kKvConfig[] = {FG_KV_CONFIG_FIELDS(FG_FIELD)};
constexpr Field kEngineInfo[] = {FG_ENGINE_INFO_FIELDS(FG_FIELD)};

// True when the fields follow each other with only alignment padding between them and the last
// one ends where sizeof (rounded to the struct's alignment) says: no field is left unlisted.
template <size_t N>
constexpr bool covers(const Field (&f)[N], size_t size, size_t align) {
  size_t end = 0;
  for (size_t i = 0; i < N; i++) {
    const size_t at = (end + f[i].align - 1) / f[i].align * f[i].align;
    if (f[i].offset != at) return false;
    end = at + f[i].size;
  }
  return (end + align - 1) / align * align == size;
}

static_assert(covers(kBatch, sizeof(fg_batch), alignof(fg_batch)),
              "fg_batch changed: list its fields in FG_BATCH_FIELDS, in order");
static_assert(covers(kStepOutput, sizeof(fg_step_output), alignof(fg_step_output)),
              "fg_step_output changed: list its fields in FG_STEP_OUTPUT_FIELDS, in order");
static_assert(covers(kStepLate, sizeof(fg_step_late), alignof(fg_step_late)),
              "fg_step_late changed: list its fields in FG_STEP_LATE_FIELDS, in order");
static_assert(covers(kKvConfig, sizeof(fg_kv_config), alignof(fg_kv_config)),
              "fg_kv_config changed: list its fields in FG_KV_CONFIG_FIELDS, in order");
static_assert(covers(kEngineInfo, sizeof(fg_engine_info), alignof(fg_engine_info)),
              "fg_engine_info changed: list its fields in FG_ENGINE_INFO_FIELDS, in order");

template <size_t N>
void append(std::string &s, const char *name, size_t size, const Field (&f)[N]) {
  char buf[160];
  snprintf(buf, sizeof buf, "%s\"%s\":{\"size\":%zu,\"fields\":[", s.size() > 1 ? "," : "", name, size);
  s += buf;
  for (size_t i = 0; i < N; i++) {
    snprintf(buf, sizeof buf, "%s[\"%s\",%zu,\"%s\"]", i ? "," : "", f[i].name, f[i].offset, f[i].type);
    s += buf;
  }
  s += "]}";
}

std::string layout_json() {
  std::string s = "{";
  append(s, "fg_batch", sizeof(fg_batch), kBatch);
  append(s, "fg_step_output", sizeof(fg_step_output), kStepOutput);
  append(s, "fg_step_late", sizeof(fg_step_late), kStepLate);
  append(s, "fg_kv_config", sizeof(fg_kv_config), kKvConfig);
  append(s, "fg_engine_info", sizeof(fg_engine_info), kEngineInfo);
  return s + "}";
}

}  // namespace

extern "C" const char *fg_abi_layout(void) {
  static const std::string json = layout_json();
  return json.c_str();
}
