// Rotary position embedding, Hugging Face convention (rotate_half: element i pairs with
// i + head_dim/2), with Llama 3.1's "llama3" frequency scaling when the config asks for it.
#include <cmath>

#include "cpu/kernels.h"

namespace spindle {
namespace cpu {

std::vector<double> RopeInverseFrequencies(const ModelConfig& m) {
  const int64_t half = m.head_dim / 2;
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = 1.0 / std::pow(static_cast<double>(m.rope_theta), (2.0 * i) / m.head_dim);
  }
  if (!m.has_llama3_rope_scaling) return inv_freq;
  // Long wavelengths (low frequencies) are slowed by `factor`, short ones kept, and the band in
  // between interpolated smoothly (transformers' _compute_llama3_parameters).
  const double factor = m.rope_factor, low = m.rope_low_freq_factor, high = m.rope_high_freq_factor;
  const double old_len = m.rope_original_max_position_embeddings;
  const double low_freq_wavelen = old_len / low, high_freq_wavelen = old_len / high;
  const double pi = 3.14159265358979323846;
  for (double& f : inv_freq) {
    const double wavelen = 2 * pi / f;
    if (wavelen > low_freq_wavelen) {
      f = f / factor;
    } else if (wavelen >= high_freq_wavelen) {
      const double smooth = (old_len / wavelen - low) / (high - low);
      f = (1 - smooth) * f / factor + smooth * f;
    }
  }
  return inv_freq;
}

void BuildRopeTables(const int32_t* positions, int64_t num_tokens, const std::vector<double>& inv_freq,
                     float* cos_table, float* sin_table) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = positions[t] * inv_freq[i];
      cos_table[t * half + i] = static_cast<float>(std::cos(angle));
      sin_table[t * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void ApplyRope(ThreadPool& pool, float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
               const float* cos_table, const float* sin_table) {
  const int64_t half = head_dim / 2;
  pool.ParallelFor(num_tokens, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* c = cos_table + t * half;
      const float* s = sin_table + t * half;
      for (int64_t h = 0; h < num_heads; ++h) {
        float* v = x + (t * num_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * c[i] - b * s[i];
          v[i + half] = b * c[i] + a * s[i];
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace spindle
