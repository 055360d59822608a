/**
 * The selected requests as JSON, for bench/hf_baseline.py: the peer must run the very same
 * prompts (token ids) with the same output lengths and build a model of the same shape.
 * Python reads `model` with NativeModelConfig's field names and `requests[]`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { NativeModelConfig } from '../../src/engine/native.ts';
import type { BenchRequest } from './dataset.ts';

export interface RequestsFile {
  version: 1;
  /** 'sharegpt:<path>' or 'random'. */
  source: string;
  seed: number;
  /** The model's name (preset or directory) and its shape. */
  modelName: string;
  model: NativeModelConfig;
  dtype: 'float32' | 'bfloat16';
  requests: BenchRequest[];
}

export function writeRequestsFile(file: string, contents: RequestsFile): void {
  mkdirSync(path.dirname(file), { recursive: true });
  // one request per line keeps a 2 MB file readable in a diff or a pager
  const head = JSON.stringify({ ...contents, requests: [] }).replace(/"requests":\[\]\}$/, '"requests":[\n');
  const body = contents.requests.map((r) => JSON.stringify(r)).join(',\n');
  writeFileSync(file, `${head}${body}\n]}\n`);
}
