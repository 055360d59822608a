// Causal attention over a paged KV cache, for a varlen batch mixing prefill chunks and decode
// tokens. One task = one (token, kv head): the K and V rows of the context are read once for
// all the query heads that share that kv head (GQA). fp32 scores and softmax, scale
// 1/sqrt(head_dim).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/kernels.h"

namespace spindle {
namespace cpu {

void PagedAttention(ThreadPool& pool, const PagedAttentionArgs& a) {
  const int64_t group = a.num_heads / a.num_kv_heads, hd = a.head_dim;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  const int64_t kv_row = a.num_kv_heads * hd;  // floats per cache slot
  pool.ParallelFor(a.num_tokens * a.num_kv_heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;  // [group, context_len]
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / a.num_kv_heads, g = task % a.num_kv_heads;
      const int64_t len = a.context_lens[t];
      const int32_t* blocks = a.block_tables + static_cast<int64_t>(a.token_seq[t]) * a.max_blocks_per_seq;
      scores.resize(static_cast<size_t>(group * len));
      const float* q = a.q + (t * a.num_heads + g * group) * hd;  // [group, head_dim]
      for (int64_t j = 0; j < len; ++j) {
        const int64_t slot = static_cast<int64_t>(blocks[j / a.block_size]) * a.block_size + j % a.block_size;
        const float* k = a.k_cache + slot * kv_row + g * hd;
        for (int64_t h = 0; h < group; ++h) scores[h * len + j] = Dot(q + h * hd, k, hd) * scale;
      }
      float* out = a.out + (t * a.num_heads + g * group) * hd;  // [group, head_dim]
      std::fill(out, out + group * hd, 0.f);
      for (int64_t h = 0; h < group; ++h) {
        float* s = scores.data() + h * len;
        float max_score = -INFINITY;
        for (int64_t j = 0; j < len; ++j) max_score = std::max(max_score, s[j]);
        float sum = 0.f;
        for (int64_t j = 0; j < len; ++j) {
          s[j] = std::exp(s[j] - max_score);
          sum += s[j];
        }
        const float inv_sum = 1.f / sum;
        for (int64_t j = 0; j < len; ++j) s[j] *= inv_sum;
      }
      for (int64_t j = 0; j < len; ++j) {
        const int64_t slot = static_cast<int64_t>(blocks[j / a.block_size]) * a.block_size + j % a.block_size;
        const float* v = a.v_cache + slot * kv_row + g * hd;
        for (int64_t h = 0; h < group; ++h) {
          const float p = scores[h * len + j];
          float* o = out + h * hd;
          for (int64_t d = 0; d < hd; ++d) o[d] += p * v[d];
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace spindle
