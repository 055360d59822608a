/**
 * Token bans (-inf entries of the batch's logit-adjust columns, used for min_tokens) on the CPU
 * executor of a tiny dummy model, with logitsMode 1 so each check sees the raw logits of the
 * row. Biases (the finite entries) are checked in logit-bias.test.ts. The float64 reference is sampling-reference.ts with the banned ids' raw logits set to
 * -inf first (sampling_math.h, step 0): banned ids are never drawn, draws follow the
 * renormalized distribution of the rest, logprobs are its log-softmax (banned ids: -inf).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readResult, type ResultViews } from '../../src/engine/batch-layout.ts';
import { chiSquare, logSoftmax, processedLogits, rankOrder, samplingDistribution } from './sampling-reference.ts';
import { buildBatch, DEFAULT_ROW_SAMPLING, makeSamplerTarget, mixedSamplingRows, singleTokenRows, withLogitAdjusts, type SamplerTarget, type BuiltBatch, type RowSampling, type SeqInput } from './helpers.ts';

const NUM_ROWS = 500;
const BLOCK_SIZE = 16;
const LOGPROB_BOUND = 1e-5;

type Target = SamplerTarget;
const makeTarget = (vocab: number): Target => makeSamplerTarget(vocab, NUM_ROWS + 8, 1);
const main = makeTarget(64);
/** Small enough that the top-N list (at most 20) reaches the banned ids. */
const small = makeTarget(16);
afterAll(() => [main, small].forEach((t) => t.executor.close()));

/** The batch of `seqs` (helpers.ts's buildBatch) with row s banning bans[s]. */
function withBans(built: BuiltBatch, bans: readonly (readonly number[])[]): BuiltBatch {
  return withLogitAdjusts(built, bans.map((ids) => ids.map((id) => [id, -Infinity] as const)));
}

async function runStep(seqs: SeqInput[], bans: readonly (readonly number[])[], maxTopLogprobs = 0, target: Target = main): Promise<ResultViews> {
  const { views, shape } = withBans(buildBatch(seqs, BLOCK_SIZE, maxTopLogprobs, 1), bans);
  return readResult(await target.executor.step(views.buffer), shape, target.vocab);
}

const rowOf = (result: ResultViews, s: number, vocab: number): Float32Array => result.logits.subarray(s * vocab, (s + 1) * vocab);

/** The raw row with the banned ids at -inf: what the reference starts from. */
function bannedRaw(raw: Float32Array, banned: readonly number[]): Float32Array {
  const x = raw.slice();
  for (const id of banned) x[id] = -Infinity;
  return x;
}

