/**
 * The serving benchmark's metrics from what the client recorded per request, with the
 * definitions of vLLM's `calculate_metrics` (vllm/benchmarks/serve.py) and of its OpenAI
 * completions client (vllm/benchmarks/lib/endpoint_request_func.py):
 *
 * - TTFT: from sending the request to the first streamed chunk that carries a choice.
 * - ITL: the gaps between consecutive such chunks, pooled over all requests. A chunk may carry
 *   several tokens (the server sends none for a token that decodes to no text yet), so this is
 *   a per-chunk, not a per-token, latency, as in vLLM.
 * - E2E latency: from sending to the last chunk that carries a choice (the usage chunk after it
 *   and `[DONE]` do not count).
 * - TPOT: (E2E − TTFT) / (output tokens − 1), only for requests of more than one output token.
 * - Throughputs: completed requests, output tokens (the server's `usage.completion_tokens`) and
 *   prompt + output tokens over the benchmark's duration (first send to last completion).
 * - mean, median, population std and percentiles with numpy's linear interpolation.
 *
 * On /v1/chat/completions the first chunk with a choice is the assistant-role chunk the server
 * opens the stream with before any token (vLLM's and Spindle's), so chat TTFT measures how soon
 * the request was accepted, not its prefill; vLLM's chat client counts it the same way, and the
 * figures are kept comparable with its. (vLLM's chat client also ends E2E at the usage chunk,
 * its completions client at the last choice; here both end at the last choice.)
 *
 * One deliberate difference: a metric with no samples (every request failed; TPOT when every
 * output is a single token) is null here, where vLLM reports 0 ms, which reads as instant.
 */
import { percentileInterpolated, populationStd } from '../lib/stats.ts';

/** What the client recorded for one request; times are performance.now() milliseconds. */
export interface RequestRecord {
  isSuccess: boolean;
  /** Why the request failed; null when it succeeded. */
  error: string | null;
  /** When the request was sent (after any wait for a --max-concurrency slot, as vLLM times it). */
  startMs: number;
  /** Arrival of each streamed chunk that carried a choice, in order. */
  chunkTimesMs: number[];
  /** usage.completion_tokens of the stream's usage chunk; null when none came. */
  outputTokens: number | null;
  /** usage.prompt_tokens: the server's count, beside the client's. */
  serverPromptTokens: number | null;
  /** How late the send was against its scheduled arrival (timer and event-loop delay). */
  dispatchLagMs: number;
}

/** Per-request figures derived from a successful record (ms). */
export interface RequestLatencies {
  ttftMs: number;
  e2elMs: number;
  itlMs: number[];
  /** null for a request of at most one output token (vLLM leaves it out of TPOT). */
  tpotMs: number | null;
}

export function requestLatencies(record: RequestRecord): RequestLatencies | null {
  const times = record.chunkTimesMs;
  if (!record.isSuccess || times.length === 0 || record.outputTokens === null) return null;
  const ttftMs = times[0] - record.startMs;
  const e2elMs = times[times.length - 1] - record.startMs;
  const itlMs = times.slice(1).map((t, i) => t - times[i]);
  const tpotMs = record.outputTokens > 1 ? (e2elMs - ttftMs) / (record.outputTokens - 1) : null;
  return { ttftMs, e2elMs, itlMs, tpotMs };
}

export interface LatencyStats {
  count: number;
  meanMs: number;
  medianMs: number;
  stdMs: number;
  /** By percentile as the flag gave it: {"99": …, "99.9": …}. */
  percentilesMs: Record<string, number>;
}

export function latencyStats(values: readonly number[], percentiles: readonly number[]): LatencyStats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const percentilesMs: Record<string, number> = {};
  for (const p of percentiles) percentilesMs[String(p)] = percentileInterpolated(sorted, p);
  return {
    count: sorted.length,
    meanMs: sorted.reduce((total, value) => total + value, 0) / sorted.length,
    medianMs: percentileInterpolated(sorted, 50),
    stdMs: populationStd(sorted),
    percentilesMs,
  };
}

export interface ServingMetrics {
  durationS: number;
  completed: number;
  failed: number;
  /** Prompt tokens of the completed requests, as the client counted them (vLLM's total_input). */
  totalInputTokens: number;
  totalOutputTokens: number;
  requestThroughput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  ttft: LatencyStats | null;
  tpot: LatencyStats | null;
  itl: LatencyStats | null;
  e2el: LatencyStats | null;
  /** Completed requests whose output token count differs from the max_tokens asked for. */
  numOutputLenMismatches: number;
  /** Output tokens per chunk carrying a choice: above 1, chunks bundled tokens and ITL is per chunk. */
  tokensPerChunk: number | null;
  /** Sum of usage.prompt_tokens when every completed request reported it, else null. */
  serverInputTokens: number | null;
  dispatchLag: LatencyStats | null;
}

export interface MetricsInput {
  records: readonly RequestRecord[];
  /** The client's prompt length of each request (same order as records). */
  promptLens: readonly number[];
  /** max_tokens asked for each request. */
  outputLens: readonly number[];
  durationS: number;
  percentiles: readonly number[];
}

export function calculateMetrics(input: MetricsInput): ServingMetrics {
  const { records, promptLens, outputLens, durationS, percentiles } = input;
  const ttfts: number[] = [];
  const tpots: number[] = [];
  const itls: number[] = [];
  const e2els: number[] = [];
  let completed = 0;
  let totalInputTokens = 0;
  let totalOutputTokens = 0;
  let numOutputLenMismatches = 0;
  let numChunks = 0;
  let serverInputTokens: number | null = 0;
  records.forEach((record, i) => {
    const latencies = requestLatencies(record);
    if (latencies === null || record.outputTokens === null) return;
    completed++;
    totalInputTokens += promptLens[i];
    totalOutputTokens += record.outputTokens;
    if (record.outputTokens !== outputLens[i]) numOutputLenMismatches++;
    numChunks += record.chunkTimesMs.length;
    serverInputTokens = serverInputTokens === null || record.serverPromptTokens === null ? null : serverInputTokens + record.serverPromptTokens;
    ttfts.push(latencies.ttftMs);
    e2els.push(latencies.e2elMs);
    for (const itl of latencies.itlMs) itls.push(itl);
    if (latencies.tpotMs !== null) tpots.push(latencies.tpotMs);
  });
  return {
    durationS,
    completed,
    failed: records.length - completed,
    totalInputTokens,
    totalOutputTokens,
    requestThroughput: completed / durationS,
    outputThroughput: totalOutputTokens / durationS,
    totalTokenThroughput: (totalInputTokens + totalOutputTokens) / durationS,
    ttft: latencyStats(ttfts, percentiles),
    tpot: latencyStats(tpots, percentiles),
    itl: latencyStats(itls, percentiles),
    e2el: latencyStats(e2els, percentiles),
    numOutputLenMismatches,
    tokensPerChunk: numChunks > 0 ? totalOutputTokens / numChunks : null,
    serverInputTokens: completed > 0 ? serverInputTokens : null,
    dispatchLag: latencyStats(records.map((r) => r.dispatchLagMs), percentiles),
  };
}
