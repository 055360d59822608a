/**
 * The engine on the CUDA executor (skipped, with the reason, where there is no device):
 * concurrent greedy requests in float32 give each request's alone output, also through
 * preemptions and prefix-cache hits; bfloat16 with the cache sized from
 * gpuMemoryUtilization serves a batch to the end and gives every block back.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { loadNative } from '../../src/engine/native.ts';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { DEFAULT_SAMPLING_PARAMS, type RequestOutput, type SamplingParams } from '../../src/engine/types.ts';
import { makePrompts, nativeUnavailableReason } from './engine-harness.ts';

// The real tiny TinyStories Llama (../shared/models/stories260K-hf): it needs no tokenizer package.
const modelDir = path.resolve(fileURLToPath(new URL('../..', import.meta.url)), '../shared/models/stories260K-hf');

function cudaUnavailableReason(): string {
  if (!existsSync(modelDir)) return `the shared model ${modelDir} is absent`;
  const reason = nativeUnavailableReason();
  if (reason) return reason;
  const native = loadNative();
  return native.cudaDeviceCount() > 0 ? '' : `no CUDA device (${native.cudaUnavailableReason() || 'none found'})`;
}

const reason = cudaUnavailableReason();
if (reason) console.warn(`engine-cuda: skipped: ${reason}`);
const greedy = (over: Partial<SamplingParams> = {}): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: 16, ...over });

async function runAll(engine: Engine, prompts: number[][], tag: string, together: boolean): Promise<RequestOutput[]> {
  const one = async (p: number[], i: number): Promise<RequestOutput> =>
    collectOutput(`${tag}-${i}`, await engine.addRequest(`${tag}-${i}`, { promptTokenIds: p }, greedy()));
  if (together) return Promise.all(prompts.map(one));
  const outputs: RequestOutput[] = [];
  for (let i = 0; i < prompts.length; i++) outputs.push(await one(prompts[i], i));
  return outputs;
}

describe.skipIf(reason !== '')('engine on CUDA', () => {
  const dir = modelDir;

  it('float32: 200 concurrent greedy requests equal each alone, with preemptions and prefix hits', async () => {
    // Token ids of the 512-token vocabulary (makePrompts draws from 100..20100).
    const inVocab = (ids: number[]) => ids.map((id) => 3 + (id % 500));
    const prompts = makePrompts(200, 3, 60, 17).map(inVocab);
    const shared = inVocab(makePrompts(1, 40, 40, 18)[0]);
    const all = [...prompts, ...prompts.slice(0, 20).map((p) => [...shared, ...p])];
    const reference = await Engine.create({ model: dir, device: 'cuda', dtype: 'float32', numBlocks: 2048, enablePrefixCaching: false, detokenizerWorkers: 1 });
    let alone: RequestOutput[];
    try {
      alone = await runAll(reference, all, 'alone', false);
    } finally {
      await reference.shutdown(1000);
    }
    const small = await Engine.create({ model: dir, device: 'cuda', dtype: 'float32', numBlocks: 96, maxModelLen: 256, detokenizerWorkers: 1 });
    try {
      const together = await runAll(small, all, 'together', true);
      expect(small.numPreemptions).toBeGreaterThan(0);
      expect(small.blockManager.numHitBlocks).toBeGreaterThan(0);
      for (let i = 0; i < all.length; i++) expect(together[i].tokenIds, `request ${i}`).toEqual(alone[i].tokenIds);
      expect(small.stats()).toMatchObject({ numRunning: 0, numWaiting: 0, numFreeBlocks: 96, isAlive: true });
    } finally {
      await small.shutdown(1000);
    }
  });

  it('bfloat16, cache sized from gpuMemoryUtilization: a sampled batch runs to the end and gives every block back', async () => {
    const engine = await Engine.create({ model: dir, device: 'cuda', gpuMemoryUtilization: 0.3, maxModelLen: 512, detokenizerWorkers: 1 });
    try {
      expect(engine.config.dtype).toBe('bfloat16');
      const numBlocks = engine.stats().numBlocks;
      expect(numBlocks).toBeGreaterThanOrEqual(512 / 16);
      const prompts = makePrompts(64, 5, 100, 19).map((ids) => ids.map((id) => 3 + (id % 500)));
      const outputs = await engine.generate(prompts.map((p) => ({ promptTokenIds: p })), { temperature: 0.8, topP: 0.9, maxTokens: 32, ignoreEos: true, seed: 7 });
      expect(outputs.every((o) => o.tokenIds.length === 32 && o.finishReason === 'length')).toBe(true);
      const timings = engine.stepTimings();
      expect(timings.length).toBeGreaterThan(0);
      const decode = timings.filter((t) => t.numPrefillTokens === 0 && t.numSeqs >= 32);
      if (decode.length > 0) {
        const mean = (k: 'executeMs' | 'forwardMs' | 'packMs' | 'postprocessMs' | 'detokDispatchMs') => (decode.reduce((a, t) => a + t[k], 0) / decode.length).toFixed(3);
        console.log(`engine-cuda decode steps (${decode.length}, ≥32 seqs): execute ${mean('executeMs')} ms, forward ${mean('forwardMs')}, pack ${mean('packMs')}, postprocess ${mean('postprocessMs')}, detok dispatch ${mean('detokDispatchMs')}`);
      }
      expect(engine.stats().numFreeBlocks).toBe(numBlocks);
    } finally {
      await engine.shutdown(1000);
    }
  });
});
