/**
 * Prometheus metrics under vLLM's names, in a registry of this app's own (never prom-client's
 * global one, so several apps — tests — can live in one process). Occupancy gauges read the engine
 * at scrape time; latencies are observed by the server as deltas reach it.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineClient, FinishReason, RequestTiming } from '../engine/types.ts';

const LATENCY_BUCKETS_S = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const TOKEN_LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

/** 1, 2, 5, 10, 20, 50... up to `max` (vLLM's build_1_2_5_buckets), for token counts. */
function oneTwoFiveBuckets(max: number): number[] {
  const buckets: number[] = [];
  for (let power = 1; ; power *= 10) {
    for (const m of [1, 2, 5]) {
      if (m * power > max) return buckets;
      buckets.push(m * power);
    }
  }
}

/** The last delta's facts about a finished request (engine.ts: RequestDelta). */
export interface FinishedRequest {
  finishReason: FinishReason;
  promptTokens: number;
  generationTokens: number;
  /** Engine stamps; absent from engines that keep none (tests' fakes). */
  timing?: RequestTiming;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #labels: { model_name: string };
  readonly #timeToFirstToken: Histogram<'model_name'>;
  readonly #interTokenLatency: Histogram<'model_name'>;
  readonly #e2eRequestLatency: Histogram<'model_name'>;
  readonly #promptTokens: Counter<'model_name'>;
  readonly #generationTokens: Counter<'model_name'>;
  readonly #requestSuccess: Counter<'model_name' | 'finished_reason'>;
  readonly #requestPromptTokens: Histogram<'model_name'>;
  readonly #requestGenerationTokens: Histogram<'model_name'>;
  readonly #queueTime: Histogram<'model_name'>;
  readonly #prefillTime: Histogram<'model_name'>;
  readonly #decodeTime: Histogram<'model_name'>;
  readonly #inferenceTime: Histogram<'model_name'>;

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
    // Per finished request, as vLLM's dashboards read them.
    this.#requestSuccess = new Counter({
      name: 'vllm:request_success_total',
      help: 'Finished requests, by finish reason (stop, length, abort).',
      labelNames: ['model_name', 'finished_reason'], registers,
    });
    const tokenBuckets = oneTwoFiveBuckets(engine.maxModelLen);
    const tokenHistogram = (name: string, help: string): Histogram<'model_name'> => new Histogram({ name, help, labelNames, registers, buckets: tokenBuckets });
    this.#requestPromptTokens = tokenHistogram('vllm:request_prompt_tokens', 'Prompt tokens of each finished request.');
    this.#requestGenerationTokens = tokenHistogram('vllm:request_generation_tokens', 'Generated tokens of each finished request.');
    const phaseHistogram = (name: string, help: string): Histogram<'model_name'> => new Histogram({ name, help, labelNames, registers, buckets: LATENCY_BUCKETS_S });
    this.#queueTime = phaseHistogram('vllm:request_queue_time_seconds', 'Time a request waited before it was first scheduled, seconds.');
    this.#prefillTime = phaseHistogram('vllm:request_prefill_time_seconds', 'Time from first scheduled to first token, seconds.');
    this.#decodeTime = phaseHistogram('vllm:request_decode_time_seconds', 'Time from first token to finish, seconds.');
    this.#inferenceTime = phaseHistogram('vllm:request_inference_time_seconds', 'Time from first scheduled to finish, seconds.');
  }

  observeFirstToken(sinceArrivalS: number): void {
    this.#timeToFirstToken.observe(this.#labels, sinceArrivalS);
  }

  /** A delta carrying numTokens tokens after gapS: each token counts gapS / numTokens. */
  observeTokenGap(gapS: number, numTokens: number): void {
    const perTokenS = gapS / numTokens;
    for (let i = 0; i < numTokens; i++) this.#interTokenLatency.observe(this.#labels, perTokenS);
  }

  /** A request finished (its last delta reached the server `sinceArrivalS` after it arrived). */
  observeFinished(request: FinishedRequest, sinceArrivalS: number): void {
    this.#e2eRequestLatency.observe(this.#labels, sinceArrivalS);
    this.#requestSuccess.inc({ ...this.#labels, finished_reason: request.finishReason });
    this.#requestPromptTokens.observe(this.#labels, request.promptTokens);
    this.#requestGenerationTokens.observe(this.#labels, request.generationTokens);
    const t = request.timing;
    if (!t) return;
    const seconds = (fromMs: number, toMs: number): number => Math.max(0, toMs - fromMs) / 1000;
    if (t.firstScheduledMs !== null) this.#queueTime.observe(this.#labels, seconds(t.arrivalMs, t.firstScheduledMs));
    // As vLLM: the phases of a request that got there (an abort before its first token has none).
    if (t.firstScheduledMs !== null && t.firstTokenMs !== null) this.#prefillTime.observe(this.#labels, seconds(t.firstScheduledMs, t.firstTokenMs));
    if (t.firstTokenMs !== null && t.finishedMs !== null) this.#decodeTime.observe(this.#labels, seconds(t.firstTokenMs, t.finishedMs));
    if (t.firstScheduledMs !== null && t.finishedMs !== null) this.#inferenceTime.observe(this.#labels, seconds(t.firstScheduledMs, t.finishedMs));
  }

  /** Counted as tokens reach the server, so requests a client abandons still count theirs. */
  addGenerationTokens(numTokens: number): void {
    this.#generationTokens.inc(this.#labels, numTokens);
    this.numGenerationTokens += numTokens;
  }

  addPromptTokens(numTokens: number): void {
    this.#promptTokens.inc(this.#labels, numTokens);
    this.numPromptTokens += numTokens;
  }

  /** The two token counters' values, for the periodic stats line (stats-logger.ts). */
  numPromptTokens = 0;
  numGenerationTokens = 0;
}
