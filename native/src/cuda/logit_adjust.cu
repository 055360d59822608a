// Logit adjustments (logit_bias, min_tokens bans): adds each sampled row's biases to its logits
// and sets its banned ids to -inf before the sampler reads them. Penalties, temperature and the
// masks keep -inf, so a banned id is never drawn and its logprob is -inf, as on the CPU
// (cpu/sampler.cc applies the same step first, through the same AdjustLogit).
#include <math.h>

#include "cuda_check.h"
#include "logit_adjust.h"
#include "sampling_math.h"

namespace spindle::cuda {

// One block per row. A row adjusts a handful of ids (the stop and EOS ids, a request's
// logit_bias), so one pass of the block's threads over them is enough; the ids of a row are
// distinct, so no two threads touch one logit.
__global__ void apply_logit_adjusts_kernel(float* logits /* [num_seqs, row_stride] */, int64_t row_stride,
                                           const int32_t* is_sampled /* [num_seqs] */,
                                           const int32_t* adjust_offsets /* [num_seqs + 1] */,
                                           const int32_t* adjust_tokens /* [adjust_offsets[num_seqs]] */,
                                           const float* adjust_values /* [adjust_offsets[num_seqs]] */) {
  const int s = blockIdx.x;
  if (!is_sampled[s]) return;
  const int32_t begin = adjust_offsets[s], end = adjust_offsets[s + 1];
  float* row = logits + static_cast<int64_t>(s) * row_stride;
  for (int32_t i = begin + static_cast<int32_t>(threadIdx.x); i < end; i += blockDim.x) {
    float& logit = row[adjust_tokens[i]];
    logit = AdjustLogit(logit, adjust_values[i]);
  }
}

void ApplyLogitAdjusts(float* logits, int64_t row_stride, const int32_t* is_sampled, const int32_t* adjust_offsets,
                       const int32_t* adjust_tokens, const float* adjust_values, int num_seqs, cudaStream_t stream) {
  if (num_seqs == 0) return;
  apply_logit_adjusts_kernel<<<num_seqs, 32, 0, stream>>>(logits, row_stride, is_sampled, adjust_offsets, adjust_tokens,
                                                          adjust_values);
  CUDA_CHECK_LAUNCH("apply_logit_adjusts_kernel");
}

}  // namespace spindle::cuda
