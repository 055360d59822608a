/**
 * The CPU batched sampler (native/src/cpu/sampler.cc) against the plain full-vocabulary one it
 * replaced (cpu/sampler_reference.cc, the "before"), on 32 rows of 128,256 fp32 logits (Llama
 * 3's vocabulary, the `tiny` dummy preset's), one thread, through the test-only binding
 * cpuKernels.sample. Both run in the same process on the same inputs, alternating, so that
 * load from other work on the machine hits both alike.
 *
 * Logits: "spread" = N(0, 3²) plus four ids at 12..20 (a few large ones, as real models have);
 * "flat" = N(0, 0.01²), the worst case for the sampler's bounds (every id could still win).
 * Every timed call also checks that the two samplers drew the same ids and that their logprobs
 * agree (the command exits with status 1 otherwise).
 *
 * Times: wall clock, and the process's CPU time (user + system, process.cpuUsage) over the same
 * call: on a machine shared with other work the wall clock also counts the time the thread
 * waited for a core, the CPU time does not. Both are reported, per row.
 *
 * Usage: npx tsx bench/cpu-sampler.ts [--reps 7] [--rows 32] [--out bench/results/cpu-sampler.json] [--no-write]
 */
import { parseArgs } from 'node:util';

import { readResult, type ResultViews } from '../src/engine/batch-layout.ts';
import { loadNative } from '../src/engine/native.ts';
import { packBatch, Random } from '../test/gpu/sampler-fixtures.ts';
import type { RowParams } from '../test/gpu/sampler-reference.ts';
import { machineInfo } from './lib/machine.ts';
import { writeJsonFile } from './lib/results-file.ts';
import { summarize } from './lib/stats.ts';

const VOCAB = 128_256;

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '7' },
    rows: { type: 'string', default: '32' },
    out: { type: 'string', default: 'bench/results/cpu-sampler.json' },
    'no-write': { type: 'boolean', default: false },
  },
});
const reps = Number(values.reps);
const numRows = Number(values.rows);

type LogitsKind = 'spread' | 'flat';

function fillLogits(row: Float32Array, kind: LogitsKind, rng: Random): void {
  for (let i = 0; i < row.length; i++) row[i] = (kind === 'flat' ? 0.01 : 3) * rng.normal();
  if (kind === 'spread') for (let j = 0; j < 4; j++) row[rng.int(row.length)] = 12 + 8 * rng.uniform();
}

const plain = (overrides: Partial<RowParams>) => (rng: Random): RowParams => ({
  temperature: 1, topK: 0, topP: 1, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1,
  rngKeyLo: rng.u32(), rngKeyHi: rng.u32(), numLogprobs: 0, history: new Int32Array(0), promptLen: 0, ...overrides,
});

interface Scenario {
  name: string;
  params: (rng: Random) => RowParams;
}

const scenarios: Scenario[] = [
  { name: 'temperature 1, top_p 1', params: plain({}) },
  { name: 'top_p 0.9', params: plain({ topP: 0.9 }) },
  { name: 'top_k 50', params: plain({ topK: 50 }) },
  { name: 'greedy', params: plain({ temperature: 0 }) },
  { name: '5 logprobs', params: plain({ numLogprobs: 5 }) },
];

const kernels = loadNative().cpuKernels;

/** Largest |a - b| over the sampled and top-N logprobs; throws where the ids differ. */
function compare(fast: ResultViews, ref: ResultViews, what: string): number {
  let worst = 0;
  for (let s = 0; s < fast.sampledTokenIds.length; s++) {
    if (fast.sampledTokenIds[s] !== ref.sampledTokenIds[s]) throw new Error(`${what}: row ${s} drew ${fast.sampledTokenIds[s]}, the reference ${ref.sampledTokenIds[s]}`);
    worst = Math.max(worst, Math.abs(fast.sampledLogprobs[s] - ref.sampledLogprobs[s]));
  }
  for (let j = 0; j < fast.topTokenIds.length; j++) {
    if (fast.topTokenIds[j] !== ref.topTokenIds[j]) throw new Error(`${what}: top-N slot ${j} is ${fast.topTokenIds[j]}, the reference ${ref.topTokenIds[j]}`);
    if (ref.topTokenIds[j] >= 0) worst = Math.max(worst, Math.abs(fast.topLogprobs[j] - ref.topLogprobs[j]));
  }
  return worst;
}

