/**
 * The CPU sampler, driven through full executor steps of a tiny dummy model with logitsMode 1,
 * so each check sees the raw logits the row was sampled from. The float64 reference
 * (sampling-reference.ts) follows native/src/sampling_math.h (vLLM semantics): penalties,
 * temperature, log-softmax, then top_k -> top_p -> min_p masks, then a draw from the
 * renormalized kept set.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readResult, type ResultViews } from '../../src/engine/batch-layout.ts';
import { chiSquare, logSoftmax, processedLogits, rankOrder, samplingDistribution } from './sampling-reference.ts';
import { buildBatch, DEFAULT_ROW_SAMPLING, makeSamplerTarget, singleTokenRows, type SamplerTarget, type RowSampling, type SeqInput } from './helpers.ts';

const NUM_ROWS = 512;
const BLOCK_SIZE = 16;
const VOCAB = 64;
/** 200 steps x 512 rows = 102,400 draws per setting. */
const NUM_STEPS = 200;
const LOGPROB_BOUND = 1e-5;

type Target = SamplerTarget;
const makeTarget = (vocab: number): Target => makeSamplerTarget(vocab, NUM_ROWS, 2);
const main = makeTarget(VOCAB);
/** A larger vocabulary, so that top_p keeps more tokens than the sampler's first sorted prefix (64). */
const wide = makeTarget(1024);
afterAll(() => [main, wide].forEach((t) => t.executor.close()));

type Row = RowSampling;

async function runStep(seqs: SeqInput[], maxTopLogprobs = 0, target: Target = main): Promise<ResultViews> {
  const { views, shape } = buildBatch(seqs, BLOCK_SIZE, maxTopLogprobs, 1);
  return readResult(await target.executor.step(views.buffer), shape, target.vocab);
}

const rowOf = (result: ResultViews, s: number, vocab = VOCAB): Float32Array => result.logits.subarray(s * vocab, (s + 1) * vocab);

const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

interface DrawStats {
  observed: number[];
  /** Sum over draws of each draw's probabilities. */
  expected: Float64Array;
  numDraws: number;
}

/** NUM_STEPS steps of NUM_ROWS one-token rows, each with its own key. */
async function drawMany(setting: Partial<Row>, tokenId: number, keyHi: number, target: Target = main): Promise<DrawStats> {
  const observed = new Array<number>(target.vocab).fill(0);
  const expected = new Float64Array(target.vocab);
  let pending = 0; // draws from cachedP not yet added to expected
  const flush = () => {
    cachedP?.forEach((p, i) => (expected[i] += p * pending));
    pending = 0;
  };
  let cachedRaw: Float32Array | undefined;
  let cachedP: Float64Array | undefined;
  let numDraws = 0;
  let numImpossible = 0; // draws of a token the reference gives probability 0 (masked)
  const row: Row = { ...DEFAULT_ROW_SAMPLING, ...setting };
  for (let step = 0; step < NUM_STEPS; step++) {
    const seqs = singleTokenRows(NUM_ROWS, tokenId, (r) => ({ ...setting, rngKeyLo: step * NUM_ROWS + r, rngKeyHi: keyHi }));
    const result = await runStep(seqs, 0, target);
    for (let s = 0; s < NUM_ROWS; s++) {
      const raw = rowOf(result, s, target.vocab);
      // Rows share one context, so their logits (and distribution) are normally identical.
      if (!cachedRaw || !bytesOf(raw).equals(bytesOf(cachedRaw))) {
        flush();
        cachedRaw = raw.slice();
        cachedP = samplingDistribution(raw, row);
      }
      const token = result.sampledTokenIds[s];
      if (!(cachedP![token] > 0)) numImpossible++;
      observed[token]++;
      pending++;
      numDraws++;
    }
  }
  flush();
  expect(numImpossible, `draws of masked tokens under ${JSON.stringify(setting)}`).toBe(0);
  return { observed, expected, numDraws };
}

async function probeLogits(tokenId: number, target: Target = main): Promise<Float32Array> {
  const result = await runStep(singleTokenRows(1, tokenId, () => ({})), 0, target);
  return rowOf(result, 0, target.vocab).slice();
}

