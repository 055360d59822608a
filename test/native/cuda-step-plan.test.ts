/**
 * What the CUDA backend decides on the host for a step (native/src/cuda/step_plan.h), checked
 * here because no GPU runs in CI: the leading run of one-token rows that takes the decode
 * kernel (the scheduler lists them first; a one-token row after a prompt chunk stays with
 * the prefill kernel), the longest prefill query, the decode context split, and whether a
 * decode-only step replays a CUDA graph, at which padded batch size. The addon exposes
 * these through planCudaStepForTest in every build, CUDA or not.
 */
import { describe, expect, it } from 'vitest';
import type { LogitsMode } from '../../src/engine/batch-layout.ts';
import { buildBatch, native, type SeqInput } from './helpers.ts';

interface PlanOptions {
  decodeKernelSupported: boolean;
  numKvHeads: number;
  numSms: number;
  blockSize: number;
  graphTableWidth: number;
  maxNumSeqs: number;
}

interface CudaStepPlan {
  numDecodes: number;
  maxDecodeLen: number;
  maxPrefillQueryLen: number;
  decodeSplits: number;
  graphable: boolean;
  graphSize: number;
  graphSizes: number[];
}

// Not in NativeBinding (src/engine/native.ts): only this test calls it.
const planCudaStep = (native as unknown as { planCudaStepForTest(batch: ArrayBuffer, options: PlanOptions): CudaStepPlan })
  .planCudaStepForTest;

const BLOCK_SIZE = 16;
/** An H100 (132 SMs) and Llama-3.1-8B's 8 KV heads, graphs up to 40 sequences of 64 blocks. */
const OPTIONS: PlanOptions = {
  decodeKernelSupported: true, numKvHeads: 8, numSms: 132, blockSize: BLOCK_SIZE, graphTableWidth: 64, maxNumSeqs: 40,
};

/** A decode row: one new token after `cached` tokens, in blocks s*8 ... */
function decodeRow(s: number, cached: number): SeqInput {
  const blocks = Math.ceil((cached + 1) / BLOCK_SIZE);
  return { newTokens: [s % 50], numCachedTokens: cached, blockIds: Array.from({ length: blocks }, (_, k) => s * 8 + k) };
}

function promptRow(s: number, length: number): SeqInput {
  const blocks = Math.ceil(length / BLOCK_SIZE);
  return { newTokens: Array.from({ length }, (_, i) => (s + i) % 50), blockIds: Array.from({ length: blocks }, (_, k) => s * 8 + k) };
}

function plan(rows: SeqInput[], options: Partial<PlanOptions> = {}, logitsMode: LogitsMode = 0): CudaStepPlan {
  const { views } = buildBatch(rows, BLOCK_SIZE, 0, logitsMode);
  return planCudaStep(views.buffer, { ...OPTIONS, ...options });
}

