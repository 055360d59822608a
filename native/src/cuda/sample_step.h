// Sampling of one step: the batched sampler (sampler.h's SampleBatch) when it is linked in,
// otherwise the greedy placeholder (greedy_sampler_placeholder.cu), so the backend works
// while the sampler is being written. The choice is made at link time (weak symbols).
#pragma once
#include <cuda_runtime.h>

#include "sampler.h"

namespace spindle::cuda {

// True when sampler.h's SampleBatch is linked into this build.
bool HasBatchedSampler();
size_t SampleStepWorkspaceBytes(int32_t max_rows, int32_t vocab_size);
// Same arguments and outputs as SampleBatch.
void SampleStep(const SamplerArgs& args, cudaStream_t stream);

}  // namespace spindle::cuda
