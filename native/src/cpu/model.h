// The CPU model: fp32 weights (mapped F32 tensors used in place, BF16/F16 converted once on
// load, or dummy values), a paged KV cache per layer, and the varlen forward pass.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "batch_layout.h"
#include "cpu/thread_pool.h"
#include "executor_config.h"
#include "weights.h"

namespace spindle {
namespace cpu {

struct LayerWeights {
  const float* input_norm = nullptr;  // [hidden]
  const float* q_proj = nullptr;      // [num_heads * head_dim, hidden]
  const float* k_proj = nullptr;      // [num_kv_heads * head_dim, hidden]
  const float* v_proj = nullptr;      // [num_kv_heads * head_dim, hidden]
  const float* q_bias = nullptr;      // [num_heads * head_dim] (Qwen2) or null
  const float* k_bias = nullptr;      // [num_kv_heads * head_dim] or null
  const float* v_bias = nullptr;      // [num_kv_heads * head_dim] or null
  const float* q_norm = nullptr;      // [head_dim] (Qwen3) or null
  const float* k_norm = nullptr;      // [head_dim] or null
  const float* o_proj = nullptr;      // [hidden, num_heads * head_dim]
  const float* post_norm = nullptr;   // [hidden]
  const float* gate_proj = nullptr;   // [intermediate, hidden]
  const float* up_proj = nullptr;     // [intermediate, hidden]
  const float* down_proj = nullptr;   // [hidden, intermediate]
};

class CpuModel {
 public:
  // Loads the weights and allocates the KV cache. Throws std::runtime_error.
  CpuModel(const ExecutorConfig& config, ThreadPool& pool);

  // Runs the forward pass over every token of `batch` (already validated: ids, positions, slots
  // and block tables in range), writing K/V into the cache, and writes the logits of the
  // tokens listed in `logit_tokens` (indices into the batch's tokens) to
  // logits [logit_tokens.size(), vocab_size].
  void Forward(const StepBatch& batch, const std::vector<int32_t>& logit_tokens, float* logits);

  int32_t num_blocks() const { return num_blocks_; }

 private:
  const float* LoadTensor(const TensorSpec& spec);
  void LoadWeights(const ExecutorConfig& config);
  void Layer(int32_t layer, const StepBatch& batch, int64_t num_tokens);

  ModelConfig model_;
  ThreadPool& pool_;
  int32_t block_size_ = 16, num_blocks_ = 0;
  std::unique_ptr<WeightFiles> files_;
  std::vector<std::vector<float>> owned_;  // converted or dummy tensors
  const float* embed_tokens_ = nullptr;    // [vocab, hidden]
  const float* final_norm_ = nullptr;      // [hidden]
  const float* lm_head_ = nullptr;         // [vocab, hidden] (= embed_tokens when tied)
  std::vector<LayerWeights> layers_;
  std::vector<double> rope_inv_freq_;      // [head_dim / 2]
  std::vector<std::vector<float>> k_cache_, v_cache_;  // per layer [num_blocks, block_size, num_kv_heads, head_dim]

  // Step scratch, resized to the step's token count.
  std::vector<float> x_;         // [num_tokens, hidden] residual stream
  std::vector<float> normed_;    // [num_tokens, hidden]
  std::vector<float> q_;         // [num_tokens, num_heads, head_dim]
  std::vector<float> k_, v_;     // [num_tokens, num_kv_heads, head_dim]
  std::vector<float> attn_;      // [num_tokens, num_heads, head_dim]
  std::vector<float> gate_, up_; // [num_tokens, intermediate]
  std::vector<float> rope_cos_, rope_sin_;  // [num_tokens, head_dim / 2]
  std::vector<int32_t> token_seq_, context_lens_;  // [num_tokens]
};

}  // namespace cpu
}  // namespace spindle
