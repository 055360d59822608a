/**
 * min_tokens bans the stop ids and (unless ignore_eos) the EOS ids from being sampled while the
 * output is shorter than min_tokens (vLLM semantics): -inf entries in the packer's logit-adjust
 * columns, and the
 * native CPU executor on a tiny random model end to end. The stop id is the token the model
 * greedily emits first at step k of an unconstrained run, so nothing is hard-coded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { RngStream } from '../../src/engine/rng.ts';
import type { ScheduledSeq } from '../../src/engine/scheduler.ts';
import { StepBatchPacker } from '../../src/engine/step-batch.ts';
import { DEFAULT_SAMPLING_PARAMS, type RequestOutput, type SamplingParams } from '../../src/engine/types.ts';
import { collect, makeEngine, makePrompts, nativeUnavailableReason, type TestEngine } from './engine-harness.ts';
import { makeSeq } from './helpers.ts';

describe('StepBatchPacker: min_tokens bans', () => {
  it('bans stop ids + EOS ids (stop ids only with ignore_eos) on sampled rows short of min_tokens', () => {
    const eos = [2, 7];
    const short = makeSeq(4, { minTokens: 3, stopTokenIds: [11, 7] }); // 7 is also EOS: once
    short.appendToken(40, null);
    short.appendToken(41, null); // 2 output tokens < 3: the 3rd may not stop it
    short.numComputedTokens = 5;
    const ignoring = makeSeq(3, { minTokens: 1, stopTokenIds: [13], ignoreEos: true });
    const reached = makeSeq(3, { minTokens: 2, stopTokenIds: [14] });
    reached.appendToken(40, null);
    reached.appendToken(41, null);
    reached.numComputedTokens = 4;
    const chunk = makeSeq(20, { minTokens: 5, stopTokenIds: [15] }); // a prefill chunk: nothing sampled
    const plain = makeSeq(2); // min_tokens 0
    for (const [i, seq] of [short, ignoring, reached, chunk, plain].entries()) seq.blockTable.push(i * 2, i * 2 + 1);
    const rows: ScheduledSeq[] = [
      { seq: short, numNewTokens: 1, isSampled: true },
      { seq: ignoring, numNewTokens: 3, isSampled: true },
      { seq: reached, numNewTokens: 1, isSampled: true },
      { seq: chunk, numNewTokens: 8, isSampled: false },
      { seq: plain, numNewTokens: 2, isSampled: true },
    ];
    const { views: v, shape } = new StepBatchPacker(16, new RngStream(1), eos).pack(rows);
    expect(shape.numLogitAdjusts).toBe(4);
    const bansOf = (s: number): number[] => {
      const [begin, end] = [v.logitAdjustOffsets[s], v.logitAdjustOffsets[s + 1]];
      expect(Array.from(v.logitAdjustValues.subarray(begin, end)).every((x) => x === -Infinity)).toBe(true);
      return Array.from(v.logitAdjustTokens.subarray(begin, end)).sort((a, b) => a - b);
    };
    expect(bansOf(0)).toEqual([2, 7, 11]);
    expect(bansOf(1)).toEqual([13]);
    expect(bansOf(2)).toEqual([]);
    expect(bansOf(3)).toEqual([]);
    expect(bansOf(4)).toEqual([]);
    expect(v.logitAdjustOffsets[0]).toBe(0);
    expect(v.logitAdjustOffsets[rows.length]).toBe(shape.numLogitAdjusts);
    // Without EOS ids given, only the stop ids.
    expect(new StepBatchPacker(16, new RngStream(1)).pack(rows.slice(0, 1)).views.logitAdjustTokens.length).toBe(2);
  });
});

const nativeReason = nativeUnavailableReason();
if (nativeReason) console.warn(`min-tokens: native executor tests skipped: ${nativeReason}`);

const MAX_TOKENS = 24;
const params = (over: Partial<SamplingParams> = {}): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: MAX_TOKENS, ...over });
let nextId = 0;

async function run(t: TestEngine, prompt: number[], over: Partial<SamplingParams> = {}): Promise<RequestOutput> {
  const id = `m${nextId++}`;
  const deltas = await collect(await t.engine.addRequest(id, { promptTokenIds: prompt }, params(over)));
  expect(deltas.filter((d) => d.finishReason !== undefined)).toHaveLength(1);
  return collectOutput(id, (async function* () { yield* deltas; })());
}

/** The output under min_tokens with `stopToken` banned: checks common to stop ids and EOS. */
function expectHeldOff(out: RequestOutput, base: RequestOutput, stopToken: number, k: number, minTokens: number): void {
  // Identical greedy steps before k (the banned id was not their argmax); never the id before min_tokens.
  expect(out.tokenIds.slice(0, k)).toEqual(base.tokenIds.slice(0, k));
  expect(out.tokenIds.length).toBeGreaterThan(minTokens);
  expect(out.tokenIds.slice(0, minTokens)).not.toContain(stopToken);
  expect(out.tokenIds[k]).not.toBe(stopToken);
  // It still finishes: on the id once allowed, or at max_tokens.
  const at = out.tokenIds.indexOf(stopToken);
  if (at >= 0) {
    expect(out.finishReason).toBe('stop');
    expect(at).toBe(out.tokenIds.length - 1);
  } else {
    expect(out).toMatchObject({ finishReason: 'length' });
    expect(out.tokenIds).toHaveLength(MAX_TOKENS);
  }
}

