#include "cpu/softcap.h"

#include <cmath>

#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {

void softcap(float *x, int64_t rows, int64_t cols, float cap) {
  parallel_for(rows, [&](int64_t r) {
    float *l = x + r * cols;
    for (int64_t i = 0; i < cols; i++) l[i] = std::tanh(l[i] / cap) * cap;
  });
}

}  // namespace cpu
}  // namespace fg
