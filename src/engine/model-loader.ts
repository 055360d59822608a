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
import type { ModelSource } from './types.ts';
import { locateTensors } from './weights.ts';

const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);

const generationConfigSchema = z
  .object({
    bos_token_id: z.number().int().nonnegative().nullish(),
    eos_token_id: tokenIds.nullish(),
  })
  .loose();

type GenerationConfig = z.infer<typeof generationConfigSchema>;

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
  };
}
