// Gathers the hidden state of each sequence's last token: only those rows reach the LM head.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

template <typename T>
__global__ void gather_last_token_rows_kernel(const T* in /* [num_tokens, hidden] */,
                                              const int32_t* query_start_loc /* [num_seqs + 1] */,
                                              T* out /* [num_seqs, hidden] */, int hidden) {
  const int s = blockIdx.x;
  const size_t src_row = query_start_loc[s + 1] - 1;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[static_cast<size_t>(s) * hidden + i] = in[src_row * hidden + i];
}

template <typename T>
void GatherLastTokenRows(const T* in, const int32_t* query_start_loc, T* out, int num_seqs, int hidden,
                         cudaStream_t stream) {
  if (num_seqs == 0) return;
  gather_last_token_rows_kernel<T><<<num_seqs, 256, 0, stream>>>(in, query_start_loc, out, hidden);
  CUDA_CHECK_LAUNCH("gather_last_token_rows_kernel");
}

template void GatherLastTokenRows<float>(const float*, const int32_t*, float*, int, int, cudaStream_t);
template void GatherLastTokenRows<__nv_bfloat16>(const __nv_bfloat16*, const int32_t*, __nv_bfloat16*, int, int,
                                                 cudaStream_t);

}  // namespace spindle::cuda
