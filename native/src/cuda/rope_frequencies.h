// RoPE inverse frequencies, computed on the host in float32 in the order Hugging Face
// transformers computes them (default and llama3 rope types), so angles match its own.
#pragma once
#include <vector>

#include "executor_config.h"

namespace spindle::cuda {

// [head_dim / 2]
std::vector<float> RopeInverseFrequencies(const ModelConfig& model);

}  // namespace spindle::cuda
