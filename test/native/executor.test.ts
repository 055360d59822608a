/**
 * The native Executor's contract with JavaScript: option errors that name the option, rejected
 * Promises (never crashes) for bad batches, recovery after a failed step, a JS thread left free
 * while a step runs, a second step handed over while one runs (async scheduling: it starts
 * after the first and gets its pending tokens), close(), and deterministic dummy weights.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchHeader, pendingTokenRef, readResult, ResultTiming } from '../../src/engine/batch-layout.ts';
import type { NativeExecutor, NativeExecutorOptions, NativeModelConfig, NativeTensorSource } from '../../src/engine/native.ts';
import { buildBatch, dummyOptions, native, tinyModel, type SeqInput } from './helpers.ts';

const BLOCK_SIZE = 16;
const MODEL = tinyModel();

/** A prefill of 20 tokens (two blocks) and a one-token sequence, all logits returned. */
const GOOD_SEQS: SeqInput[] = [
  { newTokens: Array.from({ length: 20 }, (_, i) => (i * 5 + 1) % MODEL.vocabSize), blockIds: [3, 7] },
  { newTokens: [9], blockIds: [1], sampling: { temperature: 0.8, rngKeyLo: 42 } },
];

async function logitsOf(executor: NativeExecutor, seqs: SeqInput[] = GOOD_SEQS): Promise<Float32Array> {
  const { views, shape } = buildBatch(seqs, BLOCK_SIZE, 0, 2);
  return readResult(await executor.step(views.buffer), shape, MODEL.vocabSize).logits.slice();
}

const tempDir = mkdtempSync(path.join(tmpdir(), 'spindle-executor-test-'));
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

describe('Executor options', () => {
  type Mutation = [string, (o: NativeExecutorOptions) => unknown, RegExp];
  const withModel = (o: NativeExecutorOptions, model: Partial<NativeModelConfig>) => ({ ...o, model: { ...o.model, ...model } });
  const cases: Mutation[] = [
    ['not an object', () => 42, /options must be an object/],
    ['unknown device', (o) => ({ ...o, device: 'tpu' }), /options\.device must be one of/],
    ['unknown dtype', (o) => ({ ...o, dtype: 'int8' }), /options\.dtype/],
    ['missing blockSize', (o) => ({ ...o, blockSize: undefined }), /options\.blockSize is required/],
    ['fractional numThreads', (o) => ({ ...o, numThreads: 1.5 }), /options\.numThreads must be an integer/],
    ['negative numBlocks', (o) => ({ ...o, numBlocks: -1 }), /options\.numBlocks must be in/],
    ['gpuMemoryUtilization > 1', (o) => ({ ...o, gpuMemoryUtilization: 2 }), /options\.gpuMemoryUtilization/],
    ['zero hiddenSize', (o) => withModel(o, { hiddenSize: 0 }), /options\.model\.hiddenSize must be in/],
    ['string vocabSize', (o) => withModel(o, { vocabSize: '64' as unknown as number }), /options\.model\.vocabSize must be a number/],
    ['heads not a multiple of kv heads', (o) => withModel(o, { numHeads: 6, numKvHeads: 4 }), /options\.model\.numKvHeads/],
    ['odd headDim', (o) => withModel(o, { headDim: 7 }), /options\.model\.headDim must be even/],
    ['unknown family', (o) => withModel(o, { family: 'gpt2' as 'llama' }), /options\.model\.family/],
    ['unknown rope scaling', (o) => withModel(o, { ropeScaling: { type: 'yarn' } as unknown as NativeModelConfig['ropeScaling'] }), /options\.model\.ropeScaling\.type/],
    ['missing qkNorm', (o) => withModel(o, { qkNorm: undefined }), /options\.model\.qkNorm is required/],
    ['unknown weights kind', (o) => ({ ...o, weights: { kind: 'gguf' } }), /options\.weights\.kind/],
    ['negative seed', (o) => ({ ...o, weights: { kind: 'dummy', seed: -1 } }), /options\.weights\.seed/],
    ['tensors not an array', (o) => ({ ...o, weights: { kind: 'safetensors', tensors: {} } }), /options\.weights\.tensors must be an array/],
  ];
  for (const [name, mutate, message] of cases) {
    it(`throws naming the option: ${name}`, () => {
      const options = mutate(dummyOptions()) as NativeExecutorOptions;
      expect(() => new native.Executor(options)).toThrow(message);
    });
  }

  it("refuses device 'cuda' when no CUDA device is usable", () => {
    if (native.cudaDeviceCount() > 0) {
      console.log('skipped: a CUDA device is present, so this machine cannot show the refusal');
      return;
    }
    expect(() => new native.Executor(dummyOptions({ device: 'cuda' }))).toThrow(/CUDA|cuda/);
  });

  it('sizes the CPU cache itself when numBlocks is 0, and reports the device', () => {
    const executor = new native.Executor(dummyOptions({ numBlocks: 0 }));
    expect(executor.numBlocks).toBeGreaterThan(0);
    expect(executor.device).toBe('cpu');
    expect(executor.deviceName).toMatch(/^cpu \(1 threads?\)$/);
    executor.close();
  });
});

