/**
 * The built-in demo model: a tiny Llama with random weights but the real Llama 3 tokenizer and
 * chat template, written once into a cache directory, so `npm start` serves on a fresh machine
 * with nothing downloaded. Its output is gibberish by design; the plumbing is all real.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomModel, type RandomModelOptions } from '../tools/write-random-model.ts';

export const DEMO_MODEL_NAME = 'spindle-demo';

/** Bump the version in the directory name when these change, so old caches are not reused. */
const DEMO_MODEL_OPTIONS: RandomModelOptions = {
  arch: 'llama',
  // The tiny preset's 128k positions would size a needlessly large CPU KV cache.
  maxPositionEmbeddings: 2048,
  tieWordEmbeddings: true,
  seed: 1234,
};
const DEMO_DIR_NAME = 'demo-llama-v1';
/** Written last: a directory without it is a half-written one (an interrupted first run). */
const COMPLETE_MARKER = '.complete';

function cacheRoots(): string[] {
  const roots: string[] = [];
  if (process.env.SPINDLE_CACHE_DIR) roots.push(process.env.SPINDLE_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME;
  roots.push(path.join(xdg && xdg.length > 0 ? xdg : path.join(os.homedir(), '.cache'), 'spindle'));
  roots.push(path.join(os.tmpdir(), 'spindle'));
  return roots;
}

/** The demo model's directory, written on first use; the first writable cache root wins. */
export function ensureDemoModel(log: (line: string) => void): string {
  const failures: string[] = [];
  for (const root of cacheRoots()) {
    const dir = path.join(root, DEMO_DIR_NAME);
    if (existsSync(path.join(dir, COMPLETE_MARKER))) return dir;
    // Written beside its final place and renamed: two first runs at once cannot see half a model.
    const partial = `${dir}.partial-${process.pid}`;
    try {
      mkdirSync(root, { recursive: true });
      log(`writing the demo model (random weights, Llama 3 tokenizer) to ${dir} (once)`);
      writeRandomModel(partial, DEMO_MODEL_OPTIONS);
      writeFileSync(path.join(partial, COMPLETE_MARKER), '');
      // A directory without the marker is a leftover of an interrupted run.
      if (existsSync(dir) && !existsSync(path.join(dir, COMPLETE_MARKER))) rmSync(dir, { recursive: true, force: true });
      try {
        renameSync(partial, dir);
      } catch (err) {
        // Another process won the race: its copy is as good as ours.
        if (!existsSync(path.join(dir, COMPLETE_MARKER))) throw err;
        rmSync(partial, { recursive: true, force: true });
      }
      return dir;
    } catch (err) {
      rmSync(partial, { recursive: true, force: true });
      failures.push(`${root}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`cannot write the demo model anywhere:\n  ${failures.join('\n  ')}`);
}
