// Launcher of logit_adjust.cu: the per-row logit adjustments of a step batch (logit_bias values
// and min_tokens bans), applied to the logits the sampler reads. Semantics: sampling_math.h,
// step 0.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace spindle::cuda {

// For every i in [adjust_offsets[s], adjust_offsets[s + 1]) of each sampled row s
// (is_sampled[s] != 0): logit = AdjustLogit(logit, adjust_values[i]) at
// logits[s * row_stride + adjust_tokens[i]], i.e. + the bias, or -inf for a ban.
// Every pointer is device memory; the executor checked the ids against the vocabulary and that
// no id occurs twice in a row (the entries of a row run in parallel).
void ApplyLogitAdjusts(float* logits /* [num_seqs, row_stride] */, int64_t row_stride,
                       const int32_t* is_sampled /* [num_seqs] */, const int32_t* adjust_offsets /* [num_seqs + 1] */,
                       const int32_t* adjust_tokens /* [adjust_offsets[num_seqs]] */,
                       const float* adjust_values /* [adjust_offsets[num_seqs]] */, int num_seqs,
                       cudaStream_t stream);

}  // namespace spindle::cuda
