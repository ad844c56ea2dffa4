#include "cpu/embed.h"

#include <cstring>

namespace fg {
namespace cpu {

void embed_rows(const float *table, const int32_t *ids, int64_t T, int64_t D, float scale, float *rows) {
  for (int64_t t = 0; t < T; t++) memcpy(rows + t * D, table + (int64_t)ids[t] * D, D * sizeof(float));
  if (scale != 1)
    for (int64_t i = 0; i < T * D; i++) rows[i] *= scale;
}

void add_positions(const float *pos_embed, const int32_t *positions, int64_t T, int64_t H, float *h) {
  for (int64_t t = 0; t < T; t++) {
    const float *p = pos_embed + (int64_t)positions[t] * H;
    for (int64_t i = 0; i < H; i++) h[t * H + i] += p[i];
  }
}

}  // namespace cpu
}  // namespace fg
