// Token sampling on the device, the twin of cpu/sampling.cpp: the same penalties, greedy ties
// (lowest id), temperature -> top-k -> top-p -> min-p order, and the same seeded draw
// u = uniform01(seed, position) walked over the candidates in the same order (best first when a
// filter sorts, else id order), so CPU and GPU pick the same token from the same logits.
// Sorted candidates come from a block radix select + bitonic sort of at most 4096 entries; a
// larger top-k / top-p set (rare: a flat distribution with top_p near 1) is walked in id order,
// which draws from the same distribution but may pick a different token than the CPU.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// Per sample row of fg_batch (host-packed, uploaded with the step's metadata).
struct SampleRow {
  float temperature, top_p, min_p, presence, frequency, repetition;
  int top_k, pen_begin, pen_end, bias_begin, bias_end;
  int forced;          // >= 0: a scored row, report this id instead of drawing one; else -1
  int pen_prompt;      // the first pen_prompt penalty ids are prompt ids: repetition only
  int draft_begin, draft_end;  // pass tokens counted as outputs after the list (core/row_drafts.h)
  unsigned long long seed;
  long long position;  // the position being predicted
  long long mask;      // first word of the row's allowed-token bitmask in masks, or -1
};

struct SampleArgs {
  const float *logits;  // [R, V] raw
  int R, V;
  const SampleRow *rows;       // [R]
  const int *pen_ids;          // penalty ids (ranges in rows)
  const int *token_ids;        // [T] the pass's tokens (rows' draft ranges)
  const int *bias_ids;         // logit bias ids and values (ranges in rows)
  const float *bias_vals;
  const uint32_t *masks;       // bitmasks of ceil(V / 32) words (offsets in rows)
  int num_logprobs;            // top logprobs per row, 0..20
  float *z;                    // workspace [R, V]
  int *counts;                 // workspace [R, V], only touched by rows with penalties
  int *out_ids;                // [R]
  float *out_logprob;          // [R]
  int *out_top_ids;            // [R, num_logprobs]
  float *out_top_logprobs;     // [R, num_logprobs]
};

int sample(const SampleArgs &a, cudaStream_t stream, char *err);

// The host-side twin of cpu::uniform01, for tests.
double uniform01_host(uint64_t seed, uint64_t counter);

}  // namespace fgcu
