// The batched GPU sampler: samples every row of one step in a fixed number of launches
// (no per-row launches, no host synchronisation, no host reads), writing straight into the
// device copy of the step result slab (layout: batch_layout.h's StepResult).
//
// Semantics (same as the CPU sampler, native/src/cpu/sampler.cc), per row s:
//   1. penalties on the raw logits l (vLLM order): repetition (r = repetition_penalty[s]) on
//      every token of prompt + output: l > 0 ? l / r : l * r; then presence / frequency on
//      output tokens: l -= frequency * count + presence * (count > 0).
//   2. temperature: x = l / T (T <= kGreedyTemperature: greedy, x = l and the draw is argmax,
//      ties -> lowest id).
//   3. logprobs = log_softmax(x): the sampled token's and the top-N (N = num_logprobs[s],
//      best first, ties -> lowest id); computed before any masking.
//   4. masks, all value thresholds on x (every token tied with the last kept one is kept):
//      top_k keeps the k largest; top_p, over what top_k left (renormalised), keeps the
//      smallest top set whose mass >= top_p (at least one token); min_p drops
//      p < min_p * p_max.
//   5. draw: Gumbel-max over the kept tokens with uniforms from the row's 64-bit rng key and
//      the token id (sampling_math.h), so a row's draw depends only on its key and logits.
// Thresholds come from radix-select passes over the float bits (no sort); each row is
// held in the shared memory of one thread-block cluster.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "batch_layout.h"

namespace spindle {
namespace cuda {

// Largest vocabulary one cluster holds in shared memory (8 blocks x ~24k floats).
constexpr int32_t kSamplerMaxVocab = 196608;

// Every pointer is device memory. Per-row columns are device copies of the step batch's
// columns (batch_layout.h), indexed by row = sequence index s.
struct SamplerArgs {
  int32_t num_rows = 0;           // = num_seqs of the batch
  int32_t vocab_size = 0;         // <= kSamplerMaxVocab
  int32_t max_top_logprobs = 0;   // row stride of the top-N outputs (batch header), <= 20
  const float* logits = nullptr;  // [num_rows, logits_row_stride] fp32, last-token logits of
                                  // each sequence; read only (penalties are applied on chip)
  int64_t logits_row_stride = 0;  // elements between rows (>= vocab_size)

  const int32_t* is_sampled = nullptr;          // [num_rows]; nullptr = every row is sampled
  const float* temperature = nullptr;           // [num_rows]
  const int32_t* top_k = nullptr;               // [num_rows]
  const float* top_p = nullptr;                 // [num_rows]
  const float* min_p = nullptr;                 // [num_rows]
  const float* presence_penalty = nullptr;      // [num_rows]
  const float* frequency_penalty = nullptr;     // [num_rows]
  const float* repetition_penalty = nullptr;    // [num_rows]
  const uint32_t* rng_key_lo = nullptr;         // [num_rows]
  const uint32_t* rng_key_hi = nullptr;         // [num_rows]
  const int32_t* num_logprobs = nullptr;        // [num_rows], 0..max_top_logprobs
  const int32_t* penalty_offsets = nullptr;     // [num_rows + 1]
  const int32_t* penalty_prompt_lens = nullptr; // [num_rows]
  const int32_t* penalty_tokens = nullptr;      // [penalty_offsets[num_rows]]

  void* workspace = nullptr;      // SamplerWorkspaceBytes(max_rows, vocab) bytes (may be 0)
  size_t workspace_bytes = 0;

  // Outputs (the device result slab; StepResult's layout):
  int32_t* sampled_token_ids = nullptr;  // [num_rows]; -1 where is_sampled = 0
  float* sampled_logprobs = nullptr;     // [num_rows]; 0 where is_sampled = 0
  int32_t* top_token_ids = nullptr;      // [num_rows, max_top_logprobs]; -1 past num_logprobs
  float* top_logprobs = nullptr;         // [num_rows, max_top_logprobs]; 0 past num_logprobs (as the CPU sampler)
};

// Device scratch the sampler needs for `max_rows` rows of `vocab_size` (today 0: each row
// lives in its cluster's shared memory; kept so callers allocate through it).
size_t SamplerWorkspaceBytes(int32_t max_rows, int32_t vocab_size);

// Enqueues the whole batch on `stream` (one launch). Throws std::runtime_error on bad
// arguments or a launch error; never synchronises.
void SampleBatch(const SamplerArgs& args, cudaStream_t stream);

// Fills a SamplerArgs from a device copy of a packed step batch and a device result slab:
// `host_batch` was parsed (ParseStepBatch) over `host_base`; the same bytes live at
// `device_base`, so each column is at the same offset there. `device_result` is
// LayStepResult over the device slab.
inline SamplerArgs SamplerArgsForBatch(const StepBatch& host_batch, const void* host_base,
                                       const void* device_base, const float* device_logits,
                                       int64_t logits_row_stride, int32_t vocab_size,
                                       const StepResult& device_result, void* workspace,
                                       size_t workspace_bytes) {
  auto on_device = [&](const auto* host_ptr) {
    using T = std::remove_pointer_t<decltype(host_ptr)>;
    const ptrdiff_t offset = reinterpret_cast<const char*>(host_ptr) - static_cast<const char*>(host_base);
    return reinterpret_cast<T*>(static_cast<const char*>(device_base) + offset);
  };
  SamplerArgs a;
  a.num_rows = host_batch.num_seqs;
  a.vocab_size = vocab_size;
  a.max_top_logprobs = host_batch.max_top_logprobs;
  a.logits = device_logits;
  a.logits_row_stride = logits_row_stride;
  a.is_sampled = on_device(host_batch.is_sampled);
  a.temperature = on_device(host_batch.temperature);
  a.top_k = on_device(host_batch.top_k);
  a.top_p = on_device(host_batch.top_p);
  a.min_p = on_device(host_batch.min_p);
  a.presence_penalty = on_device(host_batch.presence_penalty);
  a.frequency_penalty = on_device(host_batch.frequency_penalty);
  a.repetition_penalty = on_device(host_batch.repetition_penalty);
  a.rng_key_lo = on_device(host_batch.rng_key_lo);
  a.rng_key_hi = on_device(host_batch.rng_key_hi);
  a.num_logprobs = on_device(host_batch.num_logprobs);
  a.penalty_offsets = on_device(host_batch.penalty_offsets);
  a.penalty_prompt_lens = on_device(host_batch.penalty_prompt_lens);
  a.penalty_tokens = on_device(host_batch.penalty_tokens);
  a.workspace = workspace;
  a.workspace_bytes = workspace_bytes;
  a.sampled_token_ids = device_result.sampled_token_ids;
  a.sampled_logprobs = device_result.sampled_logprobs;
  a.top_token_ids = device_result.top_token_ids;
  a.top_logprobs = device_result.top_logprobs;
  return a;
}

}  // namespace cuda
}  // namespace spindle
