// Test-only entry points of the CUDA sampler (sampler_binding.cc), registered by addon.cc.
#pragma once
#include <napi.h>

namespace spindle {
namespace cuda {

// Adds cudaSamplerUnavailableReason, cudaSample and cudaCopyBandwidth to `exports`.
void RegisterSamplerTestBindings(Napi::Env env, Napi::Object exports);

}  // namespace cuda
}  // namespace spindle
