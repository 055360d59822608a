/**
 * The incremental detokenizer against the full decode, on more than 10,000 token streams
 * (random ids, tokenized CJK/emoji text, ShareGPT completions) for Llama-3 (byte-level BPE) and
 * Llama-2 (SentencePiece with byte fallback), run in-process through the pure functions.
 */
import { describe, expect, it } from 'vitest';

import type { DetokParams } from '../../src/workers/protocol.ts';
import { loadTokenizer } from '../../src/workers/tokenizer-loader.ts';
import type { LoadedTokenizer } from '../../src/workers/tokenizer-loader.ts';
import { PLAIN_PARAMS, loadShareGptCompletions, makeRng, randInt, randomText, streamTokens, tokenizerDir } from './helpers.ts';

const REPLACEMENT_CHAR = '\uFFFD';
const NUM_RANDOM_ID_STREAMS = 2600;
const NUM_TEXT_STREAMS = 2000;
const NUM_SHAREGPT_STREAMS = 600;

interface StreamCase {
  prompt: number[];
  output: number[];
  params: DetokParams;
}

interface Tally {
  numStreams: number;
  numSkipped: number;
  failures: string[];
}

/** Runs one stream and records whatever breaks: prefix at every step, equality at the end, U+FFFD. */
function checkStream(tokenizer: LoadedTokenizer, streamCase: StreamCase, rng: () => number, tally: Tally): void {
  const { prompt, output, params } = streamCase;
  const promptText = tokenizer.decodeRange(prompt, 0, prompt.length, params);
  const all = [...prompt, ...output];
  const fullText = tokenizer.decodeRange(all, 0, all.length, params);
  // The reference is the full decode minus the prompt's; it exists only when the prompt's decode
  // is a complete prefix of it (a prompt cut inside a character has no such reference).
  if (!fullText.startsWith(promptText) || promptText.endsWith(REPLACEMENT_CHAR)) {
    tally.numSkipped += 1;
    return;
  }
  tally.numStreams += 1;
  const expected = fullText.slice(promptText.length);
  const expectsReplacement = expected.includes(REPLACEMENT_CHAR);
  let isBroken = false;
  const run = streamTokens(tokenizer, prompt, output, params, {
    tokensPerStep: () => (rng() < 0.8 ? 1 : randInt(rng, 2, 5)),
    onStep: (emitted) => {
      if (isBroken) return;
      if (!expected.startsWith(emitted) || (!expectsReplacement && emitted.includes(REPLACEMENT_CHAR))) {
        isBroken = true;
        tally.failures.push(`step: ${JSON.stringify(emitted)} vs ${JSON.stringify(expected)} ids ${JSON.stringify(streamCase)}`);
      }
    },
  });
  const emitted = run.chunks.join('');
  if (!isBroken && emitted !== expected) {
    tally.failures.push(`end: ${JSON.stringify(emitted)} vs ${JSON.stringify(expected)} ids ${JSON.stringify(streamCase)}`);
  }
}

function randomParams(rng: () => number): DetokParams {
  const roll = rng();
  if (roll < 0.7) return PLAIN_PARAMS;
  return { ...PLAIN_PARAMS, skipSpecialTokens: roll < 0.8, spacesBetweenSpecialTokens: rng() < 0.5 };
}

/** Ids that split characters into bytes: from tokenizing CJK/emoji-heavy text. */
function byteHeavyIds(tokenizer: LoadedTokenizer, rng: () => number): number[] {
  const ids = new Set<number>();
  for (let i = 0; i < 200; i++) for (const id of tokenizer.encode(randomText(rng, 6), false)) ids.add(id);
  return [...ids];
}

