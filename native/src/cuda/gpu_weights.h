// The model's weights on the device in the compute dtype T (float or __nv_bfloat16), in one
// allocation. q/k/v projections are stacked into one matrix (one GEMM), as are gate/up.
#pragma once
#include <cuda_runtime.h>

#include <vector>

#include "device_buffer.h"
#include "executor_config.h"

namespace spindle::cuda {

template <typename T>
struct GpuLayerWeights {
  T* input_norm = nullptr;  // [hidden]
  T* qkv = nullptr;         // [(nh + 2 nkv) * hd, hidden]: q_proj rows, then k_proj, then v_proj
  T* qkv_bias = nullptr;    // [(nh + 2 nkv) * hd] or null (Qwen2 only)
  T* q_norm = nullptr;      // [hd] or null (Qwen3 only)
  T* k_norm = nullptr;      // [hd] or null
  T* o_proj = nullptr;      // [hidden, nh * hd]
  T* post_norm = nullptr;   // [hidden]
  T* gate_up = nullptr;     // [2 * inter, hidden]: gate_proj rows, then up_proj
  T* down = nullptr;        // [hidden, inter]
};

template <typename T>
class GpuWeights {
 public:
  // Uploads config.tensors (F32/BF16/F16, converted on the device) or generates dummy weights
  // with the CPU backend's values. Synchronous; throws naming a missing or misshapen tensor.
  GpuWeights(const ExecutorConfig& config, cudaStream_t stream);

  T* embed = nullptr;       // [vocab, hidden]
  T* lm_head = nullptr;     // [vocab, hidden] (== embed when tied)
  T* final_norm = nullptr;  // [hidden]
  std::vector<GpuLayerWeights<T>> layers;
  size_t bytes() const { return storage_.bytes(); }

 private:
  DeviceBuffer storage_;
};

}  // namespace spindle::cuda
