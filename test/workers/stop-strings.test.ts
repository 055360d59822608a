/**
 * Stop strings through the pure detokenizer: matched across token boundaries, output cut exactly
 * before (or after) the stop, the completing token reported, min_tokens respected, held text flushed.
 */
import { describe, expect, it } from 'vitest';

import type { DetokParams } from '../../src/workers/protocol.ts';
import { findStop, holdbackCut, holdbackLength } from '../../src/workers/stop-strings.ts';
import { loadTokenizer } from '../../src/workers/tokenizer-loader.ts';
import type { LoadedTokenizer } from '../../src/workers/tokenizer-loader.ts';
import { PLAIN_PARAMS, makeRng, randInt, randomText, streamTokens, tokenizerDir } from './helpers.ts';

function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i += 1;
    } else if (code >= 0xdc00 && code <= 0xdfff) return true;
  }
  return false;
}

/** decodedLengths[k] = length of the complete text of tokens[0..k) (a trailing split character excluded). */
function decodedLengths(tokenizer: LoadedTokenizer, tokens: number[]): number[] {
  const lengths = [0];
  for (let k = 1; k <= tokens.length; k++) lengths.push(tokenizer.decodeRange(tokens, 0, k, PLAIN_PARAMS).replace(/\uFFFD+$/, '').length);
  return lengths;
}

/** The token whose text contains character `charIndex`. */
function tokenOfChar(lengths: number[], charIndex: number): number {
  let k = 0;
  while (lengths[k + 1] <= charIndex) k += 1;
  return k;
}

describe('findStop / holdback', () => {
  it('finds only stops that end in the new text, earliest first', () => {
    expect(findStop('abcSTOPdef', 0, ['STOP'])).toEqual({ stopIndex: 0, position: 3 });
    expect(findStop('abcSTOPdef', 8, ['STOP'])).toBeNull();
    expect(findStop('abcSTOPdef', 6, ['STOP'])).toEqual({ stopIndex: 0, position: 3 });
    expect(findStop('xxBByyAA', 0, ['AA', 'BB'])).toEqual({ stopIndex: 1, position: 2 });
    expect(findStop('abc', 0, ['', 'zz'])).toBeNull();
  });

  it('holds back longest stop − 1 characters, never half a surrogate pair', () => {
    expect(holdbackLength(['ab', 'abcde'])).toBe(4);
    expect(holdbackCut('hello', 2)).toBe(3);
    const text = 'ab🦜';
    expect(holdbackCut(text, 1)).toBe(2);
    expect(holdbackCut(text, 9)).toBe(0);
  });
});

describe('stop strings in streams', () => {
  for (const name of ['llama3', 'llama2'] as const) {
    it(`${name}: random stops split across 2–4 tokens`, () => {
      const tokenizer = loadTokenizer(tokenizerDir(name));
      const rng = makeRng(name === 'llama3' ? 11 : 12);
      let numCases = 0;
      for (let attempt = 0; attempt < 3000 && numCases < 300; attempt++) {
        const tokens = tokenizer.encode(randomText(rng, randInt(rng, 8, 20)), false);
        const fullText = tokenizer.decodeRange(tokens, 0, tokens.length, PLAIN_PARAMS);
        const lengths = decodedLengths(tokenizer, tokens);
        const start = randInt(rng, 0, fullText.length - 2);
        const stop = fullText.slice(start, start + randInt(rng, 2, 12));
        if (stop.length < 2 || hasLoneSurrogate(stop) || stop.trim().length === 0) continue;
        const at = fullText.indexOf(stop);
        const numSpanned = tokenOfChar(lengths, at + stop.length - 1) - tokenOfChar(lengths, at) + 1;
        if (numSpanned < 2 || numSpanned > 4) continue;
        numCases += 1;
        const stopTokenIndex = tokenOfChar(lengths, at + stop.length - 1);
        const include = rng() < 0.5;
        const expected = fullText.slice(0, at + (include ? stop.length : 0));
        const params: DetokParams = { ...PLAIN_PARAMS, stop: ['never-in-text', stop], includeStopStrInOutput: include };
        const seen: string[] = [];
        const run = streamTokens(tokenizer, [], tokens, params, {
          tokensPerStep: () => randInt(rng, 1, 4),
          onStep: (emitted) => seen.push(emitted),
        });
        const label = JSON.stringify({ fullText, stop, include });
        expect(run.chunks.join(''), label).toBe(expected);
        expect(run.stop, label).toEqual({ stopString: stop, tokenIndex: stopTokenIndex });
        for (const emitted of seen) expect(expected.startsWith(emitted), label).toBe(true);
        for (const chunk of run.chunks) expect(hasLoneSurrogate(chunk), label).toBe(false);
      }
      expect(numCases).toBe(300);
    });
  }

  it('of several stops found in one step, the earliest in the text wins', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama3'));
    const tokens = tokenizer.encode('one xabcdy two', false);
    const run = streamTokens(tokenizer, [], tokens, { ...PLAIN_PARAMS, stop: ['abcd', 'xab'] });
    expect(run.chunks.join('')).toBe('one ');
    expect(run.stop?.stopString).toBe('xab');
  });

  it('min_tokens: a stop completed before firstStopTokenIndex does not fire', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama3'));
    const text = 'alpha END beta END gamma';
    const tokens = tokenizer.encode(text, false);
    const params = { ...PLAIN_PARAMS, stop: ['END'] };
    const first = streamTokens(tokenizer, [], tokens, params);
    expect(first.chunks.join('')).toBe('alpha ');
    const firstStopToken = first.stop?.tokenIndex ?? -1;
    expect(firstStopToken).toBeGreaterThan(0);
    const later = streamTokens(tokenizer, [], tokens, params, { firstStopTokenIndex: firstStopToken + 1 });
    expect(later.chunks.join('')).toBe('alpha END beta ');
    expect(later.stop?.tokenIndex).toBeGreaterThan(firstStopToken);
    const never = streamTokens(tokenizer, [], tokens, params, { firstStopTokenIndex: tokens.length });
    expect(never.chunks.join('')).toBe(text);
    expect(never.stop).toBeNull();
  });

  it('holds text that may start a stop, and flushes it when the sequence finishes otherwise', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama3'));
    const text = 'The STAR is near the ST';
    const tokens = tokenizer.encode(text, false);
    const seen: string[] = [];
    const run = streamTokens(tokenizer, [], tokens, { ...PLAIN_PARAMS, stop: ['STOP'] }, { onStep: (emitted) => seen.push(emitted) });
    expect(run.stop).toBeNull();
    // Before the final step the last 3 characters ("STOP".length − 1) were still held back.
    expect(seen[seen.length - 2].length).toBeLessThanOrEqual(text.length - 3);
    expect(run.chunks.join('')).toBe(text);
  });

  it('a prompt does not trigger stops; a stop at the first output token does', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama3'));
    const prompt = tokenizer.encode('say STOP', false);
    const output = tokenizer.encode(' STOP now', false);
    const run = streamTokens(tokenizer, prompt, output, { ...PLAIN_PARAMS, stop: ['STOP'] }, { firstStopTokenIndex: prompt.length });
    expect(run.chunks.join('')).toBe(' ');
    expect(run.stop?.tokenIndex).toBe(prompt.length);
  });
});
