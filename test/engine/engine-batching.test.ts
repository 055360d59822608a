/**
 * Continuous batching end to end: many concurrent requests give each request's alone
 * output (greedy and seeded), also when a small KV cache forces preemptions; aborts free
 * every block. Runs on the fake executor (packing checked through its paged cache) and on
 * the native CPU executor with a tiny random model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { DEFAULT_SAMPLING_PARAMS, type RequestOutput, type SamplingParams } from '../../src/engine/types.ts';
import { collect, makeEngine, makePrompts, nativeUnavailableReason, type ExecutorKind, type TestEngine } from './engine-harness.ts';
import { FakeExecutor } from './fake-executor.ts';

const nativeReason = nativeUnavailableReason();
if (nativeReason) console.warn(`engine-batching: native executor tests skipped: ${nativeReason}`);

const greedy = (over: Partial<SamplingParams> = {}): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: 12, ...over });

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

/** Runs each request on its own, one after another. */
async function runAlone(t: TestEngine, prompts: number[][], params: (i: number) => SamplingParams): Promise<RequestOutput[]> {
  const outputs: RequestOutput[] = [];
  for (let i = 0; i < prompts.length; i++) {
    const id = `alone-${i}-${Math.random()}`;
    outputs.push(await collectOutput(id, await t.engine.addRequest(id, { promptTokenIds: prompts[i] }, params(i))));
  }
  return outputs;
}

async function runTogether(t: TestEngine, prompts: number[][], params: (i: number) => SamplingParams): Promise<RequestOutput[]> {
  const streams = await Promise.all(prompts.map((p, i) => t.engine.addRequest(`together-${i}`, { promptTokenIds: p }, params(i))));
  return Promise.all(streams.map((s, i) => collectOutput(`together-${i}`, s)));
}

