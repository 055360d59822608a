// Weights on the device: raw safetensors data converted to the compute dtype, or dummy
// weights generated in place from a seeded hash (vLLM's --load-format dummy).
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"
#include "weights.h"

namespace spindle::cuda {

template <typename T>
__global__ void convert_to_dtype_kernel(const void* src, int src_dtype, T* dst /* [count] */, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float v;
    if (src_dtype == 0) v = static_cast<const float*>(src)[i];
    else if (src_dtype == 1) v = ToFloat(static_cast<const __nv_bfloat16*>(src)[i]);
    else v = ToFloat(static_cast<const __half*>(src)[i]);
    dst[i] = FromFloat<T>(v);
  }
}

// The same values as the CPU backend's FillDummy (weights.h's DummyValue), made on the device.
template <typename T>
__global__ void fill_dummy_kernel(T* dst /* [count] */, size_t count, uint64_t tensor_key, float center, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] = FromFloat<T>(DummyValue(tensor_key, i, center, scale));
}

static int GridFor(size_t count) {
  const size_t blocks = (count + 255) / 256;
  return static_cast<int>(blocks < 65536 ? (blocks == 0 ? 1 : blocks) : 65536);
}

template <typename T>
void ConvertToDtype(const void* src, int src_dtype, T* dst, size_t count, cudaStream_t stream) {
  convert_to_dtype_kernel<T><<<GridFor(count), 256, 0, stream>>>(src, src_dtype, dst, count);
  CUDA_CHECK_LAUNCH("convert_to_dtype_kernel");
}

template <typename T>
void FillDummyOnDevice(T* dst, size_t count, uint64_t tensor_key, float center, float scale, cudaStream_t stream) {
  fill_dummy_kernel<T><<<GridFor(count), 256, 0, stream>>>(dst, count, tensor_key, center, scale);
  CUDA_CHECK_LAUNCH("fill_dummy_kernel");
}

template void ConvertToDtype<float>(const void*, int, float*, size_t, cudaStream_t);
template void ConvertToDtype<__nv_bfloat16>(const void*, int, __nv_bfloat16*, size_t, cudaStream_t);
template void FillDummyOnDevice<float>(float*, size_t, uint64_t, float, float, cudaStream_t);
template void FillDummyOnDevice<__nv_bfloat16>(__nv_bfloat16*, size_t, uint64_t, float, float, cudaStream_t);

}  // namespace spindle::cuda
