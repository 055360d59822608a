#include "gpu_weights.h"

#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "weights.h"

namespace spindle::cuda {
namespace {

constexpr size_t kAlignBytes = 256;

// Where one Hugging Face tensor lands: its destination matrix and the element offset in it.
struct Placement {
  size_t offset_elems;  // from the start of storage
  size_t numel;
};

int SourceDtypeCode(DType d) { return d == DType::kF32 ? 0 : d == DType::kBF16 ? 1 : 2; }

}  // namespace

template <typename T>
GpuWeights<T>::GpuWeights(const ExecutorConfig& config, cudaStream_t stream) {
  const ModelConfig& m = config.model;
  const size_t hidden = m.hidden_size, hd = m.head_dim, inter = m.intermediate_size, vocab = m.vocab_size;
  const size_t q_rows = m.num_heads * hd, kv_rows = m.num_kv_heads * hd;
  const size_t qkv_rows = q_rows + 2 * kv_rows;

  // Lay out every destination, aligned, and remember where each HF tensor goes.
  size_t cursor = 0;  // in elements
  auto reserve = [&](size_t numel) {
    const size_t align = kAlignBytes / sizeof(T);
    cursor = (cursor + align - 1) / align * align;
    const size_t at = cursor;
    cursor += numel;
    return at;
  };
  std::map<std::string, Placement> where;
  std::map<std::string, size_t> offsets;  // destination -> element offset, to set pointers after allocation
  offsets["embed"] = reserve(vocab * hidden);
  where["model.embed_tokens.weight"] = {offsets["embed"], vocab * hidden};
  if (!m.tie_word_embeddings) {
    offsets["lm_head"] = reserve(vocab * hidden);
    where["lm_head.weight"] = {offsets["lm_head"], vocab * hidden};
  }
  offsets["final_norm"] = reserve(hidden);
  where["model.norm.weight"] = {offsets["final_norm"], hidden};
  std::vector<std::map<std::string, size_t>> layer_offsets(m.num_layers);
  for (int i = 0; i < m.num_layers; ++i) {
    auto& lo = layer_offsets[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    lo["input_norm"] = reserve(hidden);
    where[p + "input_layernorm.weight"] = {lo["input_norm"], hidden};
    lo["qkv"] = reserve(qkv_rows * hidden);
    where[p + "self_attn.q_proj.weight"] = {lo["qkv"], q_rows * hidden};
    where[p + "self_attn.k_proj.weight"] = {lo["qkv"] + q_rows * hidden, kv_rows * hidden};
    where[p + "self_attn.v_proj.weight"] = {lo["qkv"] + (q_rows + kv_rows) * hidden, kv_rows * hidden};
    if (m.attention_bias) {
      lo["qkv_bias"] = reserve(qkv_rows);
      where[p + "self_attn.q_proj.bias"] = {lo["qkv_bias"], q_rows};
      where[p + "self_attn.k_proj.bias"] = {lo["qkv_bias"] + q_rows, kv_rows};
      where[p + "self_attn.v_proj.bias"] = {lo["qkv_bias"] + q_rows + kv_rows, kv_rows};
    }
    if (m.qk_norm) {
      lo["q_norm"] = reserve(hd);
      lo["k_norm"] = reserve(hd);
      where[p + "self_attn.q_norm.weight"] = {lo["q_norm"], hd};
      where[p + "self_attn.k_norm.weight"] = {lo["k_norm"], hd};
    }
    lo["o_proj"] = reserve(hidden * q_rows);
    where[p + "self_attn.o_proj.weight"] = {lo["o_proj"], hidden * q_rows};
    lo["post_norm"] = reserve(hidden);
    where[p + "post_attention_layernorm.weight"] = {lo["post_norm"], hidden};
    lo["gate_up"] = reserve(2 * inter * hidden);
    where[p + "mlp.gate_proj.weight"] = {lo["gate_up"], inter * hidden};
    where[p + "mlp.up_proj.weight"] = {lo["gate_up"] + inter * hidden, inter * hidden};
    lo["down"] = reserve(hidden * inter);
    where[p + "mlp.down_proj.weight"] = {lo["down"], hidden * inter};
  }
  storage_.Grow(cursor * sizeof(T));
  T* base = storage_.get<T>();
  embed = base + offsets["embed"];
  lm_head = m.tie_word_embeddings ? embed : base + offsets["lm_head"];
  final_norm = base + offsets["final_norm"];
  layers.resize(m.num_layers);
  for (int i = 0; i < m.num_layers; ++i) {
    auto& lo = layer_offsets[i];
    GpuLayerWeights<T>& L = layers[i];
    L.input_norm = base + lo["input_norm"];
    L.qkv = base + lo["qkv"];
    L.qkv_bias = m.attention_bias ? base + lo["qkv_bias"] : nullptr;
    L.q_norm = m.qk_norm ? base + lo["q_norm"] : nullptr;
    L.k_norm = m.qk_norm ? base + lo["k_norm"] : nullptr;
    L.o_proj = base + lo["o_proj"];
    L.post_norm = base + lo["post_norm"];
    L.gate_up = base + lo["gate_up"];
    L.down = base + lo["down"];
  }

  const std::vector<TensorSpec> specs = ModelTensorSpecs(m);
  if (config.dummy_weights) {
    for (const TensorSpec& spec : specs) {
      auto it = where.find(spec.name);
      if (it == where.end()) throw std::runtime_error("cuda weights: no place for " + spec.name);
      const DummyRange r = DummyRangeFor(spec);
      FillDummyOnDevice<T>(base + it->second.offset_elems, it->second.numel, DummyTensorKey(config.dummy_seed, spec.name),
                           r.center, r.scale, stream);
    }
  } else {
    WeightFiles files(config.tensors);
    DeviceBuffer raw;  // the largest tensor's bytes as they lie in the file
    for (const TensorSpec& spec : specs) {
      auto it = where.find(spec.name);
      if (it == where.end()) throw std::runtime_error("cuda weights: no place for " + spec.name);
      const HostTensor* t = files.Find(spec.name);
      if (!t) throw std::runtime_error("cuda weights: tensor " + spec.name + " missing from the checkpoint");
      CheckTensorShape(*t, spec);
      if (static_cast<size_t>(t->numel()) != it->second.numel)
        throw std::runtime_error("cuda weights: size mismatch for " + spec.name);
      CUDA_CHECK(cudaStreamSynchronize(stream));  // `raw` may be reused or grown
      raw.Grow(t->bytes);
      // On `stream`, so the conversion below is ordered after it: a plain cudaMemcpy from
      // pageable memory may return before its DMA lands, and `stream` does not wait for it.
      CUDA_CHECK(cudaMemcpyAsync(raw.get(), t->data, t->bytes, cudaMemcpyHostToDevice, stream));
      ConvertToDtype<T>(raw.get(), SourceDtypeCode(t->dtype), base + it->second.offset_elems, it->second.numel, stream);
    }
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

template class GpuWeights<float>;
template class GpuWeights<__nv_bfloat16>;

}  // namespace spindle::cuda
