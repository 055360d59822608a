/**
 * The step loop, on the main thread. One step:
 *   schedule → pack → launch executor.step() → await it → postprocess (one loop over the
 *   batch) → hand the new tokens to the detokenizer pool, NOT awaited (detok-dispatcher.ts).
 * With async scheduling (the default, vLLM's --async-scheduling), step N+1 is scheduled,
 * packed and handed to the executor while step N runs, as if every row N samples had its
 * token already (a pending-token reference the executor fills in when N ends). The executor
 * starts N+1 the moment N ends; meanwhile the loop postprocesses N, dispatches its
 * detokenization and plans N+2. The device waits between steps only for the executor's
 * hand-over, never for JavaScript.
 */
import { readResult, ResultTiming, type ResultViews } from './batch-layout.ts';
import type { BlockManager } from './block-manager.ts';
import type { EngineConfig } from './config.ts';
import type { DetokDispatcher } from './detok-dispatcher.ts';
import type { NativeExecutor } from './native.ts';
import { postprocessStep } from './postprocess.ts';
import { RngStream } from './rng.ts';
import type { Scheduler, SchedulerOutput } from './scheduler.ts';
import { StepBatchPacker, type PackedStep } from './step-batch.ts';
import type { StepTimingRing } from './step-timings.ts';
import type { StepTiming } from './types.ts';

/** What the loop drives; the engine owns them. */
export interface StepLoopParts {
  config: EngineConfig;
  executor: Pick<NativeExecutor, 'step'>;
  scheduler: Scheduler;
  blockManager: BlockManager;
  detok: DetokDispatcher;
  timings: StepTimingRing;
  eosTokenIds: ReadonlySet<number>;
  maxModelLen: number;
  vocabSize: number;
}

/** A step scheduled and packed, not yet launched. */
interface PlannedStep {
  schedule: SchedulerOutput;
  packed: PackedStep;
  startMs: number;
  scheduleMs: number;
  packMs: number;
}

/**
 * How a step reached the executor (StepTiming.handover): while another step ran, or when none
 * did, since `idleSinceMs` (the previous step's result, or this step's planning after a sleep).
 */
type Handover = { kind: 'ahead' } | { kind: 'afterStep' | 'afterSleep'; idleSinceMs: number };

/** A step handed to the executor; its result is awaited. */
interface LaunchedStep extends PlannedStep {
  /** Launch order, from 1 (Sequence.pendingTokenStep). */
  id: number;
  result: Promise<ArrayBuffer>;
  launchMs: number;
  handover: Handover['kind'];
  /** StepTiming.launchGapMs. */
  launchGapMs: number;
}

export class StepLoop {
  private readonly packer: StepBatchPacker;
  /** Steps postprocessed so far. */
  private stepCount = 0;
  private numLaunched = 0;
  /** performance.now() when the latest step's result came back. */
  private lastResolvedMs = 0;
  private isStopped = false;
  private wake: (() => void) | null = null;

  constructor(private readonly parts: StepLoopParts) {
    const config = parts.config;
    this.packer = new StepBatchPacker(config.blockSize, new RngStream(config.seed), config.model.eosTokenIds);
  }

  get numSteps(): number {
    return this.stepCount;
  }

  /** New work (or an abort, or stop()): a sleeping loop runs again. */
  wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Ends run() after the step in flight (call after aborting every request). */
  stop(): void {
    this.isStopped = true;
    this.wakeUp();
  }

