// The packed step batch and step result: mirror of src/engine/batch-layout.ts (read its
// comment for the meaning of each column). Change both together.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace spindle {

constexpr int32_t kBatchMagic = 0x53504e31;  // "SPN1"
constexpr int kBatchHeaderInts = 16;
constexpr int kResultHeaderFloats = 8;
constexpr int kMaxTopLogprobs = 20;

// A pending token (async scheduling): in a batch whose header has hasPendingTokens set, a
// negative entry of inputIds or penaltyTokens stands for the token the previous step sampled
// in its row PendingTokenRow(entry) (StepQueue fills it in before the step runs).
inline int32_t PendingTokenRow(int32_t entry) { return -1 - entry; }

// Read-only views over one packed step batch. Pointers alias the caller's buffer.
struct StepBatch {
  int32_t num_seqs = 0, num_tokens = 0, max_blocks_per_seq = 0, max_top_logprobs = 0;
  int32_t logits_mode = 0, num_penalty_tokens = 0, num_logit_adjusts = 0;
  bool has_pending_tokens = false;             // header[8]: see PendingTokenRow
  const int32_t* input_ids = nullptr;          // [num_tokens]
  const int32_t* positions = nullptr;          // [num_tokens]
  const int32_t* slot_mapping = nullptr;       // [num_tokens]
  const int32_t* query_start_loc = nullptr;    // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;           // [num_seqs]
  const int32_t* block_tables = nullptr;       // [num_seqs, max_blocks_per_seq]
  const int32_t* is_sampled = nullptr;         // [num_seqs]
  const float* temperature = nullptr;          // [num_seqs]
  const int32_t* top_k = nullptr;              // [num_seqs]
  const float* top_p = nullptr;                // [num_seqs]
  const float* min_p = nullptr;                // [num_seqs]
  const float* presence_penalty = nullptr;     // [num_seqs]
  const float* frequency_penalty = nullptr;    // [num_seqs]
  const float* repetition_penalty = nullptr;   // [num_seqs]
  const uint32_t* rng_key_lo = nullptr;        // [num_seqs]
  const uint32_t* rng_key_hi = nullptr;        // [num_seqs]
  const int32_t* num_logprobs = nullptr;       // [num_seqs]
  const int32_t* penalty_offsets = nullptr;    // [num_seqs + 1]
  const int32_t* penalty_prompt_lens = nullptr;// [num_seqs]
  const int32_t* penalty_tokens = nullptr;     // [num_penalty_tokens]
  const int32_t* logit_adjust_offsets = nullptr;  // [num_seqs + 1]: row s owns entries [lo[s], lo[s+1])
  const int32_t* logit_adjust_tokens = nullptr;   // [num_logit_adjusts]: ids, distinct within a row
  const float* logit_adjust_values = nullptr;     // [num_logit_adjusts]: added before penalties; -inf = ban
  size_t byte_length = 0;                      // whole packed batch, for copying it as one block

  int32_t num_logit_rows() const {
    return logits_mode == 1 ? num_seqs : logits_mode == 2 ? num_tokens : 0;
  }
};

