#include "sample_step.h"

#include "kernels.h"

namespace spindle::cuda {

// Weak references: null when sampler.cu is not (yet) part of the build.
void SampleBatch(const SamplerArgs& args, cudaStream_t stream) __attribute__((weak));
size_t SamplerWorkspaceBytes(int32_t max_rows, int32_t vocab_size) __attribute__((weak));

bool HasBatchedSampler() { return SampleBatch != nullptr && SamplerWorkspaceBytes != nullptr; }

size_t SampleStepWorkspaceBytes(int32_t max_rows, int32_t vocab_size) {
  return HasBatchedSampler() ? SamplerWorkspaceBytes(max_rows, vocab_size) : 0;
}

void SampleStep(const SamplerArgs& a, cudaStream_t stream) {
  if (HasBatchedSampler()) {
    SampleBatch(a, stream);
    return;
  }
  GreedySamplePlaceholder(a.logits, a.logits_row_stride, a.is_sampled, a.num_logprobs, a.num_rows, a.vocab_size,
                          a.max_top_logprobs, a.sampled_token_ids, a.sampled_logprobs, a.top_token_ids,
                          a.top_logprobs, stream);
}

}  // namespace spindle::cuda
