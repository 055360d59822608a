#include "cpu/model.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "cpu/kernels.h"

namespace spindle {
namespace cpu {
namespace {

// Without a numBlocks, the CPU cache takes at most this much memory (vLLM's CPU default).
constexpr uint64_t kDefaultCacheBytes = 4ull << 30;

}  // namespace

CpuModel::CpuModel(const ExecutorConfig& config, ThreadPool& pool)
    : model_(config.model), pool_(pool), block_size_(config.block_size) {
  LoadWeights(config);
  rope_inv_freq_ = RopeInverseFrequencies(model_);
  const uint64_t slot_floats = uint64_t(model_.num_kv_heads) * model_.head_dim;
  const uint64_t block_floats = slot_floats * block_size_;
  num_blocks_ = config.num_blocks;
  if (num_blocks_ == 0) {
    const uint64_t bytes_per_block = 2ull * model_.num_layers * block_floats * 4;
    const uint64_t needed = uint64_t(config.max_num_seqs) *
                            ((uint64_t(model_.max_position_embeddings) + block_size_ - 1) / block_size_);
    num_blocks_ = static_cast<int32_t>(std::max<uint64_t>(1, std::min<uint64_t>({kDefaultCacheBytes / bytes_per_block, needed, 1u << 30})));
  }
  k_cache_.resize(model_.num_layers);
  v_cache_.resize(model_.num_layers);
  for (int32_t l = 0; l < model_.num_layers; ++l) {
    k_cache_[l].assign(block_floats * num_blocks_, 0.f);
    v_cache_[l].assign(block_floats * num_blocks_, 0.f);
  }
}

void CpuModel::LoadWeights(const ExecutorConfig& config) {
  const std::vector<TensorSpec> specs = ModelTensorSpecs(model_);
  std::vector<const float*> pointers(specs.size(), nullptr);
  owned_.resize(specs.size());
  if (config.dummy_weights) {
    pool_.ParallelFor(static_cast<int64_t>(specs.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        int64_t n = 1;
        for (int64_t d : specs[i].shape) n *= d;
        owned_[i].resize(n);
        FillDummy(config.dummy_seed, specs[i], owned_[i].data());
        pointers[i] = owned_[i].data();
      }
    });
  } else {
    files_ = std::make_unique<WeightFiles>(config.tensors);
    std::vector<const HostTensor*> tensors(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      tensors[i] = files_->Find(specs[i].name);
      if (!tensors[i]) throw std::runtime_error("weights: tensor " + specs[i].name + " is missing (the model config needs it)");
      CheckTensorShape(*tensors[i], specs[i]);
    }
    pool_.ParallelFor(static_cast<int64_t>(specs.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const HostTensor& t = *tensors[i];
        // F32 is used in place from the mapping; unaligned data (possible in safetensors) is
        // copied, because vectorized code may assume float alignment.
        if (t.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0) {
          pointers[i] = static_cast<const float*>(t.data);
        } else {
          owned_[i].resize(t.numel());
          ConvertToF32(t, owned_[i].data());
          pointers[i] = owned_[i].data();
        }
      }
    });
  }
  // Hand the pointers out in ModelTensorSpecs' order.
  size_t next = 0;
  auto take = [&]() { return pointers.at(next++); };
  embed_tokens_ = take();
  layers_.resize(model_.num_layers);
  for (LayerWeights& w : layers_) {
    w.input_norm = take();
    w.q_proj = take();
    w.k_proj = take();
    w.v_proj = take();
    if (model_.attention_bias) {
      w.q_bias = take();
      w.k_bias = take();
      w.v_bias = take();
    }
    if (model_.qk_norm) {
      w.q_norm = take();
      w.k_norm = take();
    }
    w.o_proj = take();
    w.post_norm = take();
    w.gate_proj = take();
    w.up_proj = take();
    w.down_proj = take();
  }
  final_norm_ = take();
  lm_head_ = model_.tie_word_embeddings ? embed_tokens_ : take();
}

