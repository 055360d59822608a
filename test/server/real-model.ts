/**
 * A tiny real model for live server tests: random Mistral-shaped weights (Llama 2 tokenizer,
 * 32k vocabulary) written into a temporary directory, with a small chat template added to its
 * tokenizer_config.json (the Llama 2 tokenizer package ships none).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../../src/engine/engine.ts';
import { loadNative } from '../../src/engine/native.ts';
import { writeRandomModel } from '../../src/tools/write-random-model.ts';

const CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]{% else %}{{ m.content }}{{ eos_token }}{% endif %}{% endfor %}";

/** Why the real engine cannot run here ('' when it can). */
export function realEngineSkipReason(): string {
  try {
    const native = loadNative();
    return typeof native.Executor === 'function' ? '' : 'the native addon exports no Executor';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export interface RealModel {
  dir: string;
  remove(): void;
}

export function writeTinyChatModel(maxPositionEmbeddings = 1024): RealModel {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spindle-server-test-'));
  writeRandomModel(dir, { arch: 'mistral', vocabSize: 32000, maxPositionEmbeddings, tieWordEmbeddings: true, seed: 7 });
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(configFile, JSON.stringify({ ...config, chat_template: CHAT_TEMPLATE }, null, 2));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The real engine on the CPU, with a cache small enough to fill but big enough for 100 streams. */
export function createCpuEngine(dir: string, numBlocks: number): Promise<Engine> {
  return Engine.create({ model: dir, device: 'cpu', numBlocks, blockSize: 16, detokenizerWorkers: 1, numThreads: 1 });
}
