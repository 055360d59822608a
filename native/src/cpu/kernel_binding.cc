#include "cpu/kernel_binding.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_layout.h"
#include "cpu/kernels.h"
#include "cpu/sampler.h"
#include "sampling_math.h"

namespace spindle {
namespace cpu {
namespace {

// The typed array argument i, checked to hold exactly `length` elements.
template <typename T>
T* Array(const Napi::CallbackInfo& info, size_t i, size_t length, const char* name) {
  const Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + " must be a typed array");
  Napi::TypedArrayOf<T> a = info[i].As<Napi::TypedArrayOf<T>>();
  if (a.ElementLength() != length) {
    throw Napi::RangeError::New(env, std::string(name) + " has " + std::to_string(a.ElementLength()) + " elements, expected " + std::to_string(length));
  }
  return a.Data();
}

int64_t Int(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const int64_t v = info[i].As<Napi::Number>().Int64Value();
  if (v < 0) throw Napi::RangeError::New(info.Env(), std::string(name) + " must be >= 0");
  return v;
}

Napi::Float32Array Output(Napi::Env env, size_t length) { return Napi::Float32Array::New(env, length); }

// matMulTransB(x [m,k], w [n,k], bias [n] | null, m, n, k, numThreads) -> y [m,n]
Napi::Value MatMulJs(const Napi::CallbackInfo& info) {
  const int64_t m = Int(info, 3, "m"), n = Int(info, 4, "n"), k = Int(info, 5, "k");
  const float* x = Array<float>(info, 0, m * k, "x");
  const float* w = Array<float>(info, 1, n * k, "w");
  const float* bias = info[2].IsNull() ? nullptr : Array<float>(info, 2, n, "bias");
  ThreadPool pool(static_cast<int>(Int(info, 6, "numThreads")));
  Napi::Float32Array y = Output(info.Env(), m * n);
  MatMulTransB(pool, x, w, bias, y.Data(), m, n, k, false);
  return y;
}

// rmsNorm(x [rows,dim], weight [dim], eps, rows, dim, numThreads) -> [rows,dim]
Napi::Value RmsNormJs(const Napi::CallbackInfo& info) {
  const int64_t rows = Int(info, 3, "rows"), dim = Int(info, 4, "dim");
  const float* x = Array<float>(info, 0, rows * dim, "x");
  const float* w = Array<float>(info, 1, dim, "weight");
  const float eps = info[2].As<Napi::Number>().FloatValue();
  ThreadPool pool(static_cast<int>(Int(info, 5, "numThreads")));
  Napi::Float32Array y = Output(info.Env(), rows * dim);
  RmsNorm(pool, x, w, eps, y.Data(), rows, dim);
  return y;
}

// rope(x [tokens,heads,headDim], positions [tokens], heads, headDim, ropeTheta, llama3 scaling
// [factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings] | null, numThreads)
Napi::Value RopeJs(const Napi::CallbackInfo& info) {
  if (info.Length() <= 1 || !info[1].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "positions must be a typed array");
  const int64_t tokens = info[1].As<Napi::Int32Array>().ElementLength();
  const int64_t heads = Int(info, 2, "heads"), head_dim = Int(info, 3, "headDim");
  const int32_t* positions = Array<int32_t>(info, 1, tokens, "positions");
  const float* x = Array<float>(info, 0, tokens * heads * head_dim, "x");
  ModelConfig model;
  model.head_dim = static_cast<int32_t>(head_dim);
  model.rope_theta = info[4].As<Napi::Number>().FloatValue();
  if (!info[5].IsNull()) {
    const float* s = Array<float>(info, 5, 4, "scaling");
    model.has_llama3_rope_scaling = true;
    model.rope_factor = s[0];
    model.rope_low_freq_factor = s[1];
    model.rope_high_freq_factor = s[2];
    model.rope_original_max_position_embeddings = static_cast<int32_t>(s[3]);
  }
  ThreadPool pool(static_cast<int>(Int(info, 6, "numThreads")));
  const std::vector<double> inv_freq = RopeInverseFrequencies(model);
  std::vector<float> cos_table(tokens * (head_dim / 2)), sin_table(tokens * (head_dim / 2));
  BuildRopeTables(positions, tokens, inv_freq, cos_table.data(), sin_table.data());
  Napi::Float32Array y = Output(info.Env(), tokens * heads * head_dim);
  std::copy(x, x + tokens * heads * head_dim, y.Data());
  ApplyRope(pool, y.Data(), tokens, heads, head_dim, cos_table.data(), sin_table.data());
  return y;
}

// siluMul(gate [n], up [n], numThreads) -> [n]
Napi::Value SiluMulJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "gate must be a typed array");
  const int64_t n = info[0].As<Napi::Float32Array>().ElementLength();
  const float* gate = Array<float>(info, 0, n, "gate");
  const float* up = Array<float>(info, 1, n, "up");
  ThreadPool pool(static_cast<int>(Int(info, 2, "numThreads")));
  Napi::Float32Array y = Output(info.Env(), n);
  std::copy(gate, gate + n, y.Data());
  SiluMul(pool, y.Data(), up, n);
  return y;
}

