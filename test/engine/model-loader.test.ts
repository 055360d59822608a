/**
 * Loading HF model directories: good models in every supported layout, and every bad-file
 * case must fail with an Error whose message names the file and the tensor or field.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveEngineConfig } from '../../src/engine/config.ts';
import { dummyModelSource, loadModelSource, samplingDefaultsOf } from '../../src/engine/model-loader.ts';
import { MODEL_PRESETS } from '../../src/engine/presets.ts';
import { f32ToBf16Bits, f32ToF16Bits } from '../../src/tools/safetensors-writer.ts';
import { writeRandomModel, type RandomModelOptions } from '../../src/tools/write-random-model.ts';
import type { NativeTensorSource } from '../../src/engine/native.ts';
import { readReferenceTensors } from '../reference/llama-f64.ts';

const root = mkdtempSync(path.join(tmpdir(), 'spindle-loader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A small random model (vocab 256: fast to write) in a fresh directory. */
function makeModel(options: RandomModelOptions = {}): string {
  const dir = path.join(root, `m${counter++}`);
  writeRandomModel(dir, { vocabSize: 256, hiddenSize: 32, intermediateSize: 48, numHeads: 4, numKvHeads: 2, seed: counter, ...options });
  return dir;
}

const silent = { onNote: () => {} };
const load = (dir: string) => loadModelSource(dir, silent);

function editJson(file: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

interface RawTensor { name: string; dtype: string; shape: number[]; bytes: Buffer }

/** Reads a safetensors file as raw entries, lets `edit` change them, writes it back. */
function rewriteSafetensors(file: string, edit: (tensors: RawTensor[]) => RawTensor[]): void {
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors: RawTensor[] = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape, bytes: bytes.subarray(8 + headerLength + e.data_offsets[0], 8 + headerLength + e.data_offsets[1]) }));
  const edited = edit(tensors);
  const newHeader: Record<string, unknown> = {};
  let offset = 0;
  for (const t of edited) {
    newHeader[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(newHeader));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([length, json, ...edited.map((t) => t.bytes)]));
}

