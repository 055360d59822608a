/**
 * The CPU sampler's shortcuts (native/src/cpu/sampler.cc: bounded Gumbel-max, vectorized exp,
 * heap top_k, radix top_p) must not change what it draws. On fresh random logits (the seed is
 * logged) over many keys and parameter mixes, through the test-only binding cpuKernels.sample:
 * - against the plain full-vocabulary sampler it replaced (cpu/sampler_reference.cc): the same
 *   sampled and top-N ids, logprobs within 1e-6;
 * - against a Gumbel-max loop written out here over the same noise (cpuKernels.gumbelNoise),
 *   for rows whose kept set is exact in float64 (no masks, or top_k): the same ids;
 * - and the two facts the shortcuts rest on: no Gumbel noise exceeds the bound the sampler
 *   skips ids by, and the sampler's exp is within 2e-13 of std::exp.
 */
import { describe, expect, it } from 'vitest';

import { createBatch, readResult, type ResultViews } from '../../src/engine/batch-layout.ts';
import { fillLogits, LOGITS_KINDS, Random, randomParams, type LogitsKind } from '../gpu/sampler-fixtures.ts';
import type { RowParams } from '../gpu/sampler-reference.ts';
import { native } from './helpers.ts';
import { writeRowSampling } from './row-sampling.ts';

const kernels = native.cpuKernels;
const LOGPROB_BOUND = 1e-6;
const MAX_TOP = 20;
const seed = (Date.now() ^ (process.pid << 16)) >>> 0;
console.log(`sampler-fast test seed ${seed}`);

interface Row extends RowParams {
  /** logit_bias and min_tokens bans: distinct ids, each with a finite bias or -inf (a ban). */
  adjustTokens: number[];
  adjustValues: number[];
}

type Kind = LogitsKind | 'flat' | 'constant' | 'withInf' | 'huge' | 'nonFinite';
const KINDS: readonly Kind[] = [...LOGITS_KINDS, 'flat', 'constant', 'withInf', 'huge'];

function fillRow(row: Float32Array, kind: Kind, rng: Random): void {
  if (kind === 'flat') {
    for (let i = 0; i < row.length; i++) row[i] = 0.01 * rng.normal();
  } else if (kind === 'constant') {
    row.fill(rng.pick([0, -0, 1.5, -3]));
  } else if (kind === 'withInf') {
    fillLogits(row, 'spread', rng);
    for (let j = 0; j < Math.max(1, row.length >> 4); j++) row[rng.int(row.length)] = -Infinity;
  } else if (kind === 'huge') {
    // Float spacing near these is ~0.004-0.03: coarser than any bound's slack.
    for (let i = 0; i < row.length; i++) row[i] = 1e5 + 3 * rng.normal() * (rng.uniform() < 0.5 ? 1 : 1e4);
  } else if (kind === 'nonFinite') {
    fillLogits(row, 'spread', rng);
    row[rng.int(row.length)] = rng.pick([NaN, Infinity]);
  } else {
    fillLogits(row, kind, rng);
  }
}

/** randomParams plus what it leaves out: logit adjustments, extreme temperatures, top_k past the heap, top_p and min_p at their ends. */
function randomRow(rng: Random, vocab: number): Row {
  const params = randomParams(rng, vocab);
  // randomParams draws some history ids below 200: fold them into a small vocabulary.
  const r: Row = { ...params, history: params.history.map((id) => id % vocab), adjustTokens: [], adjustValues: [] };
  const extra = rng.int(10);
  if (extra === 0) r.temperature = rng.pick([2e-5, 1e-3, 5]);
  if (extra === 1) r.topK = Math.min(vocab - 1, 4097 + rng.int(4000));
  if (extra === 2) r.topP = rng.pick([1e-3, 0.3, 0.99999994]);
  if (extra === 3) r.minP = rng.pick([1, 0.999, 1e-6]);
  if (extra === 4) r.topK = rng.pick([1, 2, vocab - 1]);
  if (rng.uniform() < 0.25) {
    const ids = new Set(Array.from({ length: 1 + rng.int(20) }, () => (rng.uniform() < 0.3 ? rng.int(8) % vocab : rng.int(vocab))));
    r.adjustTokens = [...ids];
    r.adjustValues = r.adjustTokens.map(() => (rng.uniform() < 0.5 ? -Infinity : rng.pick([-100, 100, 200 * rng.uniform() - 100])));
  }
  return r;
}

