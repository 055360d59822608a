/**
 * logit_bias in the engine: the packer's logit-adjust lists (the bias, min_tokens bans on top,
 * built once per request), addRequest's checks (vLLM's messages), and the native CPU executor
 * end to end on a tiny random model (greedy, so every expectation is exact).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { checkRequest } from '../../src/engine/request-checks.ts';
import { RngStream } from '../../src/engine/rng.ts';
import type { ScheduledSeq } from '../../src/engine/scheduler.ts';
import { StepBatchPacker, type LogitAdjusts } from '../../src/engine/step-batch.ts';
import { DEFAULT_SAMPLING_PARAMS, EngineInputError, type RequestOutput, type SamplingParams } from '../../src/engine/types.ts';
import { collect, makeEngine, makePrompts, nativeUnavailableReason, type TestEngine } from './engine-harness.ts';
import { makeSeq } from './helpers.ts';

/** A row's entries as id → value, for order-free comparison. */
const asMap = (a: LogitAdjusts): Map<number, number> => new Map(Array.from(a.tokenIds, (id, i) => [id, a.values[i]]));

describe('StepBatchPacker: logit_bias', () => {
  const eos = [2];

  it('packs the bias of each sampled row; a min_tokens ban of a biased id replaces its bias with -inf', () => {
    const biased = makeSeq(3, { logitBias: { 5: 2.5, 9: -100, 11: 0.25 }, minTokens: 2, stopTokenIds: [9] });
    const after = makeSeq(3, { logitBias: { 5: 2.5, 9: -100 }, minTokens: 1, stopTokenIds: [9] });
    after.appendToken(40, null); // 1 output token: min_tokens reached, only the bias is left
    after.numComputedTokens = 3;
    const chunk = makeSeq(20, { logitBias: { 7: 1 } }); // a prefill chunk: nothing sampled, nothing packed
    const plain = makeSeq(2);
    for (const [i, seq] of [biased, after, chunk, plain].entries()) seq.blockTable.push(i * 2, i * 2 + 1);
    const rows: ScheduledSeq[] = [
      { seq: biased, numNewTokens: 3, isSampled: true },
      { seq: after, numNewTokens: 1, isSampled: true },
      { seq: chunk, numNewTokens: 8, isSampled: false },
      { seq: plain, numNewTokens: 2, isSampled: true },
    ];
    const { views: v, shape } = new StepBatchPacker(16, new RngStream(1), eos).pack(rows);
    const entriesOf = (s: number): Map<number, number> => {
      const [begin, end] = [v.logitAdjustOffsets[s], v.logitAdjustOffsets[s + 1]];
      return asMap({ tokenIds: v.logitAdjustTokens.subarray(begin, end), values: v.logitAdjustValues.subarray(begin, end) });
    };
    // 9 is biased and banned: one entry, -inf (the executor refuses an id twice in a row).
    expect(entriesOf(0)).toEqual(new Map([[5, 2.5], [9, -Infinity], [11, 0.25], [2, -Infinity]]));
    expect(entriesOf(1)).toEqual(new Map([[5, 2.5], [9, -100]]));
    expect(entriesOf(2)).toEqual(new Map());
    expect(entriesOf(3)).toEqual(new Map());
    expect(shape.numLogitAdjusts).toBe(6);
    expect(v.logitAdjustOffsets[rows.length]).toBe(6);
  });

  it("builds a request's lists once, not per step, and switches list when min_tokens is reached", () => {
    const packer = new StepBatchPacker(16, new RngStream(1), eos);
    const seq = makeSeq(3, Object.freeze({ ...DEFAULT_SAMPLING_PARAMS, logitBias: Object.freeze({ 5: 1 }), minTokens: 1 }));
    const before = packer.logitAdjustsOf(seq);
    expect(packer.logitAdjustsOf(seq)).toBe(before);
    expect(asMap(before)).toEqual(new Map([[5, 1], [2, -Infinity]]));
    seq.appendToken(40, null);
    const afterMin = packer.logitAdjustsOf(seq);
    expect(asMap(afterMin)).toEqual(new Map([[5, 1]]));
    expect(packer.logitAdjustsOf(seq)).toBe(afterMin);
    // ignore_eos: EOS is not banned, the stop ids still are.
    const ignoring = makeSeq(3, { logitBias: { 5: 1 }, minTokens: 1, ignoreEos: true, stopTokenIds: [8] });
    expect(asMap(packer.logitAdjustsOf(ignoring))).toEqual(new Map([[5, 1], [8, -Infinity]]));
  });
});

