// The batched CPU sampler: penalties, temperature, logprobs, top-k/top-p/min-p, Gumbel-max
// draw (the math and its order are in sampling_math.h, shared with the CUDA sampler).
#pragma once
#include <cstdint>

#include "batch_layout.h"
#include "cpu/thread_pool.h"

namespace spindle {
namespace cpu {

// For every sequence s of `batch` with is_sampled[s] = 1, samples from logits row
// row_of_seq[s] (logits: [*, vocab_size]) and writes the sampled id, its logprob and the top-N
// into `result`; rows with is_sampled = 0 get id -1. Penalty columns are validated.
void SampleBatch(ThreadPool& pool, const StepBatch& batch, const float* logits, const int32_t* row_of_seq,
                 int32_t vocab_size, const StepResult& result);

}  // namespace cpu
}  // namespace spindle
