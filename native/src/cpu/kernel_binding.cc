#include "cpu/kernel_binding.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cpu/kernels.h"

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

}  // namespace

void RegisterCpuKernelBindings(Napi::Env env, Napi::Object exports) {
  Napi::Object kernels = Napi::Object::New(env);
  kernels.Set("matMulTransB", Napi::Function::New(env, MatMulJs, "matMulTransB"));
  kernels.Set("rmsNorm", Napi::Function::New(env, RmsNormJs, "rmsNorm"));
  kernels.Set("rope", Napi::Function::New(env, RopeJs, "rope"));
  kernels.Set("siluMul", Napi::Function::New(env, SiluMulJs, "siluMul"));
  kernels.Set("pagedAttention", Napi::Function::New(env, PagedAttentionJs, "pagedAttention"));
  exports.Set("cpuKernels", kernels);
}

}  // namespace cpu
}  // namespace spindle