  /**
   * Runs steps until stop(); sleeps while there is no work. Rejects on any executor or
   * bookkeeping error (the engine then dies).
   */
  async run(): Promise<void> {
    let inFlight: LaunchedStep | null = null;
    /** When the device last finished a step with none queued behind it; null after a sleep. */
    let idleSinceMs: number | null = null;
    while (!this.isStopped) {
      if (inFlight === null) {
        this.parts.scheduler.removeFinished();
        if (!this.parts.scheduler.hasWork) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
          idleSinceMs = null;
          continue;
        }
        const planned = this.planStep(-1);
        if (planned === null) throw new Error('the scheduler found no sequence it could run (KV cache too small for one sequence?)');
        inFlight = this.launch(
          planned,
          idleSinceMs === null ? { kind: 'afterSleep', idleSinceMs: planned.startMs } : { kind: 'afterStep', idleSinceMs },
        );
      }
      inFlight = await this.runInFlight(inFlight);
      idleSinceMs = this.lastResolvedMs;
    }
    // Stopped with a step handed over (its requests all aborted): let it end before the
    // executor is closed.
    if (inFlight !== null) await inFlight.result;
  }

  /**
   * Awaits `step`. With async scheduling, the next step is planned and handed to the executor
   * first (it runs the moment `step` ends), and `step` is postprocessed while it runs. Returns
   * the step now in flight, or null.
   */
  private async runInFlight(step: LaunchedStep): Promise<LaunchedStep | null> {
    let next: LaunchedStep | null = null;
    if (this.parts.config.asyncScheduling) {
      this.parts.scheduler.removeFinished();
      const planned = this.planStep(step.id);
      if (planned !== null) next = this.launch(planned, { kind: 'ahead' });
    }
    const resultBuffer = await step.result;
    const resolvedMs = performance.now();
    this.lastResolvedMs = resolvedMs;
    this.completeStep(step, readResult(resultBuffer, step.packed.shape, this.parts.vocabSize), resolvedMs);
    return next;
  }

  /** Schedules and packs a step; null when nothing can run. `inFlightStep`: see StepBatchPacker.pack. */
  private planStep(inFlightStep: number): PlannedStep | null {
    const startMs = performance.now();
    const schedule = this.parts.scheduler.schedule();
    if (schedule.rows.length === 0) return null;
    for (const row of schedule.rows) row.seq.firstScheduledMs ??= startMs;
    const packStartMs = performance.now();
    const packed = this.packer.pack(schedule.rows, inFlightStep);
    return { schedule, packed, startMs, scheduleMs: packStartMs - startMs, packMs: performance.now() - packStartMs };
  }

  /**
   * Hands `planned` to the executor. Its rows' tokens count as computed from now on, and the
   * tokens it samples are pending until its result is postprocessed (the next plan may use them).
   */
  private launch(planned: PlannedStep, handover: Handover): LaunchedStep {
    const id = ++this.numLaunched;
    const launchMs = performance.now();
    const result = this.parts.executor.step(planned.packed.views.buffer);
    // A step handed over ahead is awaited only after the one before it: if that one fails
    // first, the engine dies without awaiting this one, whose rejection must not go unhandled.
    result.catch(() => undefined);
    const rows = planned.schedule.rows;
    for (let s = 0; s < rows.length; s++) {
      const { seq, numNewTokens, isSampled } = rows[s];
      seq.numComputedTokens += numNewTokens;
      if (isSampled) {
        seq.pendingTokenStep = id;
        seq.pendingTokenRow = s;
      }
    }
    // Now, not after the step: a step planned while this one runs may reuse these blocks.
    this.parts.scheduler.cacheComputedBlocks(rows);
    const launchGapMs = handover.kind === 'ahead' ? 0 : launchMs - handover.idleSinceMs;
    return { ...planned, id, result, launchMs, handover: handover.kind, launchGapMs };
  }

  /** Postprocesses a finished step, dispatches detokenization and records its timing. */
  private completeStep(step: LaunchedStep, result: ResultViews, resolvedMs: number): void {
    const postStartMs = performance.now();
    const { rows, numTokens, numPrefillTokens } = step.schedule;
    const { sampled } = postprocessStep(rows, result, {
      step: step.id,
      eosTokenIds: this.parts.eosTokenIds,
      maxModelLen: this.parts.maxModelLen,
      maxTopLogprobs: step.packed.shape.maxTopLogprobs,
      nowMs: resolvedMs,
    });
    for (const seq of sampled) this.parts.detok.markDirty(seq);
    this.parts.scheduler.cacheComputedBlocks(rows);
    this.parts.scheduler.removeFinished();
    this.stepCount += 1;
    const dispatchStartMs = performance.now();
    this.parts.detok.flush(this.stepCount);
    const endMs = performance.now();
    const timing: StepTiming = {
      step: this.stepCount,
      startMs: step.startMs,
      scheduleMs: step.scheduleMs,
      packMs: step.packMs,
      launchGapMs: step.launchGapMs,
      handover: step.handover,
      executeMs: resolvedMs - step.launchMs,
      executorIdleMs: result.timings[ResultTiming.executorIdleMs],
      stepWallMs: result.timings[ResultTiming.totalMs],
      forwardMs: result.timings[ResultTiming.forwardMs],
      sampleMs: result.timings[ResultTiming.sampleMs],
      copyMs: result.timings[ResultTiming.copyMs],
      postprocessMs: dispatchStartMs - postStartMs,
      detokDispatchMs: endMs - dispatchStartMs,
      detokLagSteps: this.parts.detok.lagSteps,
      numSeqs: rows.length,
      numTokens,
      numPrefillTokens,
      numRunning: this.parts.scheduler.running.length,
      numWaiting: this.parts.scheduler.waiting.length,
      kvUsage: this.parts.blockManager.usage,
    };
    this.parts.timings.push(timing);
    try {
      this.parts.config.onStep?.(timing);
    } catch (err) {
      // A benchmark's callback must not take the engine down.
      process.emitWarning(`onStep callback failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
