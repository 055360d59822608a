// The executor's options after executor.cc has read them from the JS object
// (NativeExecutorOptions in src/engine/native.ts). Plain data: backends read it on load.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace spindle {

enum class DType { kF32, kBF16, kF16 };

struct ModelConfig {
  enum class Family { kLlama, kQwen2, kQwen3 } family = Family::kLlama;
  int32_t hidden_size = 0, intermediate_size = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0;
  int32_t head_dim = 0, vocab_size = 0, max_position_embeddings = 0;
  float rms_norm_eps = 1e-5f, rope_theta = 10000.f;
  bool has_llama3_rope_scaling = false;
  float rope_factor = 1.f, rope_low_freq_factor = 1.f, rope_high_freq_factor = 4.f;
  int32_t rope_original_max_position_embeddings = 8192;
  bool tie_word_embeddings = false, attention_bias = false, qk_norm = false;
};

// One tensor located in a safetensors file (validated by src/engine/weights.ts).
struct TensorSource {
  std::string name, file;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t byte_offset = 0, byte_length = 0;
};

struct ExecutorConfig {
  std::string device = "cpu";  // "cpu" | "cuda"
  DType dtype = DType::kF32;   // float32 | bfloat16 (weights and KV cache)
  ModelConfig model;
  bool dummy_weights = false;
  uint64_t dummy_seed = 0;
  std::vector<TensorSource> tensors;  // when !dummy_weights
  int32_t block_size = 16, num_blocks = 0;
  float gpu_memory_utilization = 0.9f;
  int32_t max_num_seqs = 256, max_num_batched_tokens = 8192;
  int32_t num_threads = 0;  // 0 = all cores
  bool enforce_eager = false;  // CUDA: no graphs, every kernel launched one by one
};

}  // namespace spindle
