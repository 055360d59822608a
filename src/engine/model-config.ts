/**
 * Reads a Hugging Face `config.json` into the NativeModelConfig the executor consumes.
 * Every error names the file and the offending field, so a user pointing Spindle at the
 * wrong directory learns what to fix without reading a stack trace.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { NativeModelConfig } from './native.ts';

/** The architectures Spindle runs, mapped to the native model family. */
const ARCHITECTURE_FAMILIES: Record<string, NativeModelConfig['family']> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

const positiveInt = z.number().int().positive();
const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);

const ropeScalingSchema = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: positiveInt.optional(),
    rope_theta: z.number().positive().optional(),
  })
  .loose();

/** The fields of config.json that matter here; unknown fields are allowed (HF adds many). */
const hfConfigSchema = z
  .object({
    architectures: z.array(z.string()).min(1),
    hidden_size: positiveInt,
    intermediate_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt.nullish(),
    head_dim: positiveInt.nullish(),
    vocab_size: positiveInt,
    max_position_embeddings: positiveInt,
    rms_norm_eps: z.number().positive().optional(),
    rope_theta: z.number().positive().optional(),
    rope_scaling: ropeScalingSchema.nullish(),
    // transformers 5 writes rope_theta and the scaling inside rope_parameters.
    rope_parameters: ropeScalingSchema.nullish(),
    tie_word_embeddings: z.boolean().optional(),
    attention_bias: z.boolean().optional(),
    mlp_bias: z.boolean().optional(),
    hidden_act: z.string().optional(),
    sliding_window: z.number().int().nullish(),
    use_sliding_window: z.boolean().optional(),
    bos_token_id: z.number().int().nonnegative().nullish(),
    eos_token_id: tokenIds.nullish(),
  })
  .loose();

export type HfModelConfig = z.infer<typeof hfConfigSchema>;

/** A validated config plus what the loader needs beside the native config. */
export interface ParsedModelConfig {
  config: NativeModelConfig;
  architecture: string;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /**
   * The longest context the model is run at: max_position_embeddings, or a sliding window
   * below it (attention over a window is not implemented, so only a context within the
   * window gives the reference model's output).
   */
  maxModelLen: number;
  /** Where maxModelLen comes from, for messages (e.g. "max_position_embeddings=32768"). */
  maxModelLenSource: string;
  /** What the loader should report (e.g. a context capped at a sliding window). */
  notes: string[];
}

/** Turns one zod issue into "field: problem". */
function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  return `field '${field}': ${issue.message}`;
}

function fail(file: string, message: string): never {
  throw new Error(`${file}: ${message}`);
}

export function toIdList(ids: number | number[] | null | undefined): number[] {
  if (ids === null || ids === undefined) return [];
  return Array.isArray(ids) ? ids : [ids];
}

function ropeScalingOf(raw: HfModelConfig, file: string): NativeModelConfig['ropeScaling'] {
  const scaling = raw.rope_scaling ?? raw.rope_parameters ?? null;
  if (scaling === null) return null;
  const field = raw.rope_scaling ? 'rope_scaling' : 'rope_parameters';
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  // 'default' is HF's name for plain RoPE (transformers 5 writes it in rope_parameters).
  if (type === 'default') return null;
  if (type !== 'llama3') {
    fail(file, `field '${field}.rope_type': RoPE scaling type '${type}' is not supported (only 'llama3' and plain RoPE)`);
  }
  const need = <K extends 'factor' | 'low_freq_factor' | 'high_freq_factor' | 'original_max_position_embeddings'>(key: K): number => {
    const value = scaling[key];
    if (value === undefined) fail(file, `field '${field}.${key}': required for llama3 RoPE scaling`);
    return value;
  };
  return {
    type: 'llama3',
    factor: need('factor'),
    lowFreqFactor: need('low_freq_factor'),
    highFreqFactor: need('high_freq_factor'),
    originalMaxPositionEmbeddings: need('original_max_position_embeddings'),
  };
}

/**
 * Validates the parsed JSON of `file` (a config.json). Throws an Error naming the file and
 * the field for anything missing, ill-typed or unsupported.
 */
