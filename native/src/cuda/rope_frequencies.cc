#include "rope_frequencies.h"

#include <cmath>

namespace spindle::cuda {

std::vector<float> RopeInverseFrequencies(const ModelConfig& m) {
  const int half = m.head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(m.head_dim);
    inv[i] = 1.0f / std::pow(m.rope_theta, exponent);
  }
  if (!m.has_llama3_rope_scaling) return inv;
  // transformers' _compute_llama3_parameters, elementwise in float32.
  const float old_len = static_cast<float>(m.rope_original_max_position_embeddings);
  const float low_wavelen = old_len / m.rope_low_freq_factor;
  const float high_wavelen = old_len / m.rope_high_freq_factor;
  const float two_pi = static_cast<float>(2.0 * M_PI);
  for (int i = 0; i < half; ++i) {
    const float wavelen = two_pi / inv[i];
    float scaled = wavelen > low_wavelen ? inv[i] / m.rope_factor : inv[i];
    const bool is_medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    if (is_medium) {
      const float smooth = (old_len / wavelen - m.rope_low_freq_factor) / (m.rope_high_freq_factor - m.rope_low_freq_factor);
      scaled = (1.f - smooth) * scaled / m.rope_factor + smooth * scaled;
    }
    inv[i] = scaled;
  }
  return inv;
}

}  // namespace spindle::cuda
