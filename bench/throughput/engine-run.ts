/**
 * Runs the selected requests through Spindle's library API (Engine.create → generate), with
 * EOS ignored and maxTokens = each request's output length, collecting every step's timing
 * through the engine's onStep hook. A few short requests run first, untimed, so that lazy
 * start-up work (cuBLAS handles, graph capture, worker warm-up) stays out of the figures;
 * their prompts are random ids, so the prefix cache holds nothing of the timed requests.
 */
import { SingleBar } from 'cli-progress';
import { Engine, type EngineOptionsForBench } from './engine-options.ts';
import type { StepTiming, SamplingParams } from '../../src/engine/types.ts';
import { randomRequests, type BenchRequest } from './dataset.ts';

export interface EngineRunResult {
  /** From the first request queued to the last output returned, ms. */
  wallMs: number;
  /** performance.now() when the timed run started (the step timings' clock). */
  runStartMs: number;
  steps: StepTiming[];
  numGeneratedTokens: number;
  numPreemptions: number;
  numKvBlocks: number;
  blockSize: number;
  device: 'cpu' | 'cuda';
  dtype: 'float32' | 'bfloat16';
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number;
  /** CUDA graphs off (--enforce-eager). */
  enforceEager: boolean;
  /** Step N+1 planned while step N runs (off: --no-async-scheduling). */
  asyncScheduling: boolean;
  /** Seconds Engine.create took (weights, KV cache, workers). */
  createS: number;
}

const WARMUP_PROMPT_LEN = 64;

function samplingFor(r: BenchRequest): Partial<SamplingParams> {
  // Greedy like vLLM's benchmark is not required; ignoreEos + maxTokens fix the work exactly.
  return { maxTokens: r.outputLen, ignoreEos: true, temperature: 1, topP: 1 };
}

function progressBar(total: number, isEnabled: boolean): { tick(n: number): void; stop(): void } {
  if (!isEnabled || !process.stderr.isTTY) return { tick: () => {}, stop: () => {} };
  const bar = new SingleBar({ format: 'generating [{bar}] {percentage}% | {value}/{total} tokens | {eta}s left', stream: process.stderr, hideCursor: true });
  bar.start(total, 0);
  let value = 0;
  return {
    tick: (n) => {
      value = Math.min(total, value + n);
      bar.update(value);
    },
    stop: () => bar.stop(),
  };
}

export async function runOnEngine(engineOptions: EngineOptionsForBench, requests: BenchRequest[], numWarmupPrompts: number, showProgress: boolean): Promise<EngineRunResult> {
  let collector: StepTiming[] | null = null;
  let onTimedStep: (t: StepTiming) => void = () => {};
  const createStartMs = performance.now();
  const engine = await Engine.create({
    ...engineOptions,
    onStep: (t) => {
      collector?.push(t);
      onTimedStep(t);
    },
  });
  const createS = (performance.now() - createStartMs) / 1000;
  try {
    if (numWarmupPrompts > 0) {
      const warmup = randomRequests(numWarmupPrompts, WARMUP_PROMPT_LEN, 4, engineOptions.model.config.vocabSize, 0x5eed);
      await engine.generate(
        warmup.map((r) => ({ promptTokenIds: r.promptTokenIds })),
        warmup.map(() => ({ maxTokens: 4, ignoreEos: true })),
      );
    }
    const steps: StepTiming[] = [];
    collector = steps;
    const bar = progressBar(requests.reduce((sum, r) => sum + r.outputLen, 0), showProgress);
    onTimedStep = (t) => bar.tick(t.numSeqs);
    const numPreemptionsBefore = engine.numPreemptions;
    const runStartMs = performance.now();
    const outputs = await engine.generate(
      requests.map((r) => ({ promptTokenIds: r.promptTokenIds })),
      requests.map(samplingFor),
    );
    const wallMs = performance.now() - runStartMs;
    bar.stop();
    collector = null;
    let numGeneratedTokens = 0;
    outputs.forEach((output, i) => {
      if (output.tokenIds.length !== requests[i].outputLen) {
        throw new Error(`request ${requests[i].id} generated ${output.tokenIds.length} tokens, asked for ${requests[i].outputLen} (finish: ${output.finishReason})`);
      }
      numGeneratedTokens += output.tokenIds.length;
    });
    const c = engine.config;
    return {
      wallMs,
      runStartMs,
      steps,
      numGeneratedTokens,
      numPreemptions: engine.numPreemptions - numPreemptionsBefore,
      numKvBlocks: engine.blockManager.numBlocks,
      blockSize: c.blockSize,
      device: c.device,
      dtype: c.dtype,
      maxNumSeqs: c.maxNumSeqs,
      maxNumBatchedTokens: c.maxNumBatchedTokens,
      maxModelLen: c.maxModelLen,
      enforceEager: c.enforceEager,
      asyncScheduling: c.asyncScheduling,
      createS,
    };
  } finally {
    await engine.shutdown(1000);
  }
}
