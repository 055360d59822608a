/**
 * The serving result: one JSON object (what ran, where, against which server, every figure and
 * each request's own), and the short table printed at the end, laid out as vLLM's
 * "Serving Benchmark Result" block so the two read side by side.
 */
import type { MachineInfo } from '../lib/machine.ts';
import { formatTable, type Cell } from '../lib/table.ts';
import type { WorkloadTotals } from '../throughput/dataset.ts';
import type { Endpoint } from './client.ts';
import type { InProcessEngineInfo } from './in-process-server.ts';
import { requestLatencies, type LatencyStats, type RequestRecord, type ServingMetrics } from './metrics.ts';
import type { recordedOptions } from './options.ts';
import type { ServingRequest } from './workload.ts';

/** One request as the results file keeps it (the ITL lists are pooled into the metrics only). */
export interface RequestSummary {
  id: string;
  promptLen: number;
  outputLen: number;
  /** Scheduled send time from the start of the run. */
  arrivalS: number;
  isSuccess: boolean;
  error: string | null;
  outputTokens: number | null;
  serverPromptTokens: number | null;
  numChunks: number;
  ttftMs: number | null;
  tpotMs: number | null;
  e2elMs: number | null;
  dispatchLagMs: number;
}

export interface ServingResult {
  benchmark: 'serving';
  machine: MachineInfo;
  options: ReturnType<typeof recordedOptions>;
  server: {
    kind: 'in-process' | 'external';
    baseUrl: string;
    endpoint: Endpoint;
    servedModelName: string;
    /** The in-process engine's device; null for an external server (its machine is not known here). */
    deviceName: string | null;
    engine: InProcessEngineInfo | null;
  };
  workload: WorkloadTotals & { source: string; numRowsExamined: number | null; numRowsDropped: number | null };
  traffic: { requestRate: number | 'inf'; maxConcurrency: number | null; lastArrivalS: number; numWarmups: number };
  results: ServingMetrics;
  requests: RequestSummary[];
}

export function summarizeRequests(requests: readonly ServingRequest[], records: readonly RequestRecord[], arrivalsS: readonly number[]): RequestSummary[] {
  return requests.map((request, i) => {
    const record = records[i];
    const latencies = requestLatencies(record);
    return {
      id: request.id,
      promptLen: request.promptLen,
      outputLen: request.outputLen,
      arrivalS: arrivalsS[i],
      isSuccess: record.isSuccess,
      error: record.error,
      outputTokens: record.outputTokens,
      serverPromptTokens: record.serverPromptTokens,
      numChunks: record.chunkTimesMs.length,
      ttftMs: latencies?.ttftMs ?? null,
      tpotMs: latencies?.tpotMs ?? null,
      e2elMs: latencies?.e2elMs ?? null,
      dispatchLagMs: record.dispatchLagMs,
    };
  });
}

const dash = (value: number | null | undefined): Cell => (value === null || value === undefined ? '-' : value);

function latencyRow(name: string, stats: LatencyStats | null, percentiles: readonly number[]): Cell[] {
  return [name, dash(stats?.meanMs), dash(stats?.medianMs), ...percentiles.map((p) => dash(stats?.percentilesMs[String(p)])), dash(stats?.stdMs), stats?.count ?? 0];
}

export function formatResult(r: ServingResult): string {
  const m = r.results;
  const percentiles = r.options.metricPercentiles;
  const lines: string[] = [];
  const where = r.server.kind === 'in-process' ? `Spindle in process on ${r.server.deviceName ?? '?'}` : r.server.baseUrl;
  lines.push(
    `Serving benchmark: ${r.server.servedModelName} (${where}), ${r.server.endpoint}, ${r.workload.numRequests} requests (${r.workload.source}), ` +
      `request rate ${r.traffic.requestRate}${r.traffic.maxConcurrency !== null ? `, max concurrency ${r.traffic.maxConcurrency}` : ''}`,
  );
  lines.push('');
  lines.push(
    formatTable(
      ['completed', 'failed', 'duration s', 'requests/s', 'output tok/s', 'total tok/s', 'input tokens', 'output tokens'],
      [[m.completed, m.failed, m.durationS, m.requestThroughput, m.outputThroughput, m.totalTokenThroughput, m.totalInputTokens, m.totalOutputTokens]],
    ),
  );
  lines.push('');
  lines.push(
    formatTable(
      ['ms', 'mean', 'median', ...percentiles.map((p) => `p${p}`), 'std', 'samples'],
      [
        latencyRow('TTFT', m.ttft, percentiles),
        latencyRow('TPOT (excl. 1st)', m.tpot, percentiles),
        latencyRow('ITL (per chunk)', m.itl, percentiles),
        latencyRow('E2E latency', m.e2el, percentiles),
      ],
    ),
  );
  const notes = [
    `output tokens per chunk ${m.tokensPerChunk === null ? '-' : m.tokensPerChunk.toFixed(2)}`,
    `${m.numOutputLenMismatches} request(s) not at their max_tokens`,
    `send lag mean ${m.dispatchLag === null ? '-' : m.dispatchLag.meanMs.toFixed(2)} ms, max ${m.dispatchLag === null ? '-' : Math.max(...r.requests.map((q) => q.dispatchLagMs)).toFixed(2)} ms`,
  ];
  if (m.serverInputTokens !== null && m.serverInputTokens !== m.totalInputTokens) notes.push(`the server counted ${m.serverInputTokens} prompt tokens`);
  lines.push(notes.join('; '));
  const firstFailure = r.requests.find((q) => !q.isSuccess);
  if (firstFailure) lines.push(`first failure (${firstFailure.id}): ${firstFailure.error ?? 'unknown'}`);
  return lines.join('\n');
}