const SETTINGS: { name: string; setting: Partial<Row> }[] = [
  { name: 'temperature 0.6', setting: { temperature: 0.6 } },
  { name: 'temperature 1.5, top_k 8', setting: { temperature: 1.5, topK: 8 } },
  { name: 'temperature 0.8, top_p 0.7', setting: { temperature: 0.8, topP: 0.7 } },
  { name: 'min_p 0.3', setting: { temperature: 1, minP: 0.3 } },
  { name: 'top_k 20, top_p 0.85, min_p 0.1', setting: { temperature: 0.9, topK: 20, topP: 0.85, minP: 0.1 } },
];

describe('CPU sampler: draws follow the float64 distribution (chi-square, >= 100k draws each)', () => {
  SETTINGS.forEach(({ name, setting }, index) => {
    it(name, async () => {
      const tokenId = 3 + index;
      const p = samplingDistribution(await probeLogits(tokenId), { ...DEFAULT_ROW_SAMPLING, ...setting });
      const isMasked = setting.topK !== undefined || setting.topP !== undefined || setting.minP !== undefined;
      // A masked setting must actually drop tokens here, or this would not test the masks.
      if (isMasked) expect(p.filter((v) => v === 0).length).toBeGreaterThan(0);
      const stats = await drawMany(setting, tokenId, 1000 + index);
      expect(stats.numDraws).toBeGreaterThanOrEqual(100_000);
      const { statistic, critical, degrees } = chiSquare(stats.observed, stats.expected);
      console.log(`${name}: chi2 = ${statistic.toFixed(1)} on ${degrees} df (critical ${critical.toFixed(1)}), ${stats.numDraws} draws`);
      expect(statistic).toBeLessThan(critical);
    });
  });

  it('top_p keeping hundreds of tokens of a 1024-token vocabulary', async () => {
    const setting: Partial<Row> = { temperature: 2, topP: 0.8 };
    const p = samplingDistribution(await probeLogits(5, wide), { ...DEFAULT_ROW_SAMPLING, ...setting });
    const numKept = p.filter((v) => v > 0).length;
    expect(numKept).toBeGreaterThan(64 * 2);
    expect(numKept).toBeLessThan(wide.vocab);
    const stats = await drawMany(setting, 5, 3000, wide);
    const { statistic, critical, degrees } = chiSquare(stats.observed, stats.expected);
    console.log(`vocab 1024, top_p 0.8 (${numKept} kept): chi2 = ${statistic.toFixed(1)} on ${degrees} df (critical ${critical.toFixed(1)}), ${stats.numDraws} draws`);
    expect(statistic).toBeLessThan(critical);
  });

  it('repetition, presence and frequency penalties', async () => {
    const tokenId = 11;
    const raw = await probeLogits(tokenId);
    const order = rankOrder(Float64Array.from(raw));
    const lowest = order[VOCAB - 1];
    // Penalize the most likely tokens (large effect) and the least likely (negative logit path).
    const setting: Partial<Row> = {
      temperature: 0.7,
      repetitionPenalty: 1.8,
      presencePenalty: 0.4,
      frequencyPenalty: 0.3,
      promptTokens: [order[0], lowest, order[0]],
      outputTokens: [order[1], order[1], order[2], lowest],
    };
    const plain = samplingDistribution(raw, { ...DEFAULT_ROW_SAMPLING, temperature: 0.7 });
    const penalized = samplingDistribution(raw, { ...DEFAULT_ROW_SAMPLING, ...setting });
    expect(penalized[order[0]]).toBeLessThan(plain[order[0]] * 0.8);
    const stats = await drawMany(setting, tokenId, 2000);
    const { statistic, critical, degrees } = chiSquare(stats.observed, stats.expected);
    console.log(`penalties: chi2 = ${statistic.toFixed(1)} on ${degrees} df (critical ${critical.toFixed(1)}), ${stats.numDraws} draws`);
    expect(statistic).toBeLessThan(critical);
    // The penalized draws are not the plain ones: top token seen much less often.
    expect(stats.observed[order[0]] / stats.numDraws).toBeLessThan(plain[order[0]] * 0.85);
  });
});

