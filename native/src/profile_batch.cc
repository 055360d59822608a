#include "profile_batch.h"

#include <cstring>

#include "batch_layout.h"

namespace spindle {

std::vector<int32_t> PackProfileBatch(int num_tokens, int block_size, int vocab_size) {
  const int num_blocks = (num_tokens + block_size - 1) / block_size;
  std::vector<int32_t> p(kBatchHeaderInts, 0);
  p[0] = kBatchMagic;
  p[1] = 1;           // num_seqs
  p[2] = num_tokens;  // num_tokens
  p[3] = num_blocks;  // max_blocks_per_seq
  auto f32 = [](float v) { int32_t bits; std::memcpy(&bits, &v, 4); return bits; };
  for (int i = 0; i < num_tokens; ++i) p.push_back(static_cast<int32_t>((i * 7919LL + 13) % vocab_size));  // input_ids
  for (int i = 0; i < num_tokens; ++i) p.push_back(i);                                                      // positions
  for (int i = 0; i < num_tokens; ++i) p.push_back(i);                                                      // slot_mapping
  p.push_back(0); p.push_back(num_tokens);                 // query_start_loc
  p.push_back(num_tokens);                                 // seq_lens
  for (int b = 0; b < num_blocks; ++b) p.push_back(b);     // block_tables
  p.push_back(1);                                          // is_sampled
  p.push_back(f32(0.f));                                   // temperature
  p.push_back(0);                                          // top_k
  p.push_back(f32(1.f));                                   // top_p
  p.push_back(f32(0.f));                                   // min_p
  p.push_back(f32(0.f)); p.push_back(f32(0.f));            // presence, frequency penalty
  p.push_back(f32(1.f));                                   // repetition penalty
  p.push_back(0); p.push_back(0);                          // rng key lo, hi
  p.push_back(0);                                          // num_logprobs
  p.push_back(0); p.push_back(0);                          // penalty_offsets
  p.push_back(0);                                          // penalty_prompt_lens
  p.push_back(0); p.push_back(0);                          // logit_adjust_offsets
  return p;
}

}  // namespace spindle
