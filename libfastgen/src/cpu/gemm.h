// Multithreaded fp32 GEMM with a PyTorch Linear's weight layout.
#pragma once
#include <cstdint>

namespace fg {
namespace cpu {

// y: [M, N] = x: [M, K] · w^T (w: [N, K], row-major like nn.Linear.weight) + bias: [N] (or null).
// accumulate: add to y's current contents (residual connections) instead of overwriting.
// Every y[m, n] is summed in the same order whatever M is, so a row's result does not depend
// on the other rows in the batch (bitwise batch invariance).
void gemm(const float *x, const float *w, const float *bias, float *y, int64_t M, int64_t N,
          int64_t K, bool accumulate = false);

}  // namespace cpu
}  // namespace fg
