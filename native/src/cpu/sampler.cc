// The CPU sampler. It draws exactly what the plain full-vocabulary version
// (sampler_reference.cc) draws: the same Gumbel-max argmax over the same kept set, the same
// ties. It gets there with less work:
// - log-sum-exp with a vectorized double exp (relative error < 2e-13) instead of std::exp;
//   logprobs only need ~1e-7, and the masks never compare its values to a threshold without
//   a margin that covers the difference (below).
// - the draw computes the noise only of ids that can still win. GumbelNoise is at most 22.87
//   and falls with its 32 hash bits, so l + bound(bits) < best rules an id out: first with the
//   bound of all bits (no hash at all), then with the bound of the bits' top 12 (the hash, no
//   logarithms), and only the few ids left get the exact noise. Starting from the argmax's
//   score makes `best` good from the first id. An id ruled out has score < best <= the final
//   best, so it cannot win or tie; every other id is scored exactly as the reference does.
// - top_k: the k-th largest logit by nth_element over the few values above a threshold taken
//   from a sample, instead of over a copy of the vocabulary.
// - top_p: the cut-off token by a radix select over the logits' bits, weighted by mass,
//   instead of sorting a growing prefix of the vocabulary. The cut-off depends on sums that
//   the reference rounds differently, so it is only taken when both decisive cumulative
//   masses clear top_p by more than the two computations can differ (TopPMargin); otherwise
//   (a row in ~1e10 of random ones, or a top_p exactly on a cumulative mass) the row goes to
//   the reference.
// - min_p: a logit floor below which no id can be kept, then std::exp of the few ids that
//   reach the exact noise step, compared as the reference compares.
// Rows with a NaN or +inf logit, or only -inf ones, go to the reference: its order-dependent
// results there are not worth reproducing.
#include "cpu/sampler.h"
#include "cpu/sampler_steps.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "sampling_math.h"

