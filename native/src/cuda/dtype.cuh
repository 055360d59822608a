// Element conversions shared by the kernels: storage type T is float (dtype float32) or
// __nv_bfloat16 (dtype bfloat16); all arithmetic is fp32.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace spindle::cuda {

template <typename T> __device__ __forceinline__ float ToFloat(T x);
template <> __device__ __forceinline__ float ToFloat<float>(float x) { return x; }
template <> __device__ __forceinline__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float ToFloat<__half>(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T FromFloat(float x);
template <> __device__ __forceinline__ float FromFloat<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Rounds x through T and back: mirrors a framework that stores an intermediate in T.
template <typename T> __device__ __forceinline__ float RoundTo(float x) { return ToFloat<T>(FromFloat<T>(x)); }

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace spindle::cuda
