#!/usr/bin/env bash
# The next device call, as one script: the list in native/src/cuda/NOTES.md "Next device call",
# most important first. Each step runs under its own timeout and inside one deadline for the
# whole call, and the next step runs whatever the last one did; every log goes under
# $OUT/next-call/. At the end that folder is packed into ONE tarball, $OUT/next-call.tgz, beside
# a short $OUT/summary.txt (at most 8 files come back from a call).
#
# Usage, as the device tool's command (carry [".device"]; README "Running on a GPU"):
#   GIT_COMMIT=<git rev-parse HEAD, here> bench/gpu/next-call.sh
# (timeout_s 600). The copy there has no .git, so the commit comes in by the environment.
# Environment, all optional: DEVICE_ENV (.device/env.sh, sourced when node is not on PATH),
# DEADLINE_S (555: seconds after which no step starts or runs on), NUM_PROMPTS (1000: workload
# A), PROFILE_PROMPTS (1000), SMALL_PROMPTS (200: the --max-num-seqs 16 pair), ASYNC_ON_FLAGS /
# ASYNC_OFF_FLAGS (bench/throughput.ts flags for the async-scheduling pair; read from
# bench/throughput/options.ts when unset), STEPS (a comma list of the steps to run, default
# all: checks,stages,decode,floor,a,profile,a_sync,seqs16,sampler,serving).
#
# Time plan on an H100 (16 cores; the last device_checks.sh run: phase 1 52 s, vitest 17 s):
# checks ~80 s (the build in parallel with transformers' reference outputs, then the GPU
# vitest files), stages ~30 s per depth, decode ~90 s, each 1000-prompt throughput run ~85 s (70 s wall at a57c2ec's
# speed, engine start, tokenization), each 200-prompt run at 16 sequences ~35 s (~3,400 steps
# of ~7 ms), sampler ~20 s, serving ~70 s (server start, 300 requests at 20/s): ~530 s in all. A step that would start with less than its minimum
# left is skipped, and says so in steps.txt.
set -u -o pipefail

