/**
 * Public types of the engine's library API (src/engine/engine.ts), shared by the server,
 * the benchmarks and the tests.
 */

/** Per-request sampling parameters, vLLM's names in camelCase, already validated. */
export interface SamplingParams {
  /** Tokens to generate at most. */
  maxTokens: number;
  /** Tokens to generate at least before EOS / stop ids / stop strings may end it. */
  minTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 or -1 = off. */
  topK: number;
  minP: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  /** Seed of this request's own random stream; undefined = the engine's stream. */
  seed?: number;
  /** Strings that end the output (matched across token boundaries by the workers). */
  stop: string[];
  stopTokenIds: number[];
  /**
   * OpenAI's logit_bias: token id → value in [-100, 100] added to that token's logit before
   * penalties and temperature (vLLM's order). Absent or empty = none.
   */
  logitBias?: Readonly<Record<number, number>>;
  includeStopStrInOutput: boolean;
  ignoreEos: boolean;
  /** Top-N alternatives with logprobs for each generated token (0..20); null = no logprobs. */
  logprobs: number | null;
  skipSpecialTokens: boolean;
  spacesBetweenSpecialTokens: boolean;
}

export const DEFAULT_SAMPLING_PARAMS: Readonly<SamplingParams> = Object.freeze({
  maxTokens: 16,
  minTokens: 0,
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
  seed: undefined,
  stop: [],
  stopTokenIds: [],
  includeStopStrInOutput: false,
  ignoreEos: false,
  logprobs: null,
  skipSpecialTokens: true,
  spacesBetweenSpecialTokens: true,
});

export type FinishReason = 'stop' | 'length' | 'abort';

/** A prompt as text (tokenized in the worker pool) or as token ids. */
export type PromptInput = string | { promptTokenIds: number[] };

export interface TokenLogprob {
  tokenId: number;
  logprob: number;
  /** Best alternatives, best first (length = SamplingParams.logprobs). */
  top: { tokenId: number; logprob: number }[];
}

/** What a request's stream yields: the new part of its output since the last delta. */
export interface RequestDelta {
  requestId: string;
  /** New text (already cut at a stop string; never ends inside a UTF-8 character). */
  text: string;
  /** New token ids whose text is in `text` or held back. */
  tokenIds: number[];
  /** One entry per id in tokenIds when logprobs were asked for. */
  logprobs?: TokenLogprob[];
  /** Set on the last delta only. */
  finishReason?: FinishReason;
  /** The stop string or stop token id that ended it, when finishReason is 'stop'. */
  stopReason?: string | number;
  /** Set on the last delta only. */
  usage?: { promptTokens: number; completionTokens: number };
  /** Set on the last delta only: when the request passed each stage (for metrics). */
  timing?: RequestTiming;
  /** Set on the first delta only. */
  promptTokenIds?: number[];
}

/**
 * A request's passage through the engine, performance.now() stamps in ms: queued at arrival,
 * first scheduled, first token sampled, finished. null: it never got there (an abort).
 */
export interface RequestTiming {
  arrivalMs: number;
  firstScheduledMs: number | null;
  firstTokenMs: number | null;
  finishedMs: number | null;
}

/** A whole finished request, as generate() returns it. */
export interface RequestOutput {
  requestId: string;
  promptTokenIds: number[];
  text: string;
  tokenIds: number[];
  logprobs?: TokenLogprob[];
  finishReason: FinishReason;
  stopReason?: string | number;
}

