// Token bans (min_tokens): sets the logits of each sampled row's banned ids to -inf before the
// sampler reads them. Penalties, temperature and the masks keep -inf, so a banned id is never
// drawn and its logprob is -inf, as on the CPU (cpu/sampler.cc applies the same step first).
#include <math.h>

#include "cuda_check.h"
#include "token_bans.h"

namespace spindle::cuda {

// One block per row; a row bans a handful of ids (the stop and EOS ids), so one pass of the
// block's threads over them is enough.
__global__ void apply_token_bans_kernel(float* logits /* [num_seqs, row_stride] */, int64_t row_stride,
                                        const int32_t* is_sampled /* [num_seqs] */,
                                        const int32_t* banned_offsets /* [num_seqs + 1] */,
                                        const int32_t* banned_tokens /* [banned_offsets[num_seqs]] */) {
  const int s = blockIdx.x;
  if (!is_sampled[s]) return;
  const int32_t begin = banned_offsets[s], end = banned_offsets[s + 1];
  float* row = logits + static_cast<int64_t>(s) * row_stride;
  for (int32_t i = begin + static_cast<int32_t>(threadIdx.x); i < end; i += blockDim.x) row[banned_tokens[i]] = -INFINITY;
}

void ApplyTokenBans(float* logits, int64_t row_stride, const int32_t* is_sampled, const int32_t* banned_offsets,
                    const int32_t* banned_tokens, int num_seqs, cudaStream_t stream) {
  if (num_seqs == 0) return;
  apply_token_bans_kernel<<<num_seqs, 32, 0, stream>>>(logits, row_stride, is_sampled, banned_offsets, banned_tokens);
  CUDA_CHECK_LAUNCH("apply_token_bans_kernel");
}

}  // namespace spindle::cuda