namespace spindle {
namespace cpu {
namespace {

// ---- Bounds on the Gumbel noise -------------------------------------------------------------

constexpr int kNoiseBlockBits = 12;
// GumbelNoiseFromBits falls as bits grow, so a block's first bits value gives the block's
// largest noise. The slack covers log1pf/logf being monotone only to within an ulp or two
// (~2e-6 at 22) many times over; a larger bound only costs a few exact evaluations.
constexpr float kNoiseSlack = 1e-3f;

struct NoiseBounds {
  float block[1 << kNoiseBlockBits];  // >= the noise of every bits value with these top bits
  float max;                          // >= every noise
};

const NoiseBounds& GetNoiseBounds() {
  static const NoiseBounds bounds = [] {
    NoiseBounds b;
    for (uint32_t j = 0; j < (1u << kNoiseBlockBits); ++j) {
      b.block[j] = GumbelNoiseFromBits(j << (32 - kNoiseBlockBits)) + kNoiseSlack;
    }
    b.max = b.block[0];
    return b;
  }();
  return bounds;
}

// RngCounterMix(i) for every id of a vocabulary, so that an id's hash bits cost one Mix64
// (two multiplies) instead of three multiplies more. One table per vocabulary size, kept
// for the life of the process (8 bytes a token: 1 MB for 128k tokens).
const uint64_t* CounterMixTable(int32_t vocab) {
  static std::mutex mutex;
  static std::map<int32_t, std::vector<uint64_t>> tables;
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<uint64_t>& t = tables[vocab];
  if (t.empty()) {
    t.resize(vocab);
    for (int32_t i = 0; i < vocab; ++i) t[i] = RngCounterMix(static_cast<uint64_t>(i));
  }
  return t.data();
}

// GumbelBits(key, i) >> (32 - kNoiseBlockBits): the noise block of id i, for its bound.
inline uint32_t TabledNoiseBlock(uint64_t key, const uint64_t* counter_mix, int32_t i) {
  return Mix64Top31(key ^ counter_mix[i]) >> (31 - kNoiseBlockBits);
}

// ---- exp ------------------------------------------------------------------------------------

// exp(x) for x <= 0 (not NaN), Tang's method: x = (64 m + j) ln2/64 + r with |r| <= ln2/128,
// exp(x) = 2^m * 2^(j/64) * p(r), 2^(j/64) from a table, p the degree-4 Taylor polynomial.
// Relative error < 2e-13: < 4e-14 from p, |x| * 2e-16 from r (ln2/64 in one double).
// logprobs need ~1e-7; the top_p margin allows for 1e-12. Below -708 it returns exp(-708)
// ~ 3e-308 (-inf included) rather than a subnormal or 0: the sums this feeds are >= 1, so
// the difference never shows. The SSE2 version below takes the same steps.
constexpr double kExpFloor = -708.0;
constexpr double kExpScale = 92.33248261689366;  // 64 / ln2
constexpr double kLn2By64 = 0.6931471805599453 / 64;
constexpr double kRoundShift = 6755399441055744.0;  // 1.5 * 2^52: x + it rounds x to an integer

struct Exp2Table {
  double v[64];  // 2^(j/64), correctly rounded (exp2 of an exact argument)
};
const Exp2Table& GetExp2Table() {
  static const Exp2Table table = [] {
    Exp2Table t;
    for (int j = 0; j < 64; ++j) t.v[j] = std::exp2(j / 64.0);
    return t;
  }();
  return table;
}

inline double ExpNonPositive(double x, const Exp2Table& table) {
  x = x < kExpFloor ? kExpFloor : x;
  const double t = x * kExpScale + kRoundShift;
  const double k = t - kRoundShift;
  const double r = x - k * kLn2By64;
  const double r2 = r * r;
  const double p = (1.0 + r) + r2 * ((0.5 + r * (1.0 / 6)) + r2 * (1.0 / 24));
  int64_t t_bits, shift_bits, table_bits;
  std::memcpy(&t_bits, &t, 8);
  std::memcpy(&shift_bits, &kRoundShift, 8);
  const int64_t ki = t_bits - shift_bits;  // k as an integer
  std::memcpy(&table_bits, &table.v[ki & 63], 8);
  // 2^m * 2^(j/64): add m = (k - j) / 64 to the table value's exponent field.
  const int64_t scaled_bits = table_bits + static_cast<int64_t>(static_cast<uint64_t>(ki & ~int64_t(63)) << 46);
  double scaled;
  std::memcpy(&scaled, &scaled_bits, 8);
  return p * scaled;
}

#if defined(__SSE2__)
inline __m128d ExpNonPositive2(__m128d x, const Exp2Table& table) {
  x = _mm_max_pd(x, _mm_set1_pd(kExpFloor));
  const __m128d shift = _mm_set1_pd(kRoundShift);
  const __m128d t = _mm_add_pd(_mm_mul_pd(x, _mm_set1_pd(kExpScale)), shift);
  const __m128d k = _mm_sub_pd(t, shift);
  const __m128d r = _mm_sub_pd(x, _mm_mul_pd(k, _mm_set1_pd(kLn2By64)));
  // Estrin's order, a shorter chain than Horner's: (1 + r) + r^2 ((1/2 + r/6) + r^2/24).
  const __m128d r2 = _mm_mul_pd(r, r);
  const __m128d p23 = _mm_add_pd(_mm_set1_pd(0.5), _mm_mul_pd(r, _mm_set1_pd(1.0 / 6)));
  const __m128d p = _mm_add_pd(_mm_add_pd(_mm_set1_pd(1.0), r), _mm_mul_pd(r2, _mm_add_pd(p23, _mm_mul_pd(r2, _mm_set1_pd(1.0 / 24)))));
  const __m128i ki = _mm_sub_epi64(_mm_castpd_si128(t), _mm_castpd_si128(shift));
  const int64_t k0 = _mm_cvtsi128_si64(ki), k1 = _mm_cvtsi128_si64(_mm_unpackhi_epi64(ki, ki));
  const __m128d tv = _mm_loadh_pd(_mm_load_sd(&table.v[k0 & 63]), &table.v[k1 & 63]);
  const __m128i m = _mm_slli_epi64(_mm_andnot_si128(_mm_set1_epi64x(63), ki), 46);
  return _mm_mul_pd(p, _mm_castsi128_pd(_mm_add_epi64(_mm_castpd_si128(tv), m)));
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SPINDLE_SAMPLER_AVX2 1
// ExpNonPositive2's steps four at a time with FMA; compiled for AVX2 + FMA whatever the build's
// baseline, and called only where the CPU has both (CpuHasAvx2Fma). The fused multiply-adds
// round differently: results differ from the SSE2 version's by ~1e-16, within the same bound.
__attribute__((target("avx2,fma"))) inline __m256d ExpNonPositive4(__m256d x, const Exp2Table& table) {
  x = _mm256_max_pd(x, _mm256_set1_pd(kExpFloor));
  const __m256d shift = _mm256_set1_pd(kRoundShift);
  const __m256d t = _mm256_fmadd_pd(x, _mm256_set1_pd(kExpScale), shift);
  const __m256d k = _mm256_sub_pd(t, shift);
  const __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(kLn2By64), x);
  const __m256d r2 = _mm256_mul_pd(r, r);
  const __m256d p23 = _mm256_fmadd_pd(r, _mm256_set1_pd(1.0 / 6), _mm256_set1_pd(0.5));
  const __m256d p = _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r2, _mm256_set1_pd(1.0 / 24), p23), _mm256_add_pd(_mm256_set1_pd(1.0), r));
  const __m256i ki = _mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(shift));
  const __m256d tv = _mm256_i64gather_pd(table.v, _mm256_and_si256(ki, _mm256_set1_epi64x(63)), 8);
  const __m256i m = _mm256_slli_epi64(_mm256_andnot_si256(_mm256_set1_epi64x(63), ki), 46);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(tv), m)));
}

