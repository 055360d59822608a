// Registration only: the Executor class, the CUDA availability queries, test-only entry points.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/kernel_binding.h"  // test-only CPU routine entry points (test/native/cpu-kernels.test.ts)
#include "cuda/step_plan.h"      // host-only (no CUDA): the CUDA step's plan, for planCudaStepForTest
#include "executor.h"
#include "profile_batch.h"
#ifdef SPINDLE_WITH_CUDA
#include "cuda/sampler_binding.h"  // test-only sampler entry points (test/gpu/sampler.test.ts)
#endif

namespace {

Napi::Value CudaDeviceCountJs(const Napi::CallbackInfo& info) {
#ifdef SPINDLE_WITH_CUDA
  std::string reason;
  return Napi::Number::New(info.Env(), spindle::CudaDeviceCount(&reason));
#else
  return Napi::Number::New(info.Env(), 0);
#endif
}

Napi::Value CudaUnavailableReasonJs(const Napi::CallbackInfo& info) {
#ifdef SPINDLE_WITH_CUDA
  std::string reason;
  const int count = spindle::CudaDeviceCount(&reason);
  return Napi::String::New(info.Env(), count > 0 ? "" : reason);
#else
  return Napi::String::New(info.Env(), "built without CUDA (no nvcc at build time)");
#endif
}

// Test-only: the CUDA backend's KV-sizing batch (test/native/profile-batch.test.ts).
Napi::Value PackProfileBatchForTest(const Napi::CallbackInfo& info) {
  const std::vector<int32_t> packed = spindle::PackProfileBatch(
      info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Int32Value());
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(info.Env(), packed.size() * sizeof(int32_t));
  std::memcpy(out.Data(), packed.data(), out.ByteLength());
  return out;
}

// Test-only: what the CUDA backend decides on the host for one packed batch (cuda/step_plan.h),
// so that the CPU tests check it where no GPU runs (test/native/cuda-step-plan.test.ts).
// Arguments: the batch (ArrayBuffer) and {decodeKernelSupported, numKvHeads, numSms,
// blockSize, graphTableWidth, maxNumSeqs}.
Napi::Value PlanCudaStepForTest(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArrayBuffer() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "planCudaStepForTest(batch: ArrayBuffer, options: object)");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  const Napi::Object o = info[1].As<Napi::Object>();
  auto num = [&](const char* key) { return o.Get(key).As<Napi::Number>().Int32Value(); };
  spindle::StepBatch batch;
  try {
    batch = spindle::ParseStepBatch(buffer.Data(), buffer.ByteLength());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  namespace sc = spindle::cuda;
  const sc::StepPlan plan = sc::PlanStep(batch, o.Get("decodeKernelSupported").ToBoolean().Value());
  const std::vector<int> sizes = sc::DecodeGraphSizes(num("maxNumSeqs"));
  const bool graphable = sc::IsGraphableDecodeStep(batch, plan.num_decodes, num("blockSize"), num("graphTableWidth"));
  Napi::Object out = Napi::Object::New(env);
  out.Set("numDecodes", plan.num_decodes);
  out.Set("maxDecodeLen", plan.max_decode_len);
  out.Set("maxPrefillQueryLen", plan.max_prefill_query_len);
  out.Set("decodeSplits", sc::DecodeSplits(plan.num_decodes, plan.max_decode_len, num("numKvHeads"), num("numSms")));
  out.Set("graphable", graphable);
  out.Set("graphSize", graphable && batch.num_seqs <= sizes.back() ? sizes[sc::DecodeGraphIndex(sizes, batch.num_seqs)] : 0);
  Napi::Array graph_sizes = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) graph_sizes.Set(static_cast<uint32_t>(i), sizes[i]);
  out.Set("graphSizes", graph_sizes);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Executor", spindle::Executor::Define(env));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCountJs, "cudaDeviceCount"));
  exports.Set("cudaUnavailableReason", Napi::Function::New(env, CudaUnavailableReasonJs, "cudaUnavailableReason"));
  exports.Set("packProfileBatchForTest", Napi::Function::New(env, PackProfileBatchForTest, "packProfileBatchForTest"));
  exports.Set("planCudaStepForTest", Napi::Function::New(env, PlanCudaStepForTest, "planCudaStepForTest"));
  spindle::cpu::RegisterCpuKernelBindings(env, exports);
#ifdef SPINDLE_WITH_CUDA
  spindle::cuda::RegisterSamplerTestBindings(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(spindle_native, Init)