function byName(tensors: NativeTensorSource[], name: string): NativeTensorSource {
  const t = tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no ${name}`);
  return t;
}

async function expectLoadError(dir: string, ...fragments: string[]): Promise<void> {
  const error = await load(dir).then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(Error);
  for (const fragment of fragments) expect((error as Error).message).toContain(fragment);
}

describe('loadModelSource: good models', () => {
  it('loads a single-file F32 Llama-3 model whose tensors point at the right bytes', async () => {
    const dir = makeModel();
    const source = await load(dir);
    expect(source.config).toMatchObject({ family: 'llama', hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 256, tieWordEmbeddings: false, attentionBias: false, qkNorm: false });
    expect(source.config.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(source.tokenizerDir).toBe(dir);
    expect(source.maxModelLen).toBe(131072);
    if (source.weights.kind !== 'safetensors') throw new Error('expected safetensors');
    const tensors = source.weights.tensors;
    // embed, 2 layers x (2 norms + q/k/v/o + gate/up/down), final norm, lm_head
    expect(tensors).toHaveLength(1 + 2 * 9 + 2);
    const reference = readReferenceTensors(dir);
    const file = readFileSync(path.join(dir, 'model.safetensors'));
    for (const t of tensors) {
      expect(t.file).toBe(path.join(dir, 'model.safetensors'));
      const values = new Float32Array(file.buffer.slice(file.byteOffset + t.byteOffset, file.byteOffset + t.byteOffset + t.byteLength));
      expect(Array.from(values)).toEqual(Array.from(reference.get(t.name) ?? []));
    }
  });

  it('loads a sharded model through model.safetensors.index.json', async () => {
    const dir = makeModel({ numShards: 3 });
    const source = await load(dir);
    if (source.weights.kind !== 'safetensors') throw new Error('expected safetensors');
    const files = new Set(source.weights.tensors.map((t) => path.basename(t.file)));
    expect([...files].sort()).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    const index = JSON.parse(readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    for (const t of source.weights.tensors) expect(path.basename(t.file)).toBe(index.weight_map[t.name]);
  });

  it.each(['F32', 'BF16', 'F16'] as const)('reports %s tensors with their byte lengths', async (dtype) => {
    const source = await load(makeModel({ dtype }));
    if (source.weights.kind !== 'safetensors') throw new Error('expected safetensors');
    const q = byName(source.weights.tensors, 'model.layers.1.self_attn.k_proj.weight');
    expect(q.dtype).toBe(dtype);
    expect(q.shape).toEqual([16, 32]);
    expect(q.byteLength).toBe(16 * 32 * (dtype === 'F32' ? 4 : 2));
  });

  it('omits lm_head when embeddings are tied, requires it otherwise', async () => {
    const tied = await load(makeModel({ tieWordEmbeddings: true }));
    const untied = await load(makeModel({ tieWordEmbeddings: false }));
    if (tied.weights.kind !== 'safetensors' || untied.weights.kind !== 'safetensors') throw new Error('expected safetensors');
    expect(tied.config.tieWordEmbeddings).toBe(true);
    expect(tied.weights.tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(byName(untied.weights.tensors, 'lm_head.weight').shape).toEqual([256, 32]);
  });

  it('maps Qwen2 (q/k/v bias), Qwen3 (q/k norm) and Mistral (llama family)', async () => {
    const qwen2 = await load(makeModel({ arch: 'qwen2' }));
    const qwen3 = await load(makeModel({ arch: 'qwen3', headDim: 16 }));
    const mistral = await load(makeModel({ arch: 'mistral' }));
    expect(qwen2.config).toMatchObject({ family: 'qwen2', attentionBias: true, qkNorm: false, ropeScaling: null });
    expect(qwen3.config).toMatchObject({ family: 'qwen3', attentionBias: false, qkNorm: true, headDim: 16 });
    expect(mistral.config.family).toBe('llama');
    if (qwen2.weights.kind !== 'safetensors' || qwen3.weights.kind !== 'safetensors') throw new Error('expected safetensors');
    expect(byName(qwen2.weights.tensors, 'model.layers.0.self_attn.k_proj.bias').shape).toEqual([16]);
    expect(byName(qwen3.weights.tensors, 'model.layers.0.self_attn.q_norm.weight').shape).toEqual([16]);
    expect(byName(qwen3.weights.tensors, 'model.layers.0.self_attn.q_proj.weight').shape).toEqual([64, 32]);
  });

  it('takes eos ids from generation_config.json (list), else from config.json; defaults kv heads and head_dim', async () => {
    const dir = makeModel({ numKvHeads: 4 });
    editJson(path.join(dir, 'config.json'), (c) => { c.eos_token_id = 3; delete c.num_key_value_heads; delete c.head_dim; });
    editJson(path.join(dir, 'generation_config.json'), (g) => { g.eos_token_id = [7, 9]; g.bos_token_id = 5; });
    const withGeneration = await load(dir);
    expect(withGeneration.eosTokenIds).toEqual([7, 9]);
    expect(withGeneration.bosTokenId).toBe(5);
    expect(withGeneration.config).toMatchObject({ numKvHeads: 4, headDim: 8 });
    unlinkSync(path.join(dir, 'generation_config.json'));
    expect((await load(dir)).eosTokenIds).toEqual([3]);
  });

  it('loads the real stories260K model when present', async (ctx) => {
    const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    const dir = path.join(repoRoot, '../shared/models/stories260K-hf');
    try {
      readFileSync(path.join(dir, 'config.json'));
    } catch {
      ctx.skip(`${dir} is absent`);
    }
    const source = await load(dir);
    expect(source.config).toMatchObject({ hiddenSize: 64, numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512, tieWordEmbeddings: true });
    expect(source.eosTokenIds).toEqual([2]);
    expect(source.bosTokenId).toBe(1);
  });
});

describe('loadModelSource: bad files name the file and the field or tensor', () => {
  it('unsupported architecture', async () => {
    const dir = makeModel();
    editJson(path.join(dir, 'config.json'), (c) => { c.architectures = ['GPT2LMHeadModel']; });
    await expectLoadError(dir, path.join(dir, 'config.json'), 'GPT2LMHeadModel');
  });

  it('missing and ill-typed config fields', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'config.json');
    editJson(file, (c) => { delete c.hidden_size; });
    await expectLoadError(dir, file, 'hidden_size');
    editJson(file, (c) => { c.hidden_size = 32; c.num_attention_heads = '4'; });
    await expectLoadError(dir, file, 'num_attention_heads');
  });

  it('unsupported RoPE scaling type', async () => {
    const dir = makeModel();
    editJson(path.join(dir, 'config.json'), (c) => { c.rope_scaling = { rope_type: 'yarn', factor: 4 }; });
    await expectLoadError(dir, path.join(dir, 'config.json'), 'rope_scaling', 'yarn');
  });

  it('missing tensor', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'model.safetensors');
    rewriteSafetensors(file, (ts) => ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight'));
    await expectLoadError(dir, file, 'model.layers.1.mlp.up_proj.weight', 'missing');
  });

  it('mis-shaped tensor (expected vs actual)', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'model.safetensors');
    rewriteSafetensors(file, (ts) => ts.map((t) => (t.name === 'model.layers.0.self_attn.k_proj.weight' ? { ...t, shape: [32, 16] } : t)));
    await expectLoadError(dir, file, 'model.layers.0.self_attn.k_proj.weight', '[32,16]', 'expected [16,32]');
  });

  it('data length that does not match the shape', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'model.safetensors');
    rewriteSafetensors(file, (ts) => ts.map((t) => (t.name === 'model.norm.weight' ? { ...t, bytes: t.bytes.subarray(4) } : t)));
    await expectLoadError(dir, file, 'model.norm.weight', 'bytes');
  });

  it('unsupported dtype', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'model.safetensors');
    rewriteSafetensors(file, (ts) => ts.map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'F64', bytes: Buffer.alloc(32 * 8) } : t)));
    await expectLoadError(dir, file, 'model.norm.weight', 'F64');
  });

  it('corrupt header: invalid JSON', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'model.safetensors');
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from('{"model.embed'), 0, 13, 8 + 20); // splices a fragment into the JSON
    closeSync(fd);
    await expectLoadError(dir, file, 'invalid JSON');
  });

  it('corrupt header: absurd header length', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'model.safetensors');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(1n << 40n);
    const fd = openSync(file, 'r+');
    writeSync(fd, length, 0, 8, 0);
    closeSync(fd);
    await expectLoadError(dir, file, 'header length');
  });

  it('truncated file', async () => {
    const dir = makeModel();
    const file = path.join(dir, 'model.safetensors');
    const sizeBytes = readFileSync(file).length;
    truncateSync(file, sizeBytes - 100);
    // lm_head.weight is written last, so it is the tensor cut short.
    await expectLoadError(dir, file, 'lm_head.weight', 'truncated');
  });

  it('missing shard named in the index', async () => {
    const dir = makeModel({ numShards: 2 });
    const shard = path.join(dir, 'model-00002-of-00002.safetensors');
    unlinkSync(shard);
    await expectLoadError(dir, shard, 'model.layers.0');
  });

  it('no weights, no config, no tokenizer', async () => {
    const noWeights = makeModel();
    unlinkSync(path.join(noWeights, 'model.safetensors'));
    await expectLoadError(noWeights, noWeights, 'model.safetensors');
    const noConfig = makeModel();
    unlinkSync(path.join(noConfig, 'config.json'));
    await expectLoadError(noConfig, path.join(noConfig, 'config.json'));
    const noTokenizer = makeModel();
    unlinkSync(path.join(noTokenizer, 'tokenizer.json'));
    await expectLoadError(noTokenizer, path.join(noTokenizer, 'tokenizer.json'));
  });
});

describe('config.json variants', () => {
  it('reads transformers 5 rope_parameters, and rope type "default" as plain RoPE', async () => {
    const dir = makeModel();
    editJson(path.join(dir, 'config.json'), (c) => {
      delete c.rope_theta;
      c.rope_scaling = null;
      c.rope_parameters = { rope_theta: 250000, rope_type: 'llama3', factor: 16, low_freq_factor: 2, high_freq_factor: 8, original_max_position_embeddings: 4096 };
    });
    expect((await load(dir)).config).toMatchObject({
      ropeTheta: 250000,
      ropeScaling: { type: 'llama3', factor: 16, lowFreqFactor: 2, highFreqFactor: 8, originalMaxPositionEmbeddings: 4096 },
    });
    editJson(path.join(dir, 'config.json'), (c) => { c.rope_parameters = { rope_theta: 5000, rope_type: 'default' }; });
    expect((await load(dir)).config).toMatchObject({ ropeTheta: 5000, ropeScaling: null });
  });

  it('refuses what the executor cannot run, naming the field', async () => {
    const dir = makeModel({ arch: 'qwen3' });
    const file = path.join(dir, 'config.json');
    editJson(file, (c) => { c.attention_bias = true; });
    await expectLoadError(dir, file, 'attention_bias');
    editJson(file, (c) => { c.attention_bias = false; c.hidden_act = 'gelu'; });
    await expectLoadError(dir, file, 'hidden_act', 'gelu');
    editJson(file, (c) => { c.hidden_act = 'silu'; c.rope_scaling = { rope_type: 'llama3', factor: 8 }; });
    await expectLoadError(dir, file, 'rope_scaling.low_freq_factor');
  });

  it('takes sampling defaults from generation_config.json as vLLM does (only values that differ from transformers\' defaults)', async () => {
    expect(samplingDefaultsOf(null)).toEqual({});
    // Llama-3.1-Instruct's: temperature 0.6, top_p 0.9; top_k 50 is transformers' own default, so vLLM leaves top_k off.
    expect(samplingDefaultsOf({ temperature: 0.6, top_p: 0.9, top_k: 50, do_sample: true })).toEqual({ temperature: 0.6, topP: 0.9 });
    expect(samplingDefaultsOf({ temperature: 1, top_p: 1, repetition_penalty: 1.05, top_k: 20, min_p: 0, max_new_tokens: 2048 })).toEqual({
      repetitionPenalty: 1.05, topK: 20, minP: 0, maxTokens: 2048,
    });
    const dir = makeModel({ arch: 'qwen3' });
    editJson(path.join(dir, 'generation_config.json'), (c) => { c.temperature = 0.6; c.top_k = 20; c.top_p = 0.95; });
    expect((await loadModelSource(dir)).samplingDefaults).toEqual({ temperature: 0.6, topK: 20, topP: 0.95 });
    editJson(path.join(dir, 'generation_config.json'), (c) => { c.top_p = 2; });
    await expectLoadError(dir, path.join(dir, 'generation_config.json'), 'top_p');
  });

  it('caps the context at a sliding window (Mistral v0.1 style) and says so; not when Qwen has it off', async () => {
    const mistral = makeModel({ arch: 'mistral' });
    editJson(path.join(mistral, 'config.json'), (c) => { c.sliding_window = 64; c.max_position_embeddings = 1024; });
    const notes: string[] = [];
    const capped = await loadModelSource(mistral, { onNote: (n) => notes.push(n) });
    expect(capped.maxModelLen).toBe(64);
    expect(capped.config.maxPositionEmbeddings).toBe(1024);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('capped at sliding_window 64');
    // A longer --max-model-len is refused, naming the window.
    expect(() => resolveEngineConfig({ model: capped, maxModelLen: 65, device: 'cpu' }, { numCudaDevices: 0, cudaUnavailableReason: 'none' })).toThrow(
      /--max-model-len: 65 is greater than the derived max_model_len \(sliding_window=64: attention over a sliding window is not implemented/,
    );
    const qwen = makeModel({ arch: 'qwen2' });
    editJson(path.join(qwen, 'config.json'), (c) => { c.sliding_window = 64; c.use_sliding_window = false; });
    notes.length = 0;
    const full = await loadModelSource(qwen, { onNote: (n) => notes.push(n) });
    expect(notes).toEqual([]);
    expect(full.maxModelLen).toBe(full.config.maxPositionEmbeddings);
  });

  it('refuses a shard index that points outside the model directory', async () => {
    const dir = makeModel({ numShards: 2 });
    const index = path.join(dir, 'model.safetensors.index.json');
    editJson(index, (j) => { (j.weight_map as Record<string, string>)['model.norm.weight'] = '../elsewhere.safetensors'; });
    await expectLoadError(dir, index, 'model.norm.weight', '../elsewhere.safetensors');
  });
});

describe('write-random-model CLI', () => {
  it('writes a loadable model with the flags given', async () => {
    const dir = path.join(root, 'cli');
    const script = fileURLToPath(new URL('../../src/tools/write-random-model.ts', import.meta.url));
    execFileSync(process.execPath, ['--import', 'tsx', script, dir, '--arch', 'qwen2', '--vocab-size', '300', '--hidden-size', '32', '--num-heads', '2', '--num-kv-heads', '1', '--dtype', 'BF16', '--shards', '2'], { stdio: 'pipe' });
    const source = await load(dir);
    expect(source.config).toMatchObject({ family: 'qwen2', vocabSize: 300, hiddenSize: 32, numHeads: 2, numKvHeads: 1, headDim: 16 });
    if (source.weights.kind !== 'safetensors') throw new Error('expected safetensors');
    expect(new Set(source.weights.tensors.map((t) => t.dtype))).toEqual(new Set(['BF16']));
    expect(new Set(source.weights.tensors.map((t) => t.file)).size).toBe(2);
    expect(() => execFileSync(process.execPath, ['--import', 'tsx', script, dir, '--arch', 'gpt2'], { stdio: 'pipe' })).toThrow(/--arch: expected one of/);
  });
});

describe('dummy presets', () => {
  it('give the real models\' shapes and an existing tokenizer directory', () => {
    const llama = dummyModelSource('llama-3.1-8b', 7);
    expect(llama.weights).toEqual({ kind: 'dummy', seed: 7 });
    expect(llama.config).toMatchObject({ hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8, vocabSize: 128256, ropeTheta: 500000 });
    expect(llama.maxModelLen).toBe(131072);
    for (const name of Object.keys(MODEL_PRESETS)) {
      const source = dummyModelSource(name, 0);
      const tokenizer = JSON.parse(readFileSync(path.join(source.tokenizerDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
      // The model's vocabulary must hold every id the tokenizer can produce.
      expect(Object.keys(tokenizer.model.vocab).length).toBeLessThanOrEqual(source.config.vocabSize);
      expect(source.config.numHeads % source.config.numKvHeads).toBe(0);
    }
    expect(() => dummyModelSource('gpt-5', 0)).toThrow(/gpt-5/);
  });
});

describe('safetensors writer rounding', () => {
  it('rounds float32 to the nearest BF16 and F16 value', () => {
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const bf16 = (bits: number): number => { u32[0] = bits << 16; return f32[0]; };
    const f16 = (bits: number): number => {
      const e = (bits >> 10) & 0x1f;
      const m = bits & 0x3ff;
      return (bits & 0x8000 ? -1 : 1) * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
    };
    let state = 12345;
    for (let i = 0; i < 2000; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      f32[0] = (state / 2 ** 32 - 0.5) * 2 ** ((i % 40) - 26); // spans F16 subnormals to large values
      const x = f32[0];
      for (const [encode, decode] of [[f32ToBf16Bits, bf16], [f32ToF16Bits, f16]] as const) {
        const bits = encode(x);
        const err = Math.abs(decode(bits) - x);
        // No neighbouring representable value is closer.
        expect(err).toBeLessThanOrEqual(Math.abs(decode((bits + 1) & 0xffff) - x));
        if ((bits & 0x7fff) !== 0) expect(err).toBeLessThanOrEqual(Math.abs(decode(bits - 1) - x));
      }
    }
  });
});