// ExpSum's vector part on AVX2: the first (n / 8) * 8 terms.
__attribute__((target("avx2,fma"))) double ExpSumAvx2(const float* l, int32_t n, float mx, double* w,
                                                      const Exp2Table& table) {
  const __m256d m = _mm256_set1_pd(mx);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  for (int32_t i = 0; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(l + i);
    const __m256d e0 = ExpNonPositive4(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), m), table);
    const __m256d e1 = ExpNonPositive4(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), m), table);
    if (w != nullptr) {
      _mm256_storeu_pd(w + i, e0);
      _mm256_storeu_pd(w + i + 4, e1);
    }
    acc0 = _mm256_add_pd(acc0, e0);
    acc1 = _mm256_add_pd(acc1, e1);
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

__attribute__((target("avx2,fma"))) double ExpAvx2ForTest(double x, const Exp2Table& table) {
  double lanes[4];
  _mm256_storeu_pd(lanes, ExpNonPositive4(_mm256_set1_pd(x), table));
  return lanes[0];
}

bool CpuHasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

// Sum over i < n of exp(l[i] - mx) (l[i] <= mx), in double; with w != nullptr also each term
// in w[i] (top_p needs them). AVX2 + FMA where the CPU has them (twice the SSE2 rate), SSE2
// otherwise.
double ExpSum(const float* l, int32_t n, float mx, double* w) {
  const Exp2Table& table = GetExp2Table();
  int32_t i = 0;
  double sum = 0;
#ifdef SPINDLE_SAMPLER_AVX2
  if (CpuHasAvx2Fma()) {
    sum = ExpSumAvx2(l, n, mx, w, table);
    i = n / 8 * 8;
  }
#endif
#if defined(__SSE2__)
  const __m128d m = _mm_set1_pd(mx);
  __m128d acc0 = _mm_setzero_pd(), acc1 = _mm_setzero_pd();
  for (; i + 4 <= n; i += 4) {
    const __m128 v = _mm_loadu_ps(l + i);
    const __m128d e0 = ExpNonPositive2(_mm_sub_pd(_mm_cvtps_pd(v), m), table);
    const __m128d e1 = ExpNonPositive2(_mm_sub_pd(_mm_cvtps_pd(_mm_movehl_ps(v, v)), m), table);
    if (w != nullptr) {
      _mm_storeu_pd(w + i, e0);
      _mm_storeu_pd(w + i + 2, e1);
    }
    acc0 = _mm_add_pd(acc0, e0);
    acc1 = _mm_add_pd(acc1, e1);
  }
  double lanes[2];
  _mm_storeu_pd(lanes, _mm_add_pd(acc0, acc1));
  sum += lanes[0] + lanes[1];
#endif
  for (; i < n; ++i) {
    const double e = ExpNonPositive(double(l[i]) - mx, table);
    if (w != nullptr) w[i] = e;
    sum += e;
  }
  return sum;
}

// ---- Passes over the processed logits -------------------------------------------------------

// dst[i] = src[i] / t (scale) or src[i], and the largest value; false when a value is NaN.
// dst may be src; dst = nullptr (no scaling) only looks for the largest value.
bool ScaleAndMax(const float* src, float* dst, int32_t n, float t, bool scale, float* max_out) {
  const bool store = dst != nullptr && (scale || dst != src);
  int32_t i = 0;
  float mx = -INFINITY;
  bool has_nan = false;
#if defined(__SSE2__)
  const __m128 vt = _mm_set1_ps(t);
  __m128 vmax = _mm_set1_ps(-INFINITY), vnan = _mm_setzero_ps();
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_loadu_ps(src + i);
    if (scale) v = _mm_div_ps(v, vt);  // a true division, as the reference: same values to the bit
    if (store) _mm_storeu_ps(dst + i, v);
    vmax = _mm_max_ps(vmax, v);
    vnan = _mm_or_ps(vnan, _mm_cmpunord_ps(v, v));
  }
  float lanes[4];
  _mm_storeu_ps(lanes, vmax);
  for (float v : lanes) mx = std::max(mx, v);
  has_nan = _mm_movemask_ps(vnan) != 0;
#endif
  for (; i < n; ++i) {
    const float v = scale ? src[i] / t : src[i];
    if (store) dst[i] = v;
    has_nan |= std::isnan(v);
    mx = std::max(mx, v);
  }
  *max_out = mx;
  return !has_nan;
}

// The first i with l[i] == value (there is one): the argmax with ties to the lowest id.
int32_t FirstIndexOf(const float* l, int32_t n, float value) {
  int32_t i = 0;
#if defined(__SSE2__)
  const __m128 v = _mm_set1_ps(value);
  for (; i + 4 <= n; i += 4) {
    const int mask = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(l + i), v));
    if (mask != 0) return i + __builtin_ctz(static_cast<unsigned>(mask));
  }
