// The engine's preemption and prefix-cache counters (EngineStats) and their /metrics
// counters under vLLM v1's names: prefix-cache queries and hits are counted in tokens
// (a query: every token of a sequence admitted with the cache on; a hit: its tokens found cached).
import { afterEach, describe, expect, it } from 'vitest';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { DEFAULT_SAMPLING_PARAMS, type SamplingParams } from '../../src/engine/types.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import { makeEngine, makePrompts, type TestEngine } from '../engine/engine-harness.ts';
import { startLiveServer } from './live-server.ts';

const params = (over: Partial<SamplingParams> = {}): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: 4, ...over });

/** The one sample of a label-less (but for model_name) metric in Prometheus text format. */
async function sample(metrics: ServerMetrics, name: string): Promise<number | undefined> {
  const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function run(t: TestEngine, id: string, prompt: number[], over: Partial<SamplingParams> = {}): Promise<void> {
  await collectOutput(id, await t.engine.addRequest(id, { promptTokenIds: prompt }, params(over)));
}

describe('engine counters in /metrics', () => {
  let t: TestEngine | null = null;
  afterEach(async () => {
    await t?.engine.shutdown(1000);
    t = null;
  });

  it('prefix-cache queries and hits move in tokens', async () => {
    t = await makeEngine('fake', { enablePrefixCaching: true, blockSize: 16 });
    const metrics = new ServerMetrics(t.engine, 'm');
    expect(t.engine.stats()).toMatchObject({ numPreemptions: 0, prefixCacheQueries: 0, prefixCacheHits: 0 });
    expect(await sample(metrics, 'vllm:prefix_cache_queries_total')).toBe(0);
    expect(await sample(metrics, 'vllm:prefix_cache_hits_total')).toBe(0);
    const [prompt] = makePrompts(1, 40, 40, 5);
    await run(t, 'first', prompt);
    expect(t.engine.stats()).toMatchObject({ prefixCacheQueries: 40, prefixCacheHits: 0 });
    // The same prompt again: its 2 full blocks before the last token are found cached.
    await run(t, 'again', prompt);
    expect(t.engine.stats()).toMatchObject({ prefixCacheQueries: 80, prefixCacheHits: 32 });
    expect(await sample(metrics, 'vllm:prefix_cache_queries_total')).toBe(80);
    expect(await sample(metrics, 'vllm:prefix_cache_hits_total')).toBe(32);
    expect(await sample(metrics, 'vllm:num_preemptions_total')).toBe(0);
  });

  it('preemptions move; without the prefix cache no query is counted', async () => {
    t = await makeEngine('fake', { enablePrefixCaching: false, blockSize: 16, numBlocks: 8, maxModelLen: 128 });
    const metrics = new ServerMetrics(t.engine, 'm');
    // 4 × (20 + 40) tokens need 16 blocks of 16; there are 8.
    const prompts = makePrompts(4, 20, 20, 9);
    await Promise.all(prompts.map((p, i) => run(t as TestEngine, `p-${i}`, p, { maxTokens: 40 })));
    const stats = t.engine.stats();
    expect(stats.numPreemptions).toBeGreaterThan(0);
    expect(stats.numPreemptions).toBe(t.engine.numPreemptions);
    expect(stats).toMatchObject({ prefixCacheQueries: 0, prefixCacheHits: 0 });
    expect(await sample(metrics, 'vllm:num_preemptions_total')).toBe(stats.numPreemptions);
    expect(await sample(metrics, 'vllm:prefix_cache_queries_total')).toBe(0);
  });
});

describe('per-request metrics in /metrics (the real engine behind the server)', () => {
  it('count finished requests by reason, their token counts, and the time of each stage', async () => {
    const t = await makeEngine('fake', { maxModelLen: 256 });
    const server = await startLiveServer({ engine: t.engine });
    try {
      const post = (body: object) =>
        fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const prompts = makePrompts(3, 5, 12, 3);
      for (const prompt of prompts) expect((await post({ prompt, max_tokens: 4, temperature: 0, ignore_eos: true })).status).toBe(200);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const value = (line: string): number | undefined => {
        const found = text.split('\n').find((l) => l.startsWith(line));
        return found === undefined ? undefined : Number(found.slice(found.lastIndexOf(' ') + 1));
      };
      expect(value('vllm:request_success_total{model_name="fake-llama2",finished_reason="length"}')).toBe(3);
      expect(value('vllm:request_prompt_tokens_count')).toBe(3);
      expect(value('vllm:request_prompt_tokens_sum')).toBe(prompts.reduce((n, p) => n + p.length, 0));
      expect(value('vllm:request_generation_tokens_sum')).toBe(12);
      // Buckets 1, 2, 5, 10, 20, 50, 100, 200 (1-2-5 up to max_model_len 256): a 4-token output is in "5".
      expect(value('vllm:request_generation_tokens_bucket{le="2"')).toBe(0);
      expect(value('vllm:request_generation_tokens_bucket{le="5"')).toBe(3);
      for (const stage of ['queue', 'prefill', 'decode', 'inference']) expect(value(`vllm:request_${stage}_time_seconds_count`), stage).toBe(3);
      // Inference is prefill + decode; none can exceed the end-to-end latency.
      const sum = (name: string): number => value(`vllm:request_${name}_sum`) ?? Number.NaN;
      expect(sum('inference_time_seconds')).toBeCloseTo(sum('prefill_time_seconds') + sum('decode_time_seconds'), 6);
      expect(sum('inference_time_seconds') + sum('queue_time_seconds')).toBeLessThanOrEqual(value('vllm:e2e_request_latency_seconds_sum') ?? 0);
    } finally {
      await server.close();
      await t.engine.shutdown(1000);
    }
  });
});
