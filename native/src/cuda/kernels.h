// Launchers of the CUDA backend's kernels, one concern per .cu file. T is float or
// __nv_bfloat16 (explicitly instantiated for both). Every launcher checks its launch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace spindle::cuda {

// embedding.cu: out[t] = table[ids[t]].
template <typename T>
void EmbeddingGather(const int32_t* ids /* [num_tokens] */, const T* table /* [vocab, hidden] */,
                     T* out /* [num_tokens, hidden] */, int num_tokens, int hidden, int vocab, cudaStream_t stream);

// rms_norm.cu: residual += delta (when delta != nullptr, rounded to T as a framework would),
// then out = RMSNorm(residual) * weight, HF order: normalise in fp32, round to T, times weight.
template <typename T>
void FusedAddRmsNorm(const T* delta /* [rows, hidden] or null */, T* residual /* [rows, hidden] */,
                     const T* weight /* [hidden] */, T* out /* [rows, hidden] */, int rows, int hidden, float eps,
                     cudaStream_t stream);

// qkv_rope_kv_write.cu: on the fused q|k|v projection of each token: + bias (Qwen2), per-head
// RMSNorm of q and k (Qwen3), RoPE (rotate_half, inv_freq already llama3-scaled) of q (in
// place) and k, and k, v written into the paged cache at slot_mapping[t] (skipped when < 0).
template <typename T>
void QkvRopeKvWrite(T* qkv /* [num_tokens, (nh + 2 nkv) * head_dim] */, const T* bias /* [(nh+2nkv)*hd] or null */,
                    const T* q_norm /* [head_dim] or null */, const T* k_norm /* [head_dim] or null */,
                    const float* inv_freq /* [head_dim / 2] */, const int32_t* positions /* [num_tokens] */,
                    const int32_t* slot_mapping /* [num_tokens] */,
                    T* k_cache /* [num_blocks, block_size, nkv, head_dim] */, T* v_cache /* same */, int num_tokens,
                    int num_heads, int num_kv_heads, int head_dim, float eps, cudaStream_t stream);

// silu_mul.cu: out = silu(gate) * up with gate_up rows laid out [gate | up].
template <typename T>
void SiluMul(const T* gate_up /* [rows, 2 * inter] */, T* out /* [rows, inter] */, int rows, int inter,
             cudaStream_t stream);

// gather_rows.cu: out[s] = in[query_start_loc[s + 1] - 1]: the last token of each sequence.
template <typename T>
void GatherLastTokenRows(const T* in /* [num_tokens, hidden] */, const int32_t* query_start_loc /* [num_seqs+1] */,
                         T* out /* [num_seqs, hidden] */, int num_seqs, int hidden, cudaStream_t stream);

// Attention over the paged cache. q is read from the fused qkv buffer (row stride q_stride);
// out is [num_tokens, num_heads * head_dim]. Scale = 1/sqrt(head_dim).
struct AttentionShape {
  int num_seqs, num_tokens, num_heads, num_kv_heads, head_dim, block_size, max_blocks_per_seq, q_stride;
};

// paged_decode_attention.cu: one query token per sequence (query_start_loc[s] = s); each KV
// head's cache read once for its whole GQA group; split along the context into at most
// num_splits pieces (partials in `workspace`, then a reduce): pieces of split_tokens tokens,
// or with split_tokens 0 each sequence cut by its own length into min(num_splits,
// ceil(len / kDecodeMinPieceTokens)) even pieces (one piece: no partials).
// A sequence of length 0 (graph padding) gets zeros.
constexpr int kDecodeMinPieceTokens = 256;
bool DecodeAttentionSupported(int head_dim, int group_size);
size_t DecodeAttentionWorkspaceBytes(int num_seqs, int num_heads, int head_dim, int num_splits);
template <typename T>
void PagedDecodeAttention(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                          const int32_t* seq_lens, T* out, float* workspace, const AttentionShape& shape,
                          int num_splits, int split_tokens, cudaStream_t stream);

// decode_graph_inputs.cu: the decode columns of a batch of num_seqs sequences copied into a
// CUDA graph's fixed input buffers of padded_seqs rows (block tables at row stride
// padded_width); rows past num_seqs become padding: token 0 at position 0, slot -1 (no KV
// write), length 0 (no attention).
struct DecodeGraphInputs {
  int32_t* input_ids;     // [padded_seqs]
  int32_t* positions;     // [padded_seqs]
  int32_t* slot_mapping;  // [padded_seqs]
  int32_t* seq_lens;      // [padded_seqs]
  int32_t* block_tables;  // [padded_seqs, padded_width]
};
void PadDecodeGraphInputs(const int32_t* input_ids, const int32_t* positions, const int32_t* slot_mapping,
                          const int32_t* seq_lens, const int32_t* block_tables, int num_seqs, int max_blocks_per_seq,
                          int block_size, const DecodeGraphInputs& dst, int padded_seqs, int padded_width,
                          cudaStream_t stream);

// prefill_attention.cu: tiled (flash-attention style) causal attention, varlen via
// query_start_loc, every key (earlier context and this step's tokens) read from the paged cache.
template <typename T>
void PrefillAttention(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                      const int32_t* seq_lens, const int32_t* query_start_loc, const int32_t* positions, T* out,
                      const AttentionShape& shape, int max_query_len, cudaStream_t stream);

// prefill_attention_wmma.cu: the same on tensor cores for bf16 and head_dim 64/128
// (PrefillAttention dispatches there by itself).
bool PrefillAttentionWmmaSupported(int head_dim);
void PrefillAttentionWmma(const __nv_bfloat16* q, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                          const int32_t* block_tables, const int32_t* seq_lens, const int32_t* query_start_loc,
                          const int32_t* positions, __nv_bfloat16* out, const AttentionShape& shape, int max_query_len,
                          cudaStream_t stream);

// weight_init.cu: raw safetensors data (dtype code 0 F32, 1 BF16, 2 F16) converted to T;
// dummy weights: weights.h's DummyValue(tensor_key, i, center, scale), as the CPU backend.
template <typename T>
void ConvertToDtype(const void* src, int src_dtype, T* dst, size_t count, cudaStream_t stream);
template <typename T>
void FillDummyOnDevice(T* dst, size_t count, uint64_t tensor_key, float center, float scale, cudaStream_t stream);

// greedy_sampler_placeholder.cu: NOT the sampler (that is sampler.h's SampleBatch): argmax of
// each row, its log-softmax and the top num_logprobs[s] alternatives; ignores every sampling
// parameter. Used only while SampleBatch is not linked in (sample_step.cc).
void GreedySamplePlaceholder(const float* logits /* [num_seqs, row_stride] */, int64_t row_stride,
                             const int32_t* is_sampled /* [num_seqs] */, const int32_t* num_logprobs /* [num_seqs] */,
                             int num_seqs, int vocab, int max_top_logprobs, int32_t* sampled_ids /* [num_seqs] */,
                             float* sampled_logprobs /* [num_seqs] */, int32_t* top_ids /* [num_seqs, max_top] */,
                             float* top_logprobs /* [num_seqs, max_top] */, cudaStream_t stream);

}  // namespace spindle::cuda