export function parseModelConfig(json: unknown, file: string): ParsedModelConfig {
  const parsed = hfConfigSchema.safeParse(json);
  if (!parsed.success) fail(file, parsed.error.issues.map(describeIssue).join('; '));
  const raw = parsed.data;

  const architecture = raw.architectures[0];
  const family = ARCHITECTURE_FAMILIES[architecture];
  if (!family) {
    fail(file, `field 'architectures': architecture '${architecture}' is not supported (supported: ${Object.keys(ARCHITECTURE_FAMILIES).join(', ')})`);
  }
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'silu') {
    fail(file, `field 'hidden_act': '${raw.hidden_act}' is not supported (only 'silu')`);
  }
  if (raw.mlp_bias === true) fail(file, `field 'mlp_bias': MLP biases are not supported`);
  // Llama/Mistral/Qwen3 attention_bias also puts a bias on o_proj, which the executor has no
  // slot for; refuse it rather than silently drop a tensor. Qwen2 always has q/k/v bias only.
  if (family !== 'qwen2' && raw.attention_bias === true) {
    fail(file, `field 'attention_bias': true is not supported for ${architecture} (it adds an o_proj bias)`);
  }

  const numHeads = raw.num_attention_heads;
  const numKvHeads = raw.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) {
    fail(file, `field 'num_key_value_heads': ${numKvHeads} does not divide num_attention_heads ${numHeads}`);
  }
  const headDim = raw.head_dim ?? raw.hidden_size / numHeads;
  if (!Number.isInteger(headDim)) {
    fail(file, `field 'head_dim': absent, and hidden_size ${raw.hidden_size} is not a multiple of num_attention_heads ${numHeads}`);
  }
  if (headDim % 2 !== 0) fail(file, `field 'head_dim': ${headDim} must be even for RoPE`);

  const notes: string[] = [];
  let maxModelLen = raw.max_position_embeddings;
  let maxModelLenSource = `max_position_embeddings=${maxModelLen}`;
  const slidingWindowOn = family === 'llama' ? raw.sliding_window != null : raw.use_sliding_window === true;
  if (slidingWindowOn && raw.sliding_window != null && raw.sliding_window < raw.max_position_embeddings) {
    // As vLLM does where it runs without the window (--disable-sliding-window): within the
    // window, full attention is exactly the model's attention.
    maxModelLen = raw.sliding_window;
    maxModelLenSource = `sliding_window=${maxModelLen}: attention over a sliding window is not implemented, so the context is capped at the window`;
    notes.push(`${file}: the context is capped at sliding_window ${maxModelLen} (max_position_embeddings ${raw.max_position_embeddings}): attention over a sliding window is not implemented, and within the window full attention gives the model's output`);
  }

  const config: NativeModelConfig = {
    family,
    hiddenSize: raw.hidden_size,
    intermediateSize: raw.intermediate_size,
    numLayers: raw.num_hidden_layers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: raw.vocab_size,
    maxPositionEmbeddings: raw.max_position_embeddings,
    // HF defaults: Llama, Mistral and Qwen configs all default rms_norm_eps to 1e-6.
    rmsNormEps: raw.rms_norm_eps ?? 1e-6,
    ropeTheta: raw.rope_theta ?? raw.rope_parameters?.rope_theta ?? 10000,
    ropeScaling: ropeScalingOf(raw, file),
    // HF's Llama, Mistral, Qwen2 and Qwen3 configs all default to untied embeddings.
    tieWordEmbeddings: raw.tie_word_embeddings ?? false,
    attentionBias: family === 'qwen2',
    qkNorm: family === 'qwen3',
  };
  return {
    config,
    architecture,
    bosTokenId: raw.bos_token_id ?? null,
    eosTokenIds: toIdList(raw.eos_token_id),
    maxModelLen,
    maxModelLenSource,
    notes,
  };
}

/** Reads and validates `file` (a config.json). */
export async function readModelConfig(file: string): Promise<ParsedModelConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    fail(file, `cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(file, `invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseModelConfig(json, file);
}
