// Per-sequence token sampling from one row of logits.
#pragma once
#include <cstdint>

namespace fg {
namespace cpu {

struct SamplingParams {
  float temperature;  // 0 = greedy
  float top_p;        // >= 1 disables
  int32_t top_k;      // <= 0 disables
  float min_p;        // <= 0 disables
  uint64_t seed;
  int64_t position;   // the position being predicted: the draw depends only on (seed, position)
  float presence_penalty, frequency_penalty, repetition_penalty;
  const int32_t *penalty_ids;  // [num_penalty_ids] ids seen so far (repeats count for frequency)
  int64_t num_penalty_ids;
  int64_t num_prompt_penalty_ids;  // leading prompt ids: repetition penalty only
  const int32_t *draft_ids;    // [num_draft_ids] output ids after the list: a verification row's
  int64_t num_draft_ids;       // drafts before it (core/row_drafts.h)
  const int32_t *bias_ids;     // [num_bias]
  const float *bias_values;    // [num_bias]
  int64_t num_bias;
  const uint32_t *mask;        // [ceil(vocab / 32)] allowed ids (bit id % 32 of word id / 32), or null
};

struct SampleOut {
  int32_t *id;            // the sampled token
  float *logprob;         // its log-softmax under the raw logits, or null
  int32_t *top_ids;       // [num_logprobs] highest raw logprobs, descending (ties: lower id), or null
  float *top_logprobs;    // [num_logprobs] or null
  int32_t num_logprobs;
};

// logits: [vocab], raw. Penalties and logit bias first, then the mask (a masked id is -inf), then
// greedy (temperature 0: argmax, ties to the lowest id) or temperature -> top-k -> softmax ->
// top-p -> min-p -> renormalize -> draw. With every id -inf (all masked) the answer is id 0.
void sample_token(const float *logits, int64_t vocab, const SamplingParams &p, const SampleOut &out);
// Log-softmax of the raw logits at `id` and the top num_logprobs ids into `out` (out.id unused).
void raw_logprobs(const float *logits, int64_t vocab, int32_t id, const SampleOut &out);

// A uniform double in [0, 1) that depends only on (seed, counter): splitmix64 hashing.
double uniform01(uint64_t seed, uint64_t counter);

}  // namespace cpu
}  // namespace fg