/** Every tensor of `model` as F32 zeros-and-ones in one safetensors file. */
function writeSafetensors(file: string, model: NativeModelConfig): NativeTensorSource[] {
  const { hiddenSize: h, intermediateSize: m, vocabSize: v, headDim: d } = model;
  const specs: [string, number[]][] = [['model.embed_tokens.weight', [v, h]]];
  for (let l = 0; l < model.numLayers; l++) {
    const p = `model.layers.${l}.`;
    specs.push([`${p}input_layernorm.weight`, [h]], [`${p}self_attn.q_proj.weight`, [model.numHeads * d, h]]);
    specs.push([`${p}self_attn.k_proj.weight`, [model.numKvHeads * d, h]], [`${p}self_attn.v_proj.weight`, [model.numKvHeads * d, h]]);
    specs.push([`${p}self_attn.o_proj.weight`, [h, model.numHeads * d]], [`${p}post_attention_layernorm.weight`, [h]]);
    specs.push([`${p}mlp.gate_proj.weight`, [m, h]], [`${p}mlp.up_proj.weight`, [m, h]], [`${p}mlp.down_proj.weight`, [h, m]]);
  }
  specs.push(['model.norm.weight', [h]]);
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  let offset = 0;
  for (const [name, shape] of specs) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const data = new Float32Array(offset / 4).map((_, i) => ((i * 2654435761) % 1000) / 20000 - 0.025);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([prefix, Buffer.from(json), Buffer.from(data.buffer)]));
  return specs.map(([name, shape]) => ({
    name,
    file,
    dtype: 'F32' as const,
    shape,
    byteOffset: 8 + json.length + header[name].data_offsets[0],
    byteLength: header[name].data_offsets[1] - header[name].data_offsets[0],
  }));
}

describe('Executor safetensors weights', () => {
  const file = path.join(tempDir, 'model.safetensors');
  const tensors = writeSafetensors(file, MODEL);
  const withTensors = (list: NativeTensorSource[]) => dummyOptions({ weights: { kind: 'safetensors', tensors: list } });

  it('loads a mapped file and runs a step', async () => {
    const executor = new native.Executor(withTensors(tensors));
    const logits = await logitsOf(executor);
    expect(logits.every(Number.isFinite)).toBe(true);
    executor.close();
  });

  it('a truncated file throws naming the file and the tensor', () => {
    const truncated = path.join(tempDir, 'truncated.safetensors');
    const last = tensors[tensors.length - 1];
    writeFileSync(truncated, Buffer.alloc(last.byteOffset + last.byteLength - 4));
    const list = tensors.map((t) => ({ ...t, file: truncated }));
    expect(() => new native.Executor(withTensors(list))).toThrow(new RegExp(`${last.name}.*truncated\\.safetensors.*truncated file`));
  });

  it('a byte length that disagrees with shape x dtype throws', () => {
    const list = tensors.map((t, i) => (i === 2 ? { ...t, byteLength: t.byteLength - 4 } : t));
    expect(() => new native.Executor(withTensors(list))).toThrow(new RegExp(`${tensors[2].name}.*bytes`));
  });

  it('a missing tensor or a wrong shape throws naming it', () => {
    expect(() => new native.Executor(withTensors(tensors.slice(1)))).toThrow(/model\.embed_tokens\.weight is missing/);
    const reshaped = tensors.map((t, i) => (i === 0 ? { ...t, shape: [t.shape[1], t.shape[0]] } : t));
    expect(() => new native.Executor(withTensors(reshaped))).toThrow(/model\.embed_tokens\.weight has shape/);
    const absent = tensors.map((t) => ({ ...t, file: path.join(tempDir, 'absent.safetensors') }));
    expect(() => new native.Executor(withTensors(absent))).toThrow(/cannot open .*absent\.safetensors/);
  });
});

