/**
 * The detokenization benchmark's simulated step loop: `batchSize` slots, each holding one
 * sequence that receives one token per step (a finished sequence is replaced by a fresh one at
 * the next step, so the batch stays full), with real token streams and stop strings on some.
 * The same seed gives the same streams in every mode, so their texts can be compared.
 */
import { createHash } from 'node:crypto';

import { initialDetokState } from '../../src/workers/protocol.ts';
import type { DetokItem, DetokParams, DetokResult, DetokState } from '../../src/workers/protocol.ts';
import type { LoadedTokenizer } from '../../src/workers/tokenizer-loader.ts';
import { seededRandom } from './seeded-random.ts';
import { loadShareGpt, type ShareGptRow } from './sharegpt.ts';

export type TokenSource = 'sharegpt' | 'random';

const STOP_STRINGS = ['In conclusion', '\n\n\n', 'STOP'];
const MAX_PROMPT_TOKENS = 32;
const MAX_OUTPUT_TOKENS = 512;
const MIN_OUTPUT_TOKENS = 16;

export type ShareGptRecord = Pick<ShareGptRow, 'prompt' | 'completion'>;

/** The first `maxRecords` rows that have a completion to stream. */
export function readShareGpt(file: string, maxRecords: number): ShareGptRecord[] {
  return loadShareGpt(file).filter((row) => row.completion.length > 0).slice(0, maxRecords);
}

interface StreamSpec {
  prompt: number[];
  output: number[];
}

/** Token streams for one tokenizer and source, tokenized once up front (not timed). */
export function buildStreams(tokenizer: LoadedTokenizer, source: TokenSource, records: ShareGptRecord[] | null, count: number): StreamSpec[] {
  const rng = seededRandom(source === 'sharegpt' ? 17 : 29);
  const streams: StreamSpec[] = [];
  if (source === 'sharegpt') {
    if (!records || records.length === 0) throw new Error('the sharegpt source needs --dataset records');
    // Tokenize each record once; streams reuse them from different starting points.
    const tokenized = records.map((record) => ({
      prompt: tokenizer.encode(record.prompt.slice(0, 400), true).slice(0, MAX_PROMPT_TOKENS),
      completion: tokenizer.encode(record.completion.slice(0, MAX_OUTPUT_TOKENS * 8), false),
    }));
    const usable = tokenized.filter((record) => record.completion.length >= MIN_OUTPUT_TOKENS);
    for (let i = 0; i < count; i++) {
      const record = usable[i % usable.length];
      const start = i < usable.length ? 0 : Math.floor(rng() * (record.completion.length - MIN_OUTPUT_TOKENS));
      streams.push({ prompt: record.prompt, output: record.completion.slice(start, start + MAX_OUTPUT_TOKENS) });
    }
    return streams;
  }
  const ordinaryIds: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) if (!tokenizer.addedTokenById.has(id) && tokenizer.tokenOfId[id] !== undefined) ordinaryIds.push(id);
  const pick = () => ordinaryIds[Math.floor(rng() * ordinaryIds.length)];
  for (let i = 0; i < count; i++) {
    const prompt = Array.from({ length: 8 + Math.floor(rng() * (MAX_PROMPT_TOKENS - 8)) }, pick);
    const output = Array.from({ length: MIN_OUTPUT_TOKENS + Math.floor(rng() * (MAX_OUTPUT_TOKENS - MIN_OUTPUT_TOKENS)) }, pick);
    streams.push({ prompt, output });
  }
  return streams;
}

interface Slot {
  seqId: number;
  tokenIds: number[];
  output: number[];
  numFed: number;
  numPromptTokens: number;
  state: DetokState;
  params: DetokParams;
  isDone: boolean;
}

const PLAIN: DetokParams = { stop: [], includeStopStrInOutput: false, skipSpecialTokens: true, spacesBetweenSpecialTokens: true };
const WITH_STOPS: DetokParams = { ...PLAIN, stop: STOP_STRINGS };

/** The engine's side of the loop, reduced to what detokenization sees. */
export class SlotSimulator {
  private readonly slots: Slot[] = [];
  private nextStream = 0;
  private nextSeqId = 0;
  private readonly hash = createHash('sha256');
  numStopsMatched = 0;
  numFinished = 0;

  constructor(
    private readonly streams: readonly StreamSpec[],
    batchSize: number,
    private readonly stopFraction: number,
  ) {
    for (let i = 0; i < batchSize; i++) this.slots.push(this.freshSlot());
  }

  private freshSlot(): Slot {
    const stream = this.streams[this.nextStream % this.streams.length];
    this.nextStream += 1;
    const seqId = this.nextSeqId++;
    // Every k-th sequence has stop strings (deterministic, the same in every mode).
    const hasStops = this.stopFraction > 0 && seqId % Math.round(1 / this.stopFraction) === 0;
    return {
      seqId,
      tokenIds: [...stream.prompt],
      output: stream.output,
      numFed: 0,
      numPromptTokens: stream.prompt.length,
      state: initialDetokState(stream.prompt),
      params: hasStops ? WITH_STOPS : PLAIN,
      isDone: false,
    };
  }

  /** This step's items: one new token per slot; finished slots get a fresh sequence first. */
  buildItems(): DetokItem[] {
    const items: DetokItem[] = [];
    for (let i = 0; i < this.slots.length; i++) {
      if (this.slots[i].isDone) this.slots[i] = this.freshSlot();
      const slot = this.slots[i];
      slot.tokenIds.push(slot.output[slot.numFed]);
      slot.numFed += 1;
      items.push({
        seqId: slot.seqId,
        tokenIds: slot.tokenIds,
        state: slot.state,
        params: slot.params,
        firstStopTokenIndex: slot.numPromptTokens,
        isFinal: slot.numFed === slot.output.length,
      });
    }
    return items;
  }

  /** Stores each result's state on its slot (results come in item order = slot order). */
  applyResults(results: readonly DetokResult[]): void {
    for (let i = 0; i < results.length; i++) {
      const result = results[i];
      const slot = this.slots[i];
      if (result.seqId !== slot.seqId) throw new Error(`result ${i} is for seq ${result.seqId}, expected ${slot.seqId}`);
      slot.state = result.state;
      if (result.stop) this.numStopsMatched += 1;
      if (result.stop || slot.numFed === slot.output.length) {
        slot.isDone = true;
        this.numFinished += 1;
      }
    }
  }

  /** Adds a step's texts and stops to the digest (outside the timed part: the engine has no such work). */
  recordDigest(results: readonly DetokResult[]): void {
    let record = '';
    for (const result of results) record += `${result.seqId}\u0000${result.text}\u0000${result.stop?.stopString ?? ''}\u0001`;
    this.hash.update(record);
  }

  /** Digest of every text and stop produced so far: equal digests = identical outputs. */
  textDigest(): string {
    return this.hash.copy().digest('hex').slice(0, 16);
  }
}
