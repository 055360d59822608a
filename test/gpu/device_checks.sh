#!/usr/bin/env bash
# One device call's worth of GPU work for the CUDA backend, logs and results under $OUT:
#   1. in parallel: the addon build (npm run build:native), the decode-attention benchmark's
#      build, and test/gpu/hf_reference.py (transformers' models and outputs, /tmp/hfref);
#   2. the benchmark alone on the GPU (+ one launch under ncu for DRAM bytes, if ncu works);
#   3. vitest: test/gpu (kernels, HF parity, executor).
# Usage on the device machine, from the repo root: source .device-h6a/env.sh && test/gpu/device_checks.sh [parts]
# parts: any of build,bench,ref,vitest (default all).
set -u
OUT=${OUT:-/tmp/spindle-out}
mkdir -p "$OUT"
parts=${1:-build,bench,ref,vitest}
has() { [[ ",$parts," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
git rev-parse HEAD 2>/dev/null >> "$OUT/gpu.txt"
start=$(date +%s)
pids=()
# No Node.js headers there: point cmake-js (through npm's nodedir) at node-api-headers' (it
# only checks that include/node/node.h exists; the addon needs node_api.h alone).
mkdir -p /tmp/nodedir/include/node && cp node_modules/node-api-headers/include/*.h /tmp/nodedir/include/node/
touch /tmp/nodedir/include/node/node.h
export npm_config_nodedir=/tmp/nodedir
if has build; then (rm -rf native/build; npm run build:native > "$OUT/build.log" 2>&1; echo "build rc=$?" >> "$OUT/build.log") & pids+=($!); fi
if has bench; then
  bench_nvcc() { nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math -lineinfo -I native/src -I native/src/cuda "$@"; }
  # The default build, the variants (NOTES.md) and the prefill benchmark, in parallel.
  (bench_nvcc bench/gpu/decode_attention.cu native/src/cuda/paged_decode_attention.cu -o /tmp/decode_attention > "$OUT/bench-build.log" 2>&1
   echo "bench build rc=$?" >> "$OUT/bench-build.log") & pids+=($!)
  # Variants: each a comma list of the kernel's SPINDLE_DECODE_* macros, e.g. "STAGES=2,MIN_BLOCKS=4".
  for variant in ${DECODE_VARIANTS:-STAGES=1 STAGES=2 STAGES=3 STAGES=4}; do
    flags=() && IFS=, read -ra settings <<< "$variant"
    for setting in "${settings[@]}"; do flags+=("-DSPINDLE_DECODE_$setting"); done
    name=$(tr 'A-Z,=' 'a-z_-' <<< "${variant//_/}")
    (bench_nvcc "${flags[@]}" bench/gpu/decode_attention.cu native/src/cuda/paged_decode_attention.cu \
       -o "/tmp/decode_attention_v_$name" > "$OUT/bench-build-$name.log" 2>&1) & pids+=($!)
  done
  (bench_nvcc bench/gpu/prefill_attention.cu native/src/cuda/prefill_attention.cu native/src/cuda/prefill_attention_wmma.cu \
     -o /tmp/prefill_attention > "$OUT/bench-build-prefill.log" 2>&1
   echo "prefill bench build rc=$?" >> "$OUT/bench-build-prefill.log") & pids+=($!)
fi
if has ref; then (PYTHONUNBUFFERED=1 python3 test/gpu/hf_reference.py /tmp/hfref ../shared > "$OUT/hf_reference.log" 2>&1; echo "hf_reference rc=$?" >> "$OUT/hf_reference.log") & pids+=($!); fi
for p in "${pids[@]}"; do wait "$p"; done
echo "phase 1 done in $(( $(date +%s) - start )) s"
tail -2 "$OUT/build.log" 2>/dev/null; tail -3 "$OUT"/bench-build*.log 2>/dev/null; tail -8 "$OUT/hf_reference.log" 2>/dev/null
if has bench && [ -x /tmp/decode_attention ]; then
  /tmp/decode_attention 1 > "$OUT/gpu-decode-attention.json" 2>> "$OUT/bench-build.log"; echo "bench rc=$?"
  cat "$OUT/gpu-decode-attention.json"
  for exe in /tmp/decode_attention_v_*; do echo "variant ${exe##*/}:"; "$exe" 1 2>> "$OUT/bench-run.log" | tee -a "$OUT/decode-variants.jsonl"; done
  /tmp/prefill_attention > "$OUT/gpu-prefill-attention.json" 2>> "$OUT/bench-build.log"; echo "prefill bench rc=$?"
  cat "$OUT/gpu-prefill-attention.json"; tail -3 "$OUT/bench-build.log"
  if command -v ncu > /dev/null; then
    timeout 120 ncu --metrics dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum -k regex:paged_decode \
      --launch-skip 5 --launch-count 1 /tmp/decode_attention 1 > "$OUT/ncu.txt" 2>&1
    echo "ncu rc=$?"; grep -E "dram__bytes|gpu__time" "$OUT/ncu.txt"
  fi
fi
if has vitest; then
  SPINDLE_HF_REF_DIR=/tmp/hfref timeout 420 npx vitest run test/gpu/kernels.test.ts test/gpu/hf-parity.test.ts test/gpu/executor-cuda.test.ts \
    test/gpu/sampler.test.ts test/engine/engine-cuda.test.ts \
    > "$OUT/vitest.log" 2>&1
  echo "vitest rc=$?"
  grep -E "identical|rel. L2|dummy|KV blocks|extra nvcc|×|FAIL|Tests |skipped" "$OUT/vitest.log" | head -60
fi
echo "total $(( $(date +%s) - start )) s"