/** Cheap per-step timings, kept in a ring for metrics and benchmarks. */
export interface StepTiming {
  step: number;
  /** Wall-clock start, ms (performance.now()). */
  startMs: number;
  scheduleMs: number;
  packMs: number;
  /**
   * Host time just before this step's launch during which the executor had no step: from the
   * previous step's result (or, after the loop slept, from this step's schedule) to the launch.
   * In a synchronous loop that is the previous step's postprocessing and detokenization
   * dispatch plus this step's schedule and pack; 0 for a step handed over ahead.
   */
  launchGapMs: number;
  /**
   * How the step reached the executor: 'ahead', while the previous step ran (async
   * scheduling); 'afterStep', after the previous one's result came back; 'afterSleep', when
   * the loop had no work before it.
   */
  handover: 'ahead' | 'afterStep' | 'afterSleep';
  /**
   * From executor.step() call to its Promise resolving (for a step handed over ahead, this
   * includes the wait for the step before it).
   */
  executeMs: number;
  /**
   * How long the executor ran no step before this one started (native, ResultTiming): the
   * device's idle time between steps as the host sees it.
   */
  executorIdleMs: number;
  /** Native timings reported in the result header: device time of each part (wall time on the CPU). */
  forwardMs: number;
  sampleMs: number;
  copyMs: number;
  /** Host wall time of the native step, from its start to its results being ready. */
  stepWallMs: number;
  postprocessMs: number;
  detokDispatchMs: number;
  /** How many steps the detokenizer's applied results trail the step loop. */
  detokLagSteps: number;
  numSeqs: number;
  numTokens: number;
  numPrefillTokens: number;
  numRunning: number;
  numWaiting: number;
  kvUsage: number;
}

import type { NativeModelConfig, NativeWeights } from './native.ts';
import type { ChatTemplate } from './tokenizer-config.ts';

/**
 * Sampling defaults a model's generation_config.json sets (vLLM's --generation-config auto):
 * used for a request that leaves the field out. maxTokens (max_new_tokens) caps every request.
 */
export interface ModelSamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  maxTokens?: number;
}

/** A model ready to hand to the executor: from a HF directory (model-loader.ts) or a dummy preset. */
export interface ModelSource {
  /** The HF directory, or null for a dummy preset. */
  dir: string | null;
  /** Name shown by /v1/models when --served-model-name is not given. */
  name: string;
  config: NativeModelConfig;
  weights: NativeWeights;
  /** Directory holding tokenizer.json and tokenizer_config.json. */
  tokenizerDir: string;
  eosTokenIds: number[];
  bosTokenId: number | null;
  /** From config.json (max_position_embeddings, or a sliding window below it), before --max-model-len. */
  maxModelLen: number;
  /** Where maxModelLen comes from, for messages (e.g. "max_position_embeddings=32768"). */
  maxModelLenSource: string;
  /** From generation_config.json ({} when it sets none, or for a dummy preset). */
  samplingDefaults: ModelSamplingDefaults;
}

/** Load and occupancy figures for /metrics and /health. */
export interface EngineStats {
  numRunning: number;
  numWaiting: number;
  /** Fraction of KV blocks in use, 0..1. */
  kvUsage: number;
  numBlocks: number;
  numFreeBlocks: number;
  /** False once the step loop has died (an executor error): /health answers 503. */
  isAlive: boolean;
  /**
   * Counters since start (vLLM v1's): sequences preempted (by recompute) to free KV blocks;
   * prefix-cache queries, in tokens (every token of a sequence admitted with the cache on,
   * a preempted one again when it comes back); hits, in tokens (those found in the cache).
   */
  numPreemptions: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
}

/** What the server needs of the engine (implemented by Engine in engine.ts). */
export interface EngineClient {
  readonly modelName: string;
  readonly maxModelLen: number;
  readonly vocabSize: number;
  /**
   * Queues one request. Rejects before anything is queued with EngineInputError when the
   * request cannot run (prompt + maxTokens over maxModelLen, ids out of vocabulary...).
   * The iterable yields deltas until one carries finishReason.
   */
  addRequest(requestId: string, prompt: PromptInput, params: SamplingParams): Promise<AsyncIterable<RequestDelta>>;
  /** Aborts a request; its blocks are freed at the next step boundary. No-op if unknown. */
  abort(requestId: string): void;
  /** Tokenizes in the worker pool. */
  tokenize(text: string, addSpecialTokens: boolean): Promise<number[]>;
  detokenize(tokenIds: number[]): Promise<string>;
  /** The chat template from tokenizer_config.json, if any, and its special tokens. */
  readonly chatTemplate: ChatTemplate | null;
  /** Defaults for fields a request leaves out (the model's generation config; {} with --generation-config vllm). */
  readonly samplingDefaults: ModelSamplingDefaults;
  stats(): EngineStats;
  /** Stops accepting requests, lets running ones finish (up to timeoutMs), then frees everything. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** A request the engine refuses before queuing it; the server answers 400 with this message. */
export class EngineInputError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'EngineInputError';
  }
}
