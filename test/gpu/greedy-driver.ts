/**
 * Drives a native Executor through whole greedy generations for the GPU parity tests: every
 * prompt prefilled in one step, then one decode step per new token for all sequences
 * together (so decode attention runs over a real batch). Sequence s owns the contiguous
 * blocks [s * blocksPerSeq, (s + 1) * blocksPerSeq). Each step asks for the top-N logprobs
 * and records how many device-to-host copies the executor reported for it.
 */
import { createBatch, readResult, ResultTiming, type BatchShape, type BatchViews } from '../../src/engine/batch-layout.ts';
import type { NativeExecutor } from '../../src/engine/native.ts';

export interface GreedyRun {
  /** [prompt][step] greedy token ids. */
  tokens: number[][];
  /** [prompt][step] the executor's top-N ids, best first. */
  topIds: number[][][];
  /** One entry per step: ResultTiming.deviceToHostCopies. */
  copiesPerStep: number[];
  /** One entry per step: ResultTiming.cudaGraphReplayed. */
  graphPerStep: number[];
}

export function blocksPerSeq(maxLen: number, blockSize: number): number {
  return Math.ceil(maxLen / blockSize);
}

interface SeqFeed {
  seq: number;
  /** Tokens fed this step, starting at absolute position `start`. */
  tokens: number[];
  start: number;
}

function packStep(feeds: SeqFeed[], blockSize: number, numBlocksPerSeq: number, topN: number, logitsMode: 0 | 2): { views: BatchViews; shape: BatchShape } {
  const numTokens = feeds.reduce((n, f) => n + f.tokens.length, 0);
  const shape: BatchShape = { numSeqs: feeds.length, numTokens, maxBlocksPerSeq: numBlocksPerSeq, maxTopLogprobs: topN, logitsMode, numPenaltyTokens: 0 };
  const b = createBatch(shape);
  let t = 0;
  feeds.forEach((f, s) => {
    b.queryStartLoc[s] = t;
    for (let i = 0; i < f.tokens.length; i++, t++) {
      const pos = f.start + i;
      b.inputIds[t] = f.tokens[i];
      b.positions[t] = pos;
      b.slotMapping[t] = (f.seq * numBlocksPerSeq + Math.floor(pos / blockSize)) * blockSize + (pos % blockSize);
    }
    b.seqLens[s] = f.start + f.tokens.length;
    for (let k = 0; k < numBlocksPerSeq; k++) b.blockTables[s * numBlocksPerSeq + k] = f.seq * numBlocksPerSeq + k;
    b.isSampled[s] = 1;
    b.temperature[s] = 0;
    b.topP[s] = 1;
    b.repetitionPenalty[s] = 1;
    b.numLogprobs[s] = topN;
  });
  b.queryStartLoc[feeds.length] = t;
  return { views: b, shape };
}

export async function runGreedy(exec: NativeExecutor, prompts: number[][], numNewTokens: number, blockSize: number, vocabSize: number, topN: number): Promise<GreedyRun> {
  const maxLen = Math.max(...prompts.map((p) => p.length)) + numNewTokens;
  const perSeq = blocksPerSeq(maxLen, blockSize);
  const run: GreedyRun = { tokens: prompts.map(() => []), topIds: prompts.map(() => []), copiesPerStep: [], graphPerStep: [] };
  let feeds: SeqFeed[] = prompts.map((p, seq) => ({ seq, tokens: p, start: 0 }));
  for (let step = 0; step < numNewTokens; step++) {
    const { views, shape } = packStep(feeds, blockSize, perSeq, topN, 0);
    const result = readResult(await exec.step(views.buffer), shape, vocabSize);
    run.copiesPerStep.push(result.timings[ResultTiming.deviceToHostCopies]);
    run.graphPerStep.push(result.timings[ResultTiming.cudaGraphReplayed]);
    feeds = feeds.map((f, s) => {
      const token = result.sampledTokenIds[s];
      run.tokens[f.seq].push(token);
      run.topIds[f.seq].push(Array.from(result.topTokenIds.subarray(s * topN, (s + 1) * topN)));
      return { seq: f.seq, tokens: [token], start: f.start + f.tokens.length };
    });
  }
  return run;
}

/** One prefill step over whole sequences with logitsMode 2: every position's logits, rows back to back. */
export async function teacherForcedLogits(exec: NativeExecutor, sequences: number[][], blockSize: number, vocabSize: number): Promise<{ logits: Float32Array; copies: number }> {
  const perSeq = blocksPerSeq(Math.max(...sequences.map((s) => s.length)), blockSize);
  const { views, shape } = packStep(sequences.map((tokens, seq) => ({ seq, tokens, start: 0 })), blockSize, perSeq, 0, 2);
  const result = readResult(await exec.step(views.buffer), shape, vocabSize);
  return { logits: result.logits.slice(), copies: result.timings[ResultTiming.deviceToHostCopies] };
}

/** ‖a − b‖₂ / ‖b‖₂, accumulated in float64. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return Math.sqrt(num / den);
}