describe('Executor steps', () => {
  it('rejects malformed batches without crashing', async () => {
    const executor = new native.Executor(dummyOptions());
    const { views } = buildBatch(GOOD_SEQS, BLOCK_SIZE);
    const badMagic = views.buffer.slice(0);
    new Int32Array(badMagic)[0] = 123;
    await expect(executor.step(badMagic)).rejects.toThrow(/bad magic/);
    await expect(executor.step(views.buffer.slice(0, views.buffer.byteLength - 8))).rejects.toThrow(/shorter than its columns/);
    await expect(executor.step(new ArrayBuffer(8))).rejects.toThrow(/shorter than its header/);
    await expect(executor.step(new Float32Array(4) as unknown as ArrayBuffer)).rejects.toThrow(/must be an ArrayBuffer/);
    const badOffsets = buildBatch(GOOD_SEQS, BLOCK_SIZE).views;
    badOffsets.queryStartLoc[1] = 25;
    await expect(executor.step(badOffsets.buffer)).rejects.toThrow(/queryStartLoc/);
    executor.close();
  });

  it('rejects out-of-range ids, blocks and positions, and keeps working afterwards', async () => {
    const executor = new native.Executor(dummyOptions({ numBlocks: 16 }));
    const before = await logitsOf(executor);
    const bad: [string, (s: SeqInput[]) => SeqInput[], RegExp][] = [
      ['token id >= vocab', (s) => [{ ...s[0], newTokens: [...s[0].newTokens.slice(1), MODEL.vocabSize] }, s[1]], /token id 64 out of range/],
      ['block id >= numBlocks', (s) => [s[0], { ...s[1], blockIds: [16] }], /(slot|block id) .*out of range/],
      ['position >= maxPositionEmbeddings', (s) => [s[0], { ...s[1], numCachedTokens: 300, blockIds: Array.from({ length: 19 }, (_, i) => i % 16) }], /position 300 out of range/],
    ];
    for (const [name, corrupt, message] of bad) {
      const { views } = buildBatch(corrupt(GOOD_SEQS), BLOCK_SIZE, 0, 2);
      await expect(executor.step(views.buffer), name).rejects.toThrow(message);
    }
    const unknownBlock = buildBatch(GOOD_SEQS, BLOCK_SIZE, 0, 2).views;
    unknownBlock.blockTables[1] = -3; // the second block of seq 0, also named by its slots
    await expect(executor.step(unknownBlock.buffer)).rejects.toThrow(/out of range|disagrees/);
    const slotMismatch = buildBatch(GOOD_SEQS, BLOCK_SIZE, 0, 2).views;
    slotMismatch.slotMapping[0] += 1;
    await expect(executor.step(slotMismatch.buffer)).rejects.toThrow(/disagrees with its block table/);
    // Nothing was written by the failed steps: the same batch gives the same logits.
    expect(await logitsOf(executor)).toEqual(before);
    executor.close();
  });

  it('copies the batch before leaving the JS thread', async () => {
    const executor = new native.Executor(dummyOptions());
    const expected = await logitsOf(executor);
    const { views, shape } = buildBatch(GOOD_SEQS, BLOCK_SIZE, 0, 2);
    const pending = executor.step(views.buffer);
    new Int32Array(views.buffer).fill(-1); // the caller reuses its buffer at once
    expect(readResult(await pending, shape, MODEL.vocabSize).logits).toEqual(expected);
    executor.close();
  });

  it('leaves the JS thread free during a long step; takes a second step behind it, not a third', async () => {
    const model = tinyModel({ hiddenSize: 256, intermediateSize: 1024, numLayers: 3, numHeads: 8, numKvHeads: 4, headDim: 32, vocabSize: 4096, maxPositionEmbeddings: 1024 });
    const executor = new native.Executor(dummyOptions({ model, numBlocks: 64 }));
    const seqs: SeqInput[] = [{ newTokens: Array.from({ length: 768 }, (_, i) => (i * 31) % model.vocabSize), blockIds: Array.from({ length: 48 }, (_, i) => i) }];
    const { views, shape } = buildBatch(seqs, BLOCK_SIZE);
    const order: string[] = [];
    const timer = setTimeout(() => order.push('timer'), 1);
    const step = executor.step(views.buffer).then((result) => {
      order.push('step');
      return result;
    });
    const second = executor.step(views.buffer);
    await expect(executor.step(views.buffer)).rejects.toThrow(/two steps are already in flight/);
    const result = readResult(await step, shape, model.vocabSize);
    // The same batch again (same slots, same tokens): the same result.
    expect(readResult(await second, shape, model.vocabSize).sampledTokenIds).toEqual(result.sampledTokenIds);
    clearTimeout(timer);
    // The timer was due 1 ms in; it fires first only if the JS thread was free during the step.
    expect(order).toEqual(['timer', 'step']);
    console.log(`768-token prefill, 3 layers, hidden 256, 1 thread: forward ${result.timings[ResultTiming.forwardMs].toFixed(1)} ms`);
    expect(result.sampledTokenIds[0]).toBeGreaterThanOrEqual(0);
    expect(result.timings[ResultTiming.copyMs]).toBe(0);
    expect(result.timings[ResultTiming.totalMs]).toBeGreaterThanOrEqual(result.timings[ResultTiming.forwardMs]);
    // A step after the refused one runs normally.
    await expect(executor.step(views.buffer)).resolves.toBeInstanceOf(ArrayBuffer);
    executor.close();
  });

  it('a step handed over while one runs starts after it, with the tokens it sampled filled in', async () => {
    // Step A: a 6-token prompt (greedy) samples t. Step B, handed over before A ends, decodes
    // t (a pending-token reference to A's row 0) in the same sequence and in a penalty row.
    const prompt = [11, 22, 33, 44, 55, 6];
    const stepA = buildBatch([{ newTokens: prompt, blockIds: [2], sampling: { temperature: 0 } }], BLOCK_SIZE);
    const stepB = (t: number) => {
      const penalized = { temperature: 0, repetitionPenalty: 1.5, promptTokens: prompt, outputTokens: [t] };
      const b = buildBatch([{ newTokens: [t], numCachedTokens: 6, blockIds: [2], sampling: penalized }], BLOCK_SIZE, 0, 1);
      return b;
    };
    const sequential = new native.Executor(dummyOptions());
    const t = readResult(await sequential.step(stepA.views.buffer), stepA.shape, MODEL.vocabSize).sampledTokenIds[0];
    const explicit = stepB(t);
    const want = readResult(await sequential.step(explicit.views.buffer), explicit.shape, MODEL.vocabSize);
    sequential.close();

    const ahead = new native.Executor(dummyOptions());
    const pending = stepB(0);
    pending.views.inputIds[0] = pendingTokenRef(0);
    pending.views.penaltyTokens[prompt.length] = pendingTokenRef(0);
    pending.views.header[BatchHeader.hasPendingTokens] = 1;
    const a = ahead.step(stepA.views.buffer);
    const b = ahead.step(pending.views.buffer);
    expect(readResult(await a, stepA.shape, MODEL.vocabSize).sampledTokenIds[0]).toBe(t);
    const got = readResult(await b, pending.shape, MODEL.vocabSize);
    expect(got.logits).toEqual(want.logits);
    expect(got.sampledTokenIds).toEqual(want.sampledTokenIds);
    expect(got.timings[ResultTiming.executorIdleMs]).toBeGreaterThanOrEqual(0);

    // A reference to a row that sampled nothing, or behind a failed step, rejects; the
    // executor goes on.
    const unsampled = buildBatch([{ newTokens: [1, 2], blockIds: [4], isSampled: false }], BLOCK_SIZE);
    const behindUnsampled = stepB(0);
    behindUnsampled.views.inputIds[0] = pendingTokenRef(0);
    behindUnsampled.views.header[BatchHeader.hasPendingTokens] = 1;
    const u = ahead.step(unsampled.views.buffer);
    await expect(ahead.step(behindUnsampled.views.buffer)).rejects.toThrow(/refers to row 0 of the previous step, which sampled no token/);
    await u;
    const broken = buildBatch([{ newTokens: [1], blockIds: [9999] }], BLOCK_SIZE);
    const failing = expect(ahead.step(broken.views.buffer)).rejects.toThrow(/slot .* out of range/);
    await expect(ahead.step(pending.views.buffer)).rejects.toThrow(/previous step failed/);
    await failing;
    await expect(ahead.step(explicit.views.buffer)).resolves.toBeInstanceOf(ArrayBuffer);
    ahead.close();
  });

  it('close() during a step lets that step finish', async () => {
    const executor = new native.Executor(dummyOptions());
    const expected = await logitsOf(executor);
    const { views, shape } = buildBatch(GOOD_SEQS, BLOCK_SIZE, 0, 2);
    const pending = executor.step(views.buffer);
    executor.close();
    expect(readResult(await pending, shape, MODEL.vocabSize).logits).toEqual(expected);
    expect(() => executor.step(views.buffer)).toThrow(/closed/);
  });

  it('close() frees the executor; later calls throw', async () => {
    const executor = new native.Executor(dummyOptions());
    executor.close();
    const { views } = buildBatch(GOOD_SEQS, BLOCK_SIZE);
    expect(() => executor.step(views.buffer)).toThrow(/closed/);
    expect(() => executor.close()).toThrow(/closed/);
  });
});

describe('dummy weights', () => {
  it('are deterministic for a seed, whatever the thread count, and differ across seeds', async () => {
    const make = (seed: number, numThreads: number) => new native.Executor(dummyOptions({ weights: { kind: 'dummy', seed }, numThreads }));
    const executors = [make(5, 1), make(5, 2), make(6, 1)];
    const [a, b, c] = await Promise.all(executors.map((e) => logitsOf(e)));
    for (const e of executors) e.close();
    expect(a.length).toBe(21 * MODEL.vocabSize);
    expect(b).toEqual(a);
    const maxDiff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i])), 0);
    expect(maxDiff).toBeGreaterThan(1e-3);
  });
});
