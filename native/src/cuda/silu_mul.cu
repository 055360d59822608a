// SiLU(gate) * up over the fused gate|up projection (HF: act_fn(gate_proj(x)) * up_proj(x)).
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

// Rows stride by gridDim.y, which is capped at 65535 (the grid's y limit).
template <typename T>
__global__ void silu_mul_kernel(const T* gate_up /* [rows, 2 * inter] */, T* out /* [rows, inter] */, int rows,
                                int inter) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= inter) return;
  for (size_t row = blockIdx.y; row < static_cast<size_t>(rows); row += gridDim.y) {
    const float g = ToFloat(gate_up[row * 2 * inter + i]);
    const float u = ToFloat(gate_up[row * 2 * inter + inter + i]);
    // The framework rounds silu(g) to T before the product.
    const float silu = RoundTo<T>(g / (1.f + expf(-g)));
    out[row * inter + i] = FromFloat<T>(silu * u);
  }
}

template <typename T>
void SiluMul(const T* gate_up, T* out, int rows, int inter, cudaStream_t stream) {
  if (rows == 0) return;
  dim3 grid((inter + 255) / 256, rows < 65535 ? rows : 65535);
  silu_mul_kernel<T><<<grid, 256, 0, stream>>>(gate_up, out, rows, inter);
  CUDA_CHECK_LAUNCH("silu_mul_kernel");
}

template void SiluMul<float>(const float*, float*, int, int, cudaStream_t);
template void SiluMul<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, int, int, cudaStream_t);

}  // namespace spindle::cuda
