// cuBLAS loaded at run time with dlopen (libcublas.so.13, then .12): the build machines have
// no cuBLAS headers or libraries, so the few prototypes and enum values used are declared
// here, with the values of cuBLAS's own cublas_api.h / library_types.h.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace spindle::cuda {

using cublasHandle_t = struct cublasContext*;
enum cublasStatus_t : int { CUBLAS_STATUS_SUCCESS = 0 };
enum cublasOperation_t : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasMath_t : int { CUBLAS_DEFAULT_MATH = 0, CUBLAS_PEDANTIC_MATH = 2 };
enum cublasComputeType_t : int { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_PEDANTIC = 69 };
enum cublasGemmAlgo_t : int { CUBLAS_GEMM_DEFAULT = -1 };
// library_types.h cudaDataType values.
enum CublasDataType : int { kCudaR32F = 0, kCudaR16F = 2, kCudaR16BF = 14 };

// The loaded entry points. Load() fills them or throws with the dlopen error.
struct CublasApi {
  cublasStatus_t (*Create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*Destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*SetStream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*SetWorkspace)(cublasHandle_t, void*, size_t) = nullptr;
  cublasStatus_t (*SetMathMode)(cublasHandle_t, cublasMath_t) = nullptr;
  // (handle, opA, opB, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, compute, algo)
  cublasStatus_t (*GemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                           const void*, int, int, const void*, int, int, const void*, void*, int, int,
                           cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  std::string library;  // which file was loaded, for logs
};

// Loads cuBLAS once per process (thread-safe); throws std::runtime_error naming the tried files.
const CublasApi& LoadCublas();

void CublasCheck(cublasStatus_t status, const char* what);

}  // namespace spindle::cuda
