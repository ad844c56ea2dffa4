#include "core/batch.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/error.h"

namespace fg {
namespace {

#define BAD(...) raise(FG_ERR_INVALID_ARGUMENT, "fg_step: " __VA_ARGS__)

// A CSR index array: indptr[0] == 0, non-decreasing, indptr[n] == total (when total >= 0).
void check_indptr(const int32_t *indptr, int32_t n, const char *name) {
  if (!indptr) BAD("%s is null", name);
  if (indptr[0] != 0) BAD("%s[0] must be 0, got %d", name, indptr[0]);
  for (int32_t s = 0; s < n; s++)
    if (indptr[s + 1] < indptr[s])
      BAD("%s must be non-decreasing: %s[%d] = %d > %s[%d] = %d", name, name, s, indptr[s], name,
          s + 1, indptr[s + 1]);
}

void check_ids(const int32_t *ids, int32_t count, int64_t vocab, const char *name) {
  if (count > 0 && !ids) BAD("%s is null", name);
  for (int32_t i = 0; i < count; i++)
    if (ids[i] < 0 || ids[i] >= vocab)
      BAD("%s[%d] = %d is out of range [0, %lld)", name, i, ids[i], (long long)vocab);
}

void check_sampling(const fg_batch *b, int32_t s) {
  const float t = b->temperature[s], p = b->top_p[s], mp = b->min_p[s];
  if (!(t >= 0) || !std::isfinite(t)) BAD("sequence %d: temperature must be finite and >= 0, got %g", s, t);
  if (!(p > 0)) BAD("sequence %d: top_p must be > 0, got %g", s, p);
  if (!(mp <= 1) || std::isnan(mp)) BAD("sequence %d: min_p must be <= 1, got %g", s, mp);
  if (b->presence_penalty && !std::isfinite(b->presence_penalty[s]))
    BAD("sequence %d: presence_penalty must be finite", s);
  if (b->frequency_penalty && !std::isfinite(b->frequency_penalty[s]))
    BAD("sequence %d: frequency_penalty must be finite", s);
  if (b->repetition_penalty && !(b->repetition_penalty[s] > 0 && std::isfinite(b->repetition_penalty[s])))
    BAD("sequence %d: repetition_penalty must be > 0, got %g", s, b->repetition_penalty[s]);
}

// Sample rows: a CSR per sequence over its own tokens, increasing; targets in [-1, vocab); mask
// indices in [-1, num_masks). Sampling parameters are checked for sequences with a sampled row.
void check_rows(const fg_batch *b, int64_t vocab) {
  const int32_t R = b->num_rows, S = b->num_seqs;
  if (R < 0) BAD("num_rows must be >= 0, got %d", R);
  if (b->num_masks < 0) BAD("num_masks must be >= 0, got %d", b->num_masks);
  if (b->num_masks > 0 && !b->masks) BAD("num_masks = %d but masks is null", b->num_masks);
  if (!b->row_indptr) {
    if (R != 0) BAD("num_rows = %d but row_indptr is null", R);
    return;
  }
  check_indptr(b->row_indptr, S, "row_indptr");
  if (b->row_indptr[S] != R) BAD("row_indptr[%d] = %d must equal num_rows = %d", S, b->row_indptr[S], R);
  if (R > 0 && !b->row_tokens) BAD("row_tokens is null");
  for (int32_t s = 0; s < S; s++) {
    bool sampled = false;
    for (int32_t r = b->row_indptr[s]; r < b->row_indptr[s + 1]; r++) {
      const int32_t t = b->row_tokens[r];
      if (t < b->cu_seqlens[s] || t >= b->cu_seqlens[s + 1])
        BAD("row %d of sequence %d: row_tokens = %d is outside its tokens [%d, %d)", r, s, t,
            b->cu_seqlens[s], b->cu_seqlens[s + 1]);
      if (r > b->row_indptr[s] && t <= b->row_tokens[r - 1])
        BAD("row %d of sequence %d: row_tokens must increase within a sequence (%d after %d)", r, s,
            t, b->row_tokens[r - 1]);
      const int32_t target = b->row_targets ? b->row_targets[r] : -1;
      if (target < -1 || target >= vocab)
        BAD("row %d: row_targets = %d is outside the vocabulary (or -1 to sample)", r, target);
      if (b->row_masks && (b->row_masks[r] < -1 || b->row_masks[r] >= b->num_masks))
        BAD("row %d: row_masks = %d is not -1 or a mask in [0, %d)", r, b->row_masks[r], b->num_masks);
      sampled |= target < 0;
    }
    if (sampled) check_sampling(b, s);
  }
}

// Two tokens of the pass writing the same KV slot means the caller's block bookkeeping is
// broken (e.g. one block handed to two sequences); the result would depend on write order.
void check_unique_slots(const fg_batch *b, int32_t block_size) {
  std::vector<std::pair<int64_t, int32_t>> slots;  // (block * block_size + offset, sequence)
  slots.reserve(b->num_tokens);
  for (int32_t s = 0; s < b->num_seqs; s++)
    for (int32_t t = b->cu_seqlens[s]; t < b->cu_seqlens[s + 1]; t++) {
      const int32_t p = b->positions[t];
      const int64_t block = b->block_indices[b->block_indptr[s] + p / block_size];
      slots.emplace_back(block * block_size + p % block_size, s);
    }
  std::sort(slots.begin(), slots.end());
  for (size_t i = 1; i < slots.size(); i++)
    if (slots[i].first == slots[i - 1].first)
      BAD("sequences %d and %d both write KV block %lld, slot %lld", slots[i - 1].second,
          slots[i].second, (long long)(slots[i].first / block_size),
          (long long)(slots[i].first % block_size));
}

}  // namespace

void validate_batch(const ModelSpec &spec, int32_t num_blocks, int32_t block_size,
                    const fg_batch *b) {
  if (!b) BAD("batch is null");
  const int32_t T = b->num_tokens, S = b->num_seqs;
  if (T < 0 || S < 0) BAD("num_tokens (%d) and num_seqs (%d) must be >= 0", T, S);
  if (S == 0 && T == 0) return;
  if (S == 0) BAD("%d tokens but no sequences", T);
  if (T > 0 && (!b->token_ids || !b->positions)) BAD("token_ids and positions must not be null");
  if (!b->context_lens) BAD("context_lens must not be null");
  if (!b->temperature || !b->top_p || !b->top_k || !b->min_p || !b->seed)
    BAD("temperature, top_p, top_k, min_p and seed must not be null");
  if (b->num_logprobs < 0 || b->num_logprobs > 20)
    BAD("num_logprobs must be in [0, 20], got %d", b->num_logprobs);

  check_ids(b->token_ids, T, spec.vocab_size, "token_ids");
  check_indptr(b->cu_seqlens, S, "cu_seqlens");
  if (b->cu_seqlens[S] != T) BAD("cu_seqlens[%d] = %d must equal num_tokens = %d", S, b->cu_seqlens[S], T);
  check_indptr(b->block_indptr, S, "block_indptr");
  const int32_t num_block_ids = b->block_indptr[S];
  if (num_block_ids > 0 && !b->block_indices) BAD("block_indices is null");
  for (int32_t i = 0; i < num_block_ids; i++)
    if (b->block_indices[i] < 0 || b->block_indices[i] >= num_blocks)
      BAD("block_indices[%d] = %d is out of range [0, %d)", i, b->block_indices[i], num_blocks);

  for (int32_t s = 0; s < S; s++) {
    const int32_t begin = b->cu_seqlens[s], n = b->cu_seqlens[s + 1] - begin;
    const int64_t ctx = b->context_lens[s];
    if (n == 0) BAD("sequence %d has no tokens in this pass", s);
    if (ctx < 0) BAD("sequence %d: context_lens = %lld must be >= 0", s, (long long)ctx);
    if (ctx + n > spec.max_position_embeddings)
      BAD("sequence %d: positions up to %lld exceed max_position_embeddings = %lld", s,
          (long long)(ctx + n - 1), (long long)spec.max_position_embeddings);
    for (int32_t i = 0; i < n; i++)
      if (b->positions[begin + i] != ctx + i)
        BAD("sequence %d: positions[%d] = %d, expected context_len + %d = %lld", s, begin + i,
            b->positions[begin + i], i, (long long)(ctx + i));
    const int64_t blocks = b->block_indptr[s + 1] - b->block_indptr[s];
    if (blocks * block_size < ctx + n)
      BAD("sequence %d: block table of %lld blocks (x %d tokens) does not cover %lld positions", s,
          (long long)blocks, block_size, (long long)(ctx + n));
  }
  check_rows(b, spec.vocab_size);

  if (b->penalty_indptr) {
    check_indptr(b->penalty_indptr, S, "penalty_indptr");
    check_ids(b->penalty_ids, b->penalty_indptr[S], spec.vocab_size, "penalty_ids");
  }
  if (b->logit_bias_indptr) {
    check_indptr(b->logit_bias_indptr, S, "logit_bias_indptr");
    const int32_t n = b->logit_bias_indptr[S];
    check_ids(b->logit_bias_ids, n, spec.vocab_size, "logit_bias_ids");
    if (n > 0 && !b->logit_bias_values) BAD("logit_bias_values is null");
    for (int32_t i = 0; i < n; i++)
      if (std::isnan(b->logit_bias_values[i])) BAD("logit_bias_values[%d] is NaN", i);
  }
  check_unique_slots(b, block_size);
}

void validate_output(const fg_batch *b, const fg_step_output *out) {
  if (!out) BAD("output is null");
  if (b->num_rows > 0 && !out->ids) BAD("output ids is null");
}

void validate_late(const fg_batch *b, const fg_step_late *late) {
  if (!late || !late->row_masks) return;
  if (b->row_masks || b->num_masks != 0)
    BAD("late masks for a batch launched with masks of its own (launch it with row_masks NULL)");
  if (late->num_masks < 0) BAD("late num_masks must be >= 0, got %d", late->num_masks);
  if (late->num_masks > 0 && !late->masks) BAD("late num_masks = %d but masks is null", late->num_masks);
  for (int32_t r = 0; r < b->num_rows; r++)
    if (late->row_masks[r] < -1 || late->row_masks[r] >= late->num_masks)
      BAD("row %d: late row_masks = %d is not -1 or a mask in [0, %d)", r, late->row_masks[r], late->num_masks);
}

fg_batch with_late(const fg_batch &b, const fg_step_late *late) {
  fg_batch m = b;
  if (late && late->row_masks) {
    m.row_masks = late->row_masks;
    m.masks = late->masks;
    m.num_masks = late->num_masks;
  }
  return m;
}

}  // namespace fg
