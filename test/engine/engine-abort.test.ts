/**
 * Aborts against the detokenizer's lag: a finish decided by postprocessing (length, EOS,
 * stop token id) but not yet reported is not turned into 'abort'; an abort of a sequence
 * still generating ends it at once, its usage counting every token generated for it.
 * The worker pool is held shut so that the step loop runs ahead of the detokenizer.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SAMPLING_PARAMS, type RequestDelta, type SamplingParams } from '../../src/engine/types.ts';
import type { DetokStepOptions } from '../../src/workers/pool.ts';
import type { DetokItem, DetokResult } from '../../src/workers/protocol.ts';
import { collect, makeEngine, type TestEngine } from './engine-harness.ts';
import { FakeExecutor } from './fake-executor.ts';

const params = (over: Partial<SamplingParams> = {}): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, ...over });

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

/** Holds every detokenization batch until open() (the pool method is looked up per call by the harness). */
function holdDetokenizer(t: TestEngine): { open: () => void; numCalls: () => number } {
  const original = t.pool.detokenizeStep.bind(t.pool);
  let open = (): void => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let numCalls = 0;
  t.pool.detokenizeStep = async (items: readonly DetokItem[], options?: DetokStepOptions): Promise<DetokResult[]> => {
    numCalls += 1;
    await gate;
    return original(items, options);
  };
  return { open, numCalls: () => numCalls };
}

const sumTokens = (deltas: RequestDelta[]): number => deltas.reduce((n, d) => n + d.tokenIds.length, 0);

describe('abort against a decided finish', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await makeEngine('fake');
  });
  afterEach(async () => {
    await t.engine.shutdown(1000);
  });

  it('a length finish decided before the abort is reported as length, with all its tokens and text', async () => {
    const gate = holdDetokenizer(t);
    const stream = await t.engine.addRequest('done', { promptTokenIds: [5, 6, 7] }, params({ maxTokens: 4 }));
    // One token per step: after 4 steps the finish is decided, none of it detokenized yet.
    await waitFor(() => t.engine.numSteps === 4 && t.engine.stats().numRunning === 0, 'the length finish');
    expect(gate.numCalls()).toBe(1);
    t.engine.abort('done');
    gate.open();
    const deltas = await collect(stream);
    const last = deltas.at(-1);
    expect(last?.finishReason).toBe('length');
    expect(deltas.filter((d) => d.finishReason !== undefined)).toHaveLength(1);
    expect(sumTokens(deltas)).toBe(4);
    expect(last?.usage).toEqual({ promptTokens: 3, completionTokens: 4 });
    // A decode from the start drops SentencePiece's leading space; the stream had the prompt as context.
    const text = deltas.map((d) => d.text).join('');
    expect(text.trimStart()).toBe((await t.engine.detokenize(deltas.flatMap((d) => d.tokenIds))).trimStart());
    expect(text.trim()).not.toBe('');
    expect(t.engine.numLiveRequests).toBe(0);
    expect(t.engine.stats().numFreeBlocks).toBe(t.engine.stats().numBlocks);
  });

  it('an EOS (stop) finish decided before the abort stays stop', async () => {
    const gate = holdDetokenizer(t);
    // The fake model's first greedy token after [5, 6, 7], made a stop token id.
    const firstToken = FakeExecutor.nextToken([5, 6, 7], t.engine.vocabSize, 0, 0, 0);
    const stream = await t.engine.addRequest('eos', { promptTokenIds: [5, 6, 7] }, params({ maxTokens: 50, stopTokenIds: [firstToken] }));
    await waitFor(() => t.engine.stats().numRunning === 0 && t.engine.stats().numWaiting === 0, 'the stop finish');
    t.engine.abort('eos');
    gate.open();
    const deltas = await collect(stream);
    expect(deltas.at(-1)).toMatchObject({ finishReason: 'stop', stopReason: firstToken, usage: { completionTokens: 1 } });
    expect(sumTokens(deltas)).toBe(1);
  });

  it('a client that hangs up after the finish was decided is let go: no live request, no block held', async () => {
    const gate = holdDetokenizer(t);
    const stream = await t.engine.addRequest('gone', { promptTokenIds: [5, 6, 7] }, params({ maxTokens: 3 }));
    const it = stream[Symbol.asyncIterator]();
    await waitFor(() => t.engine.numSteps === 3 && t.engine.stats().numRunning === 0, 'the length finish');
    await it.return?.();
    gate.open();
    await waitFor(() => t.engine.numLiveRequests === 0, 'the request to be let go');
    expect(t.engine.stats().numFreeBlocks).toBe(t.engine.stats().numBlocks);
  });

  it('shutdown does not turn decided finishes into aborts', async () => {
    const gate = holdDetokenizer(t);
    const stream = await t.engine.addRequest('late', { promptTokenIds: [5, 6, 7] }, params({ maxTokens: 2 }));
    await waitFor(() => t.engine.numSteps === 2 && t.engine.stats().numRunning === 0, 'the length finish');
    const deltasPromise = collect(stream);
    const shutdown = t.engine.shutdown(0);
    gate.open();
    await shutdown;
    const deltas = await deltasPromise;
    expect(deltas.at(-1)).toMatchObject({ finishReason: 'length', usage: { completionTokens: 2 } });
    expect(sumTokens(deltas)).toBe(2);
  });
});

describe('abort of a sequence still generating', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await makeEngine('fake');
  });
  afterEach(async () => {
    await t.engine.shutdown(1000);
  });

  it('ends it with abort; usage counts every generated token, also those not yet detokenized', async () => {
    const gate = holdDetokenizer(t);
    const stream = await t.engine.addRequest('long', { promptTokenIds: [5, 6, 7] }, params({ maxTokens: 300 }));
    await waitFor(() => t.engine.numSteps >= 6, 'six steps');
    // Between steps (the loop awaits the executor): one token appended per finished step.
    const numGenerated = t.engine.numSteps;
    t.engine.abort('long');
    const deltas = await collect(stream);
    gate.open();
    const last = deltas.at(-1);
    expect(last?.finishReason).toBe('abort');
    expect(deltas.filter((d) => d.finishReason !== undefined)).toHaveLength(1);
    expect(last?.usage).toEqual({ promptTokens: 3, completionTokens: numGenerated });
    // The deltas still add up to the usage: the tail's ids come without their text.
    expect(sumTokens(deltas)).toBe(numGenerated);
    await waitFor(() => t.engine.stats().numFreeBlocks === t.engine.stats().numBlocks, 'all blocks free');
    expect(t.engine.numLiveRequests).toBe(0);
  });

  it('an abort that lands while its step runs drops that step’s token from output and usage alike', async () => {
    const stream = await t.engine.addRequest('mid', { promptTokenIds: [5, 6, 7] }, params({ maxTokens: 300 }));
    await waitFor(() => t.engine.numSteps >= 3, 'three steps');
    t.engine.abort('mid');
    const deltas = await collect(stream);
    expect(deltas.at(-1)?.finishReason).toBe('abort');
    expect(deltas.at(-1)?.usage?.completionTokens).toBe(sumTokens(deltas));
    expect(sumTokens(deltas)).toBeLessThanOrEqual(t.engine.numSteps);
  });
});
