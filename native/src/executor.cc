#include "executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>
#include <vector>

#include "batch_layout.h"

namespace spindle {
namespace {

// ---- reading NativeExecutorOptions ----

Napi::Value Require(const Napi::Object& obj, const char* key, const std::string& path) {
  if (!obj.Has(key)) throw Napi::TypeError::New(obj.Env(), path + " is required");
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) throw Napi::TypeError::New(obj.Env(), path + " is required");
  return v;
}

double ReadNumber(const Napi::Object& obj, const char* key, const std::string& path) {
  Napi::Value v = Require(obj, key, path);
  if (!v.IsNumber()) throw Napi::TypeError::New(obj.Env(), path + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw Napi::RangeError::New(obj.Env(), path + " must be finite");
  return d;
}

int64_t ReadInt(const Napi::Object& obj, const char* key, const std::string& path, int64_t min, int64_t max) {
  const double d = ReadNumber(obj, key, path);
  if (d != std::floor(d)) throw Napi::TypeError::New(obj.Env(), path + " must be an integer");
  if (d < double(min) || d > double(max)) {
    throw Napi::RangeError::New(obj.Env(), path + " must be in [" + std::to_string(min) + ", " +
                                               std::to_string(max) + "], got " + std::to_string(int64_t(d)));
  }
  return static_cast<int64_t>(d);
}

float ReadPositive(const Napi::Object& obj, const char* key, const std::string& path) {
  const double d = ReadNumber(obj, key, path);
  if (d <= 0) throw Napi::RangeError::New(obj.Env(), path + " must be > 0");
  return static_cast<float>(d);
}

bool ReadBool(const Napi::Object& obj, const char* key, const std::string& path) {
  Napi::Value v = Require(obj, key, path);
  if (!v.IsBoolean()) throw Napi::TypeError::New(obj.Env(), path + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string ReadString(const Napi::Object& obj, const char* key, const std::string& path) {
  Napi::Value v = Require(obj, key, path);
  if (!v.IsString()) throw Napi::TypeError::New(obj.Env(), path + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string ReadEnum(const Napi::Object& obj, const char* key, const std::string& path,
                     const std::vector<std::string>& allowed) {
  const std::string s = ReadString(obj, key, path);
  std::string list;
  for (const std::string& a : allowed) {
    if (s == a) return s;
    list += (list.empty() ? "'" : ", '") + a + "'";
  }
  throw Napi::RangeError::New(obj.Env(), path + " must be one of " + list + ", got '" + s + "'");
}

Napi::Object ReadObject(const Napi::Object& obj, const char* key, const std::string& path) {
  Napi::Value v = Require(obj, key, path);
  if (!v.IsObject() || v.IsArray()) throw Napi::TypeError::New(obj.Env(), path + " must be an object");
  return v.As<Napi::Object>();
}

constexpr int64_t kMaxInt32 = 2147483647;

ModelConfig ReadModel(const Napi::Object& m) {
  const std::string p = "options.model.";
  ModelConfig c;
  const std::string family = ReadEnum(m, "family", p + "family", {"llama", "qwen2", "qwen3"});
  c.family = family == "llama" ? ModelConfig::Family::kLlama
             : family == "qwen2" ? ModelConfig::Family::kQwen2 : ModelConfig::Family::kQwen3;
  c.hidden_size = int32_t(ReadInt(m, "hiddenSize", p + "hiddenSize", 1, kMaxInt32));
  c.intermediate_size = int32_t(ReadInt(m, "intermediateSize", p + "intermediateSize", 1, kMaxInt32));
  c.num_layers = int32_t(ReadInt(m, "numLayers", p + "numLayers", 1, 100000));
  c.num_heads = int32_t(ReadInt(m, "numHeads", p + "numHeads", 1, 100000));
  c.num_kv_heads = int32_t(ReadInt(m, "numKvHeads", p + "numKvHeads", 1, 100000));
  c.head_dim = int32_t(ReadInt(m, "headDim", p + "headDim", 2, 65536));
  c.vocab_size = int32_t(ReadInt(m, "vocabSize", p + "vocabSize", 1, kMaxInt32));
  c.max_position_embeddings = int32_t(ReadInt(m, "maxPositionEmbeddings", p + "maxPositionEmbeddings", 1, kMaxInt32));
  c.rms_norm_eps = ReadPositive(m, "rmsNormEps", p + "rmsNormEps");
  c.rope_theta = ReadPositive(m, "ropeTheta", p + "ropeTheta");
  c.tie_word_embeddings = ReadBool(m, "tieWordEmbeddings", p + "tieWordEmbeddings");
  c.attention_bias = ReadBool(m, "attentionBias", p + "attentionBias");
  c.qk_norm = ReadBool(m, "qkNorm", p + "qkNorm");
  const Napi::Env env = m.Env();
  if (c.num_heads % c.num_kv_heads != 0) {
    throw Napi::RangeError::New(env, p + "numHeads (" + std::to_string(c.num_heads) +
                                         ") must be a multiple of options.model.numKvHeads (" +
                                         std::to_string(c.num_kv_heads) + ")");
  }
  if (c.head_dim % 2 != 0) throw Napi::RangeError::New(env, p + "headDim must be even (RoPE rotates pairs)");
  Napi::Value scaling = Require(m, "ropeScaling", p + "ropeScaling");
  if (!scaling.IsNull()) {
    if (!scaling.IsObject()) throw Napi::TypeError::New(env, p + "ropeScaling must be null or an object");
    const Napi::Object s = scaling.As<Napi::Object>();
    const std::string sp = p + "ropeScaling.";
    ReadEnum(s, "type", sp + "type", {"llama3"});
    c.has_llama3_rope_scaling = true;
    c.rope_factor = ReadPositive(s, "factor", sp + "factor");
    c.rope_low_freq_factor = ReadPositive(s, "lowFreqFactor", sp + "lowFreqFactor");
    c.rope_high_freq_factor = ReadPositive(s, "highFreqFactor", sp + "highFreqFactor");
    c.rope_original_max_position_embeddings =
        int32_t(ReadInt(s, "originalMaxPositionEmbeddings", sp + "originalMaxPositionEmbeddings", 1, kMaxInt32));
    if (c.rope_high_freq_factor <= c.rope_low_freq_factor) {
      throw Napi::RangeError::New(env, sp + "highFreqFactor must be > lowFreqFactor");
    }
  }
  return c;
}

TensorSource ReadTensor(const Napi::Object& t, const std::string& p) {
  TensorSource src;
  src.name = ReadString(t, "name", p + ".name");
  src.file = ReadString(t, "file", p + ".file");
  const std::string dtype = ReadEnum(t, "dtype", p + ".dtype", {"F32", "BF16", "F16"});
  src.dtype = dtype == "F32" ? DType::kF32 : dtype == "BF16" ? DType::kBF16 : DType::kF16;
  Napi::Value shape = Require(t, "shape", p + ".shape");
  if (!shape.IsArray()) throw Napi::TypeError::New(t.Env(), p + ".shape must be an array");
  const Napi::Array dims = shape.As<Napi::Array>();
  for (uint32_t i = 0; i < dims.Length(); ++i) {
    src.shape.push_back(ReadInt(dims, std::to_string(i).c_str(), p + ".shape[" + std::to_string(i) + "]", 0, int64_t(1) << 40));
  }
  constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;
  src.byte_offset = uint64_t(ReadInt(t, "byteOffset", p + ".byteOffset", 0, kMaxSafeInteger));
  src.byte_length = uint64_t(ReadInt(t, "byteLength", p + ".byteLength", 0, kMaxSafeInteger));
  return src;
}

void ReadWeights(const Napi::Object& w, ExecutorConfig& c) {
  const std::string kind = ReadEnum(w, "kind", "options.weights.kind", {"safetensors", "dummy"});
  if (kind == "dummy") {
    c.dummy_weights = true;
    c.dummy_seed = uint64_t(ReadInt(w, "seed", "options.weights.seed", 0, (int64_t(1) << 53) - 1));
    return;
  }
  Napi::Value tensors = Require(w, "tensors", "options.weights.tensors");
  if (!tensors.IsArray()) throw Napi::TypeError::New(w.Env(), "options.weights.tensors must be an array");
  const Napi::Array list = tensors.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const std::string p = "options.weights.tensors[" + std::to_string(i) + "]";
    Napi::Value t = list.Get(i);
    if (!t.IsObject()) throw Napi::TypeError::New(w.Env(), p + " must be an object");
    c.tensors.push_back(ReadTensor(t.As<Napi::Object>(), p));
  }
}

// ---- the step worker ----

std::string CountRange(const char* what, int64_t value, int64_t end) {
  return std::string(what) + " " + std::to_string(value) + " out of range [0, " + std::to_string(end) + ")";
}

}  // namespace

ExecutorConfig ReadExecutorOptions(const Napi::Object& o) {
  ExecutorConfig c;
  c.device = ReadEnum(o, "device", "options.device", {"cpu", "cuda"});
  const std::string dtype = ReadEnum(o, "dtype", "options.dtype", {"float32", "bfloat16"});
  c.dtype = dtype == "float32" ? DType::kF32 : DType::kBF16;
  c.model = ReadModel(ReadObject(o, "model", "options.model"));
  ReadWeights(ReadObject(o, "weights", "options.weights"), c);
  c.block_size = int32_t(ReadInt(o, "blockSize", "options.blockSize", 1, 4096));
  c.num_blocks = int32_t(ReadInt(o, "numBlocks", "options.numBlocks", 0, kMaxInt32));
  const double util = ReadNumber(o, "gpuMemoryUtilization", "options.gpuMemoryUtilization");
  if (util <= 0 || util > 1) throw Napi::RangeError::New(o.Env(), "options.gpuMemoryUtilization must be in (0, 1]");
  c.gpu_memory_utilization = float(util);
  c.max_num_seqs = int32_t(ReadInt(o, "maxNumSeqs", "options.maxNumSeqs", 1, kMaxInt32));
  c.max_num_batched_tokens = int32_t(ReadInt(o, "maxNumBatchedTokens", "options.maxNumBatchedTokens", 1, kMaxInt32));
  c.num_threads = int32_t(ReadInt(o, "numThreads", "options.numThreads", 0, 4096));
  // Optional (vLLM's --enforce-eager): absent means CUDA graphs for decode-only steps.
  if (o.Has("enforceEager") && !o.Get("enforceEager").IsUndefined()) {
    c.enforce_eager = ReadBool(o, "enforceEager", "options.enforceEager");
  }
  return c;
}

void ValidateStepBatch(const StepBatch& b, const ExecutorConfig& c, int32_t num_blocks) {
  auto fail = [](const std::string& msg) { throw std::runtime_error("step batch: " + msg); };
  const ModelConfig& m = c.model;
  const int64_t bs = c.block_size, num_slots = int64_t(num_blocks) * bs;
  if (b.query_start_loc[0] != 0) fail("queryStartLoc[0] must be 0");
  if (b.query_start_loc[b.num_seqs] != b.num_tokens) fail("queryStartLoc[numSeqs] must equal numTokens");
  // A negative id in a batch with pending tokens is a reference StepQueue fills in and checks.
  const auto is_pending = [&](int32_t id) { return b.has_pending_tokens && id < 0; };
  for (int32_t i = 0; i < b.num_tokens; ++i) {
    if (!is_pending(b.input_ids[i]) && (b.input_ids[i] < 0 || b.input_ids[i] >= m.vocab_size)) {
      fail("token " + std::to_string(i) + ": " + CountRange("token id", b.input_ids[i], m.vocab_size));
    }
    if (b.positions[i] < 0 || b.positions[i] >= m.max_position_embeddings) {
      fail("token " + std::to_string(i) + ": " + CountRange("position", b.positions[i], m.max_position_embeddings) +
           " (maxPositionEmbeddings)");
    }
    if (b.slot_mapping[i] < 0 || b.slot_mapping[i] >= num_slots) fail("token " + std::to_string(i) + ": " + CountRange("slot", b.slot_mapping[i], num_slots));
  }
  for (int32_t s = 0; s < b.num_seqs; ++s) {
    const std::string seq = "seq " + std::to_string(s) + ": ";
    const int32_t begin = b.query_start_loc[s], end = b.query_start_loc[s + 1];
    if (end <= begin) fail(seq + "queryStartLoc must increase (every sequence has >= 1 token)");
    if (end > b.num_tokens) fail(seq + "queryStartLoc past numTokens");
    const int64_t len = b.seq_lens[s];
    if (len < end - begin) fail(seq + "seqLens " + std::to_string(len) + " is shorter than its new tokens");
    const int64_t blocks_needed = (len + bs - 1) / bs;
    if (blocks_needed > b.max_blocks_per_seq) fail(seq + "seqLens " + std::to_string(len) + " needs more blocks than maxBlocksPerSeq");
    const int32_t* table = b.block_tables + int64_t(s) * b.max_blocks_per_seq;
    for (int64_t j = 0; j < blocks_needed; ++j) {
      if (table[j] < 0 || table[j] >= num_blocks) fail(seq + CountRange("block id", table[j], num_blocks));
    }
    for (int32_t i = begin; i < end; ++i) {
      const int64_t pos = len - (end - i);
      if (b.positions[i] != pos) fail(seq + "token " + std::to_string(i) + " has position " + std::to_string(b.positions[i]) + ", its place in the sequence is " + std::to_string(pos));
      const int64_t slot = int64_t(table[pos / bs]) * bs + pos % bs;
      if (b.slot_mapping[i] != slot) fail(seq + "token " + std::to_string(i) + ": slotMapping " + std::to_string(b.slot_mapping[i]) + " disagrees with its block table (" + std::to_string(slot) + ")");
    }
    const int32_t po0 = b.penalty_offsets[s], po1 = b.penalty_offsets[s + 1];
    if (po0 < 0 || po1 < po0 || po1 > b.num_penalty_tokens) fail(seq + "penaltyOffsets out of order or past numPenaltyTokens");
    if (b.penalty_prompt_lens[s] < 0 || b.penalty_prompt_lens[s] > po1 - po0) fail(seq + "penaltyPromptLens out of range");
    const int32_t lo0 = b.logit_adjust_offsets[s], lo1 = b.logit_adjust_offsets[s + 1];
    if (lo0 < 0 || lo1 < lo0 || lo1 > b.num_logit_adjusts) fail(seq + "logitAdjustOffsets out of order or past numLogitAdjusts");
    if (!b.is_sampled[s]) continue;
    const float t = b.temperature[s], p = b.top_p[s], mp = b.min_p[s], rp = b.repetition_penalty[s];
    if (!(t >= 0) || !std::isfinite(t)) fail(seq + "temperature must be finite and >= 0");
    if (!(p > 0 && p <= 1)) fail(seq + "topP must be in (0, 1]");
    if (!(mp >= 0 && mp <= 1)) fail(seq + "minP must be in [0, 1]");
    if (!(rp > 0) || !std::isfinite(rp)) fail(seq + "repetitionPenalty must be finite and > 0");
    if (!std::isfinite(b.presence_penalty[s]) || !std::isfinite(b.frequency_penalty[s])) fail(seq + "presence/frequency penalties must be finite");
    if (b.num_logprobs[s] < 0 || b.num_logprobs[s] > b.max_top_logprobs) fail(seq + "numLogprobs must be in [0, maxTopLogprobs]");
  }
  for (int32_t i = 0; i < b.num_penalty_tokens; ++i) {
    if (is_pending(b.penalty_tokens[i])) continue;
    if (b.penalty_tokens[i] < 0 || b.penalty_tokens[i] >= m.vocab_size) fail("penaltyTokens[" + std::to_string(i) + "]: " + CountRange("token id", b.penalty_tokens[i], m.vocab_size));
  }
  if (b.logit_adjust_offsets[0] != 0 || b.logit_adjust_offsets[b.num_seqs] != b.num_logit_adjusts) {
    fail("logitAdjustOffsets must start at 0 and end at numLogitAdjusts");
  }
  if (b.num_logit_adjusts > 0) {
    // Distinct ids within a row let the CUDA kernel update a row's entries in parallel, never
    // two threads adding to one logit. seen[id] == stamp: id is already listed in this row. Every
    // step with adjustments comes here, so the vocabulary-sized array is kept (per thread: two
    // steps may be checked at once) and each row takes a fresh stamp instead of clearing it.
    thread_local std::vector<uint32_t> seen;
    thread_local uint32_t stamp = 0;
    if (seen.size() < static_cast<size_t>(m.vocab_size)) seen.assign(m.vocab_size, 0);  // stamps stay > 0
    for (int32_t s = 0; s < b.num_seqs; ++s) {
      if (++stamp == 0) {  // wrapped: old stamps could match again
        std::fill(seen.begin(), seen.end(), 0);
        stamp = 1;
      }
      for (int32_t i = b.logit_adjust_offsets[s]; i < b.logit_adjust_offsets[s + 1]; ++i) {
        const int32_t id = b.logit_adjust_tokens[i];
        auto where = [&] { return "logitAdjustTokens[" + std::to_string(i) + "]: "; };  // built only to fail
        if (id < 0 || id >= m.vocab_size) fail(where() + CountRange("token id", id, m.vocab_size));
        if (seen[id] == stamp) fail(where() + "token id " + std::to_string(id) + " appears twice in seq " + std::to_string(s));
        seen[id] = stamp;
        // -inf bans; +inf or NaN would make the row's softmax NaN.
        const float v = b.logit_adjust_values[i];
        if (std::isnan(v) || v == INFINITY) fail("logitAdjustValues[" + std::to_string(i) + "] must be finite or -inf");
      }
    }
  }
}

// Runs one step on the libuv thread pool. The batch was copied on the JS thread (the caller
// may reuse its buffer); the result is copied into a fresh ArrayBuffer back on the JS thread.
// Up to two steps are in flight: the later one checks its batch while the earlier one runs,
// then waits in the StepQueue for its turn and starts as soon as the earlier one ends.
class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, Executor* owner, Napi::Object owner_object, std::vector<int32_t> batch_words,
             size_t batch_bytes)
      : Napi::AsyncWorker(env, "spindle.step"),
        deferred_(Napi::Promise::Deferred::New(env)),
        owner_(owner),
        owner_ref_(Napi::Persistent(owner_object)),
        backend_(owner->backend_),
        config_(owner->config_),  // shared: not copied per step
        queue_(owner->queue_),
        ticket_(owner->queue_->Enqueue()),
        num_blocks_(owner->num_blocks_),
        batch_words_(std::move(batch_words)),
        batch_bytes_(batch_bytes) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::string error;
    std::vector<int32_t> sampled;
    double idle_ms = 0;
    try {
      const StepBatch batch = ParseStepBatch(batch_words_.data(), batch_bytes_);
      ValidateStepBatch(batch, *config_, num_blocks_);
      const size_t bytes = StepResultByteLength(batch, config_->model.vocab_size);
      result_.assign((bytes + 3) / 4, 0.f);
      result_bytes_ = bytes;
      idle_ms = queue_->WaitTurn(ticket_);
      has_turn_ = true;
      queue_->FillPendingTokens(batch_words_.data(), batch);
      backend_->Step(batch, result_.data());
      const StepResult result = LayStepResult(result_.data(), batch);
      result.timings[kTimingExecutorIdle] = static_cast<float>(idle_ms);
      sampled.assign(result.sampled_token_ids, result.sampled_token_ids + batch.num_seqs);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "step failed with an unknown error";
    }
    // A step that failed before its turn still takes it, so the steps behind it run (and
    // fail, when they wait on its tokens).
    if (!has_turn_) queue_->WaitTurn(ticket_);
    queue_->Finish(std::move(sampled), error.empty());
    if (!error.empty()) SetError(error);
  }

  void OnOK() override {
    owner_->num_steps_in_flight_ -= 1;
    Napi::ArrayBuffer out = Napi::ArrayBuffer::New(Env(), result_bytes_);
    std::memcpy(out.Data(), result_.data(), result_bytes_);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& error) override {
    owner_->num_steps_in_flight_ -= 1;
    deferred_.Reject(error.Value());
  }

 private:
  // ResultTiming.executorIdleMs in src/engine/batch-layout.ts.
  static constexpr int kTimingExecutorIdle = 6;

  Napi::Promise::Deferred deferred_;
  Executor* owner_;
  Napi::ObjectReference owner_ref_;  // keeps the Executor alive while its step runs
  std::shared_ptr<Backend> backend_;
  std::shared_ptr<const ExecutorConfig> config_;
  std::shared_ptr<StepQueue> queue_;
  uint64_t ticket_;
  bool has_turn_ = false;
  int32_t num_blocks_;
  std::vector<int32_t> batch_words_;  // the copied batch, int32-aligned
  size_t batch_bytes_;
  std::vector<float> result_;  // the packed result, float-aligned
  size_t result_bytes_ = 0;
};

Napi::Function Executor::Define(Napi::Env env) {
  return DefineClass(env, "Executor",
                     {InstanceMethod<&Executor::Step>("step"), InstanceMethod<&Executor::Close>("close"),
                      InstanceAccessor<&Executor::GetNumBlocks>("numBlocks"),
                      InstanceAccessor<&Executor::GetDevice>("device"),
                      InstanceAccessor<&Executor::GetDeviceName>("deviceName")});
}

Executor::Executor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Executor>(info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  config_ = std::make_shared<const ExecutorConfig>(ReadExecutorOptions(info[0].As<Napi::Object>()));
  try {
    if (config_->device == "cpu") {
      backend_ = CreateCpuBackend(*config_);
    } else {
#ifdef SPINDLE_WITH_CUDA
      backend_ = CreateCudaBackend(*config_);
#else
      throw std::runtime_error("options.device is 'cuda' but the addon was built without CUDA (no nvcc at build time)");
#endif
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  num_blocks_ = backend_->num_blocks();
  device_name_ = backend_->device_name();
}

Napi::Value Executor::Step(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!backend_) throw Napi::Error::New(env, "executor is closed");
  // Problems with the call itself reject, like problems found in the batch on the worker.
  auto reject = [&](const std::string& message) {
    Napi::Promise::Deferred rejected = Napi::Promise::Deferred::New(env);
    rejected.Reject(Napi::Error::New(env, message).Value());
    return rejected.Promise();
  };
  if (num_steps_in_flight_ >= kMaxStepsInFlight) {
    return reject("executor.step: two steps are already in flight (the one running and the next)");
  }
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return reject("executor.step: the batch must be an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  const size_t bytes = buffer.ByteLength();
  std::vector<int32_t> words((bytes + 3) / 4, 0);
  if (bytes > 0) std::memcpy(words.data(), buffer.Data(), bytes);
  auto* worker = new StepWorker(env, this, info.This().As<Napi::Object>(), std::move(words), bytes);
  Napi::Promise promise = worker->Promise();
  num_steps_in_flight_ += 1;
  worker->Queue();
  return promise;
}

Napi::Value Executor::Close(const Napi::CallbackInfo& info) {
  if (!backend_) throw Napi::Error::New(info.Env(), "executor is already closed");
  backend_.reset();  // a step in flight holds its own reference and frees the backend when done
  return info.Env().Undefined();
}

Napi::Value Executor::GetNumBlocks(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_blocks_); }

Napi::Value Executor::GetDevice(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), config_->device); }

Napi::Value Executor::GetDeviceName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_name_);
}

}  // namespace spindle