function pack(rows: readonly Row[]): { buffer: ArrayBuffer; shape: Parameters<typeof readResult>[1] } {
  const shape = {
    numSeqs: rows.length,
    numTokens: rows.length,
    maxBlocksPerSeq: 0,
    maxTopLogprobs: MAX_TOP,
    logitsMode: 0 as const,
    numPenaltyTokens: rows.reduce((n, r) => n + r.history.length, 0),
    numLogitAdjusts: rows.reduce((n, r) => n + r.adjustTokens.length, 0),
  };
  const b = createBatch(shape);
  let penalty = 0;
  let adjust = 0;
  rows.forEach((r, s) => {
    b.isSampled[s] = 1;
    writeRowSampling(b, s, r);
    b.penaltyOffsets[s] = penalty;
    b.penaltyPromptLens[s] = r.promptLen;
    b.penaltyTokens.set(r.history, penalty);
    penalty += r.history.length;
    b.logitAdjustOffsets[s] = adjust;
    b.logitAdjustTokens.set(r.adjustTokens, adjust);
    b.logitAdjustValues.set(r.adjustValues, adjust);
    adjust += r.adjustTokens.length;
  });
  b.penaltyOffsets[rows.length] = penalty;
  b.logitAdjustOffsets[rows.length] = adjust;
  return { buffer: b.buffer, shape };
}

function sample(rows: readonly Row[], logits: Float32Array, vocab: number): { fast: ResultViews; ref: ResultViews } {
  const { buffer, shape } = pack(rows);
  return {
    fast: readResult(kernels.sample(buffer, logits, vocab, 1, false), shape, vocab),
    ref: readResult(kernels.sample(buffer, logits, vocab, 1, true), shape, vocab),
  };
}

const sameLogprob = (a: number, b: number): boolean => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= LOGPROB_BOUND;

/** The first difference between the two results, or '' (one expect per batch: thousands are slow). */
function firstDifference(fast: ResultViews, ref: ResultViews, rows: readonly Row[]): string {
  for (let s = 0; s < rows.length; s++) {
    const where = `row ${s} ${JSON.stringify({ ...rows[s], history: rows[s].history.length })}`;
    if (fast.sampledTokenIds[s] !== ref.sampledTokenIds[s]) return `${where}: drew ${fast.sampledTokenIds[s]}, the reference ${ref.sampledTokenIds[s]}`;
    if (!sameLogprob(fast.sampledLogprobs[s], ref.sampledLogprobs[s])) return `${where}: logprob ${fast.sampledLogprobs[s]} vs ${ref.sampledLogprobs[s]}`;
    for (let j = 0; j < MAX_TOP; j++) {
      const k = s * MAX_TOP + j;
      if (fast.topTokenIds[k] !== ref.topTokenIds[k]) return `${where}: top ${j} is ${fast.topTokenIds[k]}, the reference's ${ref.topTokenIds[k]}`;
      if (!sameLogprob(fast.topLogprobs[k], ref.topLogprobs[k])) return `${where}: top ${j} logprob ${fast.topLogprobs[k]} vs ${ref.topLogprobs[k]}`;
    }
  }
  return '';
}

describe('CPU sampler: the same draws as the plain full-vocabulary sampler', () => {
  const cases: { vocab: number; numRows: number; kinds: readonly Kind[] }[] = [
    { vocab: 5, numRows: 2000, kinds: KINDS },
    { vocab: 63, numRows: 2000, kinds: KINDS },
    { vocab: 1_001, numRows: 2000, kinds: KINDS },
    { vocab: 32_003, numRows: 200, kinds: KINDS },
    { vocab: 128_256, numRows: 48, kinds: KINDS },
  ];
  for (const { vocab, numRows, kinds } of cases) {
    it(`vocab ${vocab}: ${numRows} rows of random logits, keys and parameters`, () => {
      const rng = new Random(seed ^ vocab);
      const batchRows = Math.min(numRows, 256);
      for (let done = 0; done < numRows; done += batchRows) {
        const rows = Array.from({ length: batchRows }, () => randomRow(rng, vocab));
        const logits = new Float32Array(batchRows * vocab);
        rows.forEach((_, s) => fillRow(logits.subarray(s * vocab, (s + 1) * vocab), kinds[(done + s) % kinds.length], rng));
        const { fast, ref } = sample(rows, logits, vocab);
        expect(firstDifference(fast, ref, rows)).toBe('');
      }
    });
  }

  it('rows the shortcuts hand to the reference: NaN or +inf logits, all -inf, top_p exactly on a cumulative mass', () => {
    const rng = new Random(seed ^ 0x51);
    const vocab = 257;
    const rows: Row[] = [];
    const logits = new Float32Array(64 * vocab);
    for (let s = 0; s < 64; s++) {
      const row = logits.subarray(s * vocab, (s + 1) * vocab);
      const r = randomRow(rng, vocab);
      if (s % 4 === 0) fillRow(row, 'nonFinite', rng);
      if (s % 4 === 1) row.fill(-Infinity);
      if (s % 4 >= 2) {
        // 2^m equal leaders far above the rest: top_p = j / 2^m is exactly their cumulative
        // mass, which no margin clears.
        fillRow(row, 'spread', rng);
        const leaders = 2 ** (1 + (s % 3));
        for (let j = 0; j < leaders; j++) row[(j * 37 + s) % vocab] = 200;
        Object.assign(r, { temperature: 1, topK: 0, minP: 0, topP: (1 + rng.int(leaders - 1)) / leaders, history: new Int32Array(0), promptLen: 0, adjustTokens: [], adjustValues: [] });
      }
      rows.push(r);
    }
    const handedBefore = kernels.samplerRowsToReference();
    const { fast, ref } = sample(rows, logits, vocab);
    expect(firstDifference(fast, ref, rows)).toBe('');
    expect(kernels.samplerRowsToReference() - handedBefore).toBe(64);
  });
});

