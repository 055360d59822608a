/**
 * Sends the requests at their arrival times, at most --max-concurrency in flight, and waits for
 * them all, as vLLM's `benchmark` loop does: a request whose arrival has come waits for a free
 * slot, and its clock (TTFT, E2E) starts only once it has one.
 */
import { SingleBar } from 'cli-progress';
import type { RequestRecord } from './metrics.ts';

/** A counting semaphore: at most `limit` holders; waiters are served in arrival order. */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#free = limit;
  }

  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

export interface TrafficResult {
  records: RequestRecord[];
  /** From just before the first send was scheduled to the last request's completion. */
  durationMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `send(i, dispatchLagMs)` for every request i at arrivalsS[i] seconds after the start.
 * The records come back in request order whatever the completion order.
 */
export async function runTraffic(
  arrivalsS: readonly number[],
  maxConcurrency: number | undefined,
  send: (index: number, dispatchLagMs: number) => Promise<RequestRecord>,
  showProgress: boolean,
): Promise<TrafficResult> {
  const slots = new Slots(maxConcurrency ?? Number.POSITIVE_INFINITY);
  const bar = showProgress && process.stderr.isTTY ? new SingleBar({ format: 'requests [{bar}] {value}/{total} done | {eta}s left', stream: process.stderr, hideCursor: true }) : null;
  bar?.start(arrivalsS.length, 0);
  const startMs = performance.now();
  const pending: Promise<RequestRecord>[] = [];
  for (let i = 0; i < arrivalsS.length; i++) {
    const dueMs = startMs + arrivalsS[i] * 1000;
    const waitMs = dueMs - performance.now();
    if (waitMs > 0) await sleep(waitMs);
    // Lateness of the timer and of the event loop: large values mean the client (or, in process,
    // the engine sharing its thread) could not keep the schedule.
    const dispatchLagMs = Math.max(0, performance.now() - dueMs);
    pending.push(
      (async () => {
        await slots.acquire();
        try {
          return await send(i, dispatchLagMs);
        } finally {
          slots.release();
          bar?.increment();
        }
      })(),
    );
  }
  const records = await Promise.all(pending);
  const durationMs = performance.now() - startMs;
  bar?.stop();
  return { records, durationMs };
}