const rng = new Random(0xc0ffee);
const results = [];
let failed = false;
for (const kind of ['spread', 'flat'] as const) {
  for (const scenario of scenarios) {
    const logits = new Float32Array(numRows * VOCAB);
    const rows: RowParams[] = [];
    for (let s = 0; s < numRows; s++) {
      fillLogits(logits.subarray(s * VOCAB, (s + 1) * VOCAB), kind, rng);
      rows.push(scenario.params(rng));
    }
    const { buffer, shape } = packBatch(rows);
    const time = (reference: boolean): { wallMs: number; cpuMs: number; views: ResultViews } => {
      const cpu = process.cpuUsage();
      const start = performance.now();
      const out = kernels.sample(buffer, logits, VOCAB, 1, reference);
      const wallMs = performance.now() - start;
      const used = process.cpuUsage(cpu);
      return { wallMs, cpuMs: (used.user + used.system) / 1000, views: readResult(out, shape, VOCAB) };
    };
    time(true);
    time(false);
    const before = { wall: [] as number[], cpu: [] as number[] };
    const after = { wall: [] as number[], cpu: [] as number[] };
    let maxLogprobDiff = 0;
    for (let rep = 0; rep < reps; rep++) {
      const ref = time(true);
      const fast = time(false);
      before.wall.push(ref.wallMs / numRows);
      before.cpu.push(ref.cpuMs / numRows);
      after.wall.push(fast.wallMs / numRows);
      after.cpu.push(fast.cpuMs / numRows);
      try {
        maxLogprobDiff = Math.max(maxLogprobDiff, compare(fast.views, ref.views, `${kind} / ${scenario.name}`));
      } catch (err) {
        console.error(err instanceof Error ? err.message : err);
        failed = true;
      }
    }
    const b = { wallMsPerRow: summarize(before.wall), cpuMsPerRow: summarize(before.cpu) };
    const a = { wallMsPerRow: summarize(after.wall), cpuMsPerRow: summarize(after.cpu) };
    const speedup = b.cpuMsPerRow.p50 / a.cpuMsPerRow.p50;
    results.push({ logits: kind, scenario: scenario.name, before: b, after: a, cpuSpeedup: speedup, wallSpeedup: b.wallMsPerRow.p50 / a.wallMsPerRow.p50, maxLogprobDiff });
    console.log(
      `${kind.padEnd(7)} ${scenario.name.padEnd(24)} cpu ms/row: before ${b.cpuMsPerRow.p50.toFixed(3).padStart(7)}  after ${a.cpuMsPerRow.p50.toFixed(3).padStart(6)}  x${speedup.toFixed(1).padStart(5)}` +
        `   (wall ${b.wallMsPerRow.p50.toFixed(3)} / ${a.wallMsPerRow.p50.toFixed(3)})  max |dlogprob| ${maxLogprobDiff.toExponential(1)}`,
    );
  }
}

const report = {
  benchmark: 'CPU batched sampler, ms per row (one call on all rows / rows; p50 etc. over reps), CPU time and wall clock; before = SampleBatchReference (the sampler as it was), after = SampleBatch',
  machine: machineInfo(),
  vocabSize: VOCAB,
  numRows,
  numThreads: 1,
  reps,
  logits: { spread: 'N(0, 3^2) + 4 ids at U(12, 20)', flat: 'N(0, 0.01^2)' },
  results,
};
if (!values['no-write']) console.log(`wrote ${writeJsonFile(values.out, report)}`);
if (failed) process.exit(1);
