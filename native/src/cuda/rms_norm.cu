// RMSNorm fused with the residual add that precedes it: one block per row, the row kept in
// registers/shared memory between the sum of squares and the scaling.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

constexpr int kNormThreads = 256;

template <typename T>
__global__ void fused_add_rms_norm_kernel(const T* delta /* [rows, hidden] or null */, T* residual /* [rows, hidden] */,
                                          const T* weight /* [hidden] */, T* out /* [rows, hidden] */, int hidden,
                                          float eps) {
  const size_t row = blockIdx.x;
  T* res = residual + row * hidden;
  const T* del = delta ? delta + row * hidden : nullptr;
  float sum_sq = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float x = ToFloat(res[i]);
    if (del) {
      // The framework adds in T: round the sum to T and keep it as the new residual.
      x = RoundTo<T>(x + ToFloat(del[i]));
      res[i] = FromFloat<T>(x);
    }
    sum_sq += x * x;
  }
  __shared__ float warp_sums[kNormThreads / 32];
  sum_sq = WarpSum(sum_sq);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = sum_sq;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) total += warp_sums[w];
  const float rstd = rsqrtf(total / hidden + eps);
  T* o = out + row * hidden;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    // Each thread re-reads only what it wrote itself: no barrier needed for res[i].
    const float normed = RoundTo<T>(ToFloat(res[i]) * rstd);
    o[i] = FromFloat<T>(normed * ToFloat(weight[i]));
  }
}

template <typename T>
void FusedAddRmsNorm(const T* delta, T* residual, const T* weight, T* out, int rows, int hidden, float eps,
                     cudaStream_t stream) {
  if (rows == 0) return;
  fused_add_rms_norm_kernel<T><<<rows, kNormThreads, 0, stream>>>(delta, residual, weight, out, hidden, eps);
  CUDA_CHECK_LAUNCH("fused_add_rms_norm_kernel");
}

template void FusedAddRmsNorm<float>(const float*, float*, const float*, float*, int, int, float, cudaStream_t);
template void FusedAddRmsNorm<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, const __nv_bfloat16*,
                                             __nv_bfloat16*, int, int, float, cudaStream_t);

}  // namespace spindle::cuda
