// y = x · wᵀ through cuBLAS (row-major x [m, k], w [n, k] as Hugging Face Linear stores it,
// y [m, n]): bf16 or fp32 operands, fp32 accumulation; y in T or in fp32 (logits).
#pragma once
#include <cuda_bf16.h>

#include "cublas_loader.h"

namespace spindle::cuda {

template <typename T>
void Linear(cublasHandle_t handle, const T* x, const T* w, void* y, bool y_is_f32, int m, int n, int k) {
  if (m == 0) return;
  const CublasApi& api = LoadCublas();
  const int type = sizeof(T) == 4 ? kCudaR32F : kCudaR16BF;
  const float alpha = 1.f, beta = 0.f;
  // Column-major view: yᵀ [n, m] = w [k, n]ᵀ · xᵀ [k, m].
  CublasCheck(api.GemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, type, k, x, type, k, &beta, y,
                         y_is_f32 ? kCudaR32F : type, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx");
}

}  // namespace spindle::cuda
