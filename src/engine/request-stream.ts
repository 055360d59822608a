/**
 * One request's mailbox: the engine pushes deltas as the detokenizer produces them, the
 * consumer (an SSE writer, generate()) iterates at its own pace. A slow consumer gets
 * the queued deltas merged into one, so it never falls behind by more than one delta.
 * Leaving the loop early (break, a closed connection) aborts the request.
 */
import type { RequestDelta, RequestOutput } from './types.ts';

export class RequestStream implements AsyncIterable<RequestDelta> {
  private readonly queue: RequestDelta[] = [];
  private waiter: { resolve: (r: IteratorResult<RequestDelta>) => void; reject: (e: Error) => void } | null = null;
  private isEnded = false;
  private error: Error | null = null;
  private isIterating = false;

  constructor(
    readonly requestId: string,
    /** Called when the consumer stops before the last delta. */
    private readonly onCancel: () => void,
  ) {}

  /** True once the last delta was pushed or the stream failed. */
  get isClosed(): boolean {
    return this.isEnded || this.error !== null;
  }

  push(delta: RequestDelta): void {
    if (this.isClosed) return;
    if (delta.finishReason !== undefined) this.isEnded = true;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = null;
      resolve({ value: delta, done: false });
      return;
    }
    const last = this.queue[this.queue.length - 1];
    if (last) mergeInto(last, delta);
    else this.queue.push(delta);
  }

  /** Ends the stream with an error: the consumer's next() rejects with it. */
  fail(error: Error): void {
    if (this.isClosed) return;
    this.error = error;
    if (this.waiter) {
      const { reject } = this.waiter;
      this.waiter = null;
      reject(error);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<RequestDelta> {
    if (this.isIterating) throw new Error(`the stream of request ${this.requestId} can be iterated only once`);
    this.isIterating = true;
    let isDone = false;
    return {
      next: (): Promise<IteratorResult<RequestDelta>> => {
        const delta = this.queue.shift();
        if (delta) return Promise.resolve({ value: delta, done: false });
        if (this.error) return Promise.reject(this.error);
        if (this.isEnded || isDone) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: (): Promise<IteratorResult<RequestDelta>> => {
        isDone = true;
        if (!this.isClosed) this.onCancel();
        this.isEnded = true;
        this.queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Appends `next` to `into` (both deltas of the same request, `into` first). */
function mergeInto(into: RequestDelta, next: RequestDelta): void {
  into.text += next.text;
  into.tokenIds.push(...next.tokenIds);
  if (next.logprobs) into.logprobs = [...(into.logprobs ?? []), ...next.logprobs];
  if (next.finishReason !== undefined) into.finishReason = next.finishReason;
  if (next.stopReason !== undefined) into.stopReason = next.stopReason;
  if (next.usage !== undefined) into.usage = next.usage;
  if (next.promptTokenIds !== undefined && into.promptTokenIds === undefined) into.promptTokenIds = next.promptTokenIds;
}

/** Folds a request's deltas into one RequestOutput. */
export async function collectOutput(requestId: string, stream: AsyncIterable<RequestDelta>): Promise<RequestOutput> {
  const output: RequestOutput = { requestId, promptTokenIds: [], text: '', tokenIds: [], finishReason: 'abort' };
  for await (const delta of stream) {
    if (delta.promptTokenIds) output.promptTokenIds = delta.promptTokenIds;
    output.text += delta.text;
    output.tokenIds.push(...delta.tokenIds);
    if (delta.logprobs) (output.logprobs ??= []).push(...delta.logprobs);
    if (delta.finishReason) output.finishReason = delta.finishReason;
    if (delta.stopReason !== undefined) output.stopReason = delta.stopReason;
  }
  return output;
}