describe('the CUDA step plan (host side)', () => {
  it('a decode-only batch: every row takes the decode kernel and replays the smallest graph that holds it', () => {
    const p = plan([decodeRow(0, 40), decodeRow(1, 99), decodeRow(2, 7), decodeRow(3, 0), decodeRow(4, 15)]);
    expect(p).toMatchObject({ numDecodes: 5, maxDecodeLen: 100, maxPrefillQueryLen: 0, graphable: true, graphSize: 8 });
    expect(p.graphSizes).toEqual([1, 2, 4, 8, 16, 24, 32, 40]);
  });

  it('a mixed batch: only the leading one-token rows take the decode kernel, and no graph', () => {
    // A one-token prompt (row 2) counts as a decode row; the one-token row after the
    // 30-token prompt is outside the leading run, so the prefill kernel takes it.
    const p = plan([decodeRow(0, 40), decodeRow(1, 99), promptRow(2, 1), promptRow(3, 30), decodeRow(4, 5), promptRow(5, 12)]);
    expect(p).toMatchObject({ numDecodes: 3, maxDecodeLen: 100, maxPrefillQueryLen: 30, graphable: false, graphSize: 0 });
  });

  it('a batch that starts with a prompt chunk: no decode rows', () => {
    expect(plan([promptRow(0, 20), decodeRow(1, 3)])).toMatchObject({ numDecodes: 0, maxPrefillQueryLen: 20, graphable: false });
  });

  it('no decode kernel for the model (head_dim or GQA group): everything prefill, no graph', () => {
    const p = plan([decodeRow(0, 3), decodeRow(1, 4)], { decodeKernelSupported: false });
    expect(p).toMatchObject({ numDecodes: 0, maxPrefillQueryLen: 1, graphable: false });
  });

  it('no graph when logits are returned, or a block table is wider than the graph inputs', () => {
    expect(plan([decodeRow(0, 3)], {}, 1).graphable).toBe(false);
    expect(plan([decodeRow(0, 3)], {}, 2).graphable).toBe(false);
    // 65 blocks of 16 needed, the graph tables hold 64.
    const long: SeqInput = { newTokens: [1], numCachedTokens: 64 * 16, blockIds: Array.from({ length: 65 }, (_, k) => k) };
    expect(plan([long]).graphable).toBe(false);
    expect(plan([long], { graphTableWidth: 65 })).toMatchObject({ graphable: true, graphSize: 1 });
  });

  it('graph sizes: 1, 2, 4, then multiples of 8, up to maxNumSeqs itself', () => {
    const sizes = (maxNumSeqs: number): number[] => plan([decodeRow(0, 1)], { maxNumSeqs }).graphSizes;
    expect(sizes(1)).toEqual([1]);
    expect(sizes(3)).toEqual([1, 2, 3]);
    expect(sizes(8)).toEqual([1, 2, 4, 8]);
    expect(sizes(20)).toEqual([1, 2, 4, 8, 16, 20]);
    const big = sizes(256);
    expect(big.length).toBe(35);
    expect(big.at(-1)).toBe(256);
    const padded = (n: number): number => plan(Array.from({ length: n }, (_, s) => decodeRow(s, 2)), { maxNumSeqs: 256 }).graphSize;
    expect([1, 2, 3, 4, 5, 8, 9, 17, 255, 256].map(padded)).toEqual([1, 2, 4, 4, 8, 8, 16, 24, 256, 256]);
  });

  it('decode split: enough pieces to fill the SMs twice, none in a large batch, never under 256 tokens', () => {
    const split = (numSeqs: number, cached: number): number =>
      plan(Array.from({ length: numSeqs }, (_, s) => decodeRow(s, cached)), { maxNumSeqs: 256, graphTableWidth: 8192 }).decodeSplits;
    expect(split(256, 4095)).toBe(1); // 2048 blocks >= 8 x 132: longest first instead (the scheduler)
    expect(split(132, 4095)).toBe(1); // 1056 blocks: exactly two waves
    expect(split(40, 4095)).toBe(4); // 320 blocks: ceil(1056 / 320)
    expect(split(256, 200)).toBe(1); // a short context is not cut under 256 tokens
    expect(split(1, 4095)).toBe(16); // 8 blocks: 132 wanted, 4096 / 256 = 16 allowed
    expect(split(1, 99)).toBe(1);
    expect(split(2, 65535)).toBe(32); // 16 blocks: 66 wanted, at most 32 pieces
    expect(split(8, 65535)).toBe(17); // 64 blocks: ceil(1056 / 64)
  });

  it('the GPU graph test schedule (test/gpu/executor-cuda.test.ts): graphs on exactly its decode-only steps', () => {
    // The same schedule as that test: 38 prompts of 1 + (17 s mod 60) tokens, then the steps.
    const promptLen = (s: number): number => 1 + ((s * 17) % 60);
    const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);
    const schedule: number[][] = [range(37), range(37), [0], range(3), range(9), [...range(5), 37], range(17), range(33), [37, 1]];
    const lengths = new Array<number>(38).fill(0);
    const seen = schedule.map((seqs) => {
      const rows = seqs.map((s): SeqInput => {
        const fed = lengths[s] === 0 ? promptLen(s) : 1;
        const row = { newTokens: new Array<number>(fed).fill(3), numCachedTokens: lengths[s], blockIds: range(8, s * 8) };
        lengths[s] += fed;
        return row;
      });
      const p = plan(rows, { numKvHeads: 2, maxNumSeqs: 40, graphTableWidth: 64 });
      return [p.numDecodes, p.graphable ? p.graphSize : 0];
    });
    // Step 0: sequence 0's prompt is one token, so the decode kernel takes row 0; step 5: five
    // decodes, then sequence 37's prompt. The rest replay graphs of 40, 1, 4, 16, 24, 40, 2.
    expect(seen).toEqual([[1, 0], [37, 40], [1, 1], [3, 4], [9, 16], [5, 0], [17, 24], [33, 40], [2, 2]]);
  });
});
