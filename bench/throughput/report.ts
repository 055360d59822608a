/**
 * The throughput result: assembled into one JSON object (what ran, where, with what, and
 * every figure), printed as a short table, and compared with bench/hf_baseline.py's result.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { z } from 'zod';
import type { NativeModelConfig } from '../../src/engine/native.ts';
import type { MachineInfo } from '../lib/machine.ts';
import { formatTable } from '../lib/table.ts';
import type { WorkloadTotals } from './dataset.ts';
import type { EngineRunResult } from './engine-run.ts';
import type { DeviceCeilings, FloorTime } from './floor.ts';
import type { ThroughputOptions } from './options.ts';
import { STEP_PHASES, type StepSummary, type TimeBucket } from './step-stats.ts';

export interface ThroughputRates {
  wallS: number;
  requestsPerS: number;
  outputTokensPerS: number;
  totalTokensPerS: number;
}

export interface FloorReport {
  ceilings: DeviceCeilings & { file: string };
  /** Lower bound whatever the schedule (floor.ts workloadFloor). */
  workload: FloorTime & { minSteps: number };
  /** The steps Spindle ran, each at its bound; KV reads estimated from cache occupancy. */
  schedule: FloorTime;
  wallOverWorkloadFloor: number;
  wallOverScheduleFloor: number;
}

export interface ThroughputResult {
  benchmark: 'throughput';
  engine: 'spindle';
  deviceName: string;
  machine: MachineInfo;
  options: ThroughputOptions;
  engineConfig: Omit<EngineRunResult, 'wallMs' | 'runStartMs' | 'steps' | 'numGeneratedTokens' | 'numPreemptions' | 'createS'>;
  model: { name: string; isDummy: boolean; config: NativeModelConfig };
  workload: WorkloadTotals & { source: string; numRowsExamined: number | null; numRowsDropped: number | null };
  results: ThroughputRates & { numGeneratedTokens: number; numPreemptions: number; engineCreateS: number };
  steps: StepSummary;
  floor: FloorReport | null;
  timeSeries: TimeBucket[];
  /** Filled by --compare: the peer's best configuration from the same device. */
  comparison?: Comparison;
}

export function rates(totals: WorkloadTotals, wallMs: number): ThroughputRates {
  const wallS = wallMs / 1000;
  return {
    wallS,
    requestsPerS: totals.numRequests / wallS,
    outputTokensPerS: totals.numOutputTokens / wallS,
    totalTokensPerS: (totals.numPromptTokens + totals.numOutputTokens) / wallS,
  };
}

/** GPU name from nvidia-smi on CUDA runs, the CPU model otherwise. */
export function deviceNameFor(device: 'cpu' | 'cuda'): string {
  if (device === 'cuda') {
    try {
      return execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8' }).split('\n')[0].trim();
    } catch {
      return 'cuda (nvidia-smi unavailable)';
    }
  }
  return `cpu: ${cpus()[0]?.model.trim() ?? 'unknown'} (${cpus().length} cores)`;
}

const ceilingsSchema = z.object({ deviceName: z.string(), copyBytesPerS: z.number().positive(), gemmFlopsPerS: z.number().positive() });

export function readCeilings(file: string): DeviceCeilings {
  const parsed = ceilingsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`--floor ${file}: not a bench/floor.py result: ${parsed.error.message}`);
  return parsed.data;
}