#endif
  for (; i < n; ++i) {
    if (l[i] == value) return i;
  }
  return 0;
}

// True when one of l[0..3] is > threshold (SSE2: one compare for the four).
inline bool AnyAbove4(const float* l, float threshold) {
#if defined(__SSE2__)
  return _mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(l), _mm_set1_ps(threshold))) != 0;
#else
  return l[0] > threshold || l[1] > threshold || l[2] > threshold || l[3] > threshold;
#endif
}

// True when one of l[0..3] is >= threshold.
inline bool AnyAtLeast4(const float* l, float threshold) {
#if defined(__SSE2__)
  return _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(l), _mm_set1_ps(threshold))) != 0;
#else
  return l[0] >= threshold || l[1] >= threshold || l[2] >= threshold || l[3] >= threshold;
#endif
}

// ---- Per-thread scratch ---------------------------------------------------------------------

struct RowScratch {
  std::vector<float> logits;       // [vocab] processed logits
  std::vector<uint8_t> in_history; // [vocab] 1 once seen in prompt + output (reset after use)
  std::vector<int32_t> out_count;  // [vocab] occurrences in the output (reset after use)
  std::vector<float> values;       // top_k: the heap, or a copy of the logits for nth_element
  std::vector<double> weights;     // top_p: [vocab] exp(logit - max logit)
  std::vector<uint16_t> buckets;   // top_p: [vocab] radix bucket of each id
  std::vector<double> bucket_mass; // top_p: radix histograms
  std::vector<int32_t> ids;        // top_p: the ids of the bucket being refined
};

// ---- Masks ----------------------------------------------------------------------------------

// top_k: the k-th largest value of l (0 < k < n), counting repeats, as nth_element over the
// vocabulary would give. A systematic sample of ~2048 values gives a threshold that about
// 1.25 k + 8 strides of values reach; if at least k values reach it, the k-th largest is the
// k-th largest of those (nth_element over a few k values), else (an unlucky sample) of all.
float KthLargest(const float* l, int32_t n, int32_t k, RowScratch& sc) {
  std::vector<float>& v = sc.values;
  const int32_t stride = std::max<int32_t>(1, n / 2048);
  const int64_t rank = std::min<int64_t>((int64_t(k) * 5 / 4) / stride + 8, (n + stride - 1) / stride);  // in the sample
  v.clear();
  for (int32_t i = 0; i < n; i += stride) v.push_back(l[i]);
  std::nth_element(v.begin(), v.begin() + (rank - 1), v.end(), std::greater<float>());
  const float threshold = v[rank - 1];
  // The values >= threshold: four at a time past those below it, then without branches.
  v.resize(n);
  size_t count = 0;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    if (!AnyAtLeast4(l + i, threshold)) continue;
    for (int32_t j = i; j < i + 4; ++j) {
      v[count] = l[j];
      count += l[j] >= threshold;
    }
  }
  for (; i < n; ++i) {
    v[count] = l[i];
    count += l[i] >= threshold;
  }
  if (count < static_cast<size_t>(k)) {
    v.assign(l, l + n);
    count = n;
  }
  std::nth_element(v.begin(), v.begin() + (k - 1), v.begin() + count, std::greater<float>());
  return v[k - 1];
}

// A key for the radix select: smaller key = ranks first, equal keys = equal logits (-0 and +0
// tie in RanksBefore, so they get one key).
inline uint32_t RankKey(float v) {
  v += 0.f;  // -0 -> +0 (not folded away: x + 0 is not x for x = -0)
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return ~(u ^ ((u >> 31) != 0 ? 0xFFFFFFFFu : 0x80000000u));
}

// How far our cumulative masses may be from the reference's: both are sums of at most
// `vocab` positive terms with relative errors of ~1e-16 each (the reference's std::exp, our
// ExpNonPositive) and of each sum's rounding (at most vocab * 2^-53 relative, in any order);
// the 1e-12 covers the exps and the terms below exp(-708). Doubled, then some.
double TopPMargin(int32_t vocab) { return 1e-12 + 8.0 * (double(vocab) + 64.0) * 0x1p-53; }

constexpr int32_t kFewKept = 4096;

struct TopPCutoff {
  bool certain = false;  // false: too close to call, ask the reference
  float logit = 0.f;     // the last kept token in rank order
  int32_t id = -1;
};

