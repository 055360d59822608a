/**
 * Prometheus metrics under vLLM's names, in a registry of this app's own (never prom-client's
 * global one, so several apps — tests — can live in one process). Occupancy gauges read the engine
 * at scrape time; latencies are observed by the server as deltas reach it.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineClient } from '../engine/types.ts';

const LATENCY_BUCKETS_S = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const TOKEN_LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #labels: { model_name: string };
  readonly #timeToFirstToken: Histogram<'model_name'>;
  readonly #interTokenLatency: Histogram<'model_name'>;
  readonly #e2eRequestLatency: Histogram<'model_name'>;
  readonly #promptTokens: Counter<'model_name'>;
  readonly #generationTokens: Counter<'model_name'>;

  constructor(engine: EngineClient, modelName: string) {
    this.#labels = { model_name: modelName };
    const registers = [this.registry];
    const labelNames = ['model_name'] as const;
    const labels = this.#labels;
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.set(labels, read());
        },
      });
    };
    // The engine's own counters since start, read at scrape time (set, never incremented here).
    const engineCounter = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          this.inc(labels, read());
        },
      });
    };
    gauge('vllm:num_requests_running', 'Sequences in the running batch.', () => engine.stats().numRunning);
    gauge('vllm:num_requests_waiting', 'Sequences waiting to be scheduled.', () => engine.stats().numWaiting);
    gauge('vllm:kv_cache_usage_perc', 'Fraction of KV-cache blocks in use (1 = full).', () => engine.stats().kvUsage);
    // The pre-v1 name, still read by many dashboards.
    gauge('vllm:gpu_cache_usage_perc', 'Fraction of KV-cache blocks in use (1 = full); same as vllm:kv_cache_usage_perc.', () => engine.stats().kvUsage);
    engineCounter('vllm:num_preemptions_total', 'Cumulative number of preemptions from the engine.', () => engine.stats().numPreemptions);
    // In tokens, as vLLM v1 counts them: hits / queries is the prefix-cache hit rate.
    engineCounter('vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.', () => engine.stats().prefixCacheQueries);
    engineCounter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', () => engine.stats().prefixCacheHits);
    this.#timeToFirstToken = new Histogram({
      name: 'vllm:time_to_first_token_seconds',
      help: 'Time from request arrival to its first generated token, seconds.',
      labelNames, registers, buckets: LATENCY_BUCKETS_S,
    });
    this.#interTokenLatency = new Histogram({
      name: 'vllm:inter_token_latency_seconds',
      help: 'Time between consecutive generated tokens of one sequence, seconds.',
      labelNames, registers, buckets: TOKEN_LATENCY_BUCKETS_S,
    });
    this.#e2eRequestLatency = new Histogram({
      name: 'vllm:e2e_request_latency_seconds',
      help: 'Time from request arrival to its last token, seconds.',
      labelNames, registers, buckets: LATENCY_BUCKETS_S,
    });
    this.#promptTokens = new Counter({ name: 'vllm:prompt_tokens_total', help: 'Prompt tokens processed.', labelNames, registers });
    this.#generationTokens = new Counter({ name: 'vllm:generation_tokens_total', help: 'Tokens generated.', labelNames, registers });
  }

  observeFirstToken(sinceArrivalS: number): void {
    this.#timeToFirstToken.observe(this.#labels, sinceArrivalS);
  }

  /** A delta carrying numTokens tokens after gapS: each token counts gapS / numTokens. */
  observeTokenGap(gapS: number, numTokens: number): void {
    const perTokenS = gapS / numTokens;
    for (let i = 0; i < numTokens; i++) this.#interTokenLatency.observe(this.#labels, perTokenS);
  }

  observeFinished(sinceArrivalS: number): void {
    this.#e2eRequestLatency.observe(this.#labels, sinceArrivalS);
  }

  /** Counted as tokens reach the server, so requests a client abandons still count theirs. */
  addGenerationTokens(numTokens: number): void {
    this.#generationTokens.inc(this.#labels, numTokens);
  }

  addPromptTokens(numTokens: number): void {
    this.#promptTokens.inc(this.#labels, numTokens);
  }
}