void CpuModel::Layer(int32_t l, const StepBatch& batch, int64_t t) {
  const LayerWeights& w = layers_[l];
  const int64_t hidden = model_.hidden_size, hd = model_.head_dim, inter = model_.intermediate_size;
  const int64_t q_dim = int64_t(model_.num_heads) * hd, kv_dim = int64_t(model_.num_kv_heads) * hd;
  const float eps = model_.rms_norm_eps;

  RmsNorm(pool_, x_.data(), w.input_norm, eps, normed_.data(), t, hidden);
  MatMulTransB(pool_, normed_.data(), w.q_proj, w.q_bias, q_.data(), t, q_dim, hidden, false);
  MatMulTransB(pool_, normed_.data(), w.k_proj, w.k_bias, k_.data(), t, kv_dim, hidden, false);
  MatMulTransB(pool_, normed_.data(), w.v_proj, w.v_bias, v_.data(), t, kv_dim, hidden, false);
  if (model_.qk_norm) {
    RmsNorm(pool_, q_.data(), w.q_norm, eps, q_.data(), t * model_.num_heads, hd);
    RmsNorm(pool_, k_.data(), w.k_norm, eps, k_.data(), t * model_.num_kv_heads, hd);
  }
  ApplyRope(pool_, q_.data(), t, model_.num_heads, hd, rope_cos_.data(), rope_sin_.data());
  ApplyRope(pool_, k_.data(), t, model_.num_kv_heads, hd, rope_cos_.data(), rope_sin_.data());

  // Write this step's K/V into their slots before attention reads the context.
  float* k_cache = k_cache_[l].data();
  float* v_cache = v_cache_[l].data();
  for (int64_t i = 0; i < t; ++i) {
    const int64_t slot = batch.slot_mapping[i];
    std::memcpy(k_cache + slot * kv_dim, k_.data() + i * kv_dim, kv_dim * sizeof(float));
    std::memcpy(v_cache + slot * kv_dim, v_.data() + i * kv_dim, kv_dim * sizeof(float));
  }

  PagedAttentionArgs args;
  args.q = q_.data();
  args.k_cache = k_cache;
  args.v_cache = v_cache;
  args.out = attn_.data();
  args.token_seq = token_seq_.data();
  args.context_lens = context_lens_.data();
  args.block_tables = batch.block_tables;
  args.num_tokens = t;
  args.num_heads = model_.num_heads;
  args.num_kv_heads = model_.num_kv_heads;
  args.head_dim = hd;
  args.block_size = block_size_;
  args.max_blocks_per_seq = batch.max_blocks_per_seq;
  PagedAttention(pool_, args);
  MatMulTransB(pool_, attn_.data(), w.o_proj, nullptr, x_.data(), t, hidden, q_dim, true);

  RmsNorm(pool_, x_.data(), w.post_norm, eps, normed_.data(), t, hidden);
  MatMulTransB(pool_, normed_.data(), w.gate_proj, nullptr, gate_.data(), t, inter, hidden, false);
  MatMulTransB(pool_, normed_.data(), w.up_proj, nullptr, up_.data(), t, inter, hidden, false);
  SiluMul(pool_, gate_.data(), up_.data(), t * inter);
  MatMulTransB(pool_, gate_.data(), w.down_proj, nullptr, x_.data(), t, hidden, inter, true);
}

void CpuModel::Forward(const StepBatch& batch, const std::vector<int32_t>& logit_tokens, float* logits) {
  const int64_t t = batch.num_tokens, hidden = model_.hidden_size, hd = model_.head_dim;
  x_.resize(t * hidden);
  normed_.resize(t * hidden);
  q_.resize(t * model_.num_heads * hd);
  k_.resize(t * model_.num_kv_heads * hd);
  v_.resize(t * model_.num_kv_heads * hd);
  attn_.resize(t * model_.num_heads * hd);
  gate_.resize(t * model_.intermediate_size);
  up_.resize(t * model_.intermediate_size);
  rope_cos_.resize(t * (hd / 2));
  rope_sin_.resize(t * (hd / 2));
  token_seq_.resize(t);
  context_lens_.resize(t);

  // Token i of sequence s (of n new tokens, context length L after the step) sees keys
  // [0, L - n + i + 1): the cached context plus the new tokens up to itself.
  for (int32_t s = 0; s < batch.num_seqs; ++s) {
    const int32_t begin = batch.query_start_loc[s], end = batch.query_start_loc[s + 1];
    for (int32_t i = begin; i < end; ++i) {
      token_seq_[i] = s;
      context_lens_[i] = batch.seq_lens[s] - (end - i) + 1;
    }
  }
  BuildRopeTables(batch.positions, t, rope_inv_freq_, rope_cos_.data(), rope_sin_.data());
  for (int64_t i = 0; i < t; ++i) {
    std::memcpy(x_.data() + i * hidden, embed_tokens_ + int64_t(batch.input_ids[i]) * hidden, hidden * sizeof(float));
  }
  for (int32_t l = 0; l < model_.num_layers; ++l) Layer(l, batch, t);

  // Final norm and lm_head only for the rows whose logits are needed.
  const int64_t rows = static_cast<int64_t>(logit_tokens.size());
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(normed_.data() + r * hidden, x_.data() + int64_t(logit_tokens[r]) * hidden, hidden * sizeof(float));
  }
  RmsNorm(pool_, normed_.data(), final_norm_, model_.rms_norm_eps, normed_.data(), rows, hidden);
  MatMulTransB(pool_, normed_.data(), lm_head_, nullptr, logits, rows, model_.vocab_size, hidden, false);
}

}  // namespace cpu
}  // namespace spindle
