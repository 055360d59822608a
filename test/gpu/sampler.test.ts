/**
 * The CUDA batched sampler (native/src/cuda/sampler.cu) against a float64 reference
 * (sampler-reference.ts) and against the CPU sampler (native/src/cpu/sampler.cc) on fresh
 * random logits. Bounds: logprobs within 1e-4 absolute of float64; top-N ranks right up to
 * near-ties (1e-5 in logprob); drawn tokens inside the float64 kept set (or on its float32
 * boundary); CPU and GPU draws identical except where the float64 Gumbel scores of the two
 * tokens are within 1e-4 or a token sits on a mask boundary; chi-square (p = 1e-4) of 100k
 * draws per setting. Skips (with the reason) where the addon has no CUDA or no GPU is present.
 */
import { describe, expect, it } from 'vitest';

import type { ResultViews } from '../../src/engine/batch-layout.ts';
import { fillLogits, loadSamplerBinding, LOGITS_KINDS, MAX_TOP_LOGPROBS, Random, randomParams, sampleOnGpu, type SamplerBinding } from './sampler-fixtures.ts';
import { drawScore, keptDistribution, referenceRow, type RowParams, type RowReference } from './sampler-reference.ts';

const { binding, reason } = loadSamplerBinding();
if (!binding) console.log(`skipping the CUDA sampler tests: ${reason}`);

function gpuBinding(): SamplerBinding {
  if (!binding) throw new Error(reason);
  return binding;
}

const LOGPROB_TOLERANCE = 1e-4;
const seed = (Date.now() ^ (process.pid << 16)) >>> 0;
console.log(`sampler test seed ${seed}`);

function randomRows(rng: Random, numRows: number, vocab: number): { rows: RowParams[]; logits: Float32Array } {
  const logits = new Float32Array(numRows * vocab);
  const rows: RowParams[] = [];
  for (let s = 0; s < numRows; s++) {
    fillLogits(logits.subarray(s * vocab, (s + 1) * vocab), LOGITS_KINDS[s % LOGITS_KINDS.length], rng);
    rows.push(randomParams(rng, vocab));
  }
  return { rows, logits };
}

/** Checks row s of `out` against the float64 reference; returns the drawn token. */
function checkRow(out: ResultViews, s: number, ref: RowReference, params: RowParams, vocab: number): number {
  const token = out.sampledTokenIds[s];
  expect(Number.isInteger(token) && token >= 0 && token < vocab, `row ${s}: token ${token}`).toBe(true);
  expect(Math.abs(out.sampledLogprobs[s] - ref.logprobs[token]), `row ${s}: sampled logprob`).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
  if (ref.isGreedy) {
    const best = ref.order[0];
    expect(token === best || ref.processed[best] - ref.processed[token] <= 1e-6 * Math.max(1, Math.abs(ref.processed[best])), `row ${s}: greedy`).toBe(true);
  } else {
    expect(ref.kept[token] === 1 || ref.ambiguous[token] === 1, `row ${s}: token ${token} is masked`).toBe(true);
  }
  const numTop = Math.min(params.numLogprobs, MAX_TOP_LOGPROBS);
  const seen = new Set<number>();
  for (let k = 0; k < MAX_TOP_LOGPROBS; k++) {
    const id = out.topTokenIds[s * MAX_TOP_LOGPROBS + k];
    if (k >= numTop) {
      expect(id, `row ${s}: top ${k} past numLogprobs`).toBe(-1);
      continue;
    }
    expect(id >= 0 && id < vocab && !seen.has(id), `row ${s}: top ${k} id ${id}`).toBe(true);
    seen.add(id);
    expect(Math.abs(out.topLogprobs[s * MAX_TOP_LOGPROBS + k] - ref.logprobs[id]), `row ${s}: top ${k} logprob`).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
    expect(Math.abs(ref.logprobs[id] - ref.logprobs[ref.order[k]]), `row ${s}: top ${k} rank`).toBeLessThanOrEqual(1e-5);
  }
  return token;
}

