/**
 * The native executor's forward pass against the float64 reference (test/reference/
 * llama-f64.ts), on tiny random models written with src/tools/write-random-model.ts.
 * Bound: ‖native − reference‖ / ‖reference‖ ≤ 1e-5 over all logits rows of a sequence on the
 * CPU (float32 compute against float64; typical values are ~3e-7). On CUDA (float32, run only
 * where a device exists) the bound is 1e-4: the GPU sums in other orders and with fused
 * multiply-adds and fast exp, which moves logits by a few float32 ulps per layer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelSource } from '../../src/engine/model-loader.ts';
import { loadNative, type NativeBinding, type NativeExecutor } from '../../src/engine/native.ts';
import { writeRandomModel, type RandomModelOptions } from '../../src/tools/write-random-model.ts';
import { ReferenceModel } from '../reference/llama-f64.ts';
import { relativeError, seededPermutation, StepDriver, type FeedEntry } from './step-driver.ts';

interface DeviceCase {
  device: 'cpu' | 'cuda';
  /** Against the float64 reference. */
  tolerance: number;
  /** Between two native runs of the same sequence (paged vs contiguous, mixed vs alone). */
  sameTolerance: number;
}
const DEVICES: DeviceCase[] = [
  { device: 'cpu', tolerance: 1e-5, sameTolerance: 1e-6 },
  { device: 'cuda', tolerance: 1e-4, sameTolerance: 1e-5 },
];
const BLOCK_SIZE = 4;
const NUM_BLOCKS = 96;

function nativeBinding(): { binding: NativeBinding | null; skipReason: string } {
  try {
    const binding = loadNative();
    if (typeof binding.Executor !== 'function') return { binding: null, skipReason: 'the native addon exports no Executor yet' };
    return { binding, skipReason: '' };
  } catch (err) {
    return { binding: null, skipReason: err instanceof Error ? err.message : String(err) };
  }
}
const { binding, skipReason } = nativeBinding();
function deviceSkipReason(device: DeviceCase['device']): string {
  if (binding === null) return skipReason;
  if (device === 'cuda' && binding.cudaDeviceCount() === 0) return `no CUDA device (${binding.cudaUnavailableReason()})`;
  return '';
}
for (const { device } of DEVICES) {
  const reason = deviceSkipReason(device);
  if (reason) console.warn(`test/native/forward.test.ts on ${device} skipped: ${reason}`);
}

const root = mkdtempSync(path.join(tmpdir(), 'spindle-forward-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Seeded token ids in [0, vocab). */
function randomTokens(count: number, vocab: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % vocab;
  });
}

// numThreads 2 on one model: the threaded split of rows/heads must not change results.
const MODELS: { label: string; options: RandomModelOptions; numThreads?: number }[] = [
  {
    label: 'Llama-3 (llama3 RoPE scaling, GQA 2:1, full vocabulary)',
    // original_max_position_embeddings 64 puts the head's frequencies in all three llama3
    // bands (kept, smoothed, divided by factor) at the positions used here.
    options: { arch: 'llama', seed: 11, ropeTheta: 10000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } },
  },
  { label: 'Qwen2 (q/k/v bias, 2 threads)', options: { arch: 'qwen2', seed: 12, vocabSize: 4096 }, numThreads: 2 },
  { label: 'Qwen3 (q/k norm, head_dim 32 != hidden/heads, tied)', options: { arch: 'qwen3', seed: 13, vocabSize: 4096, headDim: 32, tieWordEmbeddings: true } },
  { label: 'Llama BF16 weights (GQA 4:1)', options: { arch: 'llama', seed: 14, vocabSize: 4096, numKvHeads: 1, dtype: 'BF16' } },
  { label: 'Llama F16 weights', options: { arch: 'llama', seed: 15, vocabSize: 4096, dtype: 'F16' } },
];

