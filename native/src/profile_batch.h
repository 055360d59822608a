// The packed batch of the KV-sizing profile step: one sequence of `num_tokens` prompt tokens
// in blocks 0.. of a cache just large enough, greedy, no penalties (layout: batch_layout.h).
// Used by the CUDA backend to size its KV cache; packProfileBatchForTest (addon.cc) lets the
// CPU tests check it against the TypeScript layout, as no GPU runs in CI.
#pragma once
#include <cstdint>
#include <vector>

namespace spindle {

std::vector<int32_t> PackProfileBatch(int num_tokens, int block_size, int vocab_size);

}  // namespace spindle
