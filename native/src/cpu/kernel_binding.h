// Test-only entry points: the CPU backend's routines on arrays from JavaScript, so that each
// routine is checked against a float64 reference on fresh random inputs
// (test/native/cpu-kernels.test.ts). Exported as `cpuKernels` (NativeCpuKernels in native.ts).
#pragma once
#include <napi.h>

namespace spindle {
namespace cpu {

void RegisterCpuKernelBindings(Napi::Env env, Napi::Object exports);

}  // namespace cpu
}  // namespace spindle
