// Registration only: the Executor class, the CUDA availability queries, test-only entry points.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/kernel_binding.h"  // test-only CPU routine entry points (test/native/cpu-kernels.test.ts)
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Executor", spindle::Executor::Define(env));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCountJs, "cudaDeviceCount"));
  exports.Set("cudaUnavailableReason", Napi::Function::New(env, CudaUnavailableReasonJs, "cudaUnavailableReason"));
  exports.Set("packProfileBatchForTest", Napi::Function::New(env, PackProfileBatchForTest, "packProfileBatchForTest"));
  spindle::cpu::RegisterCpuKernelBindings(env, exports);
#ifdef SPINDLE_WITH_CUDA
  spindle::cuda::RegisterSamplerTestBindings(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(spindle_native, Init)
