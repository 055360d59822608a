// backend.h's CUDA entry points: device discovery and backend creation.
#include <cuda_runtime.h>

#include "backend.h"
#include "cuda_backend.h"

namespace spindle {

int CudaDeviceCount(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (reason) *reason = std::string("CUDA unavailable: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  if (count == 0 && reason) *reason = "CUDA unavailable: no CUDA device found";
  return count;
}

std::unique_ptr<Backend> CreateCudaBackend(const ExecutorConfig& config) { return cuda::CreateBackend(config); }

}  // namespace spindle
