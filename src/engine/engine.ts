/**
 * The engine: request bookkeeping around the step loop. One step, on the main thread:
 *   schedule → pack → launch executor.step() → await it → postprocess (one loop over the
 *   batch) → hand the new tokens to the detokenizer pool, NOT awaited (detok-dispatcher.ts).
 * With async scheduling (the default, vLLM's --async-scheduling), step N+1 is scheduled,
 * packed and handed to the executor while step N runs, as if every row N samples had its
 * token already (a pending-token reference the executor fills in when N ends). The executor
 * starts N+1 the moment N ends; meanwhile the loop postprocesses N, dispatches its
 * detokenization and plans N+2. The device waits between steps only for the executor's
 * hand-over, never for JavaScript.
 * The loop sleeps while there is no work and wakes on addRequest/abort/shutdown. An
 * executor error fails every live request and marks the engine dead; the process lives on.
 */
import { readResult, ResultTiming, type ResultViews } from './batch-layout.ts';
import type { EngineConfig } from './config.ts';
import { createEngineParts, type CreateEngineOptions } from './engine-factory.ts';
import { DetokDispatcher, type DetokSink } from './detok-dispatcher.ts';
import { postprocessStep } from './postprocess.ts';
import { checkRequest } from './request-checks.ts';
import { generateOutputs } from './generate.ts';
import { LiveRequests } from './live-requests.ts';
import { RequestStream } from './request-stream.ts';
import { RngStream } from './rng.ts';
import { BlockManager } from './block-manager.ts';
import { Scheduler, type SchedulerOutput } from './scheduler.ts';
import { Sequence } from './sequence.ts';
import { StepBatchPacker, type PackedStep } from './step-batch.ts';
import { StepTimingRing } from './step-timings.ts';
import {
  EngineInputError,
  type EngineClient,
  type EngineStats,
  type PromptInput,
  type RequestDelta,
  type RequestOutput,
  type SamplingParams,
  type StepTiming,
} from './types.ts';
import type { ChatTemplate } from './tokenizer-config.ts';
import type { NativeExecutor } from './native.ts';
import type { TokenizerPoolApi } from '../workers/protocol.ts';

/** What the engine runs on: built by Engine.create (engine-factory.ts), or by tests with fakes. */
export interface EngineParts {
  config: EngineConfig;
  executor: Pick<NativeExecutor, 'step' | 'numBlocks' | 'close'>;
  pool: Pick<TokenizerPoolApi, 'detokenizeStep' | 'tokenize' | 'decode' | 'close'>;
  chatTemplate: ChatTemplate | null;
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

export class Engine implements EngineClient {
  readonly config: EngineConfig;
  readonly modelName: string;
  readonly maxModelLen: number;
  readonly vocabSize: number;
  readonly chatTemplate: ChatTemplate | null;
  readonly blockManager: BlockManager;
  readonly scheduler: Scheduler;
  private readonly executor: EngineParts['executor'];
  private readonly pool: EngineParts['pool'];
  private readonly packer: StepBatchPacker;
  private readonly detok: DetokDispatcher;
  private readonly timings: StepTimingRing;
  private readonly eosTokenIds: ReadonlySet<number>;
  /** Requests not yet reported finished. */
  private readonly live = new LiveRequests();
  private nextSeqId = 0;
  private numGenerateCalls = 0;
  private stepCount = 0;
  private numLaunched = 0;
  /** performance.now() when the latest step's result came back. */
  private lastResolvedMs = 0;
  private isAlive = true;
  private isAccepting = true;
  private isStopped = false;
  private deathError: Error | null = null;
  private wake: (() => void) | null = null;
  private readonly loopDone: Promise<void>;
  private shutdownDone: Promise<void> | null = null;

  /** Validates options, loads the executor and the tokenizer pool (see engine-factory.ts). */
  static async create(options: CreateEngineOptions): Promise<Engine> {
    return new Engine(await createEngineParts(options));
  }

  constructor(parts: EngineParts) {
    const config = parts.config;
    this.config = config;
    this.executor = parts.executor;
    this.pool = parts.pool;
    this.chatTemplate = parts.chatTemplate;
    this.modelName = config.model.name;
    this.maxModelLen = config.maxModelLen;
    this.vocabSize = config.model.config.vocabSize;
    this.eosTokenIds = new Set(config.model.eosTokenIds);
    this.blockManager = new BlockManager(parts.executor.numBlocks, config.blockSize, config.enablePrefixCaching);
    this.scheduler = new Scheduler(config, this.blockManager);
    this.packer = new StepBatchPacker(config.blockSize, new RngStream(config.seed), config.model.eosTokenIds);
    this.detok = new DetokDispatcher(parts.pool, this.detokSink());
    this.timings = new StepTimingRing(config.stepTimingsCapacity);
    this.loopDone = this.runLoop();
  }

