// Model weights on the host: safetensors files mapped read-only (never read into the JS heap),
// the list of tensors each model family needs with their shapes, dtype conversion to F32,
// and the deterministic generator behind dummy weights (vLLM's --load-format dummy).
// Used by the CPU backend and the CUDA backend (which uploads from the host pointers).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "executor_config.h"
#include "sampling_math.h"

namespace spindle {

size_t DTypeSize(DType dtype);
const char* DTypeName(DType dtype);

// One read-only file mapping, shared by every tensor of that file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws std::runtime_error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// A tensor as it lies in its mapped file (or in memory owned elsewhere).
struct HostTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // host pointer into the mapping; valid while its WeightFiles lives
  uint64_t bytes = 0;
  int64_t numel() const;
};

// Maps each file once and locates every requested tensor in it. Checks that each tensor lies
// within its file (a truncated file throws, naming file and tensor) and that its byte length
// equals numel * dtype size.
class WeightFiles {
 public:
  explicit WeightFiles(const std::vector<TensorSource>& sources);
  // nullptr when absent.
  const HostTensor* Find(const std::string& name) const;
  const std::map<std::string, HostTensor>& tensors() const { return tensors_; }

 private:
  std::map<std::string, std::shared_ptr<MappedFile>> files_;
  std::map<std::string, HostTensor> tensors_;
};

// A tensor the model needs, with its Hugging Face name and shape ([out, in] for Linear).
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor `model` needs, in a stable order: embed_tokens; per layer input_layernorm,
// q/k/v_proj (+ bias when attention_bias), q_norm/k_norm (when qk_norm), o_proj,
// post_attention_layernorm, gate/up/down_proj; norm; lm_head unless tie_word_embeddings.
std::vector<TensorSpec> ModelTensorSpecs(const ModelConfig& model);

// Throws std::runtime_error naming the tensor when `tensor`'s shape differs from `spec`'s.
void CheckTensorShape(const HostTensor& tensor, const TensorSpec& spec);

// IEEE half and bfloat16 to float (exact: every value is representable).
float Bf16ToF32(uint16_t bits);
float F16ToF32(uint16_t bits);
// Converts `tensor` (F32, BF16 or F16) into `out` [numel].
void ConvertToF32(const HostTensor& tensor, float* out);

// ---- dummy weights ----
// Value i of a dummy tensor = center + scale * u, u uniform in [-1, 1) from a hash of
// (seed, name, i): deterministic for a seed, independent of load order and backend.
// RMSNorm weights are near 1 (center 1, scale 0.1); biases small (scale 0.1); matrices
// use scale 1/sqrt(in_features) so activations stay O(1) through the layers.
struct DummyRange {
  float center = 0.f, scale = 0.f;
};
DummyRange DummyRangeFor(const TensorSpec& spec);
// FNV-1a of the tensor name, mixed with the seed: one key per (seed, tensor).
uint64_t DummyTensorKey(uint64_t seed, const std::string& name);

SPINDLE_HD inline float DummyValue(uint64_t tensor_key, uint64_t index, float center, float scale) {
  const uint32_t bits = static_cast<uint32_t>(RngHash(tensor_key, index) >> 40);  // 24 bits
  const float u = static_cast<float>(bits) * (2.f / 16777216.f) - 1.f;           // [-1, 1)
  return center + scale * u;
}

// Fills `out` [numel] with the dummy values of `spec`.
void FillDummy(uint64_t seed, const TensorSpec& spec, float* out);

}  // namespace spindle
