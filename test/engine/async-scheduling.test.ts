/**
 * Async scheduling (step-loop.ts): step N+1 is scheduled, packed and handed to the executor
 * while step N runs, N's sampled tokens filled in by the executor when N ends. It must change nothing a request sees: every
 * output, finish and logprob equals the synchronous loop's, across seeded sampling,
 * penalties, min_tokens, EOS, stop ids, stop strings, chunked prefill and preemptions, and
 * every KV block comes back. Runs on the fake executor (whose paged cache checks the packing
 * and the filled-in tokens) and on the native CPU executor with a tiny random model.
 */
import { describe, expect, it } from 'vitest';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { DEFAULT_SAMPLING_PARAMS, type RequestOutput, type SamplingParams } from '../../src/engine/types.ts';
import { makeEngine, makePrompts, nativeUnavailableReason, type ExecutorKind, type TestEngineOptions } from './engine-harness.ts';

const nativeReason = nativeUnavailableReason();
if (nativeReason) console.warn(`async-scheduling: native executor tests skipped: ${nativeReason}`);

/** Varied requests: every feature that reads a sequence's tokens or output count. */
function paramsOf(i: number): SamplingParams {
  const p: SamplingParams = { ...DEFAULT_SAMPLING_PARAMS, maxTokens: 1 + ((i * 7) % 24), logprobs: i % 5 === 0 ? 2 : null };
  if (i % 3 === 0) return { ...p, temperature: 0 };
  const sampled: SamplingParams = { ...p, temperature: 0.9, topP: 0.95, seed: 1000 + i };
  if (i % 4 === 1) return { ...sampled, repetitionPenalty: 1.4, frequencyPenalty: 0.3, presencePenalty: 0.2 };
  if (i % 4 === 2) return { ...sampled, minTokens: Math.min(4, p.maxTokens), stopTokenIds: [7, 11] };
  if (i % 8 === 3) return { ...sampled, stop: ['e'] };
  return sampled;
}

interface RunResult {
  outputs: RequestOutput[];
  packedAhead: number;
  numPreemptions: number;
  freeAtEnd: boolean;
}

async function runAll(kind: ExecutorKind, options: TestEngineOptions, prompts: number[][]): Promise<RunResult> {
  const t = await makeEngine(kind, options);
  try {
    const streams = await Promise.all(prompts.map((p, i) => t.engine.addRequest(`r${i}`, { promptTokenIds: p }, paramsOf(i))));
    const outputs = await Promise.all(streams.map((s, i) => collectOutput(`r${i}`, s)));
    for (let i = 0; i < 200 && t.engine.stats().numFreeBlocks !== t.engine.stats().numBlocks; i++) await new Promise((r) => setTimeout(r, 5));
    const packedAhead = t.engine.stepTimings().filter((s) => s.handover === 'ahead').length;
    const stats = t.engine.stats();
    return { outputs, packedAhead, numPreemptions: stats.numPreemptions, freeAtEnd: stats.numFreeBlocks === stats.numBlocks };
  } finally {
    await t.engine.shutdown(1000);
  }
}

describe.each<ExecutorKind>(['fake', 'native'])('async scheduling (%s executor)', (kind) => {
  const skip = kind === 'native' && nativeReason !== '';
  // Many ids count as EOS on the fake model (whose tokens are hashes), so EOS does end outputs.
  const eosTokenIds = kind === 'fake' ? Array.from({ length: 2500 }, (_, i) => i) : undefined;
  const prompts = makePrompts(kind === 'fake' ? 60 : 24, 3, 60, 5);

  it.skipIf(skip)('gives the synchronous loop’s outputs, with a chunked prefill and preemptions, and frees every block', async () => {
    // A small budget chunks the prompts; a small cache forces preemptions (of sequences whose
    // token is still in flight too).
    const options: TestEngineOptions = { numBlocks: 16, maxModelLen: 128, maxNumBatchedTokens: 48, maxNumSeqs: 16, eosTokenIds };
    const sync = await runAll(kind, { ...options, asyncScheduling: false }, prompts);
    const ahead = await runAll(kind, { ...options, asyncScheduling: true }, prompts);
    expect(sync.packedAhead).toBe(0);
    expect(ahead.packedAhead).toBeGreaterThan(10);
    expect(sync.numPreemptions, 'preemptions, one step at a time').toBeGreaterThan(0);
    expect(ahead.numPreemptions, 'preemptions, async').toBeGreaterThan(0);
    for (let i = 0; i < prompts.length; i++) {
      const { requestId, ...want } = sync.outputs[i];
      const { requestId: _, ...got } = ahead.outputs[i];
      expect(got, `request ${i} (${requestId})`).toEqual(want);
    }
    // The mix did exercise each way to end.
    const reasons = new Set(sync.outputs.map((o) => `${o.finishReason}:${typeof o.stopReason}`));
    expect(reasons.has('length:undefined')).toBe(true);
    if (kind === 'fake') expect(reasons.has('stop:undefined') || reasons.has('stop:number')).toBe(true);
    expect(sync.freeAtEnd && ahead.freeAtEnd).toBe(true);
  });

  it.skipIf(skip)('aborts while steps are packed ahead free every block and leave other outputs unchanged', async () => {
    const t = await makeEngine(kind, { numBlocks: 64, maxModelLen: 128, eosTokenIds });
    const greedy = (i: number): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: 20 + i });
    try {
      const alone = await collectOutput('alone', await t.engine.addRequest('alone', { promptTokenIds: prompts[0] }, greedy(0)));
      const streams = await Promise.all(prompts.slice(0, 8).map((p, i) => t.engine.addRequest(`a${i}`, { promptTokenIds: p }, greedy(i))));
      const outputs = Promise.all(streams.map((s, i) => collectOutput(`a${i}`, s)));
      for (let i = 0; i < 200 && t.engine.numSteps < 4; i++) await new Promise((r) => setTimeout(r, 2));
      for (let i = 1; i < 8; i += 2) t.engine.abort(`a${i}`);
      const done = await outputs;
      expect(done[0].tokenIds).toEqual(alone.tokenIds);
      expect(done.filter((o, i) => i % 2 === 1).every((o) => o.finishReason === 'abort')).toBe(true);
      for (let i = 0; i < 200 && t.engine.stats().numFreeBlocks !== 64; i++) await new Promise((r) => setTimeout(r, 5));
      expect(t.engine.stats()).toMatchObject({ numFreeBlocks: 64, numRunning: 0, numWaiting: 0, isAlive: true });
    } finally {
      await t.engine.shutdown(1000);
    }
  });
});