// Step 5's top_p over the ids with l >= kth: the reference keeps the first num_kept ids in
// rank order, num_kept = the smallest j in [1, n-1] whose cumulative mass C_j (of the first j
// ids) reaches top_p, else n. We find the id where the cumulative mass crosses top_p by radix
// select (11 + 11 + 10 bits of RankKey, each level's buckets weighted by mass; only the bucket
// where the mass crosses is refined, nothing else is sorted), then check that our C_j and
// C_{j-1} are farther from top_p than the two computations can differ.
// `weights[i]` = exp(l[i] - l[argmax]) (every one > 0); `argmax` ranks first.
// `few_kept`: top_k keeps few ids (k <= kFewKept, plus ties): select among them alone.
TopPCutoff FindTopPCutoff(const float* l, const double* weights, int32_t n, int32_t argmax, float kth, bool few_kept,
                          float top_p, RowScratch& sc) {
  constexpr int kLevels = 3;
  constexpr int kShift[kLevels] = {21, 10, 0};
  constexpr uint32_t kBuckets[kLevels] = {2048, 2048, 1024};
  constexpr uint16_t kDropped = 2048;
  constexpr int kCopies = 4, kStride = 2049;
  sc.bucket_mass.assign(kCopies * kStride, 0.0);
  double* mass = sc.bucket_mass.data();
  uint16_t* bucket = nullptr;
  double total = 0;
  if (few_kept) {
    // The kept ids, without branches (which ones pass is anyone's guess).
    sc.ids.resize(n);
    size_t count = 0;
    for (int32_t i = 0; i < n; ++i) {
      sc.ids[count] = i;
      count += l[i] >= kth;
    }
    sc.ids.resize(count);
    for (const int32_t id : sc.ids) total += weights[id];
  } else {
    // Level 0 over the vocabulary: every id's bucket (kDropped for l < kth), four keys at a
    // time, kept for the gather below; then the masses, added into four histograms in turn:
    // runs of ids in one bucket (flat logits) would otherwise wait on each other's
    // read-add-write of one double.
    sc.buckets.resize(n);
    bucket = sc.buckets.data();
    int32_t i = 0;
#if defined(__SSE2__)
    const __m128 vkth = _mm_set1_ps(kth);
    for (; i + 4 <= n; i += 4) {
      const __m128 v = _mm_loadu_ps(l + i);
      // RankKey of four floats at once, then its top 11 bits.
      const __m128i u = _mm_castps_si128(_mm_add_ps(v, _mm_setzero_ps()));
      const __m128i flip = _mm_or_si128(_mm_srai_epi32(u, 31), _mm_set1_epi32(static_cast<int32_t>(0x80000000u)));
      const __m128i key = _mm_xor_si128(_mm_xor_si128(u, flip), _mm_set1_epi32(-1));
      const __m128i dropped = _mm_castps_si128(_mm_cmplt_ps(v, vkth));
      const __m128i b = _mm_or_si128(_mm_andnot_si128(dropped, _mm_srli_epi32(key, kShift[0])),
                                     _mm_and_si128(dropped, _mm_set1_epi32(kDropped)));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(bucket + i), _mm_packs_epi32(b, b));
    }
#endif
    for (; i < n; ++i) bucket[i] = l[i] >= kth ? static_cast<uint16_t>(RankKey(l[i]) >> kShift[0]) : kDropped;
    for (i = 0; i + kCopies <= n; i += kCopies) {
      for (int c = 0; c < kCopies; ++c) mass[c * kStride + bucket[i + c]] += weights[i + c];
    }
    for (; i < n; ++i) mass[bucket[i]] += weights[i];
    for (uint32_t b = 0; b < 2048; ++b) {
      for (int c = 1; c < kCopies; ++c) mass[b] += mass[c * kStride + b];
      total += mass[b];
    }
  }
  const double target = double(top_p) * total;
  double before = 0;    // mass of the ids ranked before the current bucket
  uint32_t prefix = 0;  // RankKey bits chosen so far
  for (int level = 0; level < kLevels; ++level) {
    if (level > 0 || few_kept) {
      if (sc.ids.size() <= 64) break;  // few enough to sort
      std::fill(mass, mass + kBuckets[level], 0.0);
      for (size_t j = 0; j < sc.ids.size(); ++j) {
        mass[(RankKey(l[sc.ids[j]]) >> kShift[level]) & (kBuckets[level] - 1)] += weights[sc.ids[j]];
      }
    }
    uint32_t chosen = 0;
    bool found = false;
    for (uint32_t b = 0; b < kBuckets[level]; ++b) {
      if (mass[b] == 0) continue;  // empty
      chosen = b;
      if (before + mass[b] >= target) {
        found = true;
        break;
      }
      before += mass[b];
    }
    if (!found) return {};  // rounding left the crossing past the end: too close to call
    prefix |= chosen << kShift[level];
    const uint32_t decided = ~((1u << kShift[level]) - 1u);  // the key bits chosen so far
    if (level == 0 && !few_kept) {
      // Without branches: most ids are not in the bucket, but which ones is anyone's guess.
      sc.ids.resize(n);
      int32_t* ids = sc.ids.data();
      size_t count = 0;
      for (int32_t id = 0; id < n; ++id) {
        ids[count] = id;
        count += bucket[id] == chosen;
      }
      sc.ids.resize(count);
    } else {
      sc.ids.erase(std::remove_if(sc.ids.begin(), sc.ids.end(), [&](int32_t id) { return (RankKey(l[id]) & decided) != prefix; }),
                   sc.ids.end());
    }
  }

  // Rank order inside the bucket, then walk it to the crossing.
  std::sort(sc.ids.begin(), sc.ids.end(), [l](int32_t a, int32_t b) { return RanksBefore(l[a], a, l[b], b); });
  const double margin = TopPMargin(n);
  double cum = before;
  for (const int32_t id : sc.ids) {
    const double c_prev = cum / total;  // C_{j-1}, the ids ranked before id
    cum += weights[id];
    const double c = cum / total;  // C_j, id included
    if (c < double(top_p)) continue;
    // num_kept = j here. The reference agrees if C_{j-1} stays below top_p (or j = 1: id is
    // the argmax) and C_j clears it (or j = n: id ranks last, and C_n is never compared).
    if (id != argmax && !(c_prev < double(top_p) - margin)) return {};
    if (!(c >= double(top_p) + margin)) {
      for (int32_t other = 0; other < n; ++other) {
        if (l[other] >= kth && RanksBefore(l[id], id, l[other], other)) return {};  // not last
      }
    }
    return {true, l[id], id};
  }
  return {};  // the crossing fell outside the bucket by rounding: too close to call
}

