// The CPU backend's compute routines, one concern per .cc file. All fp32 in, fp32 out, fp32
// accumulation; every routine spreads its work over the backend's ThreadPool.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/thread_pool.h"
#include "executor_config.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace spindle {
namespace cpu {

// Sum of a[i] * b[i] in fp32 (four SSE lanes, then a horizontal sum).
inline float Dot(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  float sum = 0.f;
#if defined(__SSE2__)
  __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm_add_ps(acc0, _mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
    acc1 = _mm_add_ps(acc1, _mm_mul_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4)));
  }
  acc0 = _mm_add_ps(acc0, acc1);
  float lanes[4];
  _mm_storeu_ps(lanes, acc0);
  sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// matmul.cc: y[m, n] (+)= x[m, k] · w[n, k]ᵀ (+ bias[n]). `w` is a Hugging Face Linear weight
// ([out, in], row-major). accumulate = true adds into y (the residual stream).
void MatMulTransB(ThreadPool& pool, const float* x, const float* w, const float* bias, float* y,
                  int64_t m, int64_t n, int64_t k, bool accumulate);

// rms_norm.cc: out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * weight[:], for r < rows;
// out may alias x. Rows of length `dim` (hidden size, or head_dim for Qwen3's q/k norm).
void RmsNorm(ThreadPool& pool, const float* x, const float* weight, float eps, float* out,
             int64_t rows, int64_t dim);

// rope.cc: inverse frequencies [head_dim / 2] (with Llama 3.1 scaling when configured).
std::vector<double> RopeInverseFrequencies(const ModelConfig& model);
// cos/sin tables [num_tokens, head_dim / 2] for the step's positions (computed in double).
void BuildRopeTables(const int32_t* positions, int64_t num_tokens, const std::vector<double>& inv_freq,
                     float* cos_table, float* sin_table);
// Rotates x [num_tokens, num_heads, head_dim] in place, HF rotate_half convention: the pairs
// are (i, i + head_dim / 2).
void ApplyRope(ThreadPool& pool, float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
               const float* cos_table, const float* sin_table);

// activation.cc: gate[i] = silu(gate[i]) * up[i] for i < count.
void SiluMul(ThreadPool& pool, float* gate, const float* up, int64_t count);

// attention.cc: causal attention of each token over its sequence's paged context.
struct PagedAttentionArgs {
  const float* q = nullptr;             // [num_tokens, num_heads, head_dim], RoPE applied
  const float* k_cache = nullptr;       // [num_blocks, block_size, num_kv_heads, head_dim]
  const float* v_cache = nullptr;       // [num_blocks, block_size, num_kv_heads, head_dim]
  float* out = nullptr;                 // [num_tokens, num_heads, head_dim]
  const int32_t* token_seq = nullptr;   // [num_tokens] the sequence each token belongs to
  const int32_t* context_lens = nullptr;// [num_tokens] keys [0, len) are visible to the token
  const int32_t* block_tables = nullptr;// [num_seqs, max_blocks_per_seq] (validated)
  int64_t num_tokens = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t block_size = 0, max_blocks_per_seq = 0;
};
void PagedAttention(ThreadPool& pool, const PagedAttentionArgs& args);

}  // namespace cpu
}  // namespace spindle