start=$(date +%s)
OUT=${OUT:-/tmp/spindle-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN="$OUT/next-call"
mkdir -p "$RUN"
DEADLINE_S=${DEADLINE_S:-555}
NUM_PROMPTS=${NUM_PROMPTS:-1000}
PROFILE_PROMPTS=${PROFILE_PROMPTS:-1000}
SMALL_PROMPTS=${SMALL_PROMPTS:-200}
STEPS=${STEPS:-checks,stages,decode,floor,a,profile,a_sync,seqs16,sampler,serving}
GIT_COMMIT=${GIT_COMMIT:-unknown}
export GIT_COMMIT PYTHONUNBUFFERED=1
WORK=/tmp/bench-throughput  # bench/throughput/gpu-run.sh's default: the floor file goes there
STEPS_TXT="$RUN/steps.txt"

wants() { [[ ",$STEPS," == *",$1,"* ]]; }
elapsed() { echo $(( $(date +%s) - start )); }

# run_step NAME MAX_S MIN_S COMMAND...: runs COMMAND (a program, not a shell function) under
# timeout min(MAX_S, what the deadline leaves), output in $RUN/NAME.log; skipped when less than
# MIN_S is left. timeout kills the command's whole process group (npx, vitest workers, node).
# The step runs in the background and is waited for, so that a TERM to this script is handled
# at once (on_signal) instead of after the step.
step_pid=""
run_step() {
  local name=$1 max_s=$2 min_s=$3
  shift 3
  local left=$(( DEADLINE_S - $(elapsed) ))
  if (( left < min_s )); then
    echo "$name: skipped, ${left} s left (needs ${min_s})" | tee -a "$STEPS_TXT"
    return 0
  fi
  local limit=$(( max_s < left ? max_s : left ))
  local t0
  t0=$(date +%s)
  echo "== $name (limit ${limit} s, at $(elapsed) s)"
  timeout -k 10 "$limit" "$@" > "$RUN/$name.log" 2>&1 &
  step_pid=$!
  wait "$step_pid"
  local rc=$?
  step_pid=""
  local note=""
  if (( rc == 124 || rc == 137 )); then note=" (timed out)"; fi
  echo "$name: rc=$rc$note in $(( $(date +%s) - t0 )) s" | tee -a "$STEPS_TXT"
  return 0
}

# Everything under $RUN into one tarball, and a summary beside it; the folder itself goes only
# once the tarball reads back, so a failed pack still leaves the logs.
pack() {
  trap - TERM INT
  {
    echo "next-call.sh at commit $GIT_COMMIT, $(elapsed) s"
    cat "$RUN/info.txt" 2>/dev/null
    echo; cat "$STEPS_TXT" 2>/dev/null
    echo; echo "--- checks (device_checks.sh build,ref,vitest)"
    tail -2 "$RUN/checks/build.log" 2>/dev/null; tail -1 "$RUN/checks/hf_reference.log" 2>/dev/null
    grep -aE "vitest rc=|Test Files|Tests |FAIL|×" "$RUN/checks.log" "$RUN/checks/vitest.log" 2>/dev/null | head -40
    for log in "$RUN"/stages*.log; do
      [ -f "$log" ] || continue
      echo; echo "--- $(basename "$log" .log) (kernel self-test of that build variant)"
      grep -aE "paged_decode|Tests |FAIL|×" "$log" | head -20
    done
    echo; echo "--- decode attention benchmark"
    grep -aE "rc=|fractionOf|dram__bytes|gpu__time|variant" "$RUN/decode.log" 2>/dev/null | head -30
    for run in a profile a_sync seqs16_graphs seqs16_eager; do
      [ -f "$RUN/$run/spindle.log" ] || continue
      echo; echo "--- throughput: $run ($(cat "$RUN/$run/flags.txt" 2>/dev/null))"
      tail -22 "$RUN/$run/spindle.log"
    done
    echo; echo "--- profile.json (SPINDLE_CUDA_PROFILE)"; cat "$RUN/profile/profile.json" 2>/dev/null
    echo; echo "--- sampler"; tail -15 "$RUN/sampler.log" 2>/dev/null
  } > "$OUT/summary.txt" 2>&1
  if tar -czf "$OUT/next-call.tgz" -C "$OUT" next-call && tar -tzf "$OUT/next-call.tgz" > /dev/null; then
    rm -rf "$RUN"
    echo "packed: $OUT/next-call.tgz ($(du -k "$OUT/next-call.tgz" | cut -f1) KiB), $OUT/summary.txt"
  else
    echo "pack failed: the logs stay under $RUN"
  fi
}
on_signal() {
  echo "stopped by a signal at $(elapsed) s" | tee -a "$STEPS_TXT"
  if [ -n "$step_pid" ]; then
    kill -TERM "$step_pid" 2> /dev/null  # timeout passes it on to the step's process group
    wait "$step_pid" 2> /dev/null
  fi
  pack
  exit 143
}
trap on_signal TERM INT

# Node.js and npm come in the carried .device/ (README "Running on a GPU"; DEVICE_ENV names
# another pack's env.sh).
DEVICE_ENV=${DEVICE_ENV:-.device/env.sh}
if ! command -v node > /dev/null && [ -f "$DEVICE_ENV" ]; then
  # shellcheck disable=SC1090
  source "$DEVICE_ENV"
fi
{
  echo "commit: $GIT_COMMIT"
  nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader
  echo "node $(node --version 2>&1), nvcc $(nvcc --version 2>&1 | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
} > "$RUN/info.txt" 2>&1
cat "$RUN/info.txt"
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

# 1. Every GPU test at HEAD (addon build in parallel with transformers' reference outputs):
#    the graph-vs-eager-vs-CPU test and the two gpuMemoryUtilization tests that failed at a57c2ec.
wants checks && run_step checks 300 120 env OUT="$RUN/checks" test/gpu/device_checks.sh build,ref,vitest

# 2. Other builds of the decode attention (KERNEL_VARIANTS) against the float64 reference (the
#    default build is checked in 1), then its benchmark: DECODE_VARIANTS, context splits, ncu's DRAM bytes.
# Each entry of KERNEL_VARIANTS: a comma list of the kernel's SPINDLE_DECODE_* macros.
for variant in ${KERNEL_VARIANTS:-STAGES=3 STAGES=4}; do
  flags=""
  IFS=, read -ra settings <<< "$variant"
  for setting in "${settings[@]}"; do flags+=" -DSPINDLE_DECODE_$setting"; done
  wants stages && run_step "stages-$(tr 'A-Z,=' 'a-z_-' <<< "${variant//_/}")" 120 45 \
    env SPINDLE_KERNEL_NVCC_FLAGS="${flags# }" npx vitest run test/gpu/kernels.test.ts
done
wants decode && run_step decode 150 60 env OUT="$RUN/decode" test/gpu/device_checks.sh bench

# The throughput runs read the ceilings from $WORK/floor-$TAG.json: the committed H100 ones,
# or measured anew (bench/floor.py, ~30 s) on any other GPU.
mkdir -p "$WORK"
TAG=h100
if [[ "$gpu_name" == *H100* ]]; then
  cp bench/results/throughput-h100-floor.json "$WORK/floor-$TAG.json"
else
  TAG=other
  wants floor && run_step floor 90 40 env OUT="$RUN/floor" TAG="$TAG" bench/throughput/gpu-run.sh floor
fi
export TAG

# The async-scheduling pair, if the benchmark has the flag: bench/throughput.ts has
# --no-async-scheduling (on by default, as in the engine); an --async-scheduling flag, should
# one appear, is passed to the 'on' runs. Read from the copy that travelled, so it follows HEAD.
opts=bench/throughput/options.ts
if [ -z "${ASYNC_ON_FLAGS+x}" ] && [ -z "${ASYNC_OFF_FLAGS+x}" ]; then
  ASYNC_ON_FLAGS=""
  ASYNC_OFF_FLAGS=""
  has_async=0
  if grep -q "'async-scheduling'" "$opts"; then ASYNC_ON_FLAGS="--async-scheduling"; has_async=1; fi
  if grep -q "'no-async-scheduling'" "$opts"; then ASYNC_OFF_FLAGS="--no-async-scheduling"; has_async=1; fi
else
  ASYNC_ON_FLAGS=${ASYNC_ON_FLAGS:-}
  ASYNC_OFF_FLAGS=${ASYNC_OFF_FLAGS:-}
  has_async=1
fi
echo "async scheduling flags: on '${ASYNC_ON_FLAGS}', off '${ASYNC_OFF_FLAGS}' (pair run: $has_async)" | tee -a "$STEPS_TXT"

# throughput NAME PROMPTS FLAGS [ENV=VALUE...]: one bench/throughput/gpu-run.sh spindle run,
# its log and JSON in $RUN/NAME/.
throughput() {
  local name=$1 prompts=$2 flags=$3
  shift 3
  mkdir -p "$RUN/$name"
  echo "$flags, $prompts prompts${*:+, $*}" > "$RUN/$name/flags.txt"
  run_step "$name" "$STEP_MAX" "$STEP_MIN" env OUT="$RUN/$name" NUM_PROMPTS="$prompts" SPINDLE_FLAGS="$flags" "$@" \
    bench/throughput/gpu-run.sh spindle
}

# 3. Workload A: the mixed-batch decode kernel's effect (was 14.3 req/s, forward 42.6 ms/step).
STEP_MAX=200 STEP_MIN=60
if wants a; then throughput a "$NUM_PROMPTS" "$ASYNC_ON_FLAGS"; fi
# 4. The same with the per-phase GPU profile (graphs off while it times each kernel).
if wants profile; then throughput profile "$PROFILE_PROMPTS" "$ASYNC_ON_FLAGS" SPINDLE_CUDA_PROFILE="$RUN/profile/profile.json"; fi
# 5. Workload A without async scheduling: what packing the next step ahead gains.
if wants a_sync && (( has_async )); then throughput a_sync "$NUM_PROMPTS" "$ASYNC_OFF_FLAGS"; fi
# 6. What decode graphs save where the step is short: 16 sequences, graphs vs eager.
STEP_MAX=90 STEP_MIN=30
if wants seqs16; then
  throughput seqs16_graphs "$SMALL_PROMPTS" "--max-num-seqs 16 $ASYNC_ON_FLAGS"
  throughput seqs16_eager "$SMALL_PROMPTS" "--max-num-seqs 16 --enforce-eager $ASYNC_ON_FLAGS"
fi
# 7. The batched sampler at 256 x 128,256 (v3's JSON; bench/gpu/sampler.notes.md).
wants sampler && run_step sampler 90 25 npx tsx bench/gpu/sampler.ts --out "$RUN/gpu-sampler.json" --commit "$GIT_COMMIT"

# 8. Online serving (vLLM's bench serve): a separate `spindle serve` of Llama-3.1-8B shapes,
#    300 ShareGPT requests at 20 requests/s through --base-url (bench/gpu/serving-run.sh).
wants serving && run_step serving 120 60 env OUT="$RUN/serving" bench/gpu/serving-run.sh

echo "all steps done at $(elapsed) s"
pack
