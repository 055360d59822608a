import { describe, expect, it } from 'vitest';
import { EngineConfigError, cpuBytesPerBlock, resolveEngineConfig, type EngineOptions } from '../../src/engine/config.ts';
import { fakeModelSource } from './engine-harness.ts';

const cpu = { numCudaDevices: 0, cudaUnavailableReason: 'no driver' };
const gpu = { numCudaDevices: 1, cudaUnavailableReason: '' };
const model = fakeModelSource();

function errorOf(options: Partial<EngineOptions>, machine = cpu): EngineConfigError {
  try {
    resolveEngineConfig({ model, ...options }, machine);
  } catch (err) {
    if (err instanceof EngineConfigError) return err;
    throw err;
  }
  throw new Error('expected an EngineConfigError');
}

describe('resolveEngineConfig', () => {
  it('fills defaults from the model and the machine, and freezes the result', () => {
    const c = resolveEngineConfig({ model }, cpu);
    expect(c).toMatchObject({ maxModelLen: model.maxModelLen, device: 'cpu', dtype: 'float32', blockSize: 16, maxNumSeqs: 256, seed: 0 });
    expect(Object.isFrozen(c)).toBe(true);
    // The CPU cache: what the memory budget holds, capped at what maxNumSeqs full-length sequences use.
    const perBlock = cpuBytesPerBlock(model, 16);
    expect(c.numBlocks).toBe(Math.min(Math.floor((4 * 1024 ** 3) / perBlock), (model.maxModelLen / 16) * 256));
    expect(resolveEngineConfig({ model, kvCacheMemoryBytes: perBlock * 200 }, cpu).numBlocks).toBe(200);
    const g = resolveEngineConfig({ model }, gpu);
    expect(g).toMatchObject({ device: 'cuda', dtype: 'bfloat16', numBlocks: 0 });
  });

  it('names the option by its vLLM flag in every error', () => {
    expect(errorOf({ maxNumBatchedTokens: 0 }).message).toMatch(/^--max-num-batched-tokens: /);
    expect(errorOf({ maxNumSeqs: 1.5 }).message).toMatch(/^--max-num-seqs: /);
    expect(errorOf({ blockSize: 24 }).message).toMatch(/^--block-size: .*power of two/);
    expect(errorOf({ gpuMemoryUtilization: 1.5 }).message).toMatch(/^--gpu-memory-utilization: /);
    expect(errorOf({ maxModelLen: model.maxModelLen + 1 }).message).toMatch(/^--max-model-len: .*max_position_embeddings/);
    expect(errorOf({ maxNumSeqs: 64, maxNumBatchedTokens: 32 }).message).toMatch(/^--max-num-batched-tokens: 32 must be greater than or equal to --max-num-seqs/);
    expect(errorOf({ device: 'cuda' }).message).toMatch(/^--device: cuda is not available: no driver/);
    expect(errorOf({ dtype: 'bfloat16' }).message).toMatch(/^--dtype: /);
    expect(errorOf({ numBlocks: 10, maxModelLen: 1024 }).message).toMatch(/^--num-kv-blocks: 10 blocks .*needs 64/);
    expect(errorOf({ kvCacheMemoryBytes: 1000 }).message).toMatch(/^--kv-cache-memory-bytes: /);
    expect(errorOf({ model: {} as never }).message).toMatch(/^--model: /);
    expect(errorOf({ seed: -1 }).option).toBe('seed');
  });
});
