// The registry of backends: the one place that names the fg_backend values (fastgen.h).
#include "core/backend.h"

#include "core/error.h"

namespace fg {

const BackendKind &backend_kind(int32_t backend, const char *fn) {
  static const BackendKind cpu{/*host_weights=*/true, create_cpu_backend, kCpuOps};
  static const BackendKind cuda{/*host_weights=*/false, create_cuda_backend, kCudaOps};
  switch (backend) {
    case FG_BACKEND_CPU: return cpu;
    case FG_BACKEND_CUDA: return cuda;
    default: raise(FG_ERR_INVALID_ARGUMENT, "%s: unknown backend %d", fn, backend);
  }
}

}  // namespace fg
