/**
 * Turns a Hugging Face model directory (or a dummy preset) into a ModelSource: validated
 * config, located tensors, tokenizer directory and the special token ids generation needs.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readModelConfig, toIdList } from './model-config.ts';
import { readJsonFile } from './json-file.ts';
import { getPreset, tokenizerPackageDir } from './presets.ts';
import type { ModelSamplingDefaults, ModelSource } from './types.ts';
import { locateTensors } from './weights.ts';

const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);

const generationConfigSchema = z
  .object({
    bos_token_id: z.number().int().nonnegative().nullish(),
    eos_token_id: tokenIds.nullish(),
    temperature: z.number().min(0).nullish(),
    top_p: z.number().gt(0).max(1).nullish(),
    top_k: z.number().int().nullish(),
    min_p: z.number().min(0).max(1).nullish(),
    repetition_penalty: z.number().gt(0).nullish(),
    max_new_tokens: z.number().int().positive().nullish(),
  })
  .loose();

type GenerationConfig = z.infer<typeof generationConfigSchema>;

/**
 * The sampling defaults of a generation config, as vLLM takes them: transformers'
 * to_diff_dict() keeps only values that differ from GenerationConfig's own defaults
 * (temperature 1, top_p 1, top_k 50, repetition_penalty 1), so a config that spells out
 * top_k 50 leaves vLLM's top_k off.
 */
export function samplingDefaultsOf(generation: GenerationConfig | null): ModelSamplingDefaults {
  const defaults: ModelSamplingDefaults = {};
  if (!generation) return defaults;
  const differs = (value: number | null | undefined, hfDefault: number | null): value is number => value !== undefined && value !== null && value !== hfDefault;
  if (differs(generation.temperature, 1)) defaults.temperature = generation.temperature;
  if (differs(generation.top_p, 1)) defaults.topP = generation.top_p;
  if (differs(generation.top_k, 50)) defaults.topK = generation.top_k;
  if (differs(generation.min_p, null)) defaults.minP = generation.min_p;
  if (differs(generation.repetition_penalty, 1)) defaults.repetitionPenalty = generation.repetition_penalty;
  if (differs(generation.max_new_tokens, null)) defaults.maxTokens = generation.max_new_tokens;
  return defaults;
}

/** generation_config.json is optional; when present it must be valid. */
async function readGenerationConfig(file: string): Promise<GenerationConfig | null> {
  if (!existsSync(file)) return null;
  return readJsonFile(file, generationConfigSchema);
}

export interface LoadModelOptions {
  /** Where notes about accepted-but-ignored settings go (default: process.emitWarning). */
  onNote?: (note: string) => void;
}

/**
 * Loads the model in `dir`: config.json, the safetensors headers, generation_config.json
 * (optional) and tokenizer.json (required). Throws an Error naming the file and the field
 * or tensor at fault.
 */
export async function loadModelSource(dir: string, options: LoadModelOptions = {}): Promise<ModelSource> {
  const absDir = path.resolve(dir);
  const configFile = path.join(absDir, 'config.json');
  if (!existsSync(configFile)) throw new Error(`${configFile}: not found (is ${absDir} a Hugging Face model directory?)`);
  const parsed = await readModelConfig(configFile);
  const onNote = options.onNote ?? ((note: string) => process.emitWarning(note));
  for (const note of parsed.notes) onNote(note);

  const tokenizerFile = path.join(absDir, 'tokenizer.json');
  if (!existsSync(tokenizerFile)) throw new Error(`${tokenizerFile}: not found (Spindle needs the fast tokenizer's tokenizer.json)`);

  const tensors = await locateTensors(absDir, parsed.config);
  const generation = await readGenerationConfig(path.join(absDir, 'generation_config.json'));

  // vLLM's rule: generation_config.json's eos ids (often a list: end of text, end of turn)
  // win over config.json's single id.
  const generationEos = toIdList(generation?.eos_token_id);
  const eosTokenIds = generationEos.length > 0 ? generationEos : parsed.eosTokenIds;
  const bosTokenId = generation?.bos_token_id ?? parsed.bosTokenId;

  for (const id of [...eosTokenIds, ...(bosTokenId === null ? [] : [bosTokenId])]) {
    if (id >= parsed.config.vocabSize) {
      throw new Error(`${configFile}: special token id ${id} is outside the vocabulary (vocab_size ${parsed.config.vocabSize})`);
    }
  }

  return {
    dir: absDir,
    name: path.basename(absDir),
    config: parsed.config,
    weights: { kind: 'safetensors', tensors },
    tokenizerDir: absDir,
    eosTokenIds,
    bosTokenId,
    maxModelLen: parsed.maxModelLen,
    maxModelLenSource: parsed.maxModelLenSource,
    samplingDefaults: samplingDefaultsOf(generation),
  };
}

/** vLLM's `--load-format dummy`: a preset's shapes, seeded random weights made natively. */
export function dummyModelSource(presetName: string, seed: number): ModelSource {
  const preset = getPreset(presetName);
  const ropeScaling = preset.config.ropeScaling ? { ...preset.config.ropeScaling } : null;
  return {
    dir: null,
    name: preset.name,
    config: { ...preset.config, ropeScaling },
    weights: { kind: 'dummy', seed },
    tokenizerDir: tokenizerPackageDir(preset.tokenizer),
    eosTokenIds: [...preset.eosTokenIds],
    bosTokenId: preset.bosTokenId,
    maxModelLen: preset.config.maxPositionEmbeddings,
    maxModelLenSource: `max_position_embeddings=${preset.config.maxPositionEmbeddings}`,
    samplingDefaults: {},
  };
}
