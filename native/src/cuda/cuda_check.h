// Error checks for every CUDA runtime call and kernel launch in the CUDA backend: a failure
// throws std::runtime_error naming the call and the file:line, so the JS promise rejects with it.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace spindle::cuda {

inline void ThrowCudaError(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error at ") + file + ":" + std::to_string(line) + " (" + what +
                           "): " + cudaGetErrorString(err));
}

}  // namespace spindle::cuda

#define CUDA_CHECK(call)                                                              \
  do {                                                                                \
    cudaError_t err_ = (call);                                                        \
    if (err_ != cudaSuccess) ::spindle::cuda::ThrowCudaError(err_, #call, __FILE__, __LINE__); \
  } while (0)

// After each <<<>>> launch: catches bad launch configurations at once (async faults surface
// at the step's final synchronisation, which is also checked).
#define CUDA_CHECK_LAUNCH(name)                                                       \
  do {                                                                                \
    cudaError_t err_ = cudaGetLastError();                                            \
    if (err_ != cudaSuccess) ::spindle::cuda::ThrowCudaError(err_, name, __FILE__, __LINE__); \
  } while (0)