// ---- The draw -------------------------------------------------------------------------------

struct Mask {
  bool has_top_k = false;
  float kth = -INFINITY;  // top_k keeps l >= kth
  bool has_top_p = false;
  float cut_logit = 0.f;  // top_p keeps the ids ranked up to (cut_logit, cut_id)
  int32_t cut_id = -1;
  bool has_min_p = false;
  double min_p = 0;
  float max_logit = 0.f;
  float floor = -INFINITY;  // every kept id has l >= floor
};

// The masks' verdict on id i (logit li), as the reference decides it.
inline bool Keeps(const Mask& m, int32_t i, float li) {
  if (m.has_top_k && !(li >= m.kth)) return false;
  if (m.has_top_p && RanksBefore(m.cut_logit, m.cut_id, li, i)) return false;
  // The reference's weight, computed the same way: std::exp of the same double.
  if (m.has_min_p && std::exp(double(li) - m.max_logit) < m.min_p) return false;
  return true;
}

// Gumbel-max over the kept ids (mask: nullptr = all), as the reference loop, without the noise
// of the ids that cannot win. Returns -1 when no id is kept.
int32_t Draw(const float* l, int32_t n, uint64_t key, const uint64_t* counter_mix, int32_t argmax, const Mask* mask) {
  const NoiseBounds& bounds = GetNoiseBounds();
  float best = -INFINITY;
  int32_t chosen = -1;
  auto consider = [&](int32_t i) {
    const float li = l[i];
    if (mask != nullptr && !Keeps(*mask, i, li)) return;
    const float score = li + GumbelNoise(key, static_cast<uint64_t>(i));
    if (chosen < 0 || RanksBefore(score, i, best, chosen)) {
      best = score;
      chosen = i;
    }
  };
  // The argmax first: its score is usually close to the winner's, which makes the bounds
  // below bite from the first id. Scoring it again in the scan changes nothing (not better
  // than itself).
  consider(argmax);
  // fl(li + bound) < best implies fl(li + noise) < best (rounding is monotone): no win, no tie.
  // Chunk by chunk: first the ids whose bound reaches `best` (as it was before the chunk: no
  // larger than the current one, so it rules out fewer ids, never a winner), then those few,
  // scored exactly.
  const float floor = mask != nullptr ? mask->floor : -INFINITY;
  constexpr int32_t kChunk = 256;
  int32_t live[kChunk];
  for (int32_t begin = 0; begin < n; begin += kChunk) {
    const int32_t end = std::min(n, begin + kChunk);
    int32_t num_live = 0;
    const float chunk_best = best;
    auto test = [&](int32_t i) {  // without branches: which ids pass is anyone's guess
      const float li = l[i];
      live[num_live] = i;
      num_live += (li + bounds.block[TabledNoiseBlock(key, counter_mix, i)] >= chunk_best) & (li >= floor);
    };
    int32_t i = begin;
#if defined(__SSE2__)
    // Four ids at a time out of the running while none reaches best with the largest noise
    // and the masks' floor.
    const __m128 max_noise = _mm_set1_ps(bounds.max), vbest = _mm_set1_ps(chunk_best), vfloor = _mm_set1_ps(floor);
    for (; i + 4 <= end; i += 4) {
      const __m128 v = _mm_loadu_ps(l + i);
      if (_mm_movemask_ps(_mm_and_ps(_mm_cmpge_ps(_mm_add_ps(v, max_noise), vbest), _mm_cmpge_ps(v, vfloor))) == 0) continue;
      for (int32_t j = i; j < i + 4; ++j) test(j);
    }
#endif
    for (; i < end; ++i) test(i);
    for (int32_t j = 0; j < num_live; ++j) {
      const int32_t id = live[j];
      if (l[id] + bounds.block[TabledNoiseBlock(key, counter_mix, id)] < best) continue;  // best has grown
      consider(id);
    }
  }
  return chosen;
}

