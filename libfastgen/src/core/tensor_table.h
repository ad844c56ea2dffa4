// Expands the tensor table (core/tensor_kinds.h) for one spec.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/spec.h"
#include "core/tensor_kinds.h"

namespace fg {

// One tensor a spec needs: its canonical name, kind, layer and expert (-1 when not in one), shape.
struct TensorEntry {
  std::string name;
  fg_tensor_kind kind;
  int32_t layer = -1, expert = -1;
  std::vector<int64_t> shape;
};

// Every tensor `s` needs, in table order: HEAD kinds, then per layer its LAYER kinds followed by
// each expert's EXPERT kinds (MoE layers only), then TAIL kinds.
std::vector<TensorEntry> tensor_table(const ModelSpec &s);

}  // namespace fg
