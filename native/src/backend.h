// The interface every compute backend implements (CPU: src/cpu/, CUDA: src/cuda/).
// The executor (executor.cc) owns one backend and calls Step() on a worker thread.
#pragma once
#include <memory>
#include <string>

#include "batch_layout.h"
#include "executor_config.h"

namespace spindle {

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs the forward pass of `batch` and samples every row with isSampled = 1, writing the
  // whole result (layout: batch_layout.h) into `out`, which holds
  // StepResultByteLength(batch, vocab_size) bytes of host memory. Blocking; called from a
  // worker thread, never the JS thread, one step at a time. Throws std::runtime_error.
  virtual void Step(const StepBatch& batch, void* out) = 0;
  // KV cache blocks, as sized on load.
  virtual int32_t num_blocks() const = 0;
  virtual std::string device_name() const = 0;
};

std::unique_ptr<Backend> CreateCpuBackend(const ExecutorConfig& config);

#ifdef SPINDLE_WITH_CUDA
std::unique_ptr<Backend> CreateCudaBackend(const ExecutorConfig& config);
// Number of usable CUDA devices; on 0 sets *reason to why (no driver, no device...).
int CudaDeviceCount(std::string* reason);
#endif

}  // namespace spindle