// pagedAttention(q, kCache, vCache, tokenSeq, contextLens, blockTables,
//   [numHeads, numKvHeads, headDim, blockSize, maxBlocksPerSeq, numBlocks], numThreads).
// Indices are trusted: this is a test entry, and the executor validates real batches.
Napi::Value PagedAttentionJs(const Napi::CallbackInfo& info) {
  const int32_t* dims = Array<int32_t>(info, 6, 6, "dims");
  PagedAttentionArgs a;
  a.num_heads = dims[0];
  a.num_kv_heads = dims[1];
  a.head_dim = dims[2];
  a.block_size = dims[3];
  a.max_blocks_per_seq = dims[4];
  const int64_t num_blocks = dims[5];
  if (info.Length() <= 3 || !info[3].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "tokenSeq must be a typed array");
  a.num_tokens = info[3].As<Napi::Int32Array>().ElementLength();
  const int64_t cache = num_blocks * a.block_size * a.num_kv_heads * a.head_dim;
  a.q = Array<float>(info, 0, a.num_tokens * a.num_heads * a.head_dim, "q");
  a.k_cache = Array<float>(info, 1, cache, "kCache");
  a.v_cache = Array<float>(info, 2, cache, "vCache");
  a.token_seq = Array<int32_t>(info, 3, a.num_tokens, "tokenSeq");
  a.context_lens = Array<int32_t>(info, 4, a.num_tokens, "contextLens");
  if (info.Length() <= 5 || !info[5].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "blockTables must be a typed array");
  a.block_tables = Array<int32_t>(info, 5, info[5].As<Napi::Int32Array>().ElementLength(), "blockTables");
  ThreadPool pool(static_cast<int>(Int(info, 7, "numThreads")));
  Napi::Float32Array y = Output(info.Env(), a.num_tokens * a.num_heads * a.head_dim);
  a.out = y.Data();
  PagedAttention(pool, a);
  return y;
}

// sample(batch: ArrayBuffer, logits [numSeqs, vocab], vocab, numThreads, reference) -> result
// ArrayBuffer (step result layout, logits section empty: logitsMode is ignored). Row s samples
// logits row s; `reference` runs SampleBatchReference instead of SampleBatch. The result starts
// poisoned (0x7f7f7f7f) so that a word the sampler forgets to write shows.
Napi::Value SampleJs(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "sample(batch: ArrayBuffer, logits, vocab, numThreads, reference)");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  const int64_t vocab = Int(info, 2, "vocab");
  StepBatch b;
  try {
    b = ParseStepBatch(buffer.Data(), buffer.ByteLength());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  // The executor validates real batches; here only what would write out of bounds.
  b.logits_mode = 0;
  if (vocab < 1) throw Napi::RangeError::New(env, "vocab must be >= 1");
  for (int32_t i = 0; i < b.num_penalty_tokens; ++i) {
    if (b.penalty_tokens[i] < 0 || b.penalty_tokens[i] >= vocab) throw Napi::RangeError::New(env, "penaltyTokens out of the vocabulary");
  }
  for (int32_t i = 0; i < b.num_logit_adjusts; ++i) {
    if (b.logit_adjust_tokens[i] < 0 || b.logit_adjust_tokens[i] >= vocab) throw Napi::RangeError::New(env, "logitAdjustTokens out of the vocabulary");
  }
  for (int32_t s = 0; s < b.num_seqs; ++s) {
    if (b.penalty_offsets[s] < 0 || b.penalty_offsets[s + 1] < b.penalty_offsets[s] || b.penalty_offsets[s + 1] > b.num_penalty_tokens ||
        b.logit_adjust_offsets[s] < 0 || b.logit_adjust_offsets[s + 1] < b.logit_adjust_offsets[s] ||
        b.logit_adjust_offsets[s + 1] > b.num_logit_adjusts ||
        b.num_logprobs[s] < 0 || b.num_logprobs[s] > b.max_top_logprobs)
      throw Napi::RangeError::New(env, "bad penalty/logit adjust offsets or numLogprobs");
  }
  const float* logits = Array<float>(info, 1, int64_t(b.num_seqs) * vocab, "logits");
  ThreadPool pool(static_cast<int>(Int(info, 3, "numThreads")));
  const bool reference = info[4].ToBoolean().Value();
  const size_t bytes = StepResultByteLength(b, static_cast<int32_t>(vocab));
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, bytes);
  std::memset(out.Data(), 0x7f, bytes);
  std::vector<int32_t> row_of_seq(b.num_seqs);
  for (int32_t s = 0; s < b.num_seqs; ++s) row_of_seq[s] = s;
  const StepResult r = LayStepResult(out.Data(), b);
  if (reference) {
    SampleBatchReference(pool, b, logits, row_of_seq.data(), static_cast<int32_t>(vocab), r);
  } else {
    SampleBatch(pool, b, logits, row_of_seq.data(), static_cast<int32_t>(vocab), r);
  }
  return out;
}

