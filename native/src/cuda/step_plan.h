// The host-side decisions of one CUDA step, kept free of CUDA so that the CPU tests can check
// them where no GPU runs (planCudaStepForTest in addon.cc, test/native/cuda-step-plan.test.ts):
// which leading rows take the decode kernel, the longest prefill query, the decode kernel's
// context split, and whether (and at which padded size) a decode-only step replays a graph.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

#include "batch_layout.h"

namespace spindle::cuda {

constexpr int kMaxDecodeSplits = 32;
constexpr int kMinSplitTokens = 256;  // = kDecodeMinPieceTokens (kernels.h; checked in cuda_backend.cu)

struct StepPlan {
  int num_decodes = 0;            // sequences [0, num_decodes) compute one token each: decode kernel
  int max_decode_len = 0;         // longest context among them
  int max_prefill_query_len = 0;  // longest query among sequences [num_decodes, num_seqs)
};

// The scheduler lists one-token rows first; only that leading run goes to the decode kernel
// (its rows are tokens 0..num_decodes-1, which the kernel assumes). A one-token row after a
// longer one stays with the prefill kernel: slower, still correct. `decode_kernel_supported`
// false (head_dim or GQA group the kernel lacks): every row goes to the prefill kernel.
// Assumes a validated batch (query_start_loc[0] = 0, increasing).
inline StepPlan PlanStep(const StepBatch& b, bool decode_kernel_supported) {
  StepPlan plan;
  if (decode_kernel_supported) {
    while (plan.num_decodes < b.num_seqs && b.query_start_loc[plan.num_decodes + 1] == plan.num_decodes + 1) ++plan.num_decodes;
  }
  for (int s = 0; s < plan.num_decodes; ++s) plan.max_decode_len = std::max(plan.max_decode_len, b.seq_lens[s]);
  for (int s = plan.num_decodes; s < b.num_seqs; ++s)
    plan.max_prefill_query_len = std::max(plan.max_prefill_query_len, b.query_start_loc[s + 1] - b.query_start_loc[s]);
  return plan;
}

// The most pieces to cut each decode context into (the kernel cuts each sequence by its own
// length, never under kMinSplitTokens a piece: kernels.h). Grids of sequences x KV heads under
// two waves of the decode kernel's 4 resident blocks per SM get enough pieces to fill them
// (flash-decoding). Larger grids are not cut: the scheduler lists decodes longest first, so
// the last wave holds the short ones (H100, 256 x 1k-4k contexts longest first: unsplit
// 85.6% of copy bandwidth, in 2 pieces 84.0%, 4 pieces 81.1%; NOTES.md).
inline int DecodeSplits(int num_seqs, int max_seq_len, int num_kv_heads, int num_sms) {
  const int blocks = std::max(1, num_seqs * num_kv_heads);
  const int two_waves = 8 * num_sms;
  if (blocks >= two_waves) return 1;
  const int by_length = (max_seq_len + kMinSplitTokens - 1) / kMinSplitTokens;
  return std::max(1, std::min({(two_waves + blocks - 1) / blocks, by_length, kMaxDecodeSplits}));
}

// Batch sizes decode graphs are captured for (vLLM's): 1, 2, 4, then every multiple of 8,
// up to max_seqs (itself included), ascending.
inline std::vector<int> DecodeGraphSizes(int max_seqs) {
  std::vector<int> sizes;
  for (int n : {1, 2, 4})
    if (n < max_seqs) sizes.push_back(n);
  for (int n = 8; n < max_seqs; n += 8) sizes.push_back(n);
  sizes.push_back(max_seqs);
  return sizes;
}

// The index in `sizes` of the smallest size that holds num_seqs (<= the largest).
inline size_t DecodeGraphIndex(const std::vector<int>& sizes, int num_seqs) {
  return std::lower_bound(sizes.begin(), sizes.end(), num_seqs) - sizes.begin();
}

// A graph replays only a step whose every sequence computes one token through the decode
// kernel (num_decodes: PlanStep's; the batch is then tokens 0..n-1), with no logits returned (tests ask for them), and
// whose block tables fit the graph inputs' row width.
inline bool IsGraphableDecodeStep(const StepBatch& b, int num_decodes, int block_size, int graph_table_width) {
  if (b.logits_mode != 0 || b.num_seqs == 0 || num_decodes != b.num_seqs || b.num_tokens != b.num_seqs) return false;
  for (int s = 0; s < b.num_seqs; ++s)
    if ((b.seq_lens[s] + block_size - 1) / block_size > graph_table_width) return false;
  return true;
}

}  // namespace spindle::cuda
