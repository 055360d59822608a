// Test and benchmark entry points of the CUDA sampler (test/gpu/sampler.test.ts,
// bench/gpu/sampler.ts), registered by addon.cc in CUDA builds:
//   cudaSamplerUnavailableReason(): string          '' when a CUDA device is usable
//   cudaSample(batch, logits, vocabSize, {timingReps?, warmupReps?, withCpu?})
//       -> {result: ArrayBuffer (step result layout), medianMs?, minMs?, deviceName,
//           cpuResult?: the CPU sampler's (cpu/sampler.h) result for the same batch and logits}
//   cudaCopyBandwidth(bytes, reps) -> {medianMs, bytesPerSecond}  (device-to-device copy,
//       bytes read + bytes written over the median time)
// Each call copies its inputs to fresh device buffers, poisons the outputs, runs, and copies
// the whole result slab back: slow, and meant only for checks and timings.
#include <cuda_runtime.h>
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_layout.h"
#include "cpu/sampler.h"
#include "cpu/thread_pool.h"
#include "cuda/sampler.h"
#include "cuda/sampler_binding.h"

namespace spindle {
namespace cuda {
namespace {

void Check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { Check(cudaMalloc(&ptr_, bytes > 0 ? bytes : 4), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

class Events {
 public:
  explicit Events(size_t count) : events_(count) {
    for (auto& e : events_) Check(cudaEventCreate(&e), "cudaEventCreate");
  }
  ~Events() {
    for (auto e : events_) cudaEventDestroy(e);
  }
  cudaEvent_t operator[](size_t i) const { return events_[i]; }

 private:
  std::vector<cudaEvent_t> events_;
};

std::string DeviceName() {
  int device = 0;
  Check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  Check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop.name;
}

// Times `work` (enqueued on `stream`) `reps` times after `warmup` runs; returns sorted ms.
template <typename Work>
std::vector<float> TimeReps(cudaStream_t stream, int warmup, int reps, Work work) {
  for (int i = 0; i < warmup; ++i) work();
  Events events(2 * static_cast<size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    Check(cudaEventRecord(events[2 * i], stream), "cudaEventRecord");
    work();
    Check(cudaEventRecord(events[2 * i + 1], stream), "cudaEventRecord");
  }
  Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) Check(cudaEventElapsedTime(&ms[i], events[2 * i], events[2 * i + 1]), "cudaEventElapsedTime");
  std::sort(ms.begin(), ms.end());
  return ms;
}

int OptionalInt(const Napi::Object& options, const char* name, int fallback) {
  if (!options.Has(name) || options.Get(name).IsUndefined()) return fallback;
  return options.Get(name).As<Napi::Number>().Int32Value();
}

Napi::Value UnavailableReason(const Napi::CallbackInfo& info) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) return Napi::String::New(info.Env(), std::string("CUDA: ") + cudaGetErrorString(err));
  if (count == 0) return Napi::String::New(info.Env(), "CUDA: no device");
  return Napi::String::New(info.Env(), "");
}

Napi::Value Sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArrayBuffer() || !info[1].IsTypedArray() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "cudaSample(batch: ArrayBuffer, logits: Float32Array, vocabSize: number, options?)");
  try {
    Napi::ArrayBuffer batch_buffer = info[0].As<Napi::ArrayBuffer>();
    Napi::Float32Array logits = info[1].As<Napi::Float32Array>();
    const int32_t vocab_size = info[2].As<Napi::Number>().Int32Value();
    const Napi::Object options = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
    const int timing_reps = OptionalInt(options, "timingReps", 0);
    const int warmup_reps = OptionalInt(options, "warmupReps", 3);

    const StepBatch host_batch = ParseStepBatch(batch_buffer.Data(), batch_buffer.ByteLength());
    const size_t logits_count = static_cast<size_t>(host_batch.num_seqs) * vocab_size;
    if (logits.ElementLength() != logits_count) throw std::runtime_error("cudaSample: logits must hold numSeqs * vocabSize floats");
    const size_t result_bytes = StepResultByteLength(host_batch, vocab_size);

    DeviceBuffer device_batch(host_batch.byte_length), device_logits(logits_count * sizeof(float));
    DeviceBuffer device_result(result_bytes), workspace(SamplerWorkspaceBytes(host_batch.num_seqs, vocab_size));
    cudaStream_t stream;
    Check(cudaStreamCreate(&stream), "cudaStreamCreate");
    struct StreamGuard { cudaStream_t s; ~StreamGuard() { cudaStreamDestroy(s); } } guard{stream};
    Check(cudaMemcpyAsync(device_batch.get(), batch_buffer.Data(), host_batch.byte_length, cudaMemcpyHostToDevice, stream), "batch H2D");
    Check(cudaMemcpyAsync(device_logits.get(), logits.Data(), logits_count * sizeof(float), cudaMemcpyHostToDevice, stream), "logits H2D");
    // Poison: every output word the sampler must write reads 0x7f7f7f7f until it does.
    Check(cudaMemsetAsync(device_result.get(), 0x7f, result_bytes, stream), "poison");

    const StepResult device_slab = LayStepResult(device_result.get(), host_batch);
    const SamplerArgs args = SamplerArgsForBatch(host_batch, batch_buffer.Data(), device_batch.get(),
                                                 static_cast<const float*>(device_logits.get()), vocab_size, vocab_size,
                                                 device_slab, workspace.get(), SamplerWorkspaceBytes(host_batch.num_seqs, vocab_size));
    SampleBatch(args, stream);
    Napi::ArrayBuffer result = Napi::ArrayBuffer::New(env, result_bytes);
    Check(cudaMemcpyAsync(result.Data(), device_result.get(), result_bytes, cudaMemcpyDeviceToHost, stream), "result D2H");
    Check(cudaStreamSynchronize(stream), "sample");

    Napi::Object out = Napi::Object::New(env);
    out.Set("result", result);
    out.Set("deviceName", DeviceName());
    if (options.Has("withCpu") && options.Get("withCpu").ToBoolean().Value()) {
      Napi::ArrayBuffer cpu_result = Napi::ArrayBuffer::New(env, result_bytes);
      std::memset(cpu_result.Data(), 0x7f, result_bytes);
      std::vector<int32_t> row_of_seq(host_batch.num_seqs);
      for (int32_t s = 0; s < host_batch.num_seqs; ++s) row_of_seq[s] = s;
      cpu::ThreadPool pool(0);
      cpu::SampleBatch(pool, host_batch, logits.Data(), row_of_seq.data(), vocab_size,
                       LayStepResult(cpu_result.Data(), host_batch));
      out.Set("cpuResult", cpu_result);
    }
    if (timing_reps > 0) {
      const std::vector<float> ms = TimeReps(stream, warmup_reps, timing_reps, [&] { SampleBatch(args, stream); });
      out.Set("medianMs", ms[ms.size() / 2]);
      out.Set("minMs", ms.front());
    }
    return out;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const size_t bytes = static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue());
    const int reps = info[1].As<Napi::Number>().Int32Value();
    DeviceBuffer source(bytes), destination(bytes);
    cudaStream_t stream;
    Check(cudaStreamCreate(&stream), "cudaStreamCreate");
    struct StreamGuard { cudaStream_t s; ~StreamGuard() { cudaStreamDestroy(s); } } guard{stream};
    Check(cudaMemsetAsync(source.get(), 0x3c, bytes, stream), "fill");  // not zeros
    const std::vector<float> ms = TimeReps(stream, 3, reps, [&] {
      Check(cudaMemcpyAsync(destination.get(), source.get(), bytes, cudaMemcpyDeviceToDevice, stream), "copy");
    });
    const double median_ms = ms[ms.size() / 2];
    Napi::Object out = Napi::Object::New(env);
    out.Set("medianMs", median_ms);
    out.Set("bytesPerSecond", 2.0 * static_cast<double>(bytes) / (median_ms * 1e-3));
    return out;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

}  // namespace

void RegisterSamplerTestBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaSamplerUnavailableReason", Napi::Function::New(env, UnavailableReason));
  exports.Set("cudaSample", Napi::Function::New(env, Sample));
  exports.Set("cudaCopyBandwidth", Napi::Function::New(env, CopyBandwidth));
}

}  // namespace cuda
}  // namespace spindle
