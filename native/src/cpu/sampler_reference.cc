// The CPU sampler as first written: every step over the whole vocabulary, exp in double, the
// Gumbel noise of every id. SampleBatch (sampler.cc) must draw exactly what this draws; tests
// compare the two (cpuKernels.sample), and SampleBatch hands it the rows its shortcuts do not
// cover (non-finite logits, a top_p cut-off too close to call). Keep it plain: it is the
// definition, not the fast path.
#include "cpu/sampler.h"
#include "cpu/sampler_steps.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "sampling_math.h"

namespace spindle {
namespace cpu {
namespace {

// Per-thread scratch, sized to the vocabulary once per chunk of rows.
struct RowScratch {
  std::vector<float> logits;       // [vocab] processed logits
  std::vector<uint8_t> in_history; // [vocab] 1 once seen in prompt + output (reset after use)
  std::vector<int32_t> out_count;  // [vocab] occurrences in the output (reset after use)
  std::vector<uint8_t> kept;       // [vocab] survives the masks
  std::vector<float> values;       // [vocab] copy for nth_element
  std::vector<double> weights;     // [vocab] exp(logit - max logit): unnormalized probabilities
  std::vector<std::pair<float, int32_t>> order;  // top-p candidates (logit, id), sorted best first
};

// Best first: larger logit, ties -> lower id.
bool CandidateRanksBefore(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return RanksBefore(a.first, a.second, b.first, b.second);
}

// Step 5: marks the tokens that survive top_k, top_p and min_p in sc.kept, from the processed
// logits and their weights exp(logit - max logit).
void ApplyMasks(const StepBatch& b, int32_t s, int32_t vocab, RowScratch& sc) {
  const float* l = sc.logits.data();
  const double* w = sc.weights.data();
  std::fill(sc.kept.begin(), sc.kept.end(), 1);
  const int32_t k = b.top_k[s];
  if (k > 0 && k < vocab) {
    sc.values.assign(l, l + vocab);
    std::nth_element(sc.values.begin(), sc.values.begin() + (k - 1), sc.values.end(), std::greater<float>());
    const float kth = sc.values[k - 1];  // ties with the k-th value are kept
    for (int32_t i = 0; i < vocab; ++i) sc.kept[i] = l[i] >= kth;
  }
  const float top_p = b.top_p[s];
  if (top_p < 1.f) {
    sc.order.clear();
    double mass = 0;
    for (int32_t i = 0; i < vocab; ++i) {
      if (sc.kept[i]) {
        sc.order.emplace_back(l[i], i);
        mass += w[i];
      }
    }
    // Keep a token while the mass ranked above it is < top_p (vLLM: drop where the ascending
    // cumulative sum <= 1 - top_p); the most probable token is always kept. The kept set is
    // usually small, so sort a growing prefix instead of the whole vocabulary.
    const size_t n = sc.order.size();
    size_t sorted = std::min<size_t>(n, 64), num_kept = n;
    for (;;) {
      // Bring the best `sorted` candidates to the front (O(n)), then sort only those.
      if (sorted < n) std::nth_element(sc.order.begin(), sc.order.begin() + sorted, sc.order.end(), CandidateRanksBefore);
      std::sort(sc.order.begin(), sc.order.begin() + sorted, CandidateRanksBefore);
      double above = 0;
      size_t j = 0;
      for (; j < sorted; ++j) {
        if (j > 0 && above >= top_p) break;
        above += w[sc.order[j].second] / mass;
      }
      if (j < sorted || above >= top_p || sorted == n) {
        num_kept = j;
        break;
      }
      sorted = std::min(n, sorted * 8);
    }
    for (size_t j = num_kept; j < n; ++j) sc.kept[sc.order[j].second] = 0;
  }
  const float min_p = b.min_p[s];
  if (min_p > 0.f) {
    // p_i < min_p * p_max  <=>  exp(l_i - l_max) < min_p; masking before only renormalizes.
    for (int32_t i = 0; i < vocab; ++i) {
      if (sc.kept[i] && w[i] < double(min_p)) sc.kept[i] = 0;
    }
  }
}

void SampleRow(const StepBatch& b, int32_t s, const float* raw, int32_t vocab, const StepResult& r,
               RowScratch& sc) {
  sc.logits.assign(raw, raw + vocab);
  ApplyLogitAdjusts(b, s, sc.logits.data());
  ApplyPenalties(b, s, sc.logits.data(), sc.in_history.data(), sc.out_count.data());
  const float temperature = b.temperature[s];
  const bool greedy = IsGreedy(temperature);
  float* l = sc.logits.data();
  if (!greedy) {
    const float t = EffectiveTemperature(temperature);
    for (int32_t i = 0; i < vocab; ++i) l[i] /= t;
  }
  int32_t argmax = 0;
  for (int32_t i = 1; i < vocab; ++i) {
    if (RanksBefore(l[i], i, l[argmax], argmax)) argmax = i;
  }
  const float max_logit = l[argmax];
  sc.weights.resize(vocab);
  double sum = 0;
  for (int32_t i = 0; i < vocab; ++i) sum += (sc.weights[i] = std::exp(double(l[i]) - max_logit));
  const double log_sum = double(max_logit) + std::log(sum);  // logsumexp of the processed logits

  int32_t chosen = argmax;
  if (!greedy) {
    const bool masked = (b.top_k[s] > 0 && b.top_k[s] < vocab) || b.top_p[s] < 1.f || b.min_p[s] > 0.f;
    if (masked) ApplyMasks(b, s, vocab, sc);
    const uint64_t key = RngKey(b.rng_key_lo[s], b.rng_key_hi[s]);
    float best = -INFINITY;
    chosen = -1;
    for (int32_t i = 0; i < vocab; ++i) {
      if (masked && !sc.kept[i]) continue;
      const float score = l[i] + GumbelNoise(key, static_cast<uint64_t>(i));
      if (chosen < 0 || RanksBefore(score, i, best, chosen)) {
        best = score;
        chosen = i;
      }
    }
    if (chosen < 0) chosen = argmax;  // every logit -inf: nothing better to do
  }
  r.sampled_token_ids[s] = chosen;
  r.sampled_logprobs[s] = static_cast<float>(double(l[chosen]) - log_sum);

  // Top-N by insertion into a short sorted list (N <= kMaxTopLogprobs).
  const int32_t k = b.max_top_logprobs, n = std::min(b.num_logprobs[s], k);
  int32_t* top_ids = r.top_token_ids + int64_t(s) * k;
  float* top_lp = r.top_logprobs + int64_t(s) * k;
  int32_t count = 0;
  for (int32_t i = 0; i < vocab && n > 0; ++i) {
    if (count == n && !RanksBefore(l[i], i, l[top_ids[n - 1]], top_ids[n - 1])) continue;
    int32_t j = count < n ? count++ : n - 1;
    while (j > 0 && RanksBefore(l[i], i, l[top_ids[j - 1]], top_ids[j - 1])) {
      top_ids[j] = top_ids[j - 1];
      --j;
    }
    top_ids[j] = i;
  }
  for (int32_t j = 0; j < count; ++j) top_lp[j] = static_cast<float>(double(l[top_ids[j]]) - log_sum);
}

}  // namespace

void SampleRowReference(const StepBatch& b, int32_t s, const float* raw, int32_t vocab, const StepResult& r) {
  RowScratch sc;
  sc.in_history.assign(vocab, 0);
  sc.out_count.assign(vocab, 0);
  sc.kept.assign(vocab, 1);
  SampleRow(b, s, raw, vocab, r, sc);
}

void SampleBatchReference(ThreadPool& pool, const StepBatch& b, const float* logits, const int32_t* row_of_seq,
                          int32_t vocab, const StepResult& r) {
  const int64_t k = b.max_top_logprobs;
  for (int64_t i = 0; i < int64_t(b.num_seqs) * k; ++i) {
    r.top_token_ids[i] = -1;
    r.top_logprobs[i] = 0.f;
  }
  pool.ParallelFor(b.num_seqs, 1, [&](int64_t begin, int64_t end) {
    RowScratch sc;
    sc.in_history.assign(vocab, 0);
    sc.out_count.assign(vocab, 0);
    sc.kept.assign(vocab, 1);
    for (int64_t s = begin; s < end; ++s) {
      if (!b.is_sampled[s]) {
        r.sampled_token_ids[s] = -1;
        r.sampled_logprobs[s] = 0.f;
        continue;
      }
      SampleRow(b, static_cast<int32_t>(s), logits + int64_t(row_of_seq[s]) * vocab, vocab, r, sc);
    }
  });
}

}  // namespace cpu
}  // namespace spindle
