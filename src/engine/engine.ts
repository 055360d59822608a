/**
 * The engine: request bookkeeping around the step loop (step-loop.ts, which schedules, packs,
 * runs, postprocesses and hands tokens to the detokenizer pool). The loop sleeps while there is
 * no work and wakes on addRequest/abort/shutdown. An executor error fails every live request
 * and marks the engine dead; the process lives on.
 */
import type { EngineConfig } from './config.ts';
import { createEngineParts, type CreateEngineOptions } from './engine-factory.ts';
import { DetokDispatcher, type DetokSink } from './detok-dispatcher.ts';
import { checkRequest } from './request-checks.ts';
import { generateOutputs } from './generate.ts';
import { LiveRequests } from './live-requests.ts';
import { RequestStream } from './request-stream.ts';
import { BlockManager } from './block-manager.ts';
import { Scheduler } from './scheduler.ts';
import { Sequence } from './sequence.ts';
import { StepLoop } from './step-loop.ts';
import { StepTimingRing } from './step-timings.ts';
import {
  EngineInputError,
  type EngineClient,
  type EngineStats,
  type ModelSamplingDefaults,
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

export class Engine implements EngineClient {
  readonly config: EngineConfig;
  readonly modelName: string;
  readonly maxModelLen: number;
  readonly vocabSize: number;
  readonly chatTemplate: ChatTemplate | null;
  readonly samplingDefaults: ModelSamplingDefaults;
  readonly blockManager: BlockManager;
  readonly scheduler: Scheduler;
  private readonly executor: EngineParts['executor'];
  private readonly pool: EngineParts['pool'];
  private readonly loop: StepLoop;
  private readonly detok: DetokDispatcher;
  private readonly timings: StepTimingRing;
  private readonly eosTokenIds: ReadonlySet<number>;
  /** Requests not yet reported finished. */
  private readonly live = new LiveRequests();
  private nextSeqId = 0;
  private numGenerateCalls = 0;
  private isAlive = true;
  private isAccepting = true;
  private deathError: Error | null = null;
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
    this.samplingDefaults = config.generationConfig === 'auto' ? config.model.samplingDefaults : {};
    this.modelName = config.model.name;
    this.maxModelLen = config.maxModelLen;
    this.vocabSize = config.model.config.vocabSize;
    this.eosTokenIds = new Set(config.model.eosTokenIds);
    this.blockManager = new BlockManager(parts.executor.numBlocks, config.blockSize, config.enablePrefixCaching);
    this.scheduler = new Scheduler(config, this.blockManager);
    this.detok = new DetokDispatcher(parts.pool, this.detokSink());
    this.timings = new StepTimingRing(config.stepTimingsCapacity);
    this.loop = new StepLoop({
      config,
      executor: parts.executor,
      scheduler: this.scheduler,
      blockManager: this.blockManager,
      detok: this.detok,
      timings: this.timings,
      eosTokenIds: this.eosTokenIds,
      maxModelLen: this.maxModelLen,
      vocabSize: this.vocabSize,
    });
    // Any error in the loop (executor, bookkeeping) ends it, never the process.
    this.loopDone = this.loop.run().catch((err: unknown) => this.die(err instanceof Error ? err : new Error(String(err))));
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
    const frozenParams = Object.freeze({
      ...params,
      stop: [...params.stop],
      stopTokenIds: [...params.stopTokenIds],
      // Copied: the packer builds its list from it once (step-batch.ts), so later edits must not reach it.
      logitBias: params.logitBias && Object.freeze({ ...params.logitBias }),
    });
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
    return this.loop.numSteps;
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
    this.loop.stop();
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
    this.loop.wakeUp();
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

