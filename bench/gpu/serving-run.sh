#!/usr/bin/env bash
# The online serving benchmark on a GPU, as vLLM's users run theirs: a separate `spindle serve`
# (Llama-3.1-8B shapes, dummy weights) and bench/serving.ts against it through --base-url, so
# the client does not share the server's event loop. Output under $OUT: serve.log, serving.json.
# Usage (from the repo root, node on PATH): OUT=dir [NUM_PROMPTS=300] [REQUEST_RATE=20]
#   [PRESET=llama-3.1-8b] bench/gpu/serving-run.sh
set -u -o pipefail
OUT=${OUT:-/tmp/spindle-serving}
NUM_PROMPTS=${NUM_PROMPTS:-300}
REQUEST_RATE=${REQUEST_RATE:-20}
PRESET=${PRESET:-llama-3.1-8b}
PORT=${PORT:-8123}
mkdir -p "$OUT"
node bin/spindle.mjs serve --load-format dummy --dummy-preset "$PRESET" --port "$PORT" --host 127.0.0.1 > "$OUT/serve.log" 2>&1 &
server=$!
trap 'kill -TERM "$server" 2> /dev/null; wait "$server" 2> /dev/null' EXIT
healthy() { node -e "fetch('http://127.0.0.1:$PORT/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"; }
# Weights, KV sizing and the tokenizer workers take a while on the first start.
for _ in $(seq 1 180); do
  if healthy; then break; fi
  if ! kill -0 "$server" 2> /dev/null; then echo "spindle serve exited:"; tail -20 "$OUT/serve.log"; exit 1; fi
  sleep 1
done
healthy || { echo "spindle serve did not become healthy"; tail -20 "$OUT/serve.log"; exit 1; }
npx tsx bench/serving.ts --base-url "http://127.0.0.1:$PORT" --preset "$PRESET" --num-prompts "$NUM_PROMPTS" \
  --request-rate "$REQUEST_RATE" --output-json "$OUT/serving.json"
