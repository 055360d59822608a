/**
 * The real Piscina pool (2 workers, Llama-3): step results equal the in-process detokenizer and
 * merge in item order across shards, the step's typed arrays are transferred, a crashed worker is
 * replaced and its shard retried with identical results; tokenize/decode match in-process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { detokenizeIncrement } from '../../src/workers/detokenize.ts';
import { TokenizerPool } from '../../src/workers/pool.ts';
import { initialDetokState } from '../../src/workers/protocol.ts';
import type { DetokItem, DetokParams, DetokResult, DetokStepMessage } from '../../src/workers/protocol.ts';
import { loadTokenizer } from '../../src/workers/tokenizer-loader.ts';
import { PLAIN_PARAMS, makeRng, randInt, randomText, tokenizerDir } from './helpers.ts';

const DIR = tokenizerDir('llama3');
const tokenizer = loadTokenizer(DIR);
let pool: TokenizerPool;

beforeAll(async () => {
  pool = new TokenizerPool({ tokenizerDir: DIR, numWorkers: 2, minItemsPerShard: 8, crashForTest: true });
  await pool.warmup();
});

afterAll(async () => {
  await pool?.close();
});

interface SimSeq {
  seqId: number;
  tokens: number[];
  output: number[];
  numFed: number;
  item: Omit<DetokItem, 'tokenIds' | 'isFinal'>;
  text: string;
  isDone: boolean;
}

function makeSequences(count: number, seed: number): SimSeq[] {
  const rng = makeRng(seed);
  const seqs: SimSeq[] = [];
  for (let i = 0; i < count; i++) {
    const prompt = tokenizer.encode(randomText(rng, randInt(rng, 1, 5)), true);
    const output = tokenizer.encode(randomText(rng, randInt(rng, 2, 20)), false);
    const params: DetokParams = rng() < 0.3 ? { ...PLAIN_PARAMS, stop: ['。', ' world'] } : PLAIN_PARAMS;
    seqs.push({
      seqId: 1000 + i * 7,
      tokens: [...prompt],
      output,
      numFed: 0,
      item: { seqId: 1000 + i * 7, state: initialDetokState(prompt), params, firstStopTokenIndex: prompt.length },
      text: '',
      isDone: false,
    });
  }
  return seqs;
}

function inProcess(items: readonly DetokItem[]): DetokResult[] {
  return items.map((item) => {
    const window = Array.from(item.tokenIds).slice(item.state.prefixOffset);
    return { seqId: item.seqId, ...detokenizeIncrement(tokenizer, window, item.state, item.params, item.firstStopTokenIndex, item.isFinal) };
  });
}

/** One token per live sequence, in a shuffled order, as the engine's step would. */
function nextItems(seqs: SimSeq[], rng: () => number): DetokItem[] {
  const live = seqs.filter((seq) => !seq.isDone);
  for (let i = live.length - 1; i > 0; i--) {
    const j = randInt(rng, 0, i + 1);
    [live[i], live[j]] = [live[j], live[i]];
  }
  return live.map((seq) => {
    seq.tokens.push(seq.output[seq.numFed]);
    seq.numFed += 1;
    return { ...seq.item, tokenIds: seq.tokens, isFinal: seq.numFed === seq.output.length };
  });
}

