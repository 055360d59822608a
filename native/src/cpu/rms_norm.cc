// RMSNorm as in Hugging Face LlamaRMSNorm: fp32 mean of squares, x * rsqrt(ms + eps) * weight.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"

namespace spindle {
namespace cpu {

void RmsNorm(ThreadPool& pool, const float* x, const float* weight, float eps, float* out, int64_t rows,
             int64_t dim) {
  // Small rows (Qwen3's per-head norm): group many per chunk so scheduling stays cheap.
  const int64_t min_rows = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, dim));
  pool.ParallelFor(rows, min_rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * dim;
      float* yr = out + r * dim;
      const float mean_square = Dot(xr, xr, dim) / static_cast<float>(dim);
      const float inv_rms = 1.f / std::sqrt(mean_square + eps);
      for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] * inv_rms) * weight[i];
    }
  });
}

}  // namespace cpu
}  // namespace spindle
