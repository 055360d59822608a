/**
 * vLLM's periodic stats line: every interval (10 s, as VLLM_LOG_STATS_INTERVAL), the prompt and
 * generation throughput since the last line, requests running and waiting, KV-cache usage and
 * the prefix-cache hit rate, in vLLM's words so the logs read the same. Silent while idle.
 * `spindle serve --disable-log-stats` turns it off.
 */
import type { EngineClient } from '../engine/types.ts';
import type { ServerMetrics } from './metrics.ts';

export const STATS_INTERVAL_MS = 10_000;

interface Totals {
  atMs: number;
  numPromptTokens: number;
  numGenerationTokens: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
}

export class StatsLogger {
  #last: Totals;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly engine: Pick<EngineClient, 'stats'>,
    private readonly metrics: Pick<ServerMetrics, 'numPromptTokens' | 'numGenerationTokens'>,
    private readonly log: (line: string) => void,
    nowMs: number = performance.now(),
  ) {
    this.#last = this.#totals(nowMs);
  }

  start(intervalMs = STATS_INTERVAL_MS): void {
    this.#timer = setInterval(() => {
      const line = this.line(performance.now());
      if (line !== null) this.log(line);
    }, intervalMs);
    this.#timer.unref(); // never what keeps the process alive
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The line for the interval ending at nowMs, or null when nothing ran or waited in it. */
  line(nowMs: number): string | null {
    const now = this.#totals(nowMs);
    const last = this.#last;
    this.#last = now;
    const stats = this.engine.stats();
    const numPrompt = now.numPromptTokens - last.numPromptTokens;
    const numGenerated = now.numGenerationTokens - last.numGenerationTokens;
    if (numPrompt === 0 && numGenerated === 0 && stats.numRunning === 0 && stats.numWaiting === 0) return null;
    const seconds = Math.max(1e-9, (nowMs - last.atMs) / 1000);
    const queries = now.prefixCacheQueries - last.prefixCacheQueries;
    const hitRate = queries > 0 ? (now.prefixCacheHits - last.prefixCacheHits) / queries : 0;
    return (
      `Avg prompt throughput: ${(numPrompt / seconds).toFixed(1)} tokens/s, ` +
      `Avg generation throughput: ${(numGenerated / seconds).toFixed(1)} tokens/s, ` +
      `Running: ${stats.numRunning} reqs, Waiting: ${stats.numWaiting} reqs, ` +
      `KV cache usage: ${(stats.kvUsage * 100).toFixed(1)}%, Prefix cache hit rate: ${(hitRate * 100).toFixed(1)}%`
    );
  }

  #totals(atMs: number): Totals {
    const stats = this.engine.stats();
    return {
      atMs,
      numPromptTokens: this.metrics.numPromptTokens,
      numGenerationTokens: this.metrics.numGenerationTokens,
      prefixCacheQueries: stats.prefixCacheQueries,
      prefixCacheHits: stats.prefixCacheHits,
    };
  }
}