// Rows handed to the reference, for tests (rare: the count costs nothing).
std::atomic<int64_t> g_rows_to_reference{0};

// ---- One row --------------------------------------------------------------------------------

void SampleRow(const StepBatch& b, int32_t s, const float* raw, int32_t vocab, const uint64_t* counter_mix,
               const StepResult& r, RowScratch& sc) {
  const float temperature = b.temperature[s];
  const bool greedy = IsGreedy(temperature);
  const float t = EffectiveTemperature(temperature);
  // The processed logits: a copy edited by logit adjustments and penalties, or scaled straight
  // from raw, or (greedy, nothing to edit) raw itself.
  const bool has_adjusts = b.logit_adjust_offsets[s + 1] > b.logit_adjust_offsets[s];
  const bool has_penalties = b.penalty_offsets[s + 1] > b.penalty_offsets[s] &&
                             !(b.repetition_penalty[s] == 1.f && b.presence_penalty[s] == 0.f && b.frequency_penalty[s] == 0.f);
  const float* l = sc.logits.data();
  float mx;
  bool no_nan;
  if (has_adjusts || has_penalties) {
    std::memcpy(sc.logits.data(), raw, sizeof(float) * vocab);
    ApplyLogitAdjusts(b, s, sc.logits.data());
    ApplyPenalties(b, s, sc.logits.data(), sc.in_history.data(), sc.out_count.data());
    no_nan = ScaleAndMax(sc.logits.data(), sc.logits.data(), vocab, t, !greedy, &mx);
  } else if (greedy) {
    l = raw;
    no_nan = ScaleAndMax(raw, nullptr, vocab, t, false, &mx);
  } else {
    no_nan = ScaleAndMax(raw, sc.logits.data(), vocab, t, true, &mx);
  }
  if (!no_nan || !std::isfinite(mx)) {
    g_rows_to_reference.fetch_add(1, std::memory_order_relaxed);
    SampleRowReference(b, s, raw, vocab, r);
    return;
  }
  const int32_t argmax = FirstIndexOf(l, vocab, mx);
  const float max_logit = l[argmax];
  const int32_t top_k = b.top_k[s];
  const bool has_top_p = !greedy && b.top_p[s] < 1.f;
  if (has_top_p) sc.weights.resize(vocab);
  const double sum = ExpSum(l, vocab, max_logit, has_top_p ? sc.weights.data() : nullptr);
  const double log_sum = double(max_logit) + std::log(sum);  // logsumexp of the processed logits

  int32_t chosen = argmax;
  if (!greedy) {
    Mask m;
    m.has_top_k = top_k > 0 && top_k < vocab;
    m.has_top_p = has_top_p;
    m.has_min_p = b.min_p[s] > 0.f;
    m.min_p = double(b.min_p[s]);
    m.max_logit = max_logit;
    if (m.has_top_k) {
      m.kth = KthLargest(l, vocab, top_k, sc);
      m.floor = m.kth;
    }
    if (m.has_top_p) {
      const TopPCutoff cut = FindTopPCutoff(l, sc.weights.data(), vocab, argmax, m.kth, m.has_top_k && top_k <= kFewKept, b.top_p[s], sc);
      if (!cut.certain) {
        g_rows_to_reference.fetch_add(1, std::memory_order_relaxed);
        SampleRowReference(b, s, raw, vocab, r);
        return;
      }
      m.cut_logit = cut.logit;
      m.cut_id = cut.id;
      m.floor = std::max(m.floor, cut.logit);
    }
    if (m.has_min_p) {
      // exp(l - max) < min_p * e^-0.001 for l below this: masked whatever std::exp rounds to.
      // Rounded down to a float, so that no l above the double bound falls below it.
      const double bound = double(max_logit) + std::log(m.min_p) - 1e-3;
      float min_p_floor = static_cast<float>(bound);
      if (double(min_p_floor) > bound) min_p_floor = std::nextafter(min_p_floor, -INFINITY);
      m.floor = std::max(m.floor, min_p_floor);
    }
    const bool masked = m.has_top_k || m.has_top_p || m.has_min_p;
    chosen = Draw(l, vocab, RngKey(b.rng_key_lo[s], b.rng_key_hi[s]), counter_mix, argmax, masked ? &m : nullptr);
    if (chosen < 0) chosen = argmax;  // nothing kept: as the reference
  }
  r.sampled_token_ids[s] = chosen;
  r.sampled_logprobs[s] = static_cast<float>(double(l[chosen]) - log_sum);

  // Top-N by insertion into a short sorted list (N <= kMaxTopLogprobs). Once the list is full
  // only a logit above its last one can enter (a tie has a larger id), so four ids at a time
  // are skipped with one compare.
  const int32_t k = b.max_top_logprobs, n = std::min(b.num_logprobs[s], k);
  int32_t* top_ids = r.top_token_ids + int64_t(s) * k;
  float* top_lp = r.top_logprobs + int64_t(s) * k;
  int32_t count = 0;
  auto offer = [&](int32_t i) {
    if (count == n && !RanksBefore(l[i], i, l[top_ids[n - 1]], top_ids[n - 1])) return;
    int32_t j = count < n ? count++ : n - 1;
    while (j > 0 && RanksBefore(l[i], i, l[top_ids[j - 1]], top_ids[j - 1])) {
      top_ids[j] = top_ids[j - 1];
      --j;
    }
    top_ids[j] = i;
  };
  if (n > 0) {
    int32_t i = 0;
    for (; i < vocab && count < n; ++i) offer(i);
    for (; i + 4 <= vocab; i += 4) {
      if (!AnyAbove4(l + i, l[top_ids[n - 1]])) continue;
      for (int32_t j = i; j < i + 4; ++j) offer(j);
    }
    for (; i < vocab; ++i) offer(i);
  }
  for (int32_t j = 0; j < count; ++j) top_lp[j] = static_cast<float>(double(l[top_ids[j]]) - log_sum);
}

}  // namespace

