/**
 * Times the CUDA batched sampler (native/src/cuda/sampler.cu) on 256 x 128,256 fp32 logits
 * (Llama 3's vocabulary) and sets it against an estimate of a Llama-3.1-8B decode step at
 * batch 256 on the same GPU.
 *
 * Timing: CUDA events around each SampleBatch launch, after warm-up, median of many reps
 * (inside the test-only binding, cudaSample). The logits (131 MB) exceed L2, so repeats do
 * not run from cache. Logits are random (never zeros).
 *
 * Step estimate (a floor: decode at batch 256 is bandwidth-bound): the bf16 weights
 * (8.03e9 parameters x 2 bytes) plus the KV cache of 256 sequences at an average context of
 * CONTEXT_TOKENS (32 layers x 8 KV heads x 128 dims x K and V x 2 bytes = 128 KiB a token),
 * all read once at the measured device-to-device copy rate (bytes read + written / time).
 *
 * Usage: npx tsx bench/gpu/sampler.ts [--out bench/results/gpu-sampler.json] [--commit HASH]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { fillLogits, loadSamplerBinding, Random, randomParams, sampleOnGpu, type LogitsKind } from '../../test/gpu/sampler-fixtures.ts';
import type { RowParams } from '../../test/gpu/sampler-reference.ts';

const VOCAB = 128_256;
const NUM_ROWS = 256;
const TIMING_REPS = 200;
const LLAMA_8B_WEIGHT_BYTES = 8.03e9 * 2;
const KV_BYTES_PER_TOKEN = 32 * 8 * 128 * 2 * 2;
const CONTEXT_TOKENS = 512;

const { values } = parseArgs({ options: { out: { type: 'string', default: 'bench/results/gpu-sampler.json' }, commit: { type: 'string', default: 'unknown' } } });

const { binding, reason } = loadSamplerBinding();
if (!binding) {
  console.error(`cannot run: ${reason}`);
  process.exit(1);
}

interface Scenario {
  name: string;
  kinds: readonly LogitsKind[];
  params: (rng: Random) => RowParams;
}

const plain = (overrides: Partial<RowParams>) => (rng: Random): RowParams => ({
  temperature: 0.8, topK: 0, topP: 1, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1,
  rngKeyLo: rng.u32(), rngKeyHi: rng.u32(), numLogprobs: 0, history: new Int32Array(0), promptLen: 0, ...overrides,
});

const scenarios: Scenario[] = [
  { name: 'greedy', kinds: ['spread'], params: plain({ temperature: 0 }) },
  { name: 'temperature 0.8 (no masks)', kinds: ['spread'], params: plain({}) },
  { name: 'top_p 0.9, spread logits', kinds: ['spread'], params: plain({ topP: 0.9 }) },
  { name: 'top_p 0.9, peaked logits', kinds: ['peaked'], params: plain({ topP: 0.9 }) },
  { name: 'top_p 0.9, near-uniform logits (worst case)', kinds: ['nearUniform'], params: plain({ topP: 0.9 }) },
  { name: 'top_k 50 + top_p 0.9', kinds: ['spread'], params: plain({ topK: 50, topP: 0.9 }) },
  { name: 'top_p 0.9 + 5 logprobs', kinds: ['spread'], params: plain({ topP: 0.9, numLogprobs: 5 }) },
  { name: 'mixed params (penalties, top_k/p, min_p, logprobs)', kinds: ['spread', 'peaked', 'nearUniform', 'ties'], params: (rng) => randomParams(rng, VOCAB) },
];

const copy = binding.cudaCopyBandwidth(2 ** 31, 30);
const stepBytes = LLAMA_8B_WEIGHT_BYTES + NUM_ROWS * CONTEXT_TOKENS * KV_BYTES_PER_TOKEN;
const stepMs = (stepBytes / copy.bytesPerSecond) * 1e3;
const weightsOnlyMs = (LLAMA_8B_WEIGHT_BYTES / copy.bytesPerSecond) * 1e3;

const rng = new Random(0x5a3b1e);
const results = [];
let deviceName = '';
for (const scenario of scenarios) {
  const logits = new Float32Array(NUM_ROWS * VOCAB);
  const rows: RowParams[] = [];
  for (let s = 0; s < NUM_ROWS; s++) {
    fillLogits(logits.subarray(s * VOCAB, (s + 1) * VOCAB), scenario.kinds[s % scenario.kinds.length], rng);
    rows.push(scenario.params(rng));
  }
  const { run } = sampleOnGpu(binding, rows, logits, VOCAB, { timingReps: TIMING_REPS, warmupReps: 10 });
  deviceName = run.deviceName;
  const medianMs = run.medianMs ?? NaN;
  results.push({ name: scenario.name, medianMs, minMs: run.minMs ?? NaN, percentOfStep: (100 * medianMs) / stepMs, percentOfWeightsOnlyStep: (100 * medianMs) / weightsOnlyMs });
}

const report = {
  benchmark: 'CUDA batched sampler (SampleBatch), one launch per batch',
  gpu: deviceName,
  commit: values.commit,
  command: `npx tsx bench/gpu/sampler.ts --out ${values.out} --commit ${values.commit}`,
  date: new Date().toISOString(),
  numRows: NUM_ROWS,
  vocabSize: VOCAB,
  timingReps: TIMING_REPS,
  copyBytesPerSecond: copy.bytesPerSecond,
  stepEstimate: {
    model: 'Llama-3.1-8B, bf16, decode, batch 256',
    method: `(weights ${LLAMA_8B_WEIGHT_BYTES / 1e9} GB + KV of 256 seqs x ${CONTEXT_TOKENS} tokens x ${KV_BYTES_PER_TOKEN} B) / measured copy rate`,
    stepMs,
    weightsOnlyMs,
  },
  scenarios: results,
};
writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
console.log(`${deviceName}: copy ${(copy.bytesPerSecond / 1e9).toFixed(0)} GB/s; step estimate ${stepMs.toFixed(2)} ms (weights only ${weightsOnlyMs.toFixed(2)} ms)`);
console.log('scenario'.padEnd(52) + 'median ms'.padStart(10) + 'min ms'.padStart(9) + '% step'.padStart(8) + '% wts'.padStart(8));
for (const r of results) {
  console.log(r.name.padEnd(52) + r.medianMs.toFixed(4).padStart(10) + r.minMs.toFixed(4).padStart(9) + r.percentOfStep.toFixed(2).padStart(8) + r.percentOfWeightsOnlyStep.toFixed(2).padStart(8));
}
