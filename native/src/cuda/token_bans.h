// Launcher of token_bans.cu: the per-row token bans of a step batch (min_tokens), applied to
// the logits the sampler reads. Semantics: sampling_math.h, step 0.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace spindle::cuda {

// logits[s * row_stride + banned_tokens[i]] = -inf for every i in
// [banned_offsets[s], banned_offsets[s + 1]) of each sampled row s (is_sampled[s] != 0).
// Every pointer is device memory; the ids were checked against the vocabulary by the executor.
void ApplyTokenBans(float* logits /* [num_seqs, row_stride] */, int64_t row_stride,
                    const int32_t* is_sampled /* [num_seqs] */, const int32_t* banned_offsets /* [num_seqs + 1] */,
                    const int32_t* banned_tokens /* [banned_offsets[num_seqs]] */, int num_seqs,
                    cudaStream_t stream);

}  // namespace spindle::cuda
