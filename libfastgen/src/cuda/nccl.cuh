// NCCL for tensor parallelism, opened at run time (dlopen "libnccl.so.2"): the build machine has
// no nccl.h, so the few types, enum values and prototypes used are restated here from nccl.h
// (values stable across NCCL 2.x). tp.cu is the only user.
#pragma once
#include <cuda_runtime.h>
#include <stddef.h>

namespace fgcu {

typedef struct ncclComm *ncclComm_t;
typedef int ncclResult_t;  // 0 = ncclSuccess
enum { kNcclFloat32 = 7, kNcclSum = 0 };

struct Nccl {
  void *lib = nullptr;
  ncclResult_t (*comm_init_all)(ncclComm_t *comms, int ndev, const int *devlist) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  ncclResult_t (*comm_abort)(ncclComm_t) = nullptr;
  ncclResult_t (*all_reduce)(const void *send, void *recv, size_t count, int dtype, int op,
                             ncclComm_t comm, cudaStream_t stream) = nullptr;
  ncclResult_t (*all_gather)(const void *send, void *recv, size_t send_count, int dtype,
                             ncclComm_t comm, cudaStream_t stream) = nullptr;
  const char *(*error_string)(ncclResult_t) = nullptr;
  int (*get_version)(int *) = nullptr;
};

// Opens libnccl.so.2 once per process; FG_ERR_UNSUPPORTED with a message when it is missing.
int nccl_open(Nccl **out, char *err);

}  // namespace fgcu