describe.each(DEVICES)('native forward on $device', ({ device, tolerance, sameTolerance }) => {
  describe.skipIf(deviceSkipReason(device) !== '').each(MODELS)('$label', ({ label, options, numThreads }) => {
    let executor: NativeExecutor;
    let reference: ReferenceModel;
    let vocab: number;
    let dir: string;

    beforeAll(async () => {
      dir = path.join(root, `${device}-${label.replace(/[^A-Za-z0-9]+/g, '-')}`);
      writeRandomModel(dir, options);
      const source = await loadModelSource(dir, { onNote: () => {} });
      vocab = source.config.vocabSize;
      reference = new ReferenceModel(dir);
      executor = new (binding as NativeBinding).Executor({
        device,
        dtype: 'float32',
        model: source.config,
        weights: source.weights,
        blockSize: BLOCK_SIZE,
        numBlocks: NUM_BLOCKS,
        gpuMemoryUtilization: 0.9,
        maxNumSeqs: 8,
        maxNumBatchedTokens: 256,
        numThreads: numThreads ?? 1,
      });
    });
    afterAll(() => executor?.close());

    /** Prefill `prompt` in one step, then feed `decodes` one per step; all logits rows in order. */
    async function runAlone(driver: StepDriver, seqId: number, prompt: number[], decodes: number[]): Promise<Float32Array[]> {
      const rows = [...((await driver.step([{ seqId, tokens: prompt }])).logits.get(seqId) ?? [])];
      for (const token of decodes) rows.push(...((await driver.step([{ seqId, tokens: [token] }])).logits.get(seqId) ?? []));
      return rows;
    }

    it('prefill and decode logits match the float64 reference', async () => {
      const prompt = randomTokens(11, vocab, 1);
      const decodes = randomTokens(4, vocab, 2);
      const native = await runAlone(new StepDriver(executor, BLOCK_SIZE, vocab), 0, prompt, decodes);
      const expected = reference.logits([...prompt, ...decodes]);
      const error = relativeError(native, expected);
      console.log(`${device} ${label}: rel. error ${error.toExponential(2)} over ${native.length} rows (bound ${tolerance})`);
      expect(error).toBeLessThanOrEqual(tolerance);
      if (options.ropeScaling) {
        // The comparison sees the scaling: a reference without it is far off.
        const unscaled = new ReferenceModel(dir, { llama3: null }).logits([...prompt, ...decodes]);
        expect(relativeError(native, unscaled)).toBeGreaterThan(100 * tolerance);
      }
    });

    it('a paged cache with shuffled block tables gives the logits of a contiguous one', async () => {
      const prompt = randomTokens(9, vocab, 3);
      const decodes = randomTokens(3, vocab, 4);
      const contiguous = await runAlone(new StepDriver(executor, BLOCK_SIZE, vocab), 0, prompt, decodes);
      const order = seededPermutation(NUM_BLOCKS, 99);
      expect(order.slice(0, 4)).not.toEqual([0, 1, 2, 3]);
      const shuffled = await runAlone(new StepDriver(executor, BLOCK_SIZE, vocab, order), 0, prompt, decodes);
      expect(relativeError(shuffled, contiguous)).toBeLessThanOrEqual(sameTolerance);
    });

    it('a mixed batch of chunked prefills and decodes gives each sequence its own logits', async () => {
      const prompts = new Map([
        [0, randomTokens(13, vocab, 5)], // chunked 5 + 5 + 3
        [1, randomTokens(4, vocab, 6)],
        [2, randomTokens(7, vocab, 7)], // joins at step 2
        [3, randomTokens(2, vocab, 8)],
      ]);
      const decodes = new Map([...prompts.keys()].map((id) => [id, randomTokens(4, vocab, 20 + id)]));
      const p = (id: number) => prompts.get(id) ?? [];
      const d = (id: number, i: number) => [(decodes.get(id) ?? [])[i]];
      const schedule: FeedEntry[][] = [
        [{ seqId: 0, tokens: p(0).slice(0, 5), isSampled: false }, { seqId: 1, tokens: p(1) }, { seqId: 3, tokens: p(3) }],
        [{ seqId: 1, tokens: d(1, 0) }, { seqId: 0, tokens: p(0).slice(5, 10), isSampled: false }, { seqId: 2, tokens: p(2) }, { seqId: 3, tokens: d(3, 0) }],
        [{ seqId: 3, tokens: d(3, 1) }, { seqId: 2, tokens: d(2, 0) }, { seqId: 0, tokens: p(0).slice(10) }, { seqId: 1, tokens: d(1, 1) }],
        [{ seqId: 0, tokens: d(0, 0) }, { seqId: 1, tokens: d(1, 2) }, { seqId: 2, tokens: d(2, 1) }],
      ];
      const mixed = new Map<number, Float32Array[]>();
      const fed = new Map<number, number[]>();
      const driver = new StepDriver(executor, BLOCK_SIZE, vocab, seededPermutation(NUM_BLOCKS, 7));
      for (const entries of schedule) {
        const out = await driver.step(entries);
        for (const e of entries) {
          mixed.set(e.seqId, [...(mixed.get(e.seqId) ?? []), ...(out.logits.get(e.seqId) ?? [])]);
          fed.set(e.seqId, [...(fed.get(e.seqId) ?? []), ...e.tokens]);
        }
      }
      for (const [seqId, rows] of mixed) {
        const tokens = fed.get(seqId) ?? [];
        const prompt = p(seqId);
        const alone = await runAlone(new StepDriver(executor, BLOCK_SIZE, vocab), 100 + seqId, prompt, tokens.slice(prompt.length));
        expect(rows).toHaveLength(tokens.length);
        expect(relativeError(rows, alone), `seq ${seqId} mixed vs alone`).toBeLessThanOrEqual(sameTolerance);
        expect(relativeError(rows, reference.logits(tokens)), `seq ${seqId} mixed vs reference`).toBeLessThanOrEqual(tolerance);
      }
    });
  });
});
