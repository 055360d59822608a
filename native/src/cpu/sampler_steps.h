// Steps 0-2 of sampling_math.h on one row's logits, shared by the CPU sampler (sampler.cc) and
// its plain reference (sampler_reference.cc): what they check is everything after these.
#pragma once
#include <cstdint>

#include "batch_layout.h"
#include "sampling_math.h"

namespace spindle {
namespace cpu {

// Step 0: the row's logit adjustments, logit_bias values added and min_tokens bans set to -inf,
// which every later step keeps (penalties, temperature and masks leave -inf as it is; its
// weight is 0). The executor checked each id occurs once in the row.
inline void ApplyLogitAdjusts(const StepBatch& b, int32_t s, float* logits) {
  for (int32_t i = b.logit_adjust_offsets[s]; i < b.logit_adjust_offsets[s + 1]; ++i) {
    float& logit = logits[b.logit_adjust_tokens[i]];
    logit = AdjustLogit(logit, b.logit_adjust_values[i]);
  }
}

// Steps 1-2: penalties from the row's token history, applied to the (already adjusted) logits.
// in_history and out_count are [vocab] scratch, all zero on entry and left so.
inline void ApplyPenalties(const StepBatch& b, int32_t s, float* logits, uint8_t* in_history, int32_t* out_count) {
  const float rep = b.repetition_penalty[s], pres = b.presence_penalty[s], freq = b.frequency_penalty[s];
  if (rep == 1.f && pres == 0.f && freq == 0.f) return;
  const int32_t begin = b.penalty_offsets[s], end = b.penalty_offsets[s + 1];
  const int32_t output_begin = begin + b.penalty_prompt_lens[s];
  const int32_t* tokens = b.penalty_tokens;
  for (int32_t i = begin; i < end; ++i) in_history[tokens[i]] = 1;
  for (int32_t i = output_begin; i < end; ++i) ++out_count[tokens[i]];
  for (int32_t i = begin; i < end; ++i) {
    const int32_t id = tokens[i];
    if (in_history[id] != 1) continue;  // each distinct token once
    in_history[id] = 2;
    logits[id] = PenalizeLogit(logits[id], rep, true, out_count[id], pres, freq);
  }
  for (int32_t i = begin; i < end; ++i) {
    in_history[tokens[i]] = 0;
    out_count[tokens[i]] = 0;
  }
}

}  // namespace cpu
}  // namespace spindle
