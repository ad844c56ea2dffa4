// Per-row penalty lists of speculative verification (fastgen.h, fg_batch "Penalties"): a
// sequence's sampled rows after its first count the pass's tokens after that first row's token,
// up to their own token, as output ids. Verifying k drafts is k + 1 sampled rows at the tokens
//
//   pass tokens of s:  | t | d0 | d1 | ... | d(k-1) |      t = s's last generated token
//   sampled rows:        0   1    2          k
//
// and row j sees d0 .. d(j-1) as already generated: exactly the list decoding without the draft
// would hold when it predicted that position. Header-only and free of the standard library: the
// CPU sampler (core/sample_rows.cpp) and the device's row packing (cuda/meta.cu) share it.
#pragma once
#include <stdint.h>

#include "fastgen.h"

namespace fg {

// [begin, end): token indices of the pass.
struct TokenRange {
  int32_t begin, end;
};

// The token index of sequence s's first sampled row, or -1 when it has none (validated batch).
inline int32_t first_sampled_token(const fg_batch *b, int32_t s) {
  if (!b->row_indptr) return -1;
  for (int32_t r = b->row_indptr[s]; r < b->row_indptr[s + 1]; r++)
    if (!b->row_targets || b->row_targets[r] < 0) return b->row_tokens[r];
  return -1;
}

// The pass tokens sample row r adds to its sequence's penalty list as output ids, given the
// sequence's first_sampled_token: empty for that first row and for scored rows.
inline TokenRange row_draft_tokens(const fg_batch *b, int32_t first_token, int32_t r) {
  if (first_token < 0 || (b->row_targets && b->row_targets[r] >= 0)) return TokenRange{0, 0};
  return TokenRange{first_token + 1, b->row_tokens[r] + 1};
}

}  // namespace fg
