/**
 * Turns the engine's per-step timings (StepTiming, src/engine/types.ts) into the figures the
 * throughput report shows: how busy the device was, how much host time the GPU did not hide,
 * the per-phase breakdown, and a time series for the chart.
 */
import type { StepTiming } from '../../src/engine/types.ts';
import { summarize } from '../lib/stats.ts';
import type { StepWork } from './floor.ts';

/** Per-phase figures over all steps, ms. */
export interface PhaseStats {
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  totalMs: number;
}

export const STEP_PHASES = ['scheduleMs', 'packMs', 'launchGapMs', 'executorIdleMs', 'executeMs', 'stepWallMs', 'forwardMs', 'sampleMs', 'copyMs', 'postprocessMs', 'detokDispatchMs'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

export interface StepSummary {
  numSteps: number;
  /** Sum of native forward + sample + copy over the run's wall time. */
  gpuBusyFraction: number;
  /** Native (device) time per step summed, ms. */
  nativeMs: number;
  /**
   * Host time the device did not hide: per step, the time the executor ran no step before it
   * (from the previous step's end: result hand-back, JavaScript, hand-over; after the loop
   * slept, the launch gap instead), plus the native step's host time outside its timed device
   * work (uploads, launches, synchronisation).
   */
  hostNotHiddenMs: number;
  hostNotHiddenPerStepMs: number;
  /** Steps handed to the executor while the previous one ran (async scheduling). */
  numHandedOverAhead: number;
  /**
   * Wall time in neither a launch gap nor a step (the loop asleep, start-up, the last
   * step's postprocessing).
   */
  outsideStepsMs: number;
  phases: Record<StepPhase | 'stepHostMs', PhaseStats>;
  detokLagSteps: { mean: number; max: number };
  peakNumRunning: number;
  peakKvUsage: number;
  meanNumSeqs: number;
  meanNumTokens: number;
  numPrefillTokens: number;
  numTokens: number;
}

function phaseStats(values: number[]): PhaseStats {
  if (values.length === 0) return { meanMs: 0, p50Ms: 0, p99Ms: 0, totalMs: 0 };
  const s = summarize(values);
  return { meanMs: s.mean, p50Ms: s.p50, p99Ms: s.p99, totalMs: s.mean * s.count };
}

export function nativeMsOf(t: StepTiming): number {
  return t.forwardMs + t.sampleMs + t.copyMs;
}

/** The native step's host time outside its timed device work (never negative: clocks differ). */
export function stepHostMsOf(t: StepTiming): number {
  return Math.max(0, t.stepWallMs - nativeMsOf(t));
}

/**
 * Host time before and inside this step with no device work. The executor's idle time is
 * measured natively from the previous step's end; after the loop slept it would count the
 * sleep, so the launch gap (planning to launch) stands in for it then.
 */
export function hostNotHiddenMsOf(t: StepTiming): number {
  return (t.handover === 'afterSleep' ? t.launchGapMs : t.executorIdleMs) + stepHostMsOf(t);
}

export function summarizeSteps(steps: StepTiming[], wallMs: number): StepSummary {
  const phases = {} as Record<StepPhase | 'stepHostMs', PhaseStats>;
  for (const phase of STEP_PHASES) phases[phase] = phaseStats(steps.map((t) => t[phase]));
  phases.stepHostMs = phaseStats(steps.map(stepHostMsOf));
  const nativeMs = steps.reduce((sum, t) => sum + nativeMsOf(t), 0);
  const hostNotHiddenMs = steps.reduce((sum, t) => sum + hostNotHiddenMsOf(t), 0);
  const inStepsMs = steps.reduce((sum, t) => sum + hostNotHiddenMsOf(t) + nativeMsOf(t), 0);
  const n = Math.max(1, steps.length);
  return {
    numSteps: steps.length,
    gpuBusyFraction: wallMs > 0 ? nativeMs / wallMs : 0,
    nativeMs,
    hostNotHiddenMs,
    hostNotHiddenPerStepMs: hostNotHiddenMs / n,
    numHandedOverAhead: steps.filter((t) => t.handover === 'ahead').length,
    outsideStepsMs: Math.max(0, wallMs - inStepsMs),
    phases,
    detokLagSteps: {
      mean: steps.reduce((sum, t) => sum + t.detokLagSteps, 0) / n,
      max: steps.reduce((max, t) => Math.max(max, t.detokLagSteps), 0),
    },
    peakNumRunning: steps.reduce((max, t) => Math.max(max, t.numRunning), 0),
    peakKvUsage: steps.reduce((max, t) => Math.max(max, t.kvUsage), 0),
    meanNumSeqs: steps.reduce((sum, t) => sum + t.numSeqs, 0) / n,
    meanNumTokens: steps.reduce((sum, t) => sum + t.numTokens, 0) / n,
    numPrefillTokens: steps.reduce((sum, t) => sum + t.numPrefillTokens, 0),
    numTokens: steps.reduce((sum, t) => sum + t.numTokens, 0),
  };
}

/**
 * StepWork for the floor from a StepTiming. StepTiming has no per-sequence context lengths,
 * so the KV read is estimated from the cache's occupancy: blocks in use × blockSize, less
 * half a block per running sequence (the mean unfilled tail). Attention pairs are taken as
 * the context tokens (exact for decode rows; prefill rows see fewer keys each, so this stays
 * an underestimate of the work, as a floor must).
 */
export function estimateStepWork(t: StepTiming, numBlocks: number, blockSize: number): StepWork {
  const occupiedTokens = t.kvUsage * numBlocks * blockSize - (t.numRunning * blockSize) / 2;
  const numContextTokens = Math.max(t.numTokens, Math.round(occupiedTokens));
  return { numTokens: t.numTokens, numSampled: t.numSeqs, numContextTokens, numAttentionPairs: numContextTokens };
}

export interface TimeBucket {
  /** Bucket start since the run's start, seconds. */
  startS: number;
  durationS: number;
  numSteps: number;
  /** Tokens through the model per second (prompt + fed-back tokens). */
  tokensPerS: number;
  /** Sequences stepped per second: generated tokens/s, less the rare prefill chunk that does not sample. */
  seqsPerS: number;
  /**
   * Mean ms per step of where the wall time goes: the device's parts and the host time it
   * did not hide (the host phases that overlap the device are not in it).
   */
  meanPhaseMs: Record<'forwardMs' | 'sampleMs' | 'copyMs' | 'hostNotHiddenMs', number>;
}

/** Splits the run into `numBuckets` equal spans of wall time for the chart. */
export function timeSeries(steps: StepTiming[], runStartMs: number, wallMs: number, numBuckets: number): TimeBucket[] {
  const spanMs = wallMs / numBuckets;
  const buckets = Array.from({ length: numBuckets }, (_, i) => ({
    startS: (i * spanMs) / 1000,
    durationS: spanMs / 1000,
    steps: [] as StepTiming[],
  }));
  for (const t of steps) {
    const index = Math.min(numBuckets - 1, Math.max(0, Math.floor((t.startMs - runStartMs) / spanMs)));
    buckets[index].steps.push(t);
  }
  return buckets.map(({ startS, durationS, steps: inBucket }) => {
    const n = Math.max(1, inBucket.length);
    const mean = (f: (t: StepTiming) => number): number => inBucket.reduce((sum, t) => sum + f(t), 0) / n;
    return {
      startS,
      durationS,
      numSteps: inBucket.length,
      tokensPerS: inBucket.reduce((sum, t) => sum + t.numTokens, 0) / durationS,
      seqsPerS: inBucket.reduce((sum, t) => sum + t.numSeqs, 0) / durationS,
      meanPhaseMs: {
        forwardMs: mean((t) => t.forwardMs),
        sampleMs: mean((t) => t.sampleMs),
        copyMs: mean((t) => t.copyMs),
        hostNotHiddenMs: mean(hostNotHiddenMsOf),
      },
    };
  });
}
