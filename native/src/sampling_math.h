// Sampling math shared by the CPU sampler (cpu/sampler.cc) and the CUDA sampler, so that both
// backends draw the same token from the same logits and key. Every function here is
// header-only, branch-light and usable from CUDA device code (SPINDLE_HD).
//
// The order of operations on one sampled row (vLLM semantics):
//   0. the row's logit adjustments (the batch's logitAdjustTokens/Values, one entry per id):
//      AdjustLogit below. A logit_bias adds its value; a ban (min_tokens not yet reached bans
//      the stop ids and EOS ids) sets -inf, which the steps below keep, so a banned id is never
//      drawn and its logprob is -inf. vLLM v1 applies both before the penalties, as here.
//      CPU: cpu/sampler.cc; CUDA: cuda/logit_adjust.cu, run on the logits before the sampler.
//   1. repetition penalty over prompt + output tokens (each distinct token once):
//        logit > 0 ? logit / r : logit * r
//   2. presence / frequency penalties over output tokens only:
//        logit -= presence * [count > 0] + frequency * count
//   3. temperature: logit / T; T <= kGreedyTemperature means greedy (argmax of the penalized
//      logits, ties -> lowest id, no masks, no noise; logprobs then use T = 1).
//   4. logprobs = log_softmax of these processed logits (before any masking).
//   5. masks, in this order: top_k (keep the k largest; ties at the k-th value are kept),
//      top_p (over the top_k-renormalized distribution: keep the smallest most-probable set
//      whose mass >= top_p; always >= 1 token), min_p (drop p < min_p * p_max).
//   6. draw by the Gumbel-max trick: argmax over unmasked tokens i of
//        processed_logit[i] + GumbelNoise(key, i)
//      with ties -> lowest id. The noise of token i depends only on the row's 64-bit key and
//      i, so a row's draw depends only on its key and logits, never on the rest of the batch.
#pragma once
#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SPINDLE_HD __host__ __device__
#else
#define SPINDLE_HD
#endif

namespace spindle {

// Temperatures at or below this are greedy (vLLM's _SAMPLING_EPS).
constexpr float kGreedyTemperature = 1e-5f;

// SplitMix64's finalizer: a bijective 64-bit mix with full avalanche.
SPINDLE_HD inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

// Mix64(x) >> 33, a step shorter: Mix64's last xor-shift leaves the top 31 bits as they are.
SPINDLE_HD inline uint32_t Mix64Top31(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return static_cast<uint32_t>(x >> 33);
}

// RngHash's first round, which depends on the counter only (the CPU sampler tabulates it
// per vocabulary).
SPINDLE_HD inline uint64_t RngCounterMix(uint64_t counter) {
  return Mix64(counter * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull);
}

// Counter-based hash: 64 random bits for (key, counter). Two rounds so that neighbouring
// keys and neighbouring counters give unrelated outputs.
SPINDLE_HD inline uint64_t RngHash(uint64_t key, uint64_t counter) {
  return Mix64(key ^ RngCounterMix(counter));
}

SPINDLE_HD inline uint64_t RngKey(uint32_t lo, uint32_t hi) {
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// The 32 hash bits that token `index`'s Gumbel noise is made from.
SPINDLE_HD inline uint32_t GumbelBits(uint64_t key, uint64_t index) {
  return static_cast<uint32_t>(RngHash(key, index) >> 32);
}

// Standard Gumbel noise -log(E), E ~ Exp(1), from 32 random bits. E = -log(1 - v) with v
// uniform in (0, 1) from the bits (in float the top 128 bits values round to v = 1: noise
// -inf); computing it as -log1p(-v) keeps full relative precision for small E, which is where
// the winning tokens live. The noise falls as `bits` grows; its largest value, at bits = 0
// (v = 2^-33), is 33 ln 2 = 22.87. The CPU sampler's bounds rely on both facts
// (test/native/sampler-fast.test.ts checks them): change them together.
SPINDLE_HD inline float GumbelNoiseFromBits(uint32_t bits) {
  const float v = (static_cast<float>(bits) + 0.5f) * 2.3283064365386963e-10f;
  const float e = -log1pf(-v);
  return -logf(e);
}

// Standard Gumbel noise for token `index` of the row with `key`.
SPINDLE_HD inline float GumbelNoise(uint64_t key, uint64_t index) {
  return GumbelNoiseFromBits(GumbelBits(key, index));
}

// Step 0 for one token: `adjust` is -inf (a ban) or a finite bias. A ban sets -inf rather
// than adding it, so that no raw logit (not even +inf) can lift a banned id off -inf.
SPINDLE_HD inline float AdjustLogit(float logit, float adjust) {
  return adjust == -INFINITY ? -INFINITY : logit + adjust;
}

// Steps 1 and 2 for one token. `in_history`: the token occurs in prompt or output;
// `output_count`: how often it occurs in the output.
SPINDLE_HD inline float PenalizeLogit(float logit, float repetition_penalty, bool in_history,
                                      int32_t output_count, float presence_penalty,
                                      float frequency_penalty) {
  if (in_history && repetition_penalty != 1.f) {
    logit = logit > 0.f ? logit / repetition_penalty : logit * repetition_penalty;
  }
  if (output_count > 0) {
    logit -= presence_penalty + frequency_penalty * static_cast<float>(output_count);
  }
  return logit;
}

SPINDLE_HD inline bool IsGreedy(float temperature) { return temperature <= kGreedyTemperature; }

// Step 3: the divisor of the penalized logits (1 for greedy rows).
SPINDLE_HD inline float EffectiveTemperature(float temperature) {
  return IsGreedy(temperature) ? 1.f : temperature;
}

// "a beats b" for arg-max/top-N selection: larger value first, ties -> lower id.
SPINDLE_HD inline bool RanksBefore(float value_a, int32_t id_a, float value_b, int32_t id_b) {
  return value_a > value_b || (value_a == value_b && id_a < id_b);
}

}  // namespace spindle
