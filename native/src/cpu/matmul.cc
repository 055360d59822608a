// Blocked fp32 GEMM for Linear layers: y = x · wᵀ. Both operands are read along k (rows of x
// and rows of w are contiguous), so the micro-kernel is a 2×4 tile of dot products kept in
// eight vector accumulators: AVX2 with FMA where the CPU has it (checked once at run time; the
// build targets x86-64-v2 so the addon loads on any x86-64 machine), SSE otherwise. Work is
// split into (32 rows of x) × (64 rows of w) tasks: a task's w rows (64 × k floats) stay in L2
// while its x rows stream past them.
#include <algorithm>

#include "cpu/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace spindle {
namespace cpu {
namespace {

constexpr int64_t kRowsPerTask = 32;  // of x
constexpr int64_t kColsPerTask = 64;  // rows of w = columns of y

// Both tiles' end: the k positions from p on (past the last full vector) added to the
// vector sums, then bias and the store (or accumulate) into y.
template <int MR, int NR>
inline void FinishTile(float (&sums)[MR][NR], const float* x, const float* w, float* y, int64_t n, int64_t k, int64_t p,
                       int64_t i, int64_t j, const float* bias, bool accumulate) {
  for (; p < k; ++p)
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR; ++c) sums[r][c] += x[(i + r) * k + p] * w[(j + c) * k + p];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) {
      float v = sums[r][c] + (bias ? bias[j + c] : 0.f);
      float& out = y[(i + r) * n + j + c];
      out = accumulate ? out + v : v;
    }
  }
}

// y[i + r, j + c] = dot(x row i + r, w row j + c) for r < MR, c < NR.
template <int MR, int NR>
void Tile(const float* x, const float* w, float* y, int64_t n, int64_t k, int64_t i, int64_t j,
          const float* bias, bool accumulate) {
  float sums[MR][NR];
  int64_t p = 0;
#if defined(__SSE2__)
  __m128 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm_setzero_ps();
  for (; p + 4 <= k; p += 4) {
    __m128 xv[MR];
    for (int r = 0; r < MR; ++r) xv[r] = _mm_loadu_ps(x + (i + r) * k + p);
    for (int c = 0; c < NR; ++c) {
      const __m128 wv = _mm_loadu_ps(w + (j + c) * k + p);
      for (int r = 0; r < MR; ++r) acc[r][c] = _mm_add_ps(acc[r][c], _mm_mul_ps(xv[r], wv));
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) {
      float lanes[4];
      _mm_storeu_ps(lanes, acc[r][c]);
      sums[r][c] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
  }
#else
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) sums[r][c] = 0.f;
#endif
  FinishTile<MR, NR>(sums, x, w, y, n, k, p, i, j, bias, accumulate);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SPINDLE_HAS_AVX2_PATH 1
// The same tile with 8-wide FMA accumulators; compiled for AVX2 + FMA whatever the build's
// baseline, and called only after __builtin_cpu_supports says the CPU has both.
template <int MR, int NR>
__attribute__((target("avx2,fma"))) void TileAvx2(const float* x, const float* w, float* y, int64_t n, int64_t k,
                                                  int64_t i, int64_t j, const float* bias, bool accumulate) {
  __m256 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 xv[MR];
    for (int r = 0; r < MR; ++r) xv[r] = _mm256_loadu_ps(x + (i + r) * k + p);
    for (int c = 0; c < NR; ++c) {
      const __m256 wv = _mm256_loadu_ps(w + (j + c) * k + p);
      for (int r = 0; r < MR; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  float sums[MR][NR];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) {
      float lanes[8];
      _mm256_storeu_ps(lanes, acc[r][c]);
      sums[r][c] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    }
  }
  FinishTile<MR, NR>(sums, x, w, y, n, k, p, i, j, bias, accumulate);
}

bool CpuHasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

// Picks the widest tile the CPU runs.
template <int MR, int NR>
void TileBest(const float* x, const float* w, float* y, int64_t n, int64_t k, int64_t i, int64_t j,
              const float* bias, bool accumulate) {
#ifdef SPINDLE_HAS_AVX2_PATH
  if (CpuHasAvx2Fma()) return TileAvx2<MR, NR>(x, w, y, n, k, i, j, bias, accumulate);
#endif
  Tile<MR, NR>(x, w, y, n, k, i, j, bias, accumulate);
}

void RunTask(const float* x, const float* w, const float* bias, float* y, int64_t m, int64_t n, int64_t k,
             int64_t row0, int64_t col0, bool accumulate) {
  const int64_t row1 = std::min(m, row0 + kRowsPerTask), col1 = std::min(n, col0 + kColsPerTask);
  for (int64_t j = col0; j < col1; j += 4) {
    const bool full_cols = j + 4 <= col1;
    int64_t i = row0;
    for (; i + 2 <= row1; i += 2) {
      if (full_cols) {
        TileBest<2, 4>(x, w, y, n, k, i, j, bias, accumulate);
      } else {
        for (int64_t c = j; c < col1; ++c) TileBest<2, 1>(x, w, y, n, k, i, c, bias, accumulate);
      }
    }
    if (i < row1) {
      if (full_cols) {
        TileBest<1, 4>(x, w, y, n, k, i, j, bias, accumulate);
      } else {
        for (int64_t c = j; c < col1; ++c) TileBest<1, 1>(x, w, y, n, k, i, c, bias, accumulate);
      }
    }
  }
}

}  // namespace

void MatMulTransB(ThreadPool& pool, const float* x, const float* w, const float* bias, float* y,
                  int64_t m, int64_t n, int64_t k, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const int64_t row_tasks = (m + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t col_tasks = (n + kColsPerTask - 1) / kColsPerTask;
  pool.ParallelFor(row_tasks * col_tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      // Consecutive tasks share the same w columns, so a thread's chunk reuses them from L2.
      const int64_t col_task = t / row_tasks, row_task = t % row_tasks;
      RunTask(x, w, bias, y, m, n, k, row_task * kRowsPerTask, col_task * kColsPerTask, accumulate);
    }
  });
}

}  // namespace cpu
}  // namespace spindle
