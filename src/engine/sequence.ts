/**
 * The state of one request inside the engine. The scheduler moves it between queues, the
 * step loop appends its tokens, and the detokenizer's state travels on it (the workers are
 * stateless). Everything else (streams, request ids) stays in engine.ts.
 */
import { initialDetokState, type DetokState } from '../workers/protocol.ts';
import { seedToU64, type U64 } from './rng.ts';
import type { FinishReason, RequestDelta, SamplingParams, TokenLogprob } from './types.ts';

export type SequenceStatus = 'waiting' | 'running' | 'finished';

export class Sequence {
  /** Prompt tokens, then output tokens. */
  readonly tokenIds: number[];
  readonly numPromptTokens: number;
  /**
   * Tokens whose keys and values are in the KV cache once the steps launched so far are done
   * (advanced when a step is launched, as vLLM v1 does at schedule time).
   */
  numComputedTokens = 0;
  /**
   * Async scheduling: the launched step that samples this sequence's next token, and that
   * token's row in it; -1 when no step in flight samples for it. The next step may be packed
   * before that token is known: its place in the batch is filled in when the step resolves.
   */
  pendingTokenStep = -1;
  pendingTokenRow = -1;
  /** Physical KV block ids, in order (owned by the BlockManager's accounting). */
  readonly blockTable: number[] = [];
  status: SequenceStatus = 'waiting';
  finishReason: FinishReason | null = null;
  /** The stop string or stop token id that ended it (finishReason 'stop'). */
  stopReason: string | number | undefined = undefined;
  /** 64-bit seed of the request's own random stream; null = the engine's stream. */
  readonly seed: U64 | null;
  /** Incremental detokenization state, owned by the workers (see src/workers/protocol.ts). */
  detok: DetokState;
  /** Output tokens already reported in a delta (their text emitted or held back). */
  numReportedOutputTokens = 0;
  /** True once the delta carrying finishReason was sent. */
  isReported = false;
  /** Deltas sent so far (the first one carries the prompt's token ids). */
  numDeltas = 0;
  /** One entry per output token when params.logprobs != null. */
  readonly logprobs: TokenLogprob[] | null;
  numPreemptions = 0;
  /** Prefix-cache keys of its full blocks (prefix-hash.ts), and the running hash after the last one. */
  readonly blockKeys: string[] = [];
  prefixHashLo = 0;
  prefixHashHi = 0;
  /** Leading blocks of blockTable registered in the prefix cache. */
  numRegisteredBlocks = 0;
  /** performance.now() stamps for metrics. */
  readonly arrivalMs: number;
  firstScheduledMs: number | null = null;
  firstTokenMs: number | null = null;
  finishedMs: number | null = null;

  constructor(
    readonly seqId: number,
    readonly requestId: string,
    promptTokenIds: readonly number[],
    readonly params: Readonly<SamplingParams>,
    nowMs: number,
  ) {
    this.tokenIds = promptTokenIds.slice();
    this.numPromptTokens = promptTokenIds.length;
    this.seed = params.seed === undefined ? null : seedToU64(params.seed);
    this.detok = initialDetokState(promptTokenIds);
    this.logprobs = params.logprobs === null ? null : [];
    this.arrivalMs = nowMs;
  }

  get numTokens(): number {
    return this.tokenIds.length;
  }

  get numOutputTokens(): number {
    return this.tokenIds.length - this.numPromptTokens;
  }

  /** 1 while a launched step samples a token for it that postprocessing has not appended yet. */
  get numPendingTokens(): number {
    return this.pendingTokenStep >= 0 ? 1 : 0;
  }

  get isFinished(): boolean {
    return this.status === 'finished';
  }

  get promptTokenIds(): number[] {
    return this.tokenIds.slice(0, this.numPromptTokens);
  }

  get outputTokenIds(): number[] {
    return this.tokenIds.slice(this.numPromptTokens);
  }

  /** Whether any penalty differs from its neutral value (the row then ships its token history). */
  get hasPenalties(): boolean {
    const p = this.params;
    return p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.repetitionPenalty !== 1;
  }

  appendToken(tokenId: number, logprob: TokenLogprob | null): void {
    this.tokenIds.push(tokenId);
    if (this.logprobs && logprob) this.logprobs.push(logprob);
  }

  /** Drops output tokens past `numTokens` (a stop string ended the text earlier). */
  truncate(numTokens: number): void {
    if (numTokens >= this.tokenIds.length) return;
    this.tokenIds.length = numTokens;
    if (this.logprobs) this.logprobs.length = Math.max(0, numTokens - this.numPromptTokens);
    this.numComputedTokens = Math.min(this.numComputedTokens, numTokens);
  }

  /**
   * A worker found stop string `stopString` completed by token index numTokens - 1: the
   * tokens after it are dropped, and it wins over a length or EOS finish decided meanwhile.
   */
  finishOnStopString(stopString: string, numTokens: number, nowMs: number): void {
    this.truncate(numTokens);
    this.status = 'finished';
    this.finishReason = 'stop';
    this.stopReason = stopString;
    this.finishedMs ??= nowMs;
  }

  /**
   * Aborted while still generating; returns whether it was. A finish already decided
   * (length, EOS or a stop token id by postprocessing, a stop string by a worker) stands,
   * even while its last delta waits for the detokenizer: as in vLLM, an abort that comes
   * after the engine finished a request does not change how it finished.
   */
  abort(nowMs: number): boolean {
    if (this.status === 'finished') return false;
    this.status = 'finished';
    this.finishReason = 'abort';
    this.stopReason = undefined;
    this.finishedMs = nowMs;
    return true;
  }

  finish(reason: FinishReason, stopReason: string | number | undefined, nowMs: number): void {
    if (this.status === 'finished') return;
    this.status = 'finished';
    this.finishReason = reason;
    this.stopReason = stopReason;
    this.finishedMs = nowMs;
  }

  /**
   * The next delta of this sequence: `text` and its output tokens up to numCoveredTokens
   * (absolute), not yet reported; null when there is nothing to say. The last one carries
   * the finish reason and usage (completion tokens = every token ever reported, so the
   * deltas' tokenIds always add up to it; an abort reports every generated token, see
   * Engine.abort).
   */
  takeDelta(text: string, numCoveredTokens: number, isLast: boolean): RequestDelta | null {
    const from = this.numReportedOutputTokens;
    const to = Math.min(this.numOutputTokens, Math.max(from, numCoveredTokens - this.numPromptTokens));
    if (!isLast && text === '' && to === from) return null;
    const start = this.numPromptTokens;
    const delta: RequestDelta = { requestId: this.requestId, text, tokenIds: this.tokenIds.slice(start + from, start + to) };
    if (this.logprobs) delta.logprobs = this.logprobs.slice(from, to);
    if (this.numDeltas === 0) delta.promptTokenIds = this.promptTokenIds;
    this.numDeltas += 1;
    this.numReportedOutputTokens = to;
    if (isLast) {
      delta.finishReason = this.finishReason ?? 'abort';
      if (this.stopReason !== undefined) delta.stopReason = this.stopReason;
      delta.usage = { promptTokens: this.numPromptTokens, completionTokens: to };
      delta.timing = { arrivalMs: this.arrivalMs, firstScheduledMs: this.firstScheduledMs, firstTokenMs: this.firstTokenMs, finishedMs: this.finishedMs };
      this.isReported = true;
    }
    return delta;
  }
}
