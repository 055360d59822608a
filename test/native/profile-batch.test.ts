/**
 * The batch the CUDA backend steps once at start-up to size its KV cache is packed in C++
 * (native/src/profile_batch.cc) and no GPU runs in CI, so here it is checked against the
 * TypeScript layout (same byte length, same columns) and stepped on the CPU backend, whose
 * validation is the CUDA backend's. A layout change that forgets it fails here.
 */
import { describe, expect, it } from 'vitest';
import { batchByteLength, BATCH_HEADER_INTS, BatchHeader, readResult, type BatchShape } from '../../src/engine/batch-layout.ts';
import { dummyOptions, native, tinyModel } from './helpers.ts';

describe('the CUDA backend profile batch', () => {
  for (const numTokens of [1, 16, 37]) {
    it(`${numTokens} prompt tokens: the TypeScript layout's size, and a valid step`, async () => {
      const blockSize = 16;
      const vocabSize = tinyModel().vocabSize;
      const buffer = native.packProfileBatchForTest(numTokens, blockSize, vocabSize);
      const header = new Int32Array(buffer, 0, BATCH_HEADER_INTS);
      const shape: BatchShape = {
        numSeqs: 1, numTokens, maxBlocksPerSeq: Math.ceil(numTokens / blockSize), maxTopLogprobs: 0, logitsMode: 0,
        numPenaltyTokens: 0, numLogitAdjusts: 0,
      };
      expect([header[BatchHeader.numSeqs], header[BatchHeader.numTokens], header[BatchHeader.maxBlocksPerSeq]]).toEqual([1, numTokens, shape.maxBlocksPerSeq]);
      expect(buffer.byteLength).toBe(batchByteLength(shape));
      const exec = new native.Executor(dummyOptions({ numBlocks: shape.maxBlocksPerSeq, blockSize }));
      try {
        const result = readResult(await exec.step(buffer), shape, vocabSize);
        expect(result.sampledTokenIds[0]).toBeGreaterThanOrEqual(0);
        expect(result.sampledTokenIds[0]).toBeLessThan(vocabSize);
      } finally {
        exec.close();
      }
    });
  }
});
