/**
 * The CUDA executor end to end, beyond the HF parity test:
 *  - KV cache sized from gpuMemoryUtilization (numBlocks 0): a positive block count, and a
 *    sequence placed in the last block gives the same logits as in block 0 (float32:
 *    ‖a − b‖ / ‖b‖ ≤ 1e-6, the same arithmetic), so the whole sized cache is really there;
 *  - dummy weights (--load-format dummy) are the CPU backend's: CUDA float32 logits of a
 *    prefill + decode over 3 sequences against the CPU backend's, rel. L2 error ≤ 1e-4
 *    (float32 on both; summation order differs);
 *  - logitsMode 1 rows equal mode 2's last-token rows (≤ 1e-5: the LM-head GEMM may pick
 *    another algorithm for 3 rows than for 99), and the greedy token is their argmax;
 *  - every step makes exactly one device-to-host copy;
 *  - decode-only steps replay CUDA graphs (batch padded to 1, 2, 4, 8k) and give the eager
 *    launches' greedy tokens and logprobs (|Δ| ≤ 1e-4; the context split differs), also
 *    after mixed steps whose leading decodes take the decode kernel; the CPU backend agrees
 *    (tokens wherever its top-2 margin exceeds 1e-3; logprobs |Δ| ≤ 1e-3); padding rows
 *    write no KV (sequence 0 owns slot 0, and later steps still agree).
 * Skips with the reason without a CUDA device (or without ../shared for the first check).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createBatch, readResult, ResultTiming, type BatchShape, type LogitsMode } from '../../src/engine/batch-layout.ts';
import { readModelConfig } from '../../src/engine/model-config.ts';
import { loadNative, type NativeExecutor, type NativeExecutorOptions, type NativeModelConfig } from '../../src/engine/native.ts';
import { locateTensors } from '../../src/engine/weights.ts';
import { cudaSkipReason } from './cuda-device.ts';
import { relativeL2 } from './greedy-driver.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const storiesDir = path.join(path.resolve(repoRoot, '../shared'), 'models/stories260K-hf');

const reason = cudaSkipReason();
if (reason) console.warn(`test/gpu/executor-cuda.test.ts skipped: ${reason}`);

interface Feed {
  tokens: number[];
  start: number;
  /** Physical blocks of this sequence, in order. */
  blocks: number[];
}

/** A greedy batch over `feeds` (positions and slots from each feed's blocks); topN logprobs per row. */
function packFeeds(feeds: Feed[], blockSize: number, logitsMode: LogitsMode, topN: number): { batch: ArrayBuffer; shape: BatchShape } {
  const maxBlocks = Math.max(...feeds.map((f) => f.blocks.length));
  const shape: BatchShape = { numSeqs: feeds.length, numTokens: feeds.reduce((n, f) => n + f.tokens.length, 0), maxBlocksPerSeq: maxBlocks, maxTopLogprobs: topN, logitsMode, numPenaltyTokens: 0 };
  const b = createBatch(shape);
  let t = 0;
  feeds.forEach((f, s) => {
    b.queryStartLoc[s] = t;
    f.tokens.forEach((token, i) => {
      const pos = f.start + i;
      b.inputIds[t] = token;
      b.positions[t] = pos;
      b.slotMapping[t] = f.blocks[Math.floor(pos / blockSize)] * blockSize + (pos % blockSize);
      t++;
    });
    b.seqLens[s] = f.start + f.tokens.length;
    f.blocks.forEach((block, k) => (b.blockTables[s * maxBlocks + k] = block));
    b.isSampled[s] = 1;
    b.topP[s] = 1;
    b.repetitionPenalty[s] = 1;
    b.numLogprobs[s] = topN;
  });
  b.queryStartLoc[feeds.length] = t;
  return { batch: b.buffer, shape };
}

/** One step over `feeds` with logitsMode 2; returns every fed token's logits and the copy count. */
async function step(exec: NativeExecutor, feeds: Feed[], blockSize: number, vocab: number, logitsMode: 1 | 2 = 2): Promise<{ logits: Float32Array; sampled: Int32Array; copies: number }> {
  const { batch, shape } = packFeeds(feeds, blockSize, logitsMode, 0);
  const r = readResult(await exec.step(batch), shape, vocab);
  return { logits: r.logits.slice(), sampled: r.sampledTokenIds.slice(), copies: r.timings[ResultTiming.deviceToHostCopies] };
}