function runAll(name: 'llama3' | 'llama2', seed: number): Tally {
  const tokenizer = loadTokenizer(tokenizerDir(name));
  const rng = makeRng(seed);
  const tally: Tally = { numStreams: 0, numSkipped: 0, failures: [] };
  const pieceIds = byteHeavyIds(tokenizer, rng);
  const specialIds = [...tokenizer.specialIds];

  for (let s = 0; s < NUM_RANDOM_ID_STREAMS; s++) {
    const output: number[] = [];
    const length = randInt(rng, 1, 40);
    for (let i = 0; i < length; i++) {
      const roll = rng();
      if (roll < 0.45) output.push(randInt(rng, 0, tokenizer.vocabSize));
      else if (roll < 0.97) output.push(pieceIds[randInt(rng, 0, pieceIds.length)]);
      else output.push(specialIds[randInt(rng, 0, specialIds.length)]);
    }
    checkStream(tokenizer, { prompt: [], output, params: randomParams(rng) }, rng, tally);
  }

  // Without ../shared (no ShareGPT), more synthetic text streams keep the total at 5,200.
  const completions = loadShareGptCompletions(NUM_SHAREGPT_STREAMS);
  const numTextStreams = NUM_TEXT_STREAMS + (completions ? 0 : NUM_SHAREGPT_STREAMS);
  for (let s = 0; s < numTextStreams; s++) {
    const prompt = tokenizer.encode(randomText(rng, randInt(rng, 0, 6)), rng() < 0.5);
    const output = tokenizer.encode(randomText(rng, randInt(rng, 1, 25)), false);
    checkStream(tokenizer, { prompt, output, params: randomParams(rng) }, rng, tally);
  }

  for (const completion of completions ?? []) {
    const prompt = tokenizer.encode(randomText(rng, randInt(rng, 1, 4)), true);
    const start = randInt(rng, 0, Math.max(1, completion.length - 400));
    const output = tokenizer.encode(completion.slice(start, start + 400), false);
    checkStream(tokenizer, { prompt, output, params: PLAIN_PARAMS }, rng, tally);
  }
  return tally;
}

describe('incremental detokenization equals the full decode', () => {
  for (const [name, seed] of [['llama3', 1234], ['llama2', 5678]] as const) {
    it(`${name}: random ids, CJK/emoji text and ShareGPT streams`, () => {
      const tally = runAll(name, seed);
      console.log(`${name}: ${tally.numStreams} streams checked, ${tally.numSkipped} without a reference`);
      expect(tally.failures.slice(0, 3)).toEqual([]);
      expect(tally.numStreams).toBeGreaterThanOrEqual(5000);
      expect(tally.numSkipped).toBeLessThan(tally.numStreams * 0.02);
    });
  }

  it('llama2: the first output token keeps its leading space thanks to the prompt prefix', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama2'));
    const prompt = tokenizer.encode('Once upon a time', true);
    const both = tokenizer.encode('Once upon a time there', true);
    expect(both.slice(0, prompt.length)).toEqual(prompt);
    const output = both.slice(prompt.length);
    // Alone, SentencePiece drops the space at the start of a decode; after the prompt it must stay.
    expect(tokenizer.decodeRange(output, 0, output.length, PLAIN_PARAMS)).toBe('there');
    const run = streamTokens(tokenizer, prompt, output, PLAIN_PARAMS);
    expect(run.chunks.join('')).toBe(' there');
  });

  it('holds a character split across byte tokens until it is complete', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama2'));
    const output = tokenizer.encode('a🦜', false);
    const emojiByteTokens = output.filter((id) => /^<0x[0-9A-F]{2}>$/.test(tokenizer.tokenOfId[id] ?? ''));
    expect(emojiByteTokens.length).toBe(4);
    const run = streamTokens(tokenizer, [], output, PLAIN_PARAMS);
    expect(run.chunks.slice(-4)).toEqual(['', '', '', '🦜']);
  });

  it('emits a trailing incomplete character at finish, as the full decode has it', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama2'));
    const output = tokenizer.encode('ok🦜', false).slice(0, -1);
    const fullText = tokenizer.decodeRange(output, 0, output.length, PLAIN_PARAMS);
    expect(fullText.endsWith(REPLACEMENT_CHAR)).toBe(true);
    const run = streamTokens(tokenizer, [], output, PLAIN_PARAMS);
    expect(run.chunks.join('')).toBe(fullText);
  });

  it('skip_special_tokens and spaces_between_special_tokens follow vLLM', () => {
    const tokenizer = loadTokenizer(tokenizerDir('llama3'));
    const eot = tokenizer.tokenizer.token_to_id('<|eot_id|>');
    expect(eot).toBeDefined();
    const hello = tokenizer.encode('Hi there', false);
    const ids = [...hello, eot as number, ...hello];
    const decode = (params: Partial<DetokParams>) => streamTokens(tokenizer, [], ids, { ...PLAIN_PARAMS, ...params }).chunks.join('');
    expect(decode({ skipSpecialTokens: true })).toBe('Hi thereHi there');
    expect(decode({ skipSpecialTokens: false, spacesBetweenSpecialTokens: false })).toBe('Hi there<|eot_id|>Hi there');
    expect(decode({ skipSpecialTokens: false, spacesBetweenSpecialTokens: true })).toBe('Hi there <|eot_id|> Hi there');
  });
});
