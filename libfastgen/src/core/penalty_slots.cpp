#include "core/penalty_slots.h"

#include <algorithm>

#include "core/error.h"

namespace fg {
namespace {

#define BAD(...) raise(FG_ERR_INVALID_ARGUMENT, "fg_step: " __VA_ARGS__)

int32_t new_prompt_ids(const fg_batch *b, int32_t s) {
  const int32_t n = b->penalty_indptr ? b->penalty_indptr[s + 1] - b->penalty_indptr[s] : 0;
  const int32_t p = b->penalty_prompt_lens ? b->penalty_prompt_lens[s] : 0;
  return std::min(std::max(p, 0), n);
}

}  // namespace

void PenaltySlots::validate(const fg_batch *b) const {
  if (!b->penalty_slots) return;
  if (!b->penalty_slot_keep) BAD("penalty_slots without penalty_slot_keep");
  std::vector<int32_t> used;
  for (int32_t s = 0; s < b->num_seqs; s++) {
    const int32_t k = b->penalty_slots[s];
    if (k == -1) continue;
    if (k < 0 || k >= kMaxSlots) BAD("sequence %d: penalty slot %d is not -1 or in [0, %d)", s, k, kMaxSlots);
    used.push_back(k);
    const int32_t keep = b->penalty_slot_keep[s];
    const int64_t held = k < (int32_t)slots_.size() ? (int64_t)slots_[k].ids.size() : 0;
    if (keep < 0 || keep > held)
      BAD("sequence %d: penalty_slot_keep = %d, slot %d holds %lld ids", s, keep, k, (long long)held);
    const int64_t prompt_kept = k < (int32_t)slots_.size() ? std::min<int64_t>(slots_[k].prompt_n, keep) : 0;
    if (new_prompt_ids(b, s) > 0 && prompt_kept < keep)
      BAD("sequence %d: prompt ids appended to slot %d after its output ids", s, k);
  }
  std::sort(used.begin(), used.end());
  for (size_t i = 1; i < used.size(); i++)
    if (used[i] == used[i - 1]) BAD("two sequences of the batch use penalty slot %d", used[i]);
}

void PenaltySlots::apply(const fg_batch *b) {
  if (!b->penalty_slots) return;
  for (int32_t s = 0; s < b->num_seqs; s++) {
    const int32_t k = b->penalty_slots[s];
    if (k < 0) continue;
    if (k >= (int32_t)slots_.size()) slots_.resize(k + 1);
    Slot &slot = slots_[k];
    const int32_t keep = b->penalty_slot_keep[s];
    slot.ids.resize(keep);
    if (keep == 0) slot.ids.shrink_to_fit();  // a slot handed on lets its old list go
    slot.prompt_n = std::min<int64_t>(slot.prompt_n, keep) + new_prompt_ids(b, s);
    if (b->penalty_indptr)
      slot.ids.insert(slot.ids.end(), b->penalty_ids + b->penalty_indptr[s], b->penalty_ids + b->penalty_indptr[s + 1]);
  }
}

PenaltyList PenaltySlots::list(const fg_batch *b, int32_t s) const {
  PenaltyList l;
  const int32_t k = b->penalty_slots ? b->penalty_slots[s] : -1;
  if (k >= 0) {
    const Slot &slot = slots_[k];
    l.ids = slot.ids.data(), l.n = (int64_t)slot.ids.size(), l.prompt_n = slot.prompt_n;
    return l;
  }
  if (!b->penalty_indptr) return l;
  l.ids = b->penalty_ids + b->penalty_indptr[s];
  l.n = b->penalty_indptr[s + 1] - b->penalty_indptr[s];
  l.prompt_n = b->penalty_prompt_lens ? std::min<int64_t>(std::max(0, b->penalty_prompt_lens[s]), l.n) : 0;
  return l;
}

void PenaltySlots::flatten(const fg_batch *b, std::vector<int32_t> &indptr, std::vector<int32_t> &ids,
                           std::vector<int32_t> &prompt_lens) const {
  const int32_t S = b->num_seqs;
  indptr.assign(S + 1, 0);
  prompt_lens.assign(S, 0);
  ids.clear();
  for (int32_t s = 0; s < S; s++) {
    const PenaltyList l = list(b, s);
    ids.insert(ids.end(), l.ids, l.ids + l.n);
    indptr[s + 1] = (int32_t)ids.size();
    prompt_lens[s] = (int32_t)l.prompt_n;
  }
}

}  // namespace fg