// Parses the header and lays the column pointers over `data`. Throws std::runtime_error
// on a malformed batch (wrong magic, negative sizes, buffer too short).
inline StepBatch ParseStepBatch(const void* data, size_t byte_length) {
  if (byte_length < kBatchHeaderInts * 4) throw std::runtime_error("step batch: buffer shorter than its header");
  const int32_t* h = static_cast<const int32_t*>(data);
  if (h[0] != kBatchMagic) throw std::runtime_error("step batch: bad magic");
  StepBatch b;
  b.num_seqs = h[1]; b.num_tokens = h[2]; b.max_blocks_per_seq = h[3];
  b.max_top_logprobs = h[4]; b.logits_mode = h[5]; b.num_penalty_tokens = h[6]; b.num_logit_adjusts = h[7];
  b.has_pending_tokens = h[8] != 0;
  if (b.num_seqs < 0 || b.num_tokens < 0 || b.max_blocks_per_seq < 0 || b.num_penalty_tokens < 0 ||
      b.num_logit_adjusts < 0 || h[8] < 0 || h[8] > 1 ||
      b.max_top_logprobs < 0 || b.max_top_logprobs > kMaxTopLogprobs || b.logits_mode < 0 || b.logits_mode > 2)
    throw std::runtime_error("step batch: bad header");
  const int32_t n = b.num_seqs, t = b.num_tokens;
  size_t ints = kBatchHeaderInts;
  const int32_t* p = h + kBatchHeaderInts;
  auto take = [&](size_t count) { const int32_t* q = p; p += count; ints += count; return q; };
  b.input_ids = take(t);
  b.positions = take(t);
  b.slot_mapping = take(t);
  b.query_start_loc = take(n + 1);
  b.seq_lens = take(n);
  b.block_tables = take(static_cast<size_t>(n) * b.max_blocks_per_seq);
  b.is_sampled = take(n);
  b.temperature = reinterpret_cast<const float*>(take(n));
  b.top_k = take(n);
  b.top_p = reinterpret_cast<const float*>(take(n));
  b.min_p = reinterpret_cast<const float*>(take(n));
  b.presence_penalty = reinterpret_cast<const float*>(take(n));
  b.frequency_penalty = reinterpret_cast<const float*>(take(n));
  b.repetition_penalty = reinterpret_cast<const float*>(take(n));
  b.rng_key_lo = reinterpret_cast<const uint32_t*>(take(n));
  b.rng_key_hi = reinterpret_cast<const uint32_t*>(take(n));
  b.num_logprobs = take(n);
  b.penalty_offsets = take(n + 1);
  b.penalty_prompt_lens = take(n);
  b.penalty_tokens = take(b.num_penalty_tokens);
  b.logit_adjust_offsets = take(n + 1);
  b.logit_adjust_tokens = take(b.num_logit_adjusts);
  b.logit_adjust_values = reinterpret_cast<const float*>(take(b.num_logit_adjusts));
  if (ints * 4 > byte_length) throw std::runtime_error("step batch: buffer shorter than its columns");
  b.byte_length = ints * 4;
  return b;
}

// Mutable views over one step result (see batch-layout.ts).
struct StepResult {
  float* timings = nullptr;             // [kResultHeaderFloats]: forward, sample, copy, total ms;
                                        // [4] = device-to-host copies made, [5] = 1 when a
                                        // CUDA graph ran the forward pass, [6] = ms the executor
                                        // ran no step before this one (ResultTiming)
  int32_t* sampled_token_ids = nullptr; // [num_seqs]
  float* sampled_logprobs = nullptr;    // [num_seqs]
  int32_t* top_token_ids = nullptr;     // [num_seqs, max_top_logprobs]
  float* top_logprobs = nullptr;        // [num_seqs, max_top_logprobs]
  float* logits = nullptr;              // [num_logit_rows, vocab_size]
};

inline size_t StepResultByteLength(const StepBatch& b, int32_t vocab_size) {
  const size_t n = b.num_seqs, k = b.max_top_logprobs;
  return 4 * (kResultHeaderFloats + 2 * n + 2 * n * k + static_cast<size_t>(b.num_logit_rows()) * vocab_size);
}

inline StepResult LayStepResult(void* data, const StepBatch& b) {
  StepResult r;
  float* p = static_cast<float*>(data);
  const size_t n = b.num_seqs, k = b.max_top_logprobs;
  r.timings = p; p += kResultHeaderFloats;
  r.sampled_token_ids = reinterpret_cast<int32_t*>(p); p += n;
  r.sampled_logprobs = p; p += n;
  r.top_token_ids = reinterpret_cast<int32_t*>(p); p += n * k;
  r.top_logprobs = p; p += n * k;
  r.logits = p;
  return r;
}

}  // namespace spindle
