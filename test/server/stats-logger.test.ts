// The periodic stats line (vLLM's "Avg prompt throughput ... Prefix cache hit rate"): rates over
// the interval since the last line, the engine's occupancy, silence while idle.
import { describe, expect, it } from 'vitest';
import type { EngineStats } from '../../src/engine/types.ts';
import { StatsLogger } from '../../src/server/stats-logger.ts';

describe('StatsLogger', () => {
  it('reports the interval\'s token rates, occupancy and prefix-cache hit rate, and nothing while idle', () => {
    const stats: EngineStats = {
      numRunning: 0, numWaiting: 0, kvUsage: 0, numBlocks: 100, numFreeBlocks: 100, isAlive: true,
      numPreemptions: 0, prefixCacheQueries: 0, prefixCacheHits: 0,
    };
    const metrics = { numPromptTokens: 0, numGenerationTokens: 0 };
    const logger = new StatsLogger({ stats: () => stats }, metrics, () => {}, 0);
    expect(logger.line(10_000)).toBeNull();
    metrics.numPromptTokens += 500;
    metrics.numGenerationTokens += 2000;
    Object.assign(stats, { numRunning: 3, numWaiting: 1, kvUsage: 0.125, prefixCacheQueries: 400, prefixCacheHits: 100 });
    expect(logger.line(20_000)).toBe(
      'Avg prompt throughput: 50.0 tokens/s, Avg generation throughput: 200.0 tokens/s, Running: 3 reqs, Waiting: 1 reqs, ' +
        'KV cache usage: 12.5%, Prefix cache hit rate: 25.0%',
    );
    // Rates are of the last interval only; requests still running keep the line coming.
    expect(logger.line(30_000)).toBe(
      'Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 0.0 tokens/s, Running: 3 reqs, Waiting: 1 reqs, ' +
        'KV cache usage: 12.5%, Prefix cache hit rate: 0.0%',
    );
    Object.assign(stats, { numRunning: 0, numWaiting: 0, kvUsage: 0 });
    expect(logger.line(40_000)).toBeNull();
  });
});