/** k-th largest value counting repeats (top_k's threshold). */
function kthLargest(values: Float32Array, k: number): number {
  return Float32Array.from(values).sort((a, b) => b - a)[k - 1];
}

describe('CPU sampler: the Gumbel-max loop written out', () => {
  it('unmasked and top_k rows: argmax of fround(logit / T) + noise over the kept ids, ties to the lowest id', () => {
    const rng = new Random(seed ^ 0x99);
    const vocab = 3_001;
    let numRows = 0;
    for (let batch = 0; batch < 8; batch++) {
      const rows: Row[] = [];
      const logits = new Float32Array(256 * vocab);
      for (let s = 0; s < 256; s++) {
        fillRow(logits.subarray(s * vocab, (s + 1) * vocab), KINDS[(batch + s) % KINDS.length], rng);
        rows.push({
          ...randomParams(rng, vocab),
          temperature: rng.pick([0, 0.5, 1, 1.7]),
          topK: rng.uniform() < 0.5 ? 0 : 1 + rng.int(rng.pick([5, 200, vocab])),
          topP: 1,
          minP: 0,
          presencePenalty: 0,
          frequencyPenalty: 0,
          repetitionPenalty: 1,
          history: new Int32Array(0),
          promptLen: 0,
          adjustTokens: [],
          adjustValues: [],
        });
      }
      const { buffer, shape } = pack(rows);
      const fast = readResult(kernels.sample(buffer, logits, vocab, 1, false), shape, vocab);
      const mismatches: string[] = [];
      rows.forEach((row, s) => {
        const raw = logits.subarray(s * vocab, (s + 1) * vocab);
        const greedy = Math.fround(row.temperature) <= 1e-5;
        const l = greedy ? raw : raw.map((v) => Math.fround(v / Math.fround(row.temperature)));
        const kth = !greedy && row.topK > 0 && row.topK < vocab ? kthLargest(l, row.topK) : -Infinity;
        const noise = kernels.gumbelNoise(row.rngKeyLo, row.rngKeyHi, vocab);
        let chosen = -1;
        let best = -Infinity;
        for (let i = 0; i < vocab; i++) {
          if (!(l[i] >= kth)) continue;
          // float32 sum: fround of the exact double sum of two float32s is the float32 sum.
          const score = greedy ? l[i] : Math.fround(l[i] + noise[i]);
          if (chosen < 0 || score > best) {
            best = score;
            chosen = i;
          }
        }
        if (fast.sampledTokenIds[s] !== chosen) mismatches.push(`row ${s} ${JSON.stringify({ ...row, history: 0 })}: ${fast.sampledTokenIds[s]} vs ${chosen}`);
        numRows++;
      });
      expect(mismatches).toEqual([]);
    }
    expect(numRows).toBe(2048);
  });
});

describe("CPU sampler: what its shortcuts rest on", () => {
  it('no Gumbel noise exceeds the bound of its block (every input below 2^22, both ends of every block)', () => {
    const check = (first: number, count: number) => {
      const r = kernels.samplerNoiseBoundCheck(first, count);
      expect(r.violations, `bits ${first}..${first + count}`).toBe(0);
      expect(r.mixMismatches).toBe(0);
      expect(r.minSlack).toBeGreaterThan(0);
    };
    check(0, 2 ** 22);
    const block = 2 ** 20;
    for (let j = 0; j < 4096; j++) {
      check(j * block, 128);
      check((j + 1) * block - 128, 128);
    }
  });

  it('its exp is within 2e-13 of std::exp over [-708, 0], 5e-14 over [-20, 0]', () => {
    expect(kernels.samplerExpError(-708, 0, 200_000)).toBeLessThan(2e-13);
    expect(kernels.samplerExpError(-20, 0, 200_000)).toBeLessThan(5e-14);
  });
});