describe('TokenizerPool', () => {
  it('steps through the pool equal the in-process detokenizer, merged in item order', async () => {
    const seqs = makeSequences(150, 99);
    const bySeqId = new Map(seqs.map((seq) => [seq.seqId, seq]));
    const rng = makeRng(7);
    const threadIds = new Set<number>();
    let numMultiShardSteps = 0;
    while (seqs.some((seq) => !seq.isDone)) {
      const items = nextItems(seqs, rng);
      const expected = inProcess(items);
      const results = await pool.detokenizeStep(items);
      expect(results).toEqual(expected);
      expect(results.map((r) => r.seqId)).toEqual(items.map((item) => item.seqId));
      const stats = pool.lastStepStats;
      if (stats && stats.numShards > 1) numMultiShardSteps += 1;
      stats?.shardThreadIds.forEach((id) => threadIds.add(id));
      for (const result of results) {
        const seq = bySeqId.get(result.seqId) as SimSeq;
        seq.text += result.text;
        seq.item = { ...seq.item, state: result.state };
        if (result.stop || seq.numFed === seq.output.length) seq.isDone = true;
      }
    }
    expect(numMultiShardSteps).toBeGreaterThan(0);
    expect(threadIds.size).toBe(2);
    for (const seq of seqs) {
      const promptLength = seq.item.firstStopTokenIndex;
      const full = tokenizer.decodeRange(seq.tokens, 0, seq.tokens.length, PLAIN_PARAMS);
      const promptText = tokenizer.decodeRange(seq.tokens, 0, promptLength, PLAIN_PARAMS);
      const outputText = full.slice(promptText.length);
      if (seq.item.params.stop.length === 0) expect(seq.text).toBe(outputText);
      else expect(outputText.startsWith(seq.text)).toBe(true);
    }
  });

  it('transfers the step arrays (the sent buffers are detached)', async () => {
    const seqs = makeSequences(40, 5);
    const items = nextItems(seqs, makeRng(1));
    const posted: DetokStepMessage[] = [];
    await pool.detokenizeStep(items, { onShardPosted: (message) => posted.push(message) });
    expect(posted.length).toBe(2);
    for (const message of posted) {
      expect(message.numItems).toBeGreaterThan(0);
      expect(message.numWindowTokens).toBeGreaterThan(0);
      // A transferred ArrayBuffer is detached on the sending side: its views read as empty.
      expect(message.columns.buffer.byteLength).toBe(0);
      expect(message.columns.length).toBe(0);
    }
  });

  for (const mode of ['throw', 'exit'] as const) {
    it(`a worker crash (${mode}) is survived: shard retried, identical results`, async () => {
      const seqs = makeSequences(40, mode === 'throw' ? 3 : 4);
      const items = nextItems(seqs, makeRng(2));
      const expected = inProcess(items);
      const threadsBefore = pool.workerThreadIds;
      const results = await pool.detokenizeStep(items, { crashForTest: mode });
      expect(results).toEqual(expected);
      expect(pool.lastStepStats?.numRetries).toBe(1);
      if (mode === 'exit') {
        // The exited thread is gone and Piscina started a new one in its place.
        await expect.poll(() => pool.workerThreadIds.filter((id) => !threadsBefore.includes(id)).length).toBe(1);
        expect(pool.workerThreadIds.length).toBe(2);
      }
      // The pool keeps working afterwards.
      expect(await pool.detokenizeStep(items)).toEqual(expected);
    });
  }

  it('a retried shard covers the tokens of the call, not ones the caller appended while it ran', async () => {
    const seqs = makeSequences(40, 6);
    const items = nextItems(seqs, makeRng(3));
    const expected = inProcess(items);
    const pending = pool.detokenizeStep(items, { crashForTest: 'throw' });
    // The engine's next step appends a token to the same token lists before this call settles.
    for (const seq of seqs) if (seq.numFed < seq.output.length) seq.tokens.push(seq.output[seq.numFed]);
    expect(await pending).toEqual(expected);
    expect(pool.lastStepStats?.numRetries).toBe(1);
  });

  it('tokenize and decode run in the workers and match in-process', async () => {
    const texts = ['Hello world', '你好，世界 🦜', ''];
    const idLists = await pool.tokenize(texts, false);
    expect(idLists).toEqual(texts.map((text) => tokenizer.encode(text, false)));
    const ids = idLists[1];
    expect(await pool.decode(ids)).toBe(tokenizer.decodeRange(ids, 0, ids.length, PLAIN_PARAMS));
    expect(await pool.decode(ids)).toBe(texts[1]);
  });
});