describe('CPU sampler: token bans', () => {
  it('a banned id holding most of the mass is never drawn; the rest follow the reference (10k draws)', async () => {
    const tokenId = 9;
    const probe = await runStep(singleTokenRows(1, tokenId, () => ({})), [[]]);
    const raw = rowOf(probe, 0, main.vocab).slice();
    const order = rankOrder(Float64Array.from(raw));
    // A peaked row: at T = 0.05 the best token holds most of the mass; ban it and the third.
    const setting: Partial<RowSampling> = { temperature: 0.05 };
    const row: RowSampling = { ...DEFAULT_ROW_SAMPLING, ...setting };
    const banned = [order[0], order[2]];
    const plain = samplingDistribution(raw, row);
    expect(plain[order[0]]).toBeGreaterThan(0.5);
    const expectedP = samplingDistribution(bannedRaw(raw, banned), row);
    expect(expectedP[order[0]]).toBe(0);

    const observed = new Array<number>(main.vocab).fill(0);
    let numDraws = 0;
    for (let step = 0; step < 20; step++) {
      const seqs = singleTokenRows(NUM_ROWS, tokenId, (r) => ({ ...setting, rngKeyLo: step * NUM_ROWS + r, rngKeyHi: 77 }));
      const result = await runStep(seqs, seqs.map(() => banned));
      for (let s = 0; s < NUM_ROWS; s++) {
        // Every row has the same context, so the same raw logits.
        expect(Array.from(rowOf(result, s, main.vocab))).toEqual(Array.from(raw));
        observed[result.sampledTokenIds[s]]++;
        numDraws++;
      }
    }
    expect(numDraws).toBe(10_000);
    for (const id of banned) expect(observed[id], `draws of banned id ${id}`).toBe(0);
    const { statistic, critical, degrees } = chiSquare(observed, expectedP.map((p) => p * numDraws));
    console.log(`bans [${banned}] at T 0.05: chi2 = ${statistic.toFixed(1)} on ${degrees} df (critical ${critical.toFixed(1)}), ${numDraws} draws`);
    expect(statistic).toBeLessThan(critical);
  });

  it('logprobs and top-N are the float64 log-softmax with the banned ids at -inf; penalties and greedy rows too', async () => {
    const vocab = small.vocab;
    const numTop = vocab; // every id ranked, banned ones last
    // History ids are in the adjusted set too: a penalty must not lift a banned one off -inf.
    const seqs = mixedSamplingRows(40, vocab, 1000, 5);
    const probe = await runStep(seqs, seqs.map(() => []), numTop, small);
    // Ban the row's two best processed tokens (so greedy rows must move) and a history token
    // (each once: the executor refuses an id twice in a row); every fourth row bans nothing.
    const bans = seqs.map((seq, s) => {
      if (s % 4 === 3) return [];
      const order = rankOrder(processedLogits(rowOf(probe, s, vocab), { ...DEFAULT_ROW_SAMPLING, ...seq.sampling }));
      return [...new Set([order[1], order[0], (s * 3) % vocab])];
    });
    const result = await runStep(seqs, bans, numTop, small);
    seqs.forEach((seq, s) => {
      const row: RowSampling = { ...DEFAULT_ROW_SAMPLING, ...seq.sampling };
      const raw = rowOf(result, s, vocab);
      expect(Array.from(raw)).toEqual(Array.from(rowOf(probe, s, vocab))); // logits are returned raw
      const logprobs = logSoftmax(processedLogits(bannedRaw(raw, bans[s]), row));
      const token = result.sampledTokenIds[s];
      expect(bans[s]).not.toContain(token);
      expect(Math.abs(result.sampledLogprobs[s] - logprobs[token])).toBeLessThanOrEqual(LOGPROB_BOUND);
      if (row.temperature === 0) expect(token).toBe(rankOrder(logprobs)[0]);
      const order = rankOrder(logprobs);
      for (let j = 0; j < numTop; j++) {
        const id = result.topTokenIds[s * numTop + j];
        const lp = result.topLogprobs[s * numTop + j];
        if (logprobs[order[j]] === -Infinity) {
          // Banned ids rank last (ties -> lowest id) with logprob -inf.
          expect(bans[s]).toContain(id);
          expect(lp).toBe(-Infinity);
        } else {
          expect(id).toBe(order[j]);
          expect(Math.abs(lp - logprobs[order[j]])).toBeLessThanOrEqual(LOGPROB_BOUND);
        }
      }
      expect(Array.from(result.topLogprobs.subarray(s * numTop, (s + 1) * numTop)).filter((v) => v === -Infinity)).toHaveLength(bans[s].length);
    });
  });

  it("a row's draw does not depend on other rows' bans", async () => {
    const seqs = singleTokenRows(64, 4, (r) => ({ temperature: 1, rngKeyLo: r, rngKeyHi: 3 })).map((seq, r) => ({ ...seq, newTokens: [r % main.vocab] }));
    const none = await runStep(seqs, seqs.map(() => []));
    const odd = await runStep(seqs, seqs.map((_, s) => (s % 2 === 1 ? [none.sampledTokenIds[s]] : [])));
    for (let s = 0; s < seqs.length; s++) {
      if (s % 2 === 0) {
        expect(odd.sampledTokenIds[s]).toBe(none.sampledTokenIds[s]);
        expect(odd.sampledLogprobs[s]).toBe(none.sampledLogprobs[s]);
      } else {
        expect(odd.sampledTokenIds[s]).not.toBe(none.sampledTokenIds[s]);
      }
    }
  });

  it('the executor rejects banned ids outside the vocabulary or twice in a row, and bad logitAdjustOffsets', async () => {
    const seqs = singleTokenRows(2, 4, () => ({}));
    await expect(runStep(seqs, [[3], [main.vocab]])).rejects.toThrow(/logitAdjustTokens\[1\].*token id 64 out of range/);
    await expect(runStep(seqs, [[-1], []])).rejects.toThrow(/logitAdjustTokens\[0\]/);
    await expect(runStep(seqs, [[5], [6, 7, 6]])).rejects.toThrow(/logitAdjustTokens\[3\]: token id 6 appears twice in seq 1/);
    // One id in two rows is fine.
    await expect(runStep(seqs, [[5, 6], [6, 5]])).resolves.toBeDefined();
    const { views } = withBans(buildBatch(seqs, BLOCK_SIZE, 0, 1), [[1], [2]]);
    views.logitAdjustOffsets[1] = 2; // past row 1's end
    views.logitAdjustOffsets[2] = 1;
    await expect(main.executor.step(views.buffer)).rejects.toThrow(/logitAdjustOffsets/);
  });
});
