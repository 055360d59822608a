/**
 * A bounded ring of the most recent per-step timings, for /metrics and the benchmarks.
 * Pushing is O(1) and keeps no more than `capacity` entries.
 */
import type { StepTiming } from './types.ts';

export class StepTimingRing {
  private readonly entries: StepTiming[] = [];
  private next = 0;
  /** Steps pushed since start (including those the ring has dropped). */
  numPushed = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error(`capacity must be a positive integer, got ${capacity}`);
  }

  push(timing: StepTiming): void {
    if (this.entries.length < this.capacity) this.entries.push(timing);
    else this.entries[this.next] = timing;
    this.next = (this.next + 1) % this.capacity;
    this.numPushed += 1;
  }

  /** The kept timings, oldest first; `limit` keeps only the newest ones. */
  recent(limit = this.capacity): StepTiming[] {
    const n = this.entries.length;
    const ordered = n < this.capacity ? this.entries.slice() : [...this.entries.slice(this.next), ...this.entries.slice(0, this.next)];
    return limit >= n ? ordered : ordered.slice(n - limit);
  }

  clear(): void {
    this.entries.length = 0;
    this.next = 0;
  }
}