/** Rows with different contexts (different first tokens), settings and keys. */
function mixedRows(count: number, offset: number): SeqInput[] {
  return Array.from({ length: count }, (_, i) => {
    const r = i + offset;
    const sampling: Partial<Row> = {
      temperature: [0, 0.5, 1, 1.7][r % 4],
      topK: r % 3 === 0 ? 5 : 0,
      topP: r % 5 === 0 ? 0.8 : 1,
      minP: r % 7 === 0 ? 0.05 : 0,
      repetitionPenalty: r % 2 === 0 ? 1.3 : 1,
      presencePenalty: r % 3 === 1 ? 0.5 : 0,
      frequencyPenalty: r % 4 === 1 ? 0.25 : 0,
      promptTokens: [r % VOCAB, (r * 7) % VOCAB],
      outputTokens: [(r * 3) % VOCAB, (r * 3) % VOCAB, (r * 5 + 1) % VOCAB],
      numLogprobs: r % 9,
      rngKeyLo: 0x9e3779b9 ^ r,
      rngKeyHi: r >>> 3,
    };
    return { newTokens: [r % VOCAB], blockIds: [i], sampling };
  });
}

describe('CPU sampler: per-row results', () => {
  it('logprobs and top-N equal the float64 log-softmax of the processed logits', async () => {
    const seqs = mixedRows(300, 0);
    const result = await runStep(seqs, 8);
    seqs.forEach((seq, s) => {
      const row: Row = { ...DEFAULT_ROW_SAMPLING, ...seq.sampling };
      const logprobs = logSoftmax(processedLogits(rowOf(result, s), row));
      const token = result.sampledTokenIds[s];
      expect(Math.abs(result.sampledLogprobs[s] - logprobs[token])).toBeLessThanOrEqual(LOGPROB_BOUND);
      const order = rankOrder(logprobs);
      for (let j = 0; j < 8; j++) {
        const id = result.topTokenIds[s * 8 + j];
        if (j >= row.numLogprobs) {
          expect(id).toBe(-1);
          continue;
        }
        expect(id).toBe(order[j]);
        expect(Math.abs(result.topLogprobs[s * 8 + j] - logprobs[order[j]])).toBeLessThanOrEqual(LOGPROB_BOUND);
      }
    });
  });

  it('greedy rows (temperature 0) take the argmax of the penalized logits, ties to the lowest id', async () => {
    const seqs = mixedRows(256, 1000).map((seq) => ({ ...seq, sampling: { ...seq.sampling, temperature: 0 } }));
    const result = await runStep(seqs, 8);
    seqs.forEach((seq, s) => {
      const x = processedLogits(rowOf(result, s), { ...DEFAULT_ROW_SAMPLING, ...seq.sampling });
      expect(result.sampledTokenIds[s]).toBe(rankOrder(x)[0]);
    });
  });

  it("a row's draw depends only on its key and logits, not on the rest of the batch", async () => {
    const rows = mixedRows(200, 5000);
    const alone = await runStep(rows, 8);
    // The same rows shuffled, in a batch with other rows, a multi-token prefill and a row not sampled.
    const others = mixedRows(150, 9000).map((seq, i) => ({ ...seq, blockIds: [200 + i] }));
    const prefill: SeqInput = { newTokens: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], blockIds: [400, 401] };
    const notSampled: SeqInput = { newTokens: [4, 5], blockIds: [402], isSampled: false };
    const permutation = rows.map((_, i) => (i * 73) % rows.length);
    const mixed = [...others.slice(0, 70), prefill, ...permutation.map((i) => rows[i]), notSampled, ...others.slice(70)];
    const together = await runStep(mixed, 8);
    expect(together.sampledTokenIds[70]).toBeGreaterThanOrEqual(0);
    expect(together.sampledTokenIds[71 + rows.length]).toBe(-1);
    permutation.forEach((rowIndex, j) => {
      const s = 71 + j;
      expect(together.sampledTokenIds[s]).toBe(alone.sampledTokenIds[rowIndex]);
      expect(together.sampledLogprobs[s]).toBe(alone.sampledLogprobs[rowIndex]);
    });
    // And a different key gives a different stream: not every re-keyed row repeats its token.
    const rekeyed = rows.map((seq) => ({ ...seq, sampling: { ...seq.sampling, rngKeyHi: (seq.sampling?.rngKeyHi ?? 0) + 77 } }));
    const again = await runStep(rekeyed, 8);
    const changed = rows.filter((seq, s) => (seq.sampling?.temperature ?? 1) > 0 && again.sampledTokenIds[s] !== alone.sampledTokenIds[s]);
    expect(changed.length).toBeGreaterThan(0);
  });
});