describe.each<ExecutorKind>(['fake', 'native'])('engine batching (%s executor)', (kind) => {
  const skip = kind === 'native' && nativeReason !== '';
  const numRequests = 200;
  const prompts = makePrompts(numRequests, 3, 40, 11);
  let alone: RequestOutput[] = [];
  let roomy: TestEngine;

  beforeAll(async () => {
    if (skip) return;
    // Without prefix caching, so "together" recomputes everything "alone" computed.
    roomy = await makeEngine(kind, { numBlocks: 1024, enablePrefixCaching: false });
    alone = await runAlone(roomy, prompts, () => greedy());
  });
  afterAll(async () => {
    if (!skip) await roomy.engine.shutdown(1000);
  });

  it.skipIf(skip)('a greedy request alone gives its reference continuation', () => {
    expect(alone.every((o) => o.tokenIds.length === 12 && o.finishReason === 'length')).toBe(true);
    if (kind !== 'fake') return;
    // The fake model's tokens follow from the context alone: recompute them here.
    for (let i = 0; i < numRequests; i++) {
      const context = [...prompts[i]];
      for (let n = 0; n < 12; n++) context.push(FakeExecutor.nextToken(context, 32000, 0, 0, 0));
      expect(alone[i].tokenIds).toEqual(context.slice(prompts[i].length));
    }
  });

  it.skipIf(skip)('200 concurrent greedy requests give the same tokens as each alone', async () => {
    const together = await runTogether(roomy, prompts, () => greedy());
    for (let i = 0; i < numRequests; i++) expect(together[i].tokenIds, `request ${i}`).toEqual(alone[i].tokenIds);
    expect(together.map((o) => o.text)).toEqual(alone.map((o) => o.text));
    await waitFor(() => roomy.engine.stats().numFreeBlocks === 1024, 'all blocks free');
  });

  it.skipIf(skip)('with a KV cache too small for all of them: preemptions happen, outputs are unchanged, every block comes back', async () => {
    // Prefix caching on (the default): preempted sequences find their own blocks again.
    const small = await makeEngine(kind, { numBlocks: 48, maxModelLen: 256 });
    try {
      const together = await runTogether(small, prompts, () => greedy());
      expect(small.engine.numPreemptions).toBeGreaterThan(0);
      for (let i = 0; i < numRequests; i++) expect(together[i].tokenIds, `request ${i}`).toEqual(alone[i].tokenIds);
      await waitFor(() => small.engine.stats().numFreeBlocks === 48, 'all blocks free');
      expect(small.engine.stats()).toMatchObject({ numRunning: 0, numWaiting: 0, kvUsage: 0, isAlive: true });
    } finally {
      await small.engine.shutdown(1000);
    }
  });

  it.skipIf(skip)('a chunked prefill (budget smaller than the prompts) gives the same tokens', async () => {
    const chunked = await makeEngine(kind, { maxNumBatchedTokens: 16, maxNumSeqs: 8, numBlocks: 256 });
    try {
      const subset = prompts.slice(0, 12);
      const together = await runTogether(chunked, subset, () => greedy());
      for (let i = 0; i < subset.length; i++) expect(together[i].tokenIds, `request ${i}`).toEqual(alone[i].tokenIds);
      const timings = chunked.engine.stepTimings();
      expect(timings.every((t) => t.numTokens <= 16 && t.numSeqs <= 8)).toBe(true);
      expect(timings.some((t) => t.numPrefillTokens > 0 && t.numSeqs > 1)).toBe(true);
    } finally {
      await chunked.engine.shutdown(1000);
    }
  });

  it.skipIf(skip)('requests sharing a long prompt prefix reuse its cached blocks and give the output of an engine without the cache', async () => {
    const prefix = makePrompts(1, 70, 70, 21)[0];
    const shared = makePrompts(30, 1, 20, 22).map((suffix) => [...prefix, ...suffix]);
    const cached = await makeEngine(kind, { enablePrefixCaching: true, numBlocks: 256 });
    try {
      const reference = await runAlone(roomy, shared, () => greedy());
      expect(roomy.engine.blockManager.numHitBlocks).toBe(0);
      const together = await runTogether(cached, shared, () => greedy());
      // The first admitted computes the 70-token prefix (4 full blocks of 16); later ones reuse them.
      expect(cached.engine.blockManager.numHitBlocks).toBeGreaterThanOrEqual(4 * 20);
      for (let i = 0; i < shared.length; i++) expect(together[i].tokenIds, `request ${i}`).toEqual(reference[i].tokenIds);
      await waitFor(() => cached.engine.stats().numFreeBlocks === 256, 'all blocks free');
    } finally {
      await cached.engine.shutdown(1000);
    }
  });

  it.skipIf(skip)('rows with penalties, mixed with rows without, give their alone output', async () => {
    const penalized = (i: number): SamplingParams =>
      greedy(i % 2 === 0 ? { repetitionPenalty: 1.3 + (i % 3) * 0.2, frequencyPenalty: 0.5, presencePenalty: i % 4 === 0 ? 0.4 : 0 } : {});
    const subset = prompts.slice(40, 70);
    const penalizedAlone = await runAlone(roomy, subset, penalized);
    const together = await runTogether(roomy, subset, penalized);
    for (let i = 0; i < subset.length; i++) expect(together[i].tokenIds, `request ${i}`).toEqual(penalizedAlone[i].tokenIds);
    // The penalties did act: some penalized request differs from its plain greedy output.
    const plain = alone.slice(40, 70);
    expect(subset.some((_, i) => i % 2 === 0 && penalizedAlone[i].tokenIds.join() !== plain[i].tokenIds.join())).toBe(true);
    expect(subset.every((_, i) => i % 2 === 0 || penalizedAlone[i].tokenIds.join() === plain[i].tokenIds.join())).toBe(true);
  });

  it.skipIf(skip)('rows asking for different numbers of logprobs, mixed with rows asking none, get their alone logprobs', async () => {
    const withLogprobs = (i: number): SamplingParams => greedy({ logprobs: [null, 0, 3, 5][i % 4], maxTokens: 6 });
    const subset = prompts.slice(70, 86);
    const lpAlone = await runAlone(roomy, subset, withLogprobs);
    const together = await runTogether(roomy, subset, withLogprobs);
    for (let i = 0; i < subset.length; i++) {
      const wanted = withLogprobs(i).logprobs;
      if (wanted === null) {
        expect(together[i].logprobs).toBeUndefined();
        continue;
      }
      expect(together[i].logprobs?.map((lp) => lp.top.length)).toEqual(Array(6).fill(wanted));
      expect(together[i].logprobs?.map((lp) => [lp.tokenId, ...lp.top.map((t) => t.tokenId)])).toEqual(lpAlone[i].logprobs?.map((lp) => [lp.tokenId, ...lp.top.map((t) => t.tokenId)]));
      together[i].logprobs?.forEach((lp, k) => expect(lp.logprob).toBeCloseTo(lpAlone[i].logprobs?.[k].logprob ?? Number.NaN, 4));
    }
  });

  it.skipIf(skip)('seeded sampling draws the same tokens alone and in a mixed batch', async () => {
    const seeded = (i: number): SamplingParams => greedy({ temperature: 0.9, topP: 0.95, seed: 1000 + i, maxTokens: 10 });
    const subset = prompts.slice(0, 16);
    const seededAlone = await runAlone(roomy, subset, seeded);
    // The same requests among unseeded and greedy ones, in another order.
    const mixed = [...subset.map((p, i) => ({ p, params: seeded(i) })), ...prompts.slice(16, 40).map((p, i) => ({ p, params: greedy({ temperature: i % 2 ? 0.7 : 0 }) }))].reverse();
    const outputs = await runTogether(roomy, mixed.map((m) => m.p), (i) => mixed[i].params);
    const bySeed = new Map(outputs.map((o, i) => [mixed[i].params.seed, o.tokenIds]));
    for (let i = 0; i < subset.length; i++) expect(bySeed.get(1000 + i), `seed ${1000 + i}`).toEqual(seededAlone[i].tokenIds);
    // Different seeds do give different draws (else the test above would prove nothing).
    expect(new Set(seededAlone.map((o) => o.tokenIds.join(','))).size).toBeGreaterThan(1);
    const reseeded = await runAlone(roomy, [subset[0]], () => greedy({ temperature: 0.9, topP: 0.95, seed: 5, maxTokens: 10 }));
    expect(reseeded[0].tokenIds).not.toEqual(seededAlone[0].tokenIds);
  });

  it.skipIf(skip)('aborting 100 in-flight requests ends their streams with abort and frees all their blocks', async () => {
    const t = await makeEngine(kind, { numBlocks: 400 });
    try {
      const long = makePrompts(100, 5, 30, 5);
      const streams = await Promise.all(long.map((p, i) => t.engine.addRequest(`long-${i}`, { promptTokenIds: p }, greedy({ maxTokens: 300 }))));
      const iterators = streams.map((s) => s[Symbol.asyncIterator]());
      // A few steps in, all are running with blocks held (prompts fit in one step's budget).
      await waitFor(() => t.engine.numSteps >= 3, 'three steps');
      expect(t.engine.stats().numRunning).toBe(100);
      expect(t.engine.stats().numFreeBlocks).toBeLessThan(400);
      for (let i = 0; i < 100; i++) t.engine.abort(`long-${i}`);
      const rests = await Promise.all(
        iterators.map(async (it) => {
          const deltas = [];
          for (let r = await it.next(); !r.done; r = await it.next()) deltas.push(r.value);
          return deltas;
        }),
      );
      for (const deltas of rests) {
        expect(deltas.at(-1)?.finishReason).toBe('abort');
        expect(deltas.filter((d) => d.finishReason !== undefined)).toHaveLength(1);
        const numTokens = deltas.reduce((n, d) => n + d.tokenIds.length, 0);
        expect(deltas.at(-1)?.usage?.completionTokens).toBe(numTokens);
        expect(numTokens).toBeLessThan(300);
      }
      await waitFor(() => t.engine.stats().numFreeBlocks === 400, 'all blocks free after abort');
      expect(t.engine.stats()).toMatchObject({ numRunning: 0, numWaiting: 0 });
      // Aborting again or an unknown id is a no-op.
      t.engine.abort('long-0');
      t.engine.abort('nope');
    } finally {
      await t.engine.shutdown(1000);
    }
  });

  it.skipIf(skip)('breaking out of a stream aborts its request', async () => {
    const stream = await roomy.engine.addRequest('leaver', { promptTokenIds: prompts[0] }, greedy({ maxTokens: 300 }));
    for await (const delta of stream) {
      expect(delta.tokenIds.length).toBeGreaterThanOrEqual(0);
      break;
    }
    await waitFor(() => roomy.engine.stats().numRunning === 0 && roomy.engine.numLiveRequests === 0, 'the request to go');
  });

  it.skipIf(skip)('generate() returns outputs in prompt order, text and tokens matching a decode', async () => {
    const outputs = await roomy.engine.generate(['Once upon a time', 'The cat sat'], { temperature: 0, maxTokens: 8, ignoreEos: true });
    expect(outputs).toHaveLength(2);
    expect(outputs[0].promptTokenIds).toEqual(await roomy.engine.tokenize('Once upon a time', true));
    for (const o of outputs) {
      expect(o.tokenIds).toHaveLength(8);
      // A decode from the start drops SentencePiece's leading space; the stream had the prompt as context.
      expect(o.text.trimStart()).toBe((await roomy.pool.decode(o.tokenIds)).trimStart());
    }
    const streamed = await collect(await roomy.engine.addRequest('again', 'The cat sat', greedy({ maxTokens: 8 })));
    expect(streamed.flatMap((d) => d.tokenIds)).toEqual(outputs[1].tokenIds);
    expect(streamed[0].promptTokenIds).toEqual(outputs[1].promptTokenIds);
    expect(streamed.at(-1)?.usage).toEqual({ promptTokens: outputs[1].promptTokenIds.length, completionTokens: 8 });
  });
});
