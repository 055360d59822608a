/**
 * Draining state of one server: counts requests in flight (a stream is in flight until its last
 * byte), so a SIGTERM can answer 503 to newcomers and wait for the rest to finish.
 */
export class Lifecycle {
  #isDraining = false;
  #numInFlight = 0;
  #idleWaiters: (() => void)[] = [];

  get isDraining(): boolean {
    return this.#isDraining;
  }

  get numInFlight(): number {
    return this.#numInFlight;
  }

  /** Marks one request in flight; the returned function (idempotent) marks it done. */
  begin(): () => void {
    this.#numInFlight += 1;
    let isDone = false;
    return () => {
      if (isDone) return;
      isDone = true;
      this.#numInFlight -= 1;
      if (this.#numInFlight === 0) this.#wakeIdleWaiters();
    };
  }

  /** Refuses new requests from now on; resolves true once none is in flight, false after timeoutMs. */
  drain(timeoutMs: number): Promise<boolean> {
    this.#isDraining = true;
    if (this.#numInFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #wakeIdleWaiters(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
