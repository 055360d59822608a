// Embedding gather: one block per token, 16-byte copies where the row allows it.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

template <typename T>
__global__ void embedding_kernel(const int32_t* ids /* [num_tokens] */, const T* table /* [vocab, hidden] */,
                                 T* out /* [num_tokens, hidden] */, int hidden, int vocab) {
  const int t = blockIdx.x;
  int id = ids[t];
  // An out-of-range id would read outside the table: clamp (the engine validates ids first).
  id = id < 0 ? 0 : (id >= vocab ? vocab - 1 : id);
  const T* src = table + static_cast<size_t>(id) * hidden;
  T* dst = out + static_cast<size_t>(t) * hidden;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = src[i];
}

template <typename T>
void EmbeddingGather(const int32_t* ids, const T* table, T* out, int num_tokens, int hidden, int vocab,
                     cudaStream_t stream) {
  if (num_tokens == 0) return;
  embedding_kernel<T><<<num_tokens, 256, 0, stream>>>(ids, table, out, hidden, vocab);
  CUDA_CHECK_LAUNCH("embedding_kernel");
}

template void EmbeddingGather<float>(const int32_t*, const float*, float*, int, int, int, cudaStream_t);
template void EmbeddingGather<__nv_bfloat16>(const int32_t*, const __nv_bfloat16*, __nv_bfloat16*, int, int, int,
                                             cudaStream_t);

}  // namespace spindle::cuda