describe.skipIf(nativeReason !== '')('min_tokens on the native CPU executor (greedy, tiny random model)', () => {
  const prompt = makePrompts(1, 10, 10, 11)[0];
  let t: TestEngine;
  let base: RequestOutput;
  /** The step k at which the unconstrained greedy run first emits stopToken. */
  let k = -1;
  let stopToken = -1;

  beforeAll(async () => {
    t = await makeEngine('native');
    base = await run(t, prompt);
    // The first token whose first occurrence is at step >= 2, so there is a prefix to compare.
    k = base.tokenIds.findIndex((id, i) => i >= 2 && base.tokenIds.indexOf(id) === i);
    stopToken = base.tokenIds[k];
  });
  afterAll(async () => {
    await t?.engine.shutdown(1000);
  });

  it('precondition: the greedy run emits a first-seen token at a step k >= 2', () => {
    expect(base.tokenIds).toHaveLength(MAX_TOKENS);
    expect(k).toBeGreaterThanOrEqual(2);
    expect(k).toBeLessThan(MAX_TOKENS - 8);
  });

  it('without min_tokens the stop id ends the output at step k', async () => {
    const out = await run(t, prompt, { stopTokenIds: [stopToken] });
    expect(out).toMatchObject({ finishReason: 'stop', stopReason: stopToken, tokenIds: base.tokenIds.slice(0, k + 1) });
  });

  it('with min_tokens > k the stop id is never sampled before min_tokens, and the output still finishes', async () => {
    const minTokens = k + 3;
    const out = await run(t, prompt, { stopTokenIds: [stopToken], minTokens });
    expectHeldOff(out, base, stopToken, k, minTokens);
    if (out.finishReason === 'stop') expect(out.stopReason).toBe(stopToken);
  });

  it('EOS is banned the same way before min_tokens unless ignore_eos', async () => {
    const eosEngine = await makeEngine('native', { eosTokenIds: [stopToken] });
    try {
      const stopped = await run(eosEngine, prompt, { ignoreEos: false });
      expect(stopped).toMatchObject({ finishReason: 'stop', tokenIds: base.tokenIds.slice(0, k + 1) });
      const minTokens = k + 3;
      const held = await run(eosEngine, prompt, { ignoreEos: false, minTokens });
      expectHeldOff(held, base, stopToken, k, minTokens);
      // ignore_eos: EOS is neither banned nor a stop, so the output is the unconstrained one.
      const ignored = await run(eosEngine, prompt, { ignoreEos: true, minTokens });
      expect(ignored).toMatchObject({ finishReason: 'length', tokenIds: base.tokenIds });
    } finally {
      await eosEngine.engine.shutdown(1000);
    }
  });
});
