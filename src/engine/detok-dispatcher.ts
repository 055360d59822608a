/**
 * Hands new tokens to the worker pool without ever blocking the step loop. At most one
 * detokenization batch is in flight: sequences that get tokens meanwhile are marked
 * dirty, and the next batch (all of them, however many steps they gathered) is sent as
 * soon as the previous one's results are applied. Results come back on the main thread
 * between steps (the loop is awaiting the executor), so applying them races with nothing.
 */
import type { DetokItem, DetokResult, TokenizerPoolApi } from '../workers/protocol.ts';
import { endsOnStopToken } from './postprocess.ts';
import type { Sequence } from './sequence.ts';

/** Where the dispatcher's results go (the engine's streams). */
export interface DetokSink {
  /**
   * New text of `seq`, covering its tokens up to numCoveredTokens (absolute); isLast: the
   * sequence is finished and this is its last delta.
   */
  deliver(seq: Sequence, text: string, numCoveredTokens: number, isLast: boolean): void;
  /** The pool failed on a batch: these sequences cannot be detokenized. */
  fail(seqs: Sequence[], error: Error): void;
}

interface SentItem {
  seq: Sequence;
  /** seq.numTokens when sent: the tokens this result covers. */
  numTokens: number;
  isFinal: boolean;
}

export class DetokDispatcher {
  private readonly dirty = new Set<Sequence>();
  private inFlight: Promise<void> | null = null;
  /** Step whose tokens the in-flight (or last applied) batch carries. */
  private inFlightStep = 0;
  private appliedStep = 0;
  private latestStep = 0;
  numBatches = 0;

  constructor(
    private readonly pool: Pick<TokenizerPoolApi, 'detokenizeStep'>,
    private readonly sink: DetokSink,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** seq has new tokens, or has finished and needs its held text flushed. */
  markDirty(seq: Sequence): void {
    this.dirty.add(seq);
  }

  /** Steps by which the applied detokenization trails the step loop. */
  get lagSteps(): number {
    return this.inFlight || this.dirty.size > 0 ? this.latestStep - this.appliedStep : 0;
  }

  get isIdle(): boolean {
    return this.inFlight === null && this.dirty.size === 0;
  }

  /** Sends the dirty sequences unless a batch is in flight (then its completion sends them). */
  flush(step: number): void {
    this.latestStep = Math.max(this.latestStep, step);
    if (this.inFlight || this.dirty.size === 0) return;
    const sent: SentItem[] = [];
    const items: DetokItem[] = [];
    for (const seq of this.dirty) {
      if (seq.isReported) continue;
      const isFinal = seq.isFinished;
      const numTokens = seq.numTokens;
      // A stop token's own text is not part of the output (vLLM drops it unless
      // include_stop_str_in_output).
      const tokenIds =
        isFinal && endsOnStopToken(seq) && !seq.params.includeStopStrInOutput ? seq.tokenIds.slice(0, numTokens - 1) : seq.tokenIds;
      items.push({
        seqId: seq.seqId,
        tokenIds,
        state: seq.detok,
        params: seq.params,
        firstStopTokenIndex: seq.numPromptTokens + Math.max(0, seq.params.minTokens - 1),
        isFinal,
      });
      sent.push({ seq, numTokens, isFinal });
    }
    this.dirty.clear();
    if (items.length === 0) return;
    this.inFlightStep = this.latestStep;
    this.numBatches += 1;
    let request: Promise<DetokResult[]>;
    try {
      request = this.pool.detokenizeStep(items);
    } catch (err) {
      request = Promise.reject(err);
    }
    this.inFlight = request
      .then(
        (results) => this.apply(sent, results),
        (err: unknown) => this.sink.fail(sent.map((item) => item.seq), err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => {
        this.appliedStep = this.inFlightStep;
        this.inFlight = null;
        this.flush(this.latestStep);
      });
  }

  /** Resolves once every dirty sequence has been detokenized and applied. */
  async drain(): Promise<void> {
    while (!this.isIdle) {
      if (!this.inFlight) this.flush(this.latestStep);
      if (this.inFlight) await this.inFlight;
    }
  }

  private apply(sent: SentItem[], results: DetokResult[]): void {
    if (results.length !== sent.length) {
      const error = new Error(`detokenizer returned ${results.length} results for ${sent.length} sequences`);
      this.sink.fail(sent.map((item) => item.seq), error);
      return;
    }
    for (let i = 0; i < sent.length; i++) {
      const { seq, numTokens, isFinal } = sent[i];
      const result = results[i];
      if (seq.isReported) continue; // aborted meanwhile
      seq.detok = result.state;
      if (result.stop) {
        const numCovered = Math.max(result.stop.tokenIndex + 1, seq.numPromptTokens + seq.numReportedOutputTokens);
        seq.finishOnStopString(result.stop.stopString, numCovered, this.now());
        this.sink.deliver(seq, result.text, numCovered, true);
      } else {
        this.sink.deliver(seq, result.text, numTokens, isFinal);
      }
    }
  }
}
