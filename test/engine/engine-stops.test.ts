/**
 * How outputs end (max_tokens, stop_token_ids, EOS/ignore_eos, min_tokens, stop strings),
 * logprobs, refused requests, a crashed detokenizer worker and a failing executor. Expected
 * outputs are derived from the same request's unconstrained run, never hard-coded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { DEFAULT_SAMPLING_PARAMS, EngineInputError, type RequestOutput, type SamplingParams } from '../../src/engine/types.ts';
import { collect, makeEngine, makePrompts, nativeUnavailableReason, type ExecutorKind, type TestEngine } from './engine-harness.ts';

const nativeReason = nativeUnavailableReason();
if (nativeReason) console.warn(`engine-stops: native executor tests skipped: ${nativeReason}`);

const MAX_TOKENS = 24;
const params = (over: Partial<SamplingParams> = {}): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: MAX_TOKENS, ...over });
let nextId = 0;

async function run(t: TestEngine, prompt: number[], over: Partial<SamplingParams> = {}): Promise<RequestOutput & { completionTokens: number }> {
  const id = `r${nextId++}`;
  const deltas = await collect(await t.engine.addRequest(id, { promptTokenIds: prompt }, params(over)));
  const last = deltas.at(-1);
  expect(deltas.filter((d) => d.finishReason !== undefined)).toHaveLength(1);
  const output = await collectOutput(id, (async function* () { yield* deltas; })());
  return { ...output, completionTokens: last?.usage?.completionTokens ?? -1 };
}

describe.each<ExecutorKind>(['fake', 'native'])('engine stop conditions (%s executor)', (kind) => {
  const skip = kind === 'native' && nativeReason !== '';
  const prompt = makePrompts(1, 12, 12, 3)[0];
  let t: TestEngine;
  let base: RequestOutput;
  /** A token of the base output and the index of its first occurrence. */
  let stopToken = -1;
  let firstIndex = -1;

  beforeAll(async () => {
    if (skip) return;
    t = await makeEngine(kind);
    base = await run(t, prompt);
    stopToken = base.tokenIds[6];
    firstIndex = base.tokenIds.indexOf(stopToken);
  });
  afterAll(async () => {
    if (!skip) await t.engine.shutdown(1000);
  });

  it.skipIf(skip)('max_tokens ends with length; usage counts exactly the tokens produced', async () => {
    expect(base.finishReason).toBe('length');
    expect(base.tokenIds).toHaveLength(MAX_TOKENS);
    const short = await run(t, prompt, { maxTokens: 5 });
    expect(short.tokenIds).toEqual(base.tokenIds.slice(0, 5));
    expect(short.completionTokens).toBe(5);
    expect(short.finishReason).toBe('length');
  });

  it.skipIf(skip)('stop_token_ids end at the first occurrence with the id as stop reason, its text left out', async () => {
    const out = await run(t, prompt, { stopTokenIds: [stopToken] });
    expect(out.tokenIds).toEqual(base.tokenIds.slice(0, firstIndex + 1));
    expect(out).toMatchObject({ finishReason: 'stop', stopReason: stopToken, completionTokens: firstIndex + 1 });
    // (A decode from the start drops SentencePiece's leading space; the streamed text has the prompt as context.)
    expect(out.text.trimStart()).toBe((await t.pool.decode(base.tokenIds.slice(0, firstIndex))).trimStart());
    expect(base.text.startsWith(out.text)).toBe(true);
  });

  it.skipIf(skip)('min_tokens: nothing stops the output before it', async () => {
    const minTokens = firstIndex + 2;
    const out = await run(t, prompt, { stopTokenIds: [stopToken], minTokens });
    expect(out.tokenIds.length).toBeGreaterThanOrEqual(minTokens);
    if (kind === 'native') {
      // The executor bans the id before min_tokens (vLLM), so the output leaves the base run
      // there; the details are in min-tokens.test.ts.
      expect(out.tokenIds.slice(0, minTokens)).not.toContain(stopToken);
      return;
    }
    // The fake executor ignores the logit-adjust columns (bans): this checks postprocess's backstop.
    const next = base.tokenIds.findIndex((id, i) => id === stopToken && i >= minTokens - 1);
    if (next < 0) {
      expect(out).toMatchObject({ finishReason: 'length', tokenIds: base.tokenIds });
    } else {
      expect(out).toMatchObject({ finishReason: 'stop', stopReason: stopToken, tokenIds: base.tokenIds.slice(0, next + 1) });
    }
    expect(out.tokenIds.length).toBeGreaterThanOrEqual(minTokens);
  });

  it.skipIf(skip)('EOS ends the output (no stop reason) unless ignore_eos; min_tokens holds it off', async () => {
    const eosEngine = await makeEngine(kind, { eosTokenIds: [stopToken] });
    try {
      const stopped = await run(eosEngine, prompt, { ignoreEos: false });
      expect(stopped.tokenIds).toEqual(base.tokenIds.slice(0, firstIndex + 1));
      expect(stopped.finishReason).toBe('stop');
      expect(stopped.stopReason).toBeUndefined();
      expect(stopped.completionTokens).toBe(firstIndex + 1);
      const ignored = await run(eosEngine, prompt, { ignoreEos: true });
      expect(ignored).toMatchObject({ finishReason: 'length', tokenIds: base.tokenIds });
      const held = await run(eosEngine, prompt, { ignoreEos: false, minTokens: firstIndex + 2 });
      expect(held.tokenIds.length).toBeGreaterThanOrEqual(firstIndex + 2);
      // Native: EOS is banned before min_tokens (min-tokens.test.ts); the fake ignores bans.
      if (kind === 'native') expect(held.tokenIds.slice(0, firstIndex + 2)).not.toContain(stopToken);
      else expect(held.tokenIds).toEqual(base.tokenIds.slice(0, held.tokenIds.length));
    } finally {
      await eosEngine.engine.shutdown(1000);
    }
  });

  it.skipIf(skip)('stop strings cut the text before the stop and drop the tokens after the one completing it', async () => {
    const text = base.text;
    expect(text.length).toBeGreaterThan(20);
    // A stop string from the middle of the text, searched from its first occurrence.
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 4);
    const at = text.indexOf(stop);
    const out = await run(t, prompt, { stop: [stop] });
    expect(out).toMatchObject({ finishReason: 'stop', stopReason: stop, text: text.slice(0, at) });
    expect(out.tokenIds.length).toBeLessThan(base.tokenIds.length);
    expect(out.tokenIds).toEqual(base.tokenIds.slice(0, out.tokenIds.length));
    expect(out.completionTokens).toBe(out.tokenIds.length);
    // The last kept token completes the stop string; one fewer would not.
    expect(await t.pool.decode(out.tokenIds)).toContain(stop);
    expect(await t.pool.decode(out.tokenIds.slice(0, -1))).not.toContain(stop);
    const kept = await run(t, prompt, { stop: [stop], includeStopStrInOutput: true });
    expect(kept).toMatchObject({ finishReason: 'stop', stopReason: stop, text: text.slice(0, at + stop.length), tokenIds: out.tokenIds });
  });

  it.skipIf(skip)('logprobs: one entry per token, the sampled token and N alternatives best first', async () => {
    const out = await run(t, prompt, { logprobs: 3 });
    expect(out.tokenIds).toEqual(base.tokenIds);
    expect(out.logprobs).toHaveLength(MAX_TOKENS);
    out.logprobs?.forEach((lp, i) => {
      expect(lp.tokenId).toBe(out.tokenIds[i]);
      expect(lp.logprob).toBeLessThanOrEqual(0);
      expect(lp.top).toHaveLength(3);
      for (let k = 1; k < 3; k++) expect(lp.top[k].logprob).toBeLessThanOrEqual(lp.top[k - 1].logprob);
      // Greedy: the sampled token is the best alternative.
      expect(lp.top[0].tokenId).toBe(lp.tokenId);
    });
    const none = await run(t, prompt);
    expect(none.logprobs).toBeUndefined();
  });

  it.skipIf(skip)('refuses, before queuing, prompts over the context length, unknown token ids and reused request ids', async () => {
    const over = t.engine.addRequest('too-long', { promptTokenIds: prompt }, params({ maxTokens: t.engine.maxModelLen }));
    await expect(over).rejects.toThrow(EngineInputError);
    await expect(over).rejects.toThrow(/maximum context length/);
    await expect(t.engine.addRequest('bad-id', { promptTokenIds: [t.engine.vocabSize] }, params())).rejects.toThrow(/vocabulary/);
    await expect(t.engine.addRequest('empty', { promptTokenIds: [] }, params())).rejects.toThrow(EngineInputError);
    const first = await t.engine.addRequest('dup', { promptTokenIds: prompt }, params({ maxTokens: 3 }));
    await expect(t.engine.addRequest('dup', { promptTokenIds: prompt }, params())).rejects.toThrow(/already in use/);
    await collect(first);
    expect(t.engine.stats().numWaiting).toBe(0);
  });

  it.skipIf(skip)('a crashed detokenizer worker is replaced and its batch retried: no request loses text', async () => {
    const prompts = makePrompts(20, 4, 20, 9);
    const alone: RequestOutput[] = [];
    for (const p of prompts) alone.push(await run(t, p));
    const crashy = await makeEngine(kind, { crashDetokStep: 2 });
    try {
      const streams = await Promise.all(prompts.map((p, i) => crashy.engine.addRequest(`c${i}`, { promptTokenIds: p }, params())));
      const outputs = await Promise.all(streams.map((s, i) => collectOutput(`c${i}`, s)));
      expect(crashy.numDetokCrashes()).toBe(1);
      expect(outputs.map((o) => o.tokenIds)).toEqual(alone.map((o) => o.tokenIds));
      expect(outputs.map((o) => o.text)).toEqual(alone.map((o) => o.text));
    } finally {
      await crashy.engine.shutdown(1000);
    }
  });

  it.skipIf(skip || kind === 'native')('an executor error fails the in-flight requests and marks the engine dead, without crashing', async () => {
    const failing = await makeEngine(kind, { failAtStep: 3 });
    const streams = await Promise.all(makePrompts(5, 4, 8, 2).map((p, i) => failing.engine.addRequest(`f${i}`, { promptTokenIds: p }, params())));
    for (const s of streams) await expect(collect(s)).rejects.toThrow(/engine step failed: fake executor failure/);
    expect(failing.engine.stats().isAlive).toBe(false);
    await expect(failing.engine.addRequest('after', { promptTokenIds: [5] }, params())).rejects.toThrow(/dead/);
    await failing.engine.shutdown(100);
  });
});
