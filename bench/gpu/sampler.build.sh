#!/usr/bin/env bash
# Fallback build for the CUDA sampler's test and benchmark when the full addon does not build
# (other CUDA sources mid-work): compiles only the sampler, its test binding and the CPU
# sampler into native/build/Release/spindle_native.node, with a minimal registration.
# Usage (on the GPU machine): bash bench/gpu/sampler.build.sh [OUTPUT.node]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
napi=$(node -p "require('node-addon-api').include" | tr -d '"')
headers=$(node -p "require('node-api-headers').include_dir")
build=/tmp/spindle-sampler-build
rm -rf "$build" && mkdir -p "$build"
cat > "$build/init.cc" <<'CC'
#include <napi.h>
#include "cuda/sampler_binding.h"
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  spindle::cuda::RegisterSamplerTestBindings(env, exports);
  return exports;
}
NODE_API_MODULE(spindle_native, Init)
CC
flags="-std=c++17 -O3 -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DSPINDLE_WITH_CUDA=1 -I$napi -I$headers -Inative/src"
cuda_include=${CUDA_HOME:-/usr/local/cuda}/include
[ -f "$cuda_include/cuda_runtime.h" ] || cuda_include=/usr/local/cuda/include
pids=""
nvcc $flags -arch=sm_90 --use_fast_math -lineinfo -Xcompiler -fPIC -c native/src/cuda/sampler.cu -o "$build/sampler.o" &
pids="$pids $!"
for f in native/src/cuda/sampler_binding.cc native/src/cpu/sampler.cc native/src/cpu/thread_pool.cc "$build/init.cc"; do
  g++ $flags -I"$cuda_include" -fPIC -c "$f" -o "$build/$(echo "$f" | tr / _).o" &
  pids="$pids $!"
done
for pid in $pids; do wait "$pid"; done
out=${1:-native/build/Release/spindle_native.node}
mkdir -p "$(dirname "$out")"
nvcc -shared -o "$out" "$build"/*.o -lcudart_static -lpthread -ldl -lrt
echo "built $out (sampler only)"