// samplerRowsToReference() -> rows SampleBatch has handed to the reference so far.
Napi::Value SamplerRowsToReferenceJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(SamplerRowsToReference()));
}

// gumbelNoise(keyLo, keyHi, count) -> Float32Array of GumbelNoise(key, i), i < count: the noise
// the samplers add, so that a test can run the Gumbel-max loop itself.
Napi::Value GumbelNoiseJs(const Napi::CallbackInfo& info) {
  const uint64_t key = RngKey(static_cast<uint32_t>(Int(info, 0, "keyLo")), static_cast<uint32_t>(Int(info, 1, "keyHi")));
  const int64_t count = Int(info, 2, "count");
  Napi::Float32Array out = Output(info.Env(), count);
  float* noise = out.Data();
  for (int64_t i = 0; i < count; ++i) noise[i] = GumbelNoise(key, static_cast<uint64_t>(i));
  return out;
}

// samplerNoiseBoundCheck(firstBits, count) -> {violations, minSlack, mixMismatches}
Napi::Value SamplerNoiseBoundCheckJs(const Napi::CallbackInfo& info) {
  const int64_t first = Int(info, 0, "firstBits"), count = Int(info, 1, "count");
  if (first + count > (int64_t(1) << 32)) throw Napi::RangeError::New(info.Env(), "firstBits + count must be <= 2^32");
  const SamplerBoundCheck check = CheckSamplerNoiseBounds(static_cast<uint64_t>(first), static_cast<uint64_t>(count));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("violations", static_cast<double>(check.violations));
  out.Set("minSlack", check.min_slack);
  out.Set("mixMismatches", static_cast<double>(check.mix_mismatches));
  return out;
}

// samplerExpError(lo, hi, count) -> the largest relative error of the sampler's exp there.
Napi::Value SamplerExpErrorJs(const Napi::CallbackInfo& info) {
  const double lo = info[0].As<Napi::Number>().DoubleValue(), hi = info[1].As<Napi::Number>().DoubleValue();
  if (!(lo >= -708.0 && hi <= 0.0 && lo <= hi)) throw Napi::RangeError::New(info.Env(), "need -708 <= lo <= hi <= 0");
  return Napi::Number::New(info.Env(), MaxSamplerExpError(lo, hi, Int(info, 2, "count")));
}

}  // namespace

void RegisterCpuKernelBindings(Napi::Env env, Napi::Object exports) {
  Napi::Object kernels = Napi::Object::New(env);
  kernels.Set("matMulTransB", Napi::Function::New(env, MatMulJs, "matMulTransB"));
  kernels.Set("rmsNorm", Napi::Function::New(env, RmsNormJs, "rmsNorm"));
  kernels.Set("rope", Napi::Function::New(env, RopeJs, "rope"));
  kernels.Set("siluMul", Napi::Function::New(env, SiluMulJs, "siluMul"));
  kernels.Set("pagedAttention", Napi::Function::New(env, PagedAttentionJs, "pagedAttention"));
  kernels.Set("sample", Napi::Function::New(env, SampleJs, "sample"));
  kernels.Set("samplerRowsToReference", Napi::Function::New(env, SamplerRowsToReferenceJs, "samplerRowsToReference"));
  kernels.Set("gumbelNoise", Napi::Function::New(env, GumbelNoiseJs, "gumbelNoise"));
  kernels.Set("samplerNoiseBoundCheck", Napi::Function::New(env, SamplerNoiseBoundCheckJs, "samplerNoiseBoundCheck"));
  kernels.Set("samplerExpError", Napi::Function::New(env, SamplerExpErrorJs, "samplerExpError"));
  exports.Set("cpuKernels", kernels);
}

}  // namespace cpu
}  // namespace spindle