const f1 = (x: number): string => x.toFixed(1);
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export function formatResult(r: ThroughputResult): string {
  const lines: string[] = [];
  lines.push(
    `Spindle throughput: ${r.model.name}${r.model.isDummy ? ' (dummy weights)' : ''}, ${r.workload.numRequests} requests (${r.workload.source}), ` +
      `${r.workload.numPromptTokens} prompt + ${r.workload.numOutputTokens} output tokens, on ${r.deviceName}`,
  );
  lines.push('');
  lines.push(
    formatTable(
      ['requests/s', 'output tok/s', 'total tok/s', 'wall s', 'steps', 'device busy', 'host not hidden ms/step', 'peak running', 'peak KV'],
      [[r.results.requestsPerS, r.results.outputTokensPerS, r.results.totalTokensPerS, r.results.wallS, r.steps.numSteps, pct(r.steps.gpuBusyFraction), r.steps.hostNotHiddenPerStepMs, r.steps.peakNumRunning, pct(r.steps.peakKvUsage)]],
    ),
  );
  lines.push('');
  const phaseRows = [...STEP_PHASES, 'stepHostMs' as const].map((phase) => {
    const s = r.steps.phases[phase];
    return [phase.replace(/Ms$/, ''), s.meanMs, s.p50Ms, s.p99Ms, pct(s.totalMs / (r.results.wallS * 1000))];
  });
  lines.push(formatTable(['step phase', 'mean ms', 'p50 ms', 'p99 ms', 'of wall'], phaseRows));
  lines.push(
    `detok lag: mean ${r.steps.detokLagSteps.mean.toFixed(2)} steps, max ${r.steps.detokLagSteps.max}; mean batch ${f1(r.steps.meanNumSeqs)} seqs / ` +
      `${f1(r.steps.meanNumTokens)} tokens; prompt tokens computed ${r.steps.numPrefillTokens} of ${r.workload.numPromptTokens} (prefix cache); ` +
      `preemptions ${r.results.numPreemptions}; handed over ahead ${r.steps.numHandedOverAhead} of ${r.steps.numSteps} steps; outside steps ${f1(r.steps.outsideStepsMs)} ms`,
  );
  if (r.floor) {
    const w = r.floor.workload;
    lines.push(
      `floor (${r.floor.ceilings.deviceName}: copy ${(r.floor.ceilings.copyBytesPerS / 1e12).toFixed(2)} TB/s, bf16 GEMM ${(r.floor.ceilings.gemmFlopsPerS / 1e12).toFixed(0)} TFLOP/s): ` +
        `workload ${w.seconds.toFixed(2)} s (memory ${w.memorySeconds.toFixed(2)} s over ${w.minSteps} steps, compute ${w.computeSeconds.toFixed(2)} s); ` +
        `this schedule ~${r.floor.schedule.seconds.toFixed(2)} s`,
    );
    lines.push(`Spindle time / floor: ${r.floor.wallOverWorkloadFloor.toFixed(2)}x the workload floor, ${r.floor.wallOverScheduleFloor.toFixed(2)}x this schedule's floor`);
  } else {
    lines.push('floor: not computed (pass --floor with bench/floor.py ceilings measured on this device)');
  }
  return lines.join('\n');
}

const hfRunSchema = z.object({
  mode: z.string(),
  name: z.string(),
  numRequests: z.number(),
  requestsPerS: z.number(),
  outputTokensPerS: z.number(),
  totalTokensPerS: z.number(),
});
const hfResultSchema = z.object({ deviceName: z.string(), transformers: z.string(), numRequests: z.number(), best: hfRunSchema.nullable() });

export interface Comparison {
  peer: 'transformers';
  peerVersion: string;
  peerDeviceName: string;
  peerBest: z.infer<typeof hfRunSchema>;
  requestsPerSRatio: number;
  outputTokensPerSRatio: number;
  goals: { requestsPerSAtLeast60: boolean; atLeast3xPeer: boolean; gpuBusyAtLeast97Pct: boolean };
}

/** Spindle's result beside the peer's best over the same requests; throws when they are not comparable. */
export function compareWithPeer(spindle: ThroughputResult, hfJson: unknown): Comparison {
  const hf = hfResultSchema.parse(hfJson);
  if (!hf.best) throw new Error('the transformers result has no successful run over all its requests');
  if (hf.best.numRequests !== spindle.workload.numRequests) {
    throw new Error(`transformers ran ${hf.best.numRequests} requests, Spindle ${spindle.workload.numRequests}: not the same workload`);
  }
  const requestsPerSRatio = spindle.results.requestsPerS / hf.best.requestsPerS;
  return {
    peer: 'transformers',
    peerVersion: hf.transformers,
    peerDeviceName: hf.deviceName,
    peerBest: hf.best,
    requestsPerSRatio,
    outputTokensPerSRatio: spindle.results.outputTokensPerS / hf.best.outputTokensPerS,
    goals: {
      requestsPerSAtLeast60: spindle.results.requestsPerS >= 60,
      atLeast3xPeer: requestsPerSRatio >= 3,
      gpuBusyAtLeast97Pct: spindle.steps.gpuBusyFraction >= 0.97,
    },
  };
}

export function formatComparison(spindle: ThroughputResult, c: Comparison): string {
  const rows = [
    ['Spindle', `${spindle.engineConfig.maxNumSeqs} seqs, ${spindle.engineConfig.maxNumBatchedTokens} batched tokens`, spindle.results.requestsPerS, spindle.results.outputTokensPerS, spindle.results.totalTokensPerS],
    [`transformers ${c.peerVersion}`, `[${c.peerBest.mode}] ${c.peerBest.name}`, c.peerBest.requestsPerS, c.peerBest.outputTokensPerS, c.peerBest.totalTokensPerS],
  ];
  const goal = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  return [
    formatTable(['engine', 'configuration', 'requests/s', 'output tok/s', 'total tok/s'], rows),
    `Spindle / transformers: ${c.requestsPerSRatio.toFixed(2)}x requests/s (${spindle.workload.numRequests} requests each, ${spindle.deviceName} / ${c.peerDeviceName})`,
    `goals: >= 60 req/s ${goal(c.goals.requestsPerSAtLeast60)}; >= 3x transformers ${goal(c.goals.atLeast3xPeer)}; GPU busy >= 97% ${goal(c.goals.gpuBusyAtLeast97Pct)} (${pct(spindle.steps.gpuBusyFraction)})`,
  ].join('\n');
}