  async addRequest(requestId: string, prompt: PromptInput, params: SamplingParams): Promise<AsyncIterable<RequestDelta>> {
    const arrivalMs = performance.now();
    this.checkAccepting(requestId);
    let promptTokenIds: number[];
    let isAbortedEarly = false;
    if (typeof prompt === 'string') {
      // An abort() during tokenization is remembered (the client may hang up meanwhile).
      this.live.startTokenizing(requestId);
      try {
        promptTokenIds = await this.tokenize(prompt, true);
      } finally {
        isAbortedEarly = this.live.endTokenizing(requestId);
      }
    } else {
      promptTokenIds = prompt.promptTokenIds;
    }
    this.checkAccepting(requestId);
    checkRequest(promptTokenIds, params, { maxModelLen: this.maxModelLen, vocabSize: this.vocabSize, maxLogprobs: this.config.maxLogprobs });
    const frozenParams = Object.freeze({ ...params, stop: [...params.stop], stopTokenIds: [...params.stopTokenIds] });
    const seq = new Sequence(this.nextSeqId++, requestId, promptTokenIds, frozenParams, arrivalMs);
    const stream = new RequestStream(requestId, () => this.abort(requestId));
    this.live.add(seq, stream);
    this.scheduler.add(seq);
    if (isAbortedEarly) this.abort(requestId);
    this.wakeLoop();
    return stream;
  }

  /**
   * Aborts a request still generating: its stream ends at once with finishReason 'abort'.
   * A request whose finish is already decided (the step loop or a stop string finished it;
   * only its last delta still waits for the detokenizer) keeps that finish: its last delta
   * comes as usual (or is dropped, with the request, if the consumer has left).
   */
  abort(requestId: string): void {
    if (this.live.abortTokenizing(requestId)) return;
    const seq = this.live.get(requestId);
    if (!seq || seq.isReported) return;
    // Blocks are freed by the loop between launches (scheduler.removeFinished says why that is safe).
    if (!seq.abort(performance.now())) return;
    // Every token generated so far goes out, those the detokenizer has not reached too (their
    // text is never produced): usage counts what the engine generated, as vLLM's does, and
    // the deltas' tokenIds still add up to it. A token of a step still in flight is dropped
    // by postprocessing, so it is neither in the output nor in the usage.
    this.live.deliver(seq, '', seq.numTokens, true);
    this.wakeLoop();
  }

  /**
   * Offline batch: runs every prompt (with its own params, or one set for all) to the end.
   * Outputs are in prompt order.
   */
  generate(prompts: PromptInput[], params: Partial<SamplingParams> | Partial<SamplingParams>[] = {}): Promise<RequestOutput[]> {
    return generateOutputs(this, `generate-${this.numGenerateCalls++}`, prompts, params);
  }

  async tokenize(text: string, addSpecialTokens: boolean): Promise<number[]> {
    const [ids] = await this.pool.tokenize([text], addSpecialTokens);
    return ids;
  }

  detokenize(tokenIds: number[]): Promise<string> {
    return this.pool.decode(tokenIds);
  }

  stats(): EngineStats {
    return {
      numRunning: this.scheduler.running.length,
      numWaiting: this.scheduler.waiting.length,
      kvUsage: this.blockManager.usage,
      numBlocks: this.blockManager.numBlocks,
      numFreeBlocks: this.blockManager.numFree,
      isAlive: this.isAlive,
      numPreemptions: this.scheduler.numPreemptions,
      prefixCacheQueries: this.blockManager.numQueriedTokens,
      // Hits are always whole blocks (the scheduler counts them as it admits a sequence).
      prefixCacheHits: this.blockManager.numHitBlocks * this.blockManager.blockSize,
    };
  }

  /** The most recent step timings, oldest first. */
  stepTimings(limit?: number): StepTiming[] {
    return this.timings.recent(limit);
  }

  get numSteps(): number {
    return this.stepCount;
  }

  get numPreemptions(): number {
    return this.scheduler.numPreemptions;
  }

  /** Requests not yet finished and reported. */
  get numLiveRequests(): number {
    return this.live.size;
  }

  /** Idempotent: a later call waits for the first one's shutdown. */
  shutdown(timeoutMs: number): Promise<void> {
    this.shutdownDone ??= this.runShutdown(timeoutMs);
    return this.shutdownDone;
  }