describe("addRequest's logit_bias checks", () => {
  const limits = { maxModelLen: 100, vocabSize: 1000, maxLogprobs: 20 };
  const check = (logitBias: Record<number, number>): void => checkRequest([1, 2], { ...DEFAULT_SAMPLING_PARAMS, logitBias }, limits);
  const refusal = (logitBias: Record<number, number>): EngineInputError => {
    try {
      check(logitBias);
    } catch (error) {
      if (error instanceof EngineInputError) return error;
      throw error;
    }
    throw new Error('accepted');
  };

  it('accepts ids in the vocabulary with values in [-100, 100]', () => {
    expect(() => check({ 0: -100, 999: 100, 5: 0.5 })).not.toThrow();
    expect(() => check({})).not.toThrow();
  });

  it("names every id outside the vocabulary, with vLLM's message", () => {
    const error = refusal({ 3: 1, 1000: 1, [-1]: 2 });
    expect(error.param).toBe('logit_bias');
    expect(error.message).toBe('token_id(s) [1000, -1] in logit_bias contain out-of-vocab token ids. Vocabulary size: 1000');
  });

  it('refuses values outside [-100, 100] and NaN', () => {
    for (const value of [100.5, -101, Number.NaN, Infinity, -Infinity]) {
      const error = refusal({ 3: value });
      expect(error.param).toBe('logit_bias');
      expect(error.message).toContain('[-100, 100]');
    }
  });
});

const nativeReason = nativeUnavailableReason();
if (nativeReason) console.warn(`logit-bias: native executor tests skipped: ${nativeReason}`);

const MAX_TOKENS = 12;
let nextId = 0;

async function run(t: TestEngine, prompt: number[], over: Partial<SamplingParams> = {}): Promise<RequestOutput> {
  const id = `lb${nextId++}`;
  const params: SamplingParams = { ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: MAX_TOKENS, ...over };
  const deltas = await collect(await t.engine.addRequest(id, { promptTokenIds: prompt }, params));
  return collectOutput(id, (async function* () { yield* deltas; })());
}

describe.skipIf(nativeReason !== '')('logit_bias on the native CPU executor (greedy, tiny random model)', () => {
  const prompt = makePrompts(1, 10, 10, 5)[0];
  let t: TestEngine;
  let base: RequestOutput;

  beforeAll(async () => {
    t = await makeEngine('native');
    base = await run(t, prompt);
  });
  afterAll(async () => {
    await t?.engine.shutdown(1000);
  });

  it('+100 on a token makes greedy output it at every step', async () => {
    const target = 1234;
    expect(base.tokenIds).not.toContain(target);
    const out = await run(t, prompt, { logitBias: { [target]: 100 } });
    expect(out.tokenIds).toEqual(new Array<number>(MAX_TOKENS).fill(target));
  });

  it('-100 on the first greedy token moves the first pick; the same request twice gives the same output', async () => {
    const first = base.tokenIds[0];
    const out = await run(t, prompt, { logitBias: { [first]: -100 } });
    expect(out.tokenIds[0]).not.toBe(first);
    expect(out.tokenIds).not.toContain(first);
    expect(await run(t, prompt, { logitBias: { [first]: -100 } })).toMatchObject({ tokenIds: out.tokenIds });
  });

  it('a stop id biased +100 is still banned before min_tokens, then drawn at once', async () => {
    const stop = 777;
    const minTokens = 4;
    const out = await run(t, prompt, { logitBias: { [stop]: 100 }, stopTokenIds: [stop], minTokens });
    // Banned for the first min_tokens tokens (the bias does not lift -inf), then the bias wins.
    expect(out.tokenIds.slice(0, minTokens)).not.toContain(stop);
    expect(out.tokenIds).toHaveLength(minTokens + 1);
    expect(out).toMatchObject({ finishReason: 'stop', stopReason: stop });
    expect(out.tokenIds[minTokens]).toBe(stop);
  });
});
