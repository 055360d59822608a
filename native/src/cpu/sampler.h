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

// The plain full-vocabulary sampler that SampleBatch must match draw for draw
// (cpu/sampler_reference.cc): same arguments and outputs; logprobs agree within 1e-6.
void SampleBatchReference(ThreadPool& pool, const StepBatch& batch, const float* logits, const int32_t* row_of_seq,
                          int32_t vocab_size, const StepResult& result);

// Row s of the reference, with its own scratch: SampleBatch's path for rows it cannot bound.
// Writes only row s's entries (top-N slots past its count are left as they are).
void SampleRowReference(const StepBatch& batch, int32_t s, const float* logits_row, int32_t vocab_size,
                        const StepResult& result);

// Test-only: how many rows SampleBatch has handed to SampleRowReference in this process (NaN or
// +inf logits, only -inf ones, or a top_p cut-off too close to call).
int64_t SamplerRowsToReference();

// Test-only checks of the facts SampleBatch's shortcuts rest on (test/native/sampler-fast.test.ts):
struct SamplerBoundCheck {
  int64_t violations = 0;  // bits values whose GumbelNoiseFromBits exceeds the bound used for them
  double min_slack = 0;    // smallest bound - noise seen
  int64_t mix_mismatches = 0;  // x (over the same range, spread) with Mix64Top31(x) != Mix64(x) >> 33
};
// Over bits values [first_bits, first_bits + count) (count <= 2^32 - first_bits).
SamplerBoundCheck CheckSamplerNoiseBounds(uint64_t first_bits, uint64_t count);
// Largest |fast exp(x) / std::exp(x) - 1| (scalar, SSE2 and, where the CPU has it, AVX2) over `count` points evenly spread in [lo, hi] (hi <= 0,
// exp(lo) normal).
double MaxSamplerExpError(double lo, double hi, int64_t count);

}  // namespace cpu
}  // namespace spindle