void SampleBatch(ThreadPool& pool, const StepBatch& b, const float* logits, const int32_t* row_of_seq,
                 int32_t vocab, const StepResult& r) {
  const int64_t k = b.max_top_logprobs;
  for (int64_t i = 0; i < int64_t(b.num_seqs) * k; ++i) {
    r.top_token_ids[i] = -1;
    r.top_logprobs[i] = 0.f;
  }
  GetNoiseBounds();  // built once, before the threads race to them
  GetExp2Table();
  const uint64_t* counter_mix = CounterMixTable(vocab);
  pool.ParallelFor(b.num_seqs, 1, [&](int64_t begin, int64_t end) {
    RowScratch sc;
    sc.logits.resize(vocab);
    sc.in_history.assign(vocab, 0);
    sc.out_count.assign(vocab, 0);
    for (int64_t s = begin; s < end; ++s) {
      if (!b.is_sampled[s]) {
        r.sampled_token_ids[s] = -1;
        r.sampled_logprobs[s] = 0.f;
        continue;
      }
      SampleRow(b, static_cast<int32_t>(s), logits + int64_t(row_of_seq[s]) * vocab, vocab, counter_mix, r, sc);
    }
  });
}

int64_t SamplerRowsToReference() { return g_rows_to_reference.load(std::memory_order_relaxed); }

SamplerBoundCheck CheckSamplerNoiseBounds(uint64_t first_bits, uint64_t count) {
  const NoiseBounds& bounds = GetNoiseBounds();
  SamplerBoundCheck check;
  check.min_slack = INFINITY;
  for (uint64_t k = 0; k < count; ++k) {
    const uint32_t bits = static_cast<uint32_t>(first_bits + k);
    const float noise = GumbelNoiseFromBits(bits);
    const float bound = bounds.block[bits >> (32 - kNoiseBlockBits)];
    if (!(noise <= bound) || !(noise <= bounds.max)) ++check.violations;
    check.min_slack = std::min(check.min_slack, double(bound) - double(noise));
    const uint64_t x = (first_bits + k) * 0x9E3779B97F4A7C15ull;
    if (Mix64Top31(x) != static_cast<uint32_t>(Mix64(x) >> 33)) ++check.mix_mismatches;
  }
  return check;
}

double MaxSamplerExpError(double lo, double hi, int64_t count) {
  const Exp2Table& table = GetExp2Table();
  double worst = 0;
  for (int64_t k = 0; k < count; ++k) {
    const double x = count > 1 ? lo + (hi - lo) * double(k) / double(count - 1) : lo;
    worst = std::max(worst, std::fabs(ExpNonPositive(x, table) / std::exp(x) - 1.0));
#if defined(__SSE2__)
    double lanes[2];
    _mm_storeu_pd(lanes, ExpNonPositive2(_mm_set1_pd(x), table));
    worst = std::max(worst, std::fabs(lanes[0] / std::exp(x) - 1.0));
#endif
#ifdef SPINDLE_SAMPLER_AVX2
    if (CpuHasAvx2Fma()) worst = std::max(worst, std::fabs(ExpAvx2ForTest(x, table) / std::exp(x) - 1.0));
#endif
  }
  return worst;
}

}  // namespace cpu
}  // namespace spindle
