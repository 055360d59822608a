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
  /** Set on the first delta only. */
  promptTokenIds?: number[];
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
  /** From executor.step() call to its Promise resolving. */
  executeMs: number;
  /** Native timings reported in the result header. */
  forwardMs: number;
  sampleMs: number;
  copyMs: number;
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