  private async runShutdown(timeoutMs: number): Promise<void> {
    this.isAccepting = false;
    const deadline = performance.now() + timeoutMs;
    while (this.live.size > 0 && this.isAlive && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(10, Math.max(0, deadline - performance.now()))));
    }
    for (const seq of this.live.all()) this.abort(seq.requestId);
    this.isStopped = true;
    this.wakeLoop();
    await this.loopDone;
    this.scheduler.removeFinished();
    await this.detok.drain();
    await this.pool.close();
    this.executor.close();
  }

  private checkAccepting(requestId: string): void {
    if (!this.isAlive) throw new Error(`the engine is dead: ${this.deathError?.message ?? 'unknown error'}`);
    if (!this.isAccepting) throw new Error('the engine is shutting down');
    if (this.live.has(requestId)) throw new EngineInputError(`request id '${requestId}' is already in use`, 'request_id');
  }

  private wakeLoop(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async runLoop(): Promise<void> {
    try {
      let inFlight: LaunchedStep | null = null;
      /** When the device last finished a step with none queued behind it; null after a sleep. */
      let idleSinceMs: number | null = null;
      while (!this.isStopped) {
        if (inFlight === null) {
          this.scheduler.removeFinished();
          if (!this.scheduler.hasWork) {
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
    } catch (err) {
      // Any error here (executor, bookkeeping) ends the loop, never the process.
      this.die(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Awaits `step`. With async scheduling, the next step is planned and handed to the executor
   * first (it runs the moment `step` ends), and `step` is postprocessed while it runs. Returns
   * the step now in flight, or null.
   */
  private async runInFlight(step: LaunchedStep): Promise<LaunchedStep | null> {
    let next: LaunchedStep | null = null;
    if (this.config.asyncScheduling) {
      this.scheduler.removeFinished();
      const planned = this.planStep(step.id);
      if (planned !== null) next = this.launch(planned, { kind: 'ahead' });
    }
    const resultBuffer = await step.result;
    const resolvedMs = performance.now();
    this.lastResolvedMs = resolvedMs;
    this.completeStep(step, readResult(resultBuffer, step.packed.shape, this.vocabSize), resolvedMs);
    return next;
  }

  /** Schedules and packs a step; null when nothing can run. `inFlightStep`: see StepBatchPacker.pack. */
  private planStep(inFlightStep: number): PlannedStep | null {
    const startMs = performance.now();
    const schedule = this.scheduler.schedule();
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
    const result = this.executor.step(planned.packed.views.buffer);
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
    this.scheduler.cacheComputedBlocks(rows);
    const launchGapMs = handover.kind === 'ahead' ? 0 : launchMs - handover.idleSinceMs;
    return { ...planned, id, result, launchMs, handover: handover.kind, launchGapMs };
  }

  /** Postprocesses a finished step, dispatches detokenization and records its timing. */
  private completeStep(step: LaunchedStep, result: ResultViews, resolvedMs: number): void {
    const postStartMs = performance.now();
    const { rows, numTokens, numPrefillTokens } = step.schedule;
    const { sampled } = postprocessStep(rows, result, {
      step: step.id,
      eosTokenIds: this.eosTokenIds,
      maxModelLen: this.maxModelLen,
      maxTopLogprobs: step.packed.shape.maxTopLogprobs,
      nowMs: resolvedMs,
    });
    for (const seq of sampled) this.detok.markDirty(seq);
    this.scheduler.cacheComputedBlocks(rows);
    this.scheduler.removeFinished();
    this.stepCount += 1;
    const dispatchStartMs = performance.now();
    this.detok.flush(this.stepCount);
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
      detokLagSteps: this.detok.lagSteps,
      numSeqs: rows.length,
      numTokens,
      numPrefillTokens,
      numRunning: this.scheduler.running.length,
      numWaiting: this.scheduler.waiting.length,
      kvUsage: this.blockManager.usage,
    };
    this.timings.push(timing);
    try {
      this.config.onStep?.(timing);
    } catch (err) {
      // A benchmark's callback must not take the engine down.
      process.emitWarning(`onStep callback failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private detokSink(): DetokSink {
    return {
      deliver: (seq, text, numCoveredTokens, isLast) => this.live.deliver(seq, text, numCoveredTokens, isLast),
      fail: (seqs, error) => {
        for (const seq of seqs) this.live.fail(seq, new Error(`detokenization failed: ${error.message}`, { cause: error }));
        this.wakeLoop();
      },
    };
  }

  /** An executor error: every live request fails, the engine stops taking new ones. */
  private die(error: Error): void {
    this.isAlive = false;
    this.deathError = error;
    const failure = new Error(`engine step failed: ${error.message}`, { cause: error });
    for (const seq of this.live.all()) this.live.fail(seq, failure);
    try {
      this.scheduler.removeFinished();
    } catch {
      // The bookkeeping itself may be what failed; the engine is dead either way.
    }
  }
}

