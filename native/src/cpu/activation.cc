// The SwiGLU activation of the Llama/Qwen MLP: silu(gate) * up.
#include <cmath>

#include "cpu/kernels.h"

namespace spindle {
namespace cpu {

void SiluMul(ThreadPool& pool, float* gate, const float* up, int64_t count) {
  pool.ParallelFor(count, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.f + std::exp(-g)) * up[i];
    }
  });
}

}  // namespace cpu
}  // namespace spindle
