// Penalty lists kept between passes (fg_batch penalty_slots): slot k holds one sequence's
// penalty ids (its leading prompt ids, then its outputs), so a pass sends only the new ids
// instead of the whole prompt + output list (issue #24 item 4: 163 us a step at 256 sequences
// with a repetition penalty when TypeScript rebuilt every list). The caller gives slots out;
// the engine only grows, cuts and reads them.
#pragma once
#include <cstdint>
#include <vector>

#include "fastgen.h"

namespace fg {

// A sequence's penalty list as sampling reads it: ids [n], the first prompt_n of them prompt ids.
struct PenaltyList {
  const int32_t *ids = nullptr;
  int64_t n = 0, prompt_n = 0;
};

class PenaltySlots {
 public:
  static constexpr int32_t kMaxSlots = 1 << 20;

  // Throws FG_ERR_INVALID_ARGUMENT unless b's slots apply (a validated batch; nothing changes).
  void validate(const fg_batch *b) const;
  // Cuts each slotted sequence's slot to its keep count and appends its CSR ids.
  void apply(const fg_batch *b);
  // Sequence s's whole list: its slot, or the batch's CSR range when it has none.
  PenaltyList list(const fg_batch *b, int32_t s) const;
  // Every sequence's list as one CSR (indptr [S + 1], ids, prompt_lens [S]): the batch as a
  // backend without slots reads it (CUDA uploads the CSR).
  void flatten(const fg_batch *b, std::vector<int32_t> &indptr, std::vector<int32_t> &ids,
               std::vector<int32_t> &prompt_lens) const;

 private:
  struct Slot {
    std::vector<int32_t> ids;
    int64_t prompt_n = 0;
  };
  std::vector<Slot> slots_;  // grown to the highest slot used
};

}  // namespace fg
