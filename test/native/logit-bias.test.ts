/**
 * Logit biases (finite entries of the batch's logit-adjust columns, OpenAI's logit_bias) on the
 * CPU executor of a tiny dummy model, with logitsMode 1 so each check sees the row's raw
 * logits. The float64 reference is sampling-reference.ts started from raw + bias
 * (sampling_math.h, step 0: before penalties and temperature, as vLLM v1): the logprobs of
 * every id say that exactly the listed logits moved, by exactly their bias; greedy picks follow.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readResult, type ResultViews } from '../../src/engine/batch-layout.ts';
import { logSoftmax, processedLogits, rankOrder } from './sampling-reference.ts';
import { buildBatch, DEFAULT_ROW_SAMPLING, makeSamplerTarget, mixedSamplingRows, singleTokenRows, withLogitAdjusts, type LogitAdjust, type RowSampling, type SamplerTarget, type SeqInput } from './helpers.ts';

const BLOCK_SIZE = 16;
const LOGPROB_BOUND = 1e-5;

const main = makeSamplerTarget(64, 300, 1);
/** Small enough that the top-N list (at most 20) ranks every id. */
const small = makeSamplerTarget(16, 300, 1);
afterAll(() => [main, small].forEach((t) => t.executor.close()));

async function runStep(target: SamplerTarget, seqs: SeqInput[], adjusts: readonly (readonly LogitAdjust[])[], maxTopLogprobs = 0): Promise<ResultViews> {
  const { views, shape } = withLogitAdjusts(buildBatch(seqs, BLOCK_SIZE, maxTopLogprobs, 1), adjusts);
  return readResult(await target.executor.step(views.buffer), shape, target.vocab);
}

const rowOf = (result: ResultViews, s: number, vocab: number): Float32Array => result.logits.subarray(s * vocab, (s + 1) * vocab);

/** The raw row plus the biases, in float64 (the reference of step 0). */
function biasedRaw(raw: Float32Array, adjusts: readonly LogitAdjust[]): Float64Array {
  const x = Float64Array.from(raw);
  for (const [id, bias] of adjusts) x[id] += bias;
  return x;
}

describe('CPU sampler: logit biases', () => {
  it('logprobs and top-N of every id are the float64 log-softmax of raw + bias, penalties and temperature after it', async () => {
    const vocab = small.vocab;
    const numTop = vocab;
    // History ids are in the adjusted set too: the repetition penalty divides a positive logit and
    // multiplies a negative one, so biasing before or after it gives different logits.
    const seqs = mixedSamplingRows(40, vocab, 2000, 9);
    // Biases exact in float32, large enough to flip signs and reorder; every fifth row has none.
    const BIASES = [-5, 4, -1.5, 0.75, 2.5, -3.25];
    const adjusts = seqs.map((_, s): LogitAdjust[] => {
      if (s % 5 === 4) return [];
      const ids = [s % vocab, (s * 3) % vocab, (s * 7 + 2) % vocab, (s + 9) % vocab];
      return [...new Set(ids)].map((id, j) => [id, BIASES[(s + j) % BIASES.length]]);
    });
    const plain = await runStep(small, seqs, seqs.map(() => []), numTop);
    const result = await runStep(small, seqs, adjusts, numTop);
    let numMoved = 0;
    seqs.forEach((seq, s) => {
      const row: RowSampling = { ...DEFAULT_ROW_SAMPLING, ...seq.sampling };
      const raw = rowOf(result, s, vocab);
      expect(Array.from(raw)).toEqual(Array.from(rowOf(plain, s, vocab))); // logits are returned raw
      const logprobs = logSoftmax(processedLogits(biasedRaw(raw, adjusts[s]), row));
      const order = rankOrder(logprobs);
      const token = result.sampledTokenIds[s];
      expect(Math.abs(result.sampledLogprobs[s] - logprobs[token])).toBeLessThanOrEqual(LOGPROB_BOUND);
      if (row.temperature === 0) {
        expect(token).toBe(order[0]);
        if (token !== plain.sampledTokenIds[s]) numMoved++;
      }
      for (let j = 0; j < numTop; j++) {
        expect(result.topTokenIds[s * numTop + j]).toBe(order[j]);
        expect(Math.abs(result.topLogprobs[s * numTop + j] - logprobs[order[j]])).toBeLessThanOrEqual(LOGPROB_BOUND);
      }
      if (adjusts[s].length === 0) {
        expect(result.sampledTokenIds[s]).toBe(plain.sampledTokenIds[s]);
        expect(result.sampledLogprobs[s]).toBe(plain.sampledLogprobs[s]);
      }
    });
    // The biases are big enough to change some greedy picks (else the test shows little).
    expect(numMoved).toBeGreaterThan(0);
  });

  it('greedy: +100 makes any id the pick, -100 on the pick hands it to the runner-up; other rows keep theirs', async () => {
    const vocab = main.vocab;
    const seqs = singleTokenRows(3 * vocab, 4, (r) => ({ temperature: 0, repetitionPenalty: r % 2 === 0 ? 1.3 : 1, promptTokens: [r % vocab] }));
    const plain = await runStep(main, seqs, seqs.map(() => []));
    const adjusts = seqs.map((_, s): LogitAdjust[] => {
      if (s < vocab) return [[s, 100]]; // row s: id s up
      if (s < 2 * vocab) return [[plain.sampledTokenIds[s], -100]]; // the pick down
      return []; // untouched rows
    });
    const result = await runStep(main, seqs, adjusts);
    for (let s = 0; s < seqs.length; s++) {
      const row: RowSampling = { ...DEFAULT_ROW_SAMPLING, ...seqs[s].sampling };
      const order = rankOrder(processedLogits(rowOf(plain, s, vocab), row));
      expect(plain.sampledTokenIds[s]).toBe(order[0]);
      if (s < vocab) expect(result.sampledTokenIds[s], `row ${s}`).toBe(s);
      else if (s < 2 * vocab) expect(result.sampledTokenIds[s], `row ${s}`).toBe(order[1]);
      else expect(result.sampledTokenIds[s], `row ${s}`).toBe(plain.sampledTokenIds[s]);
    }
  });

  it('a bias and a ban in one row: the ban stays -inf, the bias moves its id', async () => {
    const vocab = small.vocab;
    const seqs = singleTokenRows(1, 3, () => ({ temperature: 1, numLogprobs: vocab }));
    const plain = await runStep(small, seqs, [[]], vocab);
    const order = rankOrder(Float64Array.from(rowOf(plain, 0, vocab)));
    const worst = order[vocab - 1];
    const result = await runStep(small, seqs, [[[order[0], -Infinity], [worst, 50]]], vocab);
    expect(result.topTokenIds[0]).toBe(worst);
    expect(result.topTokenIds[vocab - 1]).toBe(order[0]);
    expect(result.topLogprobs[vocab - 1]).toBe(-Infinity);
    expect(result.sampledTokenIds[0]).not.toBe(order[0]);
  });

  it('the executor rejects NaN and +Infinity values, accepts -Infinity and finite ones', async () => {
    const seqs = singleTokenRows(2, 4, () => ({}));
    await expect(runStep(main, seqs, [[[1, 2]], [[2, Number.NaN]]])).rejects.toThrow(/logitAdjustValues\[1\] must be finite or -inf/);
    await expect(runStep(main, seqs, [[[1, Infinity]], []])).rejects.toThrow(/logitAdjustValues\[0\]/);
    await expect(runStep(main, seqs, [[[1, -Infinity], [2, -1e30]], [[3, 1e30]]])).resolves.toBeDefined();
  });
});
