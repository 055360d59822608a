/**
 * The engine's live requests: requestId (external string) ↔ Sequence (internal seqId) ↔
 * its stream, from addRequest until the delta carrying finishReason (or a failure) is sent.
 * Also remembers aborts that arrive while a text prompt is still being tokenized.
 */
import { RequestStream } from './request-stream.ts';
import type { Sequence } from './sequence.ts';

export class LiveRequests {
  private readonly seqs = new Map<number, Sequence>();
  private readonly seqIdOfRequest = new Map<string, number>();
  private readonly streams = new Map<number, RequestStream>();
  /** Text requests being tokenized → whether abort() was called meanwhile. */
  private readonly tokenizing = new Map<string, boolean>();

  get size(): number {
    return this.seqs.size;
  }

  /** Whether requestId is live or being tokenized. */
  has(requestId: string): boolean {
    return this.seqIdOfRequest.has(requestId) || this.tokenizing.has(requestId);
  }

  startTokenizing(requestId: string): void {
    this.tokenizing.set(requestId, false);
  }

  /** Ends the tokenizing mark; returns whether the request was aborted meanwhile. */
  endTokenizing(requestId: string): boolean {
    const isAborted = this.tokenizing.get(requestId) === true;
    this.tokenizing.delete(requestId);
    return isAborted;
  }

  /** Marks a request being tokenized as aborted; returns false when it is not being tokenized. */
  abortTokenizing(requestId: string): boolean {
    if (!this.tokenizing.has(requestId)) return false;
    this.tokenizing.set(requestId, true);
    return true;
  }

  add(seq: Sequence, stream: RequestStream): void {
    this.seqs.set(seq.seqId, seq);
    this.seqIdOfRequest.set(seq.requestId, seq.seqId);
    this.streams.set(seq.seqId, stream);
  }

  get(requestId: string): Sequence | undefined {
    const seqId = this.seqIdOfRequest.get(requestId);
    return seqId === undefined ? undefined : this.seqs.get(seqId);
  }

  /** A snapshot: safe to iterate while removing. */
  all(): Sequence[] {
    return [...this.seqs.values()];
  }

  remove(seq: Sequence): void {
    seq.isReported = true;
    this.seqs.delete(seq.seqId);
    this.streams.delete(seq.seqId);
    if (this.seqIdOfRequest.get(seq.requestId) === seq.seqId) this.seqIdOfRequest.delete(seq.requestId);
  }

  /** Sends seq's next delta: its output tokens up to numCoveredTokens (absolute) and `text`. */
  deliver(seq: Sequence, text: string, numCoveredTokens: number, isLast: boolean): void {
    const stream = this.streams.get(seq.seqId);
    if (!stream || seq.isReported) return;
    const delta = seq.takeDelta(text, numCoveredTokens, isLast);
    if (!delta) return;
    if (isLast) this.remove(seq);
    stream.push(delta);
  }

  /**
   * Ends seq's stream with an error (its blocks are freed at the next step boundary; a
   * sequence still generating is marked finished by the abort, a finished one already is).
   */
  fail(seq: Sequence, error: Error): void {
    if (seq.isReported) return;
    seq.abort(performance.now());
    const stream = this.streams.get(seq.seqId);
    this.remove(seq);
    stream?.fail(error);
  }
}