/** One greedy step (logitsMode 0) with the top-2 logprobs of each row. */
async function greedyStep(exec: NativeExecutor, feeds: Feed[], blockSize: number, vocab: number): Promise<{ ids: number[]; logprobs: number[]; margins: number[]; graph: number }> {
  const { batch, shape } = packFeeds(feeds, blockSize, 0, 2);
  const r = readResult(await exec.step(batch), shape, vocab);
  return {
    ids: [...r.sampledTokenIds],
    logprobs: [...r.sampledLogprobs],
    margins: feeds.map((_, s) => r.topLogprobs[2 * s] - r.topLogprobs[2 * s + 1]),
    graph: r.timings[ResultTiming.cudaGraphReplayed],
  };
}

function tokens(count: number, vocab: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) % vocab);
}

describe.skipIf(reason !== '')('CUDA executor', () => {
  it.skipIf(!existsSync(storiesDir))('sizes the KV cache from gpuMemoryUtilization and uses all of it', async () => {
    const { config } = await readModelConfig(path.join(storiesDir, 'config.json'));
    const tensors = await locateTensors(storiesDir, config);
    const exec = new (loadNative().Executor)({
      device: 'cuda', dtype: 'float32', model: config, weights: { kind: 'safetensors', tensors }, blockSize: 16, numBlocks: 0,
      gpuMemoryUtilization: 0.05, maxNumSeqs: 8, maxNumBatchedTokens: 512, numThreads: 0,
    });
    try {
      console.log(`stories260K float32, gpuMemoryUtilization 0.05: ${exec.numBlocks} KV blocks`);
      expect(exec.numBlocks).toBeGreaterThan(1000);
      const prompt = tokens(40, config.vocabSize, 7);
      const last = exec.numBlocks - 1;
      const low = await step(exec, [{ tokens: prompt, start: 0, blocks: [0, 1, 2] }], 16, config.vocabSize);
      const high = await step(exec, [{ tokens: prompt, start: 0, blocks: [last, last - 1, last - 2] }], 16, config.vocabSize);
      expect(relativeL2(high.logits, low.logits)).toBeLessThanOrEqual(1e-6);
      expect([low.copies, high.copies]).toEqual([1, 1]);
    } finally {
      exec.close();
    }
  }, 120_000);

  it('dummy weights: CUDA float32 logits match the CPU backend', async () => {
    const model: NativeModelConfig = {
      family: 'qwen2', hiddenSize: 256, intermediateSize: 512, numLayers: 2, numHeads: 8, numKvHeads: 2, headDim: 64,
      vocabSize: 1000, maxPositionEmbeddings: 1024, rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: null,
      tieWordEmbeddings: false, attentionBias: true, qkNorm: false,
    };
    const options = (device: 'cpu' | 'cuda'): NativeExecutorOptions => ({
      device, dtype: 'float32', model, weights: { kind: 'dummy', seed: 42 }, blockSize: 16, numBlocks: 64,
      gpuMemoryUtilization: 0.5, maxNumSeqs: 8, maxNumBatchedTokens: 512, numThreads: 0,
    });
    const prompts = [tokens(30, 1000, 1), tokens(5, 1000, 2), tokens(64, 1000, 3)];
    const blocksOf = (s: number): number[] => [s * 8, s * 8 + 1, s * 8 + 2, s * 8 + 3, s * 8 + 4];
    const run = async (device: 'cpu' | 'cuda'): Promise<{ prefill: Float32Array; decode: Float32Array; copies: number[] }> => {
      const exec = new (loadNative().Executor)(options(device));
      try {
        const feeds = prompts.map((p, s) => ({ tokens: p, start: 0, blocks: blocksOf(s) }));
        const prefill = await step(exec, feeds, 16, 1000);
        // logitsMode 1 (last token of each sequence, the sampler's rows) against mode 2's rows,
        // and the greedy token against their argmax. Same cache contents: the prefill rewrites them.
        const lastRows = await step(exec, feeds, 16, 1000, 1);
        let row = 0;
        prompts.forEach((p, s) => {
          row += p.length;
          const expected = prefill.logits.subarray((row - 1) * 1000, row * 1000);
          const actual = lastRows.logits.subarray(s * 1000, (s + 1) * 1000);
          expect(relativeL2(actual, expected)).toBeLessThanOrEqual(1e-5);
          expect(lastRows.sampled[s]).toBe(actual.indexOf(Math.max(...actual)));
        });
        const decode = await step(exec, prompts.map((p, s) => ({ tokens: [s + 10], start: p.length, blocks: blocksOf(s) })), 16, 1000);
        return { prefill: prefill.logits, decode: decode.logits, copies: [prefill.copies, lastRows.copies, decode.copies] };
      } finally {
        exec.close();
      }
    };
    const gpu = await run('cuda');
    const cpu = await run('cpu');
    const prefillErr = relativeL2(gpu.prefill, cpu.prefill);
    const decodeErr = relativeL2(gpu.decode, cpu.decode);
    console.log(`dummy weights, CUDA vs CPU float32: prefill rel ${prefillErr.toExponential(2)}, decode rel ${decodeErr.toExponential(2)}`);
    expect(prefillErr).toBeLessThanOrEqual(1e-4);
    expect(decodeErr).toBeLessThanOrEqual(1e-4);
    expect(gpu.copies).toEqual([1, 1, 1]);
  }, 120_000);

  it('decode steps replay CUDA graphs that equal eager launches and the CPU backend', async () => {
    const model: NativeModelConfig = {
      family: 'llama', hiddenSize: 256, intermediateSize: 512, numLayers: 2, numHeads: 8, numKvHeads: 2, headDim: 64,
      vocabSize: 1000, maxPositionEmbeddings: 1024, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null,
      tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
    };
    const maxNumSeqs = 40;
    const blocksPerSeq = 8;
    const blocksOf = (s: number): number[] => Array.from({ length: blocksPerSeq }, (_, k) => s * blocksPerSeq + k);
    const options = (device: 'cpu' | 'cuda', enforceEager: boolean): NativeExecutorOptions => ({
      device, dtype: 'float32', model, weights: { kind: 'dummy', seed: 7 }, blockSize: 16, numBlocks: maxNumSeqs * blocksPerSeq,
      gpuMemoryUtilization: 0.5, maxNumSeqs, maxNumBatchedTokens: 4096, numThreads: 0, enforceEager,
    });
    // The schedule, fixed up front (teacher forcing), so every executor sees the same inputs:
    // each entry lists sequences; a sequence's first appearance feeds its whole prompt.
    const prompts = Array.from({ length: 38 }, (_, s) => tokens(1 + ((s * 17) % 60), 1000, 100 + s));
    const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);
    const schedule: number[][] = [range(37), range(37), [0], range(3), range(9), [...range(5), 37], range(17), range(33), [37, 1]];
    const run = async (device: 'cpu' | 'cuda', enforceEager: boolean) => {
      const exec = new (loadNative().Executor)(options(device, enforceEager));
      const lengths = new Array<number>(prompts.length).fill(0);
      const steps: Awaited<ReturnType<typeof greedyStep>>[] = [];
      try {
        for (const [k, seqs] of schedule.entries()) {
          const rows = seqs.map((s) => {
            const fed = lengths[s] === 0 ? prompts[s] : [(s * 31 + k * 7) % 1000];
            const row = { tokens: fed, start: lengths[s], blocks: blocksOf(s) };
            lengths[s] += fed.length;
            return row;
          });
          steps.push(await greedyStep(exec, rows, 16, 1000));
        }
      } finally {
        exec.close();
      }
      return steps;
    };
    const graph = await run('cuda', false);
    const eager = await run('cuda', true);
    const cpu = await run('cpu', false);
    // Steps 0 (prompts; sequence 0's is one token, so the decode kernel takes row 0) and 5
    // (five decodes, then sequence 37's prompt) are mixed; every other step is decode-only.
    const isDecodeOnly = schedule.map((_, k) => k !== 0 && k !== 5);
    expect(graph.map((st) => st.graph)).toEqual(isDecodeOnly.map((d) => (d ? 1 : 0)));
    expect(eager.every((st) => st.graph === 0)).toBe(true);
    let maxGraphDelta = 0;
    let maxCpuDelta = 0;
    let numCompared = 0;
    schedule.forEach((_, k) => {
      expect(graph[k].ids, `step ${k}: graph vs eager tokens`).toEqual(eager[k].ids);
      graph[k].logprobs.forEach((lp, i) => (maxGraphDelta = Math.max(maxGraphDelta, Math.abs(lp - eager[k].logprobs[i]))));
      cpu[k].ids.forEach((id, i) => {
        if (cpu[k].margins[i] <= 1e-3) return;
        numCompared++;
        expect(graph[k].ids[i], `step ${k} row ${i}: graph vs CPU token`).toBe(id);
        maxCpuDelta = Math.max(maxCpuDelta, Math.abs(graph[k].logprobs[i] - cpu[k].logprobs[i]));
      });
    });
    console.log(`CUDA graphs vs eager: max |Δ logprob| ${maxGraphDelta.toExponential(2)}; vs CPU (${numCompared} rows): ${maxCpuDelta.toExponential(2)}`);
    expect(maxGraphDelta).toBeLessThanOrEqual(1e-4);
    expect(maxCpuDelta).toBeLessThanOrEqual(1e-3);
    expect(numCompared).toBeGreaterThan(100);
  }, 180_000);
});
