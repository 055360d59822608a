#!/usr/bin/env bash
# The throughput benchmark's device call: build the addon, measure the ceilings, run Spindle,
# run transformers on the same requests, compare. Files are kept in $WORK (the machine keeps
# them while warm, so a second call can run the later parts) and copied to $OUT.
# Usage on the GPU machine, from the repo root:
#   source .device/env.sh && bench/throughput/gpu-run.sh [parts]
# parts: any of build,floor,spindle,hf,compare (default all). Environment: PRESET (llama-3.1-8b),
# NUM_PROMPTS (1000), TAG (h100), SPINDLE_FLAGS (more bench/throughput.ts flags),
# HF_CONFIGS (JSON for --cb-configs), HF_DEADLINE_S (300), GIT_COMMIT (the copy there has no
# .git: pass `git rev-parse HEAD` from here so the results record it).
set -u -o pipefail
OUT=${OUT:-/tmp/spindle-out}
WORK=${WORK:-/tmp/bench-throughput}
PRESET=${PRESET:-llama-3.1-8b}
NUM_PROMPTS=${NUM_PROMPTS:-1000}
TAG=${TAG:-h100}
SPINDLE_FLAGS=${SPINDLE_FLAGS:-}
# The 200-request sweep's winner, with 30% of free memory left for its CUDA graphs: at the
# default 90% its graph warm-up ran out of memory over 1000 requests (not yet run this way).
HF_CONFIGS=${HF_CONFIGS:-'[{"name":"graphs+async, 1k batch tokens, 70% memory","max_batch_tokens":1024,"max_memory_percent":0.7,"use_cuda_graph":true,"use_async_batching":true}]'}
HF_DEADLINE_S=${HF_DEADLINE_S:-300}
parts=${1:-build,floor,spindle,hf,compare}
has() { [[ ",$parts," == *",$1,"* ]]; }
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
[ -n "${GIT_COMMIT:-}" ] && export SPINDLE_GIT_COMMIT="$GIT_COMMIT"
spindle_json="$WORK/throughput-$TAG-$PRESET.json"
hf_json="$WORK/hf-baseline-$TAG-$PRESET.json"
start=$(date +%s)
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader
echo "commit: ${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"

if has build; then
  # No Node.js headers on that machine: cmake-js only needs include/node/node.h to exist and
  # the addon only node_api.h, which node-api-headers ships.
  mkdir -p /tmp/nodedir/include/node && cp node_modules/node-api-headers/include/*.h /tmp/nodedir/include/node/ && touch /tmp/nodedir/include/node/node.h
  export npm_config_nodedir=/tmp/nodedir
  npm run build:native > "$OUT/build.log" 2>&1 || { echo "build failed"; tail -30 "$OUT/build.log"; exit 1; }
  echo "build ok ($(( $(date +%s) - start )) s)"
fi
if has floor; then
  python3 bench/floor.py --out "$WORK/floor-$TAG.json" 2>&1 | tee "$OUT/floor.log" || exit 1
  cp "$WORK/floor-$TAG.json" "$OUT/"
fi
if has spindle; then
  # shellcheck disable=SC2086
  npx tsx bench/throughput.ts --load-format dummy --preset "$PRESET" --device cuda --num-prompts "$NUM_PROMPTS" \
    --floor "$WORK/floor-$TAG.json" --output-json "$spindle_json" --requests-out "$WORK/requests.json" --no-progress $SPINDLE_FLAGS \
    2>&1 | tee "$OUT/spindle.log"
  rc=$?
  cp "$spindle_json" "${spindle_json%.json}.svg" "$OUT/" 2>/dev/null
  [ "$rc" = 0 ] || { echo "spindle run failed (rc $rc)"; exit 1; }
  echo "spindle done ($(( $(date +%s) - start )) s)"
fi
if has hf; then
  python3 bench/hf_baseline.py --requests "$WORK/requests.json" --out "$hf_json" --modes cb --sweep-num-prompts 0 \
    --deadline-s "$HF_DEADLINE_S" --cb-configs "$HF_CONFIGS" > "$OUT/hf.log" 2>&1
  echo "hf rc=$? ($(( $(date +%s) - start )) s)"
  grep -E "^\[cb\]|^\[static\]|best" "$OUT/hf.log"
  cp "$hf_json" "$OUT/" 2>/dev/null
fi
if has compare; then
  npx tsx bench/throughput.ts --compare "$spindle_json" "$hf_json" && cp "$spindle_json" "$OUT/"
fi
echo "total $(( $(date +%s) - start )) s"
