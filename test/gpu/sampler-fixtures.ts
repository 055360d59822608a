/**
 * Inputs for the CUDA sampler's test and benchmark: the test-only binding
 * (native/src/cuda/sampler_binding.cc), seeded random logits of several shapes, random
 * per-row sampling parameters, and packing them into a step batch (batch-layout.ts).
 */
import { createBatch, readResult, type BatchShape, type ResultViews } from '../../src/engine/batch-layout.ts';
import { loadNative } from '../../src/engine/native.ts';
import { writeRowSampling } from '../native/row-sampling.ts';
import type { RowParams } from './sampler-reference.ts';

export interface CudaSampleOptions {
  timingReps?: number;
  warmupReps?: number;
  /** Also run the CPU sampler (native/src/cpu/sampler.cc) on the same batch and logits. */
  withCpu?: boolean;
}

export interface CudaSampleRun {
  result: ArrayBuffer;
  cpuResult?: ArrayBuffer;
  medianMs?: number;
  minMs?: number;
  deviceName: string;
}

export interface SamplerBinding {
  cudaSamplerUnavailableReason(): string;
  cudaSample(batch: ArrayBuffer, logits: Float32Array, vocabSize: number, options?: CudaSampleOptions): CudaSampleRun;
  cudaCopyBandwidth(bytes: number, reps: number): { medianMs: number; bytesPerSecond: number };
}

function isSamplerBinding(value: object): value is SamplerBinding {
  return 'cudaSample' in value && typeof value.cudaSample === 'function' && 'cudaSamplerUnavailableReason' in value;
}

/** The binding, or why it cannot run here (shown by skipped tests). */
export function loadSamplerBinding(): { binding: SamplerBinding | null; reason: string } {
  let native: object;
  try {
    native = loadNative();
  } catch (err) {
    return { binding: null, reason: err instanceof Error ? err.message : String(err) };
  }
  if (!isSamplerBinding(native)) return { binding: null, reason: 'addon built without CUDA (no cudaSample entry)' };
  const reason = native.cudaSamplerUnavailableReason();
  return reason === '' ? { binding: native, reason: '' } : { binding: null, reason };
}

/** Small seeded generator (mulberry32) with normals by Box-Muller. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.uniform() * maxExclusive);
  }
  u32(): number {
    return Math.floor(this.uniform() * 4294967296) >>> 0;
  }
  normal(): number {
    const u = Math.max(this.uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

export type LogitsKind = 'spread' | 'peaked' | 'nearUniform' | 'ties';
export const LOGITS_KINDS: readonly LogitsKind[] = ['spread', 'peaked', 'nearUniform', 'ties'];

/** Fills `row` with logits of one kind: spread N(0, 4²); peaked (a few tokens far above);
 * near-uniform N(0, 0.01²); ties (spread values rounded to quarters: many exact ties). */
export function fillLogits(row: Float32Array, kind: LogitsKind, rng: Random): void {
  for (let i = 0; i < row.length; i++) {
    const z = rng.normal();
    row[i] = kind === 'nearUniform' ? 0.01 * z : kind === 'ties' ? Math.round(16 * z) / 4 : kind === 'peaked' ? 2 * z : 4 * z;
  }
  if (kind === 'peaked') for (let j = 0; j < 3; j++) row[rng.int(row.length)] = 14 + 3 * rng.uniform();
}

/** Random sampling parameters: greedy, plain, top_k, top_p, min_p, combinations, penalties. */
export function randomParams(rng: Random, vocab: number): RowParams {
  const style = rng.int(8);
  const hasPenalties = rng.uniform() < 0.4;
  const historyLen = hasPenalties ? 1 + rng.int(300) : 0;
  const history = Int32Array.from({ length: historyLen }, () => (rng.uniform() < 0.5 ? rng.int(200) : rng.int(vocab)));
  return {
    temperature: style === 0 ? 0 : 0.3 + 1.4 * rng.uniform(),
    topK: style === 2 || style === 5 ? 1 + rng.int(style === 2 ? 2000 : 50) : rng.uniform() < 0.1 ? vocab : 0,
    topP: style === 3 || style === 5 || style === 6 ? 0.5 + 0.49 * rng.uniform() : 1,
    minP: style === 4 || style === 6 ? 0.3 * rng.uniform() : 0,
    presencePenalty: hasPenalties ? rng.uniform() - 0.3 : 0,
    frequencyPenalty: hasPenalties ? 0.5 * rng.uniform() : 0,
    repetitionPenalty: hasPenalties ? 0.8 + 0.7 * rng.uniform() : 1,
    rngKeyLo: rng.u32(),
    rngKeyHi: rng.u32(),
    numLogprobs: rng.uniform() < 0.5 ? rng.int(21) : 0,
    history,
    promptLen: rng.int(historyLen + 1),
  };
}

export const MAX_TOP_LOGPROBS = 20;

/** Packs per-row parameters into a step batch; `isSampled[s] = 0` where `skip(s)`. */
export function packBatch(rows: readonly RowParams[], skip: (s: number) => boolean = () => false): { buffer: ArrayBuffer; shape: BatchShape } {
  const numPenaltyTokens = rows.reduce((n, r) => n + r.history.length, 0);
  const shape: BatchShape = { numSeqs: rows.length, numTokens: rows.length, maxBlocksPerSeq: 0, maxTopLogprobs: MAX_TOP_LOGPROBS, logitsMode: 0, numPenaltyTokens };
  const b = createBatch(shape);
  let offset = 0;
  rows.forEach((r, s) => {
    b.isSampled[s] = skip(s) ? 0 : 1;
    writeRowSampling(b, s, r);
    b.penaltyOffsets[s] = offset;
    b.penaltyPromptLens[s] = r.promptLen;
    b.penaltyTokens.set(r.history, offset);
    offset += r.history.length;
  });
  b.penaltyOffsets[rows.length] = offset;
  return { buffer: b.buffer, shape };
}

/** Runs the sampler on `rows` over `logits` ([rows, vocab]) and returns its result views. */
export function sampleOnGpu(binding: SamplerBinding, rows: readonly RowParams[], logits: Float32Array, vocab: number, options: CudaSampleOptions = {}, skip?: (s: number) => boolean): { gpu: ResultViews; cpu: ResultViews | null; run: CudaSampleRun } {
  const { buffer, shape } = packBatch(rows, skip);
  const run = binding.cudaSample(buffer, logits, vocab, options);
  return { gpu: readResult(run.result, shape, vocab), cpu: run.cpuResult ? readResult(run.cpuResult, shape, vocab) : null, run };
}