describe.skipIf(!binding)('CUDA sampler', () => {
  for (const vocab of [128_256, 151_936]) {
    it(`matches float64 and the CPU sampler on random rows, vocab ${vocab}`, () => {
      const rng = new Random(seed ^ vocab);
      const numRows = 48;
      const { rows, logits } = randomRows(rng, numRows, vocab);
      const { gpu, cpu } = sampleOnGpu(gpuBinding(), rows, logits, vocab, { withCpu: true });
      if (!cpu) throw new Error('no CPU result');
      let agreements = 0;
      for (let s = 0; s < numRows; s++) {
        const ref = referenceRow(logits.subarray(s * vocab, (s + 1) * vocab), rows[s]);
        const token = checkRow(gpu, s, ref, rows[s], vocab);
        const cpuToken = cpu.sampledTokenIds[s];
        if (cpuToken === token) {
          agreements++;
          continue;
        }
        // A disagreement must be a near-tie: of the two draws' scores, or on a mask boundary.
        const onBoundary = ref.ambiguous[token] === 1 || ref.ambiguous[cpuToken] === 1;
        const scoreGap = ref.isGreedy ? Math.abs(ref.processed[token] - ref.processed[cpuToken]) : Math.abs(drawScore(ref, rows[s], token) - drawScore(ref, rows[s], cpuToken));
        console.log(`row ${s}: GPU ${token}, CPU ${cpuToken}, score gap ${scoreGap.toExponential(2)}, on a mask boundary: ${onBoundary}`);
        expect(onBoundary || scoreGap <= 1e-4, `row ${s}: GPU and CPU draws differ without a near-tie`).toBe(true);
      }
      console.log(`vocab ${vocab}: GPU and CPU drew the same token in ${agreements}/${numRows} rows`);
    });
  }

  it('draws the same token for the same key whatever else is in the batch (odd vocab, unsampled rows)', () => {
    const rng = new Random(seed ^ 0x5eed);
    const vocab = 32_003; // odd: rows start unaligned, slices end short
    const { rows, logits } = randomRows(rng, 24, vocab);
    const first = sampleOnGpu(gpuBinding(), rows, logits, vocab);
    // Second batch: the same rows reversed, interleaved with other rows, some not sampled.
    const other = randomRows(rng, 24, vocab);
    const mixedRows: RowParams[] = [];
    const mixedLogits = new Float32Array(48 * vocab);
    const origin: number[] = [];
    for (let i = 0; i < 24; i++) {
      const s = 23 - i;
      mixedLogits.set(logits.subarray(s * vocab, (s + 1) * vocab), mixedRows.length * vocab);
      mixedRows.push(rows[s]);
      origin.push(s);
      mixedLogits.set(other.logits.subarray(i * vocab, (i + 1) * vocab), mixedRows.length * vocab);
      mixedRows.push(other.rows[i]);
      origin.push(-1);
    }
    const skipped = (m: number): boolean => origin[m] < 0 && m % 4 === 1;
    const second = sampleOnGpu(gpuBinding(), mixedRows, mixedLogits, vocab, {}, skipped);
    for (let m = 0; m < mixedRows.length; m++) {
      const s = origin[m];
      if (skipped(m)) {
        expect(second.gpu.sampledTokenIds[m], `unsampled row ${m}`).toBe(-1);
        expect(Array.from(second.gpu.topTokenIds.subarray(m * MAX_TOP_LOGPROBS, (m + 1) * MAX_TOP_LOGPROBS)).every((id) => id === -1)).toBe(true);
        continue;
      }
      const ref = referenceRow(mixedLogits.subarray(m * vocab, (m + 1) * vocab), mixedRows[m]);
      checkRow(second.gpu, m, ref, mixedRows[m], vocab);
      if (s < 0) continue;
      expect(second.gpu.sampledTokenIds[m], `row ${s} moved to ${m}`).toBe(first.gpu.sampledTokenIds[s]);
      expect(second.gpu.sampledLogprobs[m]).toBe(first.gpu.sampledLogprobs[s]);
    }
  });

  const settings: ReadonlyArray<[string, Partial<RowParams>]> = [
    ['temperature 0.8', { temperature: 0.8 }],
    ['top_k 10', { temperature: 1, topK: 10 }],
    ['top_p 0.7', { temperature: 1.2, topP: 0.7 }],
    ['min_p 0.08', { temperature: 0.9, minP: 0.08 }],
    ['top_k 20 + top_p 0.8 + min_p 0.02 + penalties', { temperature: 1, topK: 20, topP: 0.8, minP: 0.02, repetitionPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: 0.2, history: Int32Array.from([3, 5, 5, 7, 9, 9, 9, 11]), promptLen: 3 }],
  ];
  for (const [name, overrides] of settings) {
    it(`draws from the right distribution: ${name} (chi-square, 100k draws)`, () => {
      const rng = new Random(seed ^ name.length * 7919);
      const vocab = 64;
      const numDraws = 100_000;
      const params: RowParams = { temperature: 1, topK: 0, topP: 1, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, rngKeyLo: 0, rngKeyHi: 0, numLogprobs: 0, history: new Int32Array(0), promptLen: 0, ...overrides };
      const row = new Float32Array(vocab);
      let ref: RowReference;
      do {
        for (let i = 0; i < vocab; i++) row[i] = 1.5 * rng.normal();
        ref = referenceRow(row, params);
      } while (ref.ambiguous.some((a) => a === 1)); // a clean test: no token on a mask boundary
      const rows = Array.from({ length: numDraws }, () => ({ ...params, rngKeyLo: rng.u32(), rngKeyHi: rng.u32() }));
      const logits = new Float32Array(numDraws * vocab);
      for (let s = 0; s < numDraws; s++) logits.set(row, s * vocab);
      const { gpu } = sampleOnGpu(gpuBinding(), rows, logits, vocab);
      const observed = new Float64Array(vocab);
      let numMasked = 0;
      for (let s = 0; s < numDraws; s++) {
        const token = gpu.sampledTokenIds[s];
        if (!(token >= 0 && token < vocab) || ref.kept[token] !== 1) numMasked++;
        else observed[token]++;
      }
      expect(numMasked, 'draws outside the kept set (or unwritten)').toBe(0);
      expect(Math.abs(gpu.sampledLogprobs[0] - ref.logprobs[gpu.sampledTokenIds[0]])).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
      const { statistic, degreesOfFreedom } = chiSquare(observed, keptDistribution(ref), numDraws);
      const critical = chiSquareCritical(degreesOfFreedom, 3.719); // upper tail p = 1e-4
      console.log(`${name}: chi-square ${statistic.toFixed(1)} on ${degreesOfFreedom} df (critical ${critical.toFixed(1)})`);
      expect(statistic).toBeLessThan(critical);
    });
  }
});

/** Pearson's statistic over bins of expected count >= 5 (smaller ones pooled). */
function chiSquare(observed: Float64Array, probs: Float64Array, numDraws: number): { statistic: number; degreesOfFreedom: number } {
  let statistic = 0;
  let bins = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (let i = 0; i < probs.length; i++) {
    const expected = probs[i] * numDraws;
    if (expected === 0) continue;
    if (expected < 5) {
      pooledObserved += observed[i];
      pooledExpected += expected;
      continue;
    }
    statistic += (observed[i] - expected) ** 2 / expected;
    bins++;
  }
  if (pooledExpected > 0) {
    statistic += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    bins++;
  }
  return { statistic, degreesOfFreedom: Math.max(1, bins - 1) };
}

/** Wilson-Hilferty approximation of the chi-square quantile for upper-tail normal quantile z. */
function chiSquareCritical(df: number, z: number): number {
  const h = 2 / (9 * df);
  return df * (1 - h + z * Math.sqrt(h)) ** 3;
}
