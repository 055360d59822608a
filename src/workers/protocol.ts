/**
 * The worker pool's contract: the engine-facing API (DetokItem → DetokResult, tokenize, decode)
 * and the columnar wire messages between the pool (main thread) and its Piscina workers.
 *
 * Workers are stateless. Each sequence's detokenization state (DetokState) lives on the engine's
 * Sequence, travels with every task and comes back, updated, in the result.
 *
 * Token indexes in DetokState are ABSOLUTE indexes into the sequence's whole token list
 * (prompt tokens first, then output tokens), so the engine can pass `seq.tokenIds` as is.
 */

/** Incremental detokenization state of one sequence (HF/vLLM prefix/read offsets + stop holdback). */
export interface DetokState {
  /** Start of the decode window: tokens[prefixOffset..] are decoded each step. */
  prefixOffset: number;
  /** Text of tokens[prefixOffset..readOffset) has been emitted (or is in heldText). */
  readOffset: number;
  /** Tokens before this index have been fed to the detokenizer (the next task starts here). */
  numProcessedTokens: number;
  /** Decoded text held back because it could be the start of a stop string (never emitted yet). */
  heldText: string;
}

/** How many prompt tokens seed the decode window, so the first output token gets its leading space. */
export const INITIAL_PREFIX_TOKENS = 5;

/**
 * The state of a sequence whose prompt has just been tokenized: the last few prompt tokens form the
 * prefix (SentencePiece drops a leading space at the start of a decode; with prompt context it stays).
 */
export function initialDetokState(promptTokenIds: ArrayLike<number>): DetokState {
  const numPromptTokens = promptTokenIds.length;
  return {
    prefixOffset: Math.max(0, numPromptTokens - INITIAL_PREFIX_TOKENS),
    readOffset: numPromptTokens,
    numProcessedTokens: numPromptTokens,
    heldText: '',
  };
}

/** The per-request options the detokenizer needs (a subset of SamplingParams, same names). */
export interface DetokParams {
  stop: readonly string[];
  includeStopStrInOutput: boolean;
  skipSpecialTokens: boolean;
  spacesBetweenSpecialTokens: boolean;
}

/** One sequence's share of a detokenization step, as the engine hands it to the pool. */
export interface DetokItem {
  seqId: number;
  /** All token ids of the sequence so far (prompt + output); the pool copies the window it needs. */
  tokenIds: ArrayLike<number>;
  state: DetokState;
  params: DetokParams;
  /**
   * Absolute token index from which stop strings may fire (min_tokens): the engine passes
   * numPromptTokens + max(0, minTokens - 1). A stop string completed by an earlier token is ignored.
   */
  firstStopTokenIndex: number;
  /** The sequence finished for another reason (length, EOS, stop id): flush all held text. */
  isFinal: boolean;
}

/** A stop string found by a worker: the engine finishes the sequence with finish_reason 'stop'. */
export interface DetokStop {
  /** The stop string that matched (SamplingParams.stop entry). */
  stopString: string;
  /** Absolute index of the token that completed it; the engine drops the tokens after it. */
  tokenIndex: number;
}

/** One sequence's result, in the order of the items given to detokenizeStep(). */
export interface DetokResult {
  seqId: number;
  /** New text to emit (cut at a stop string; never ends inside a character unless isFinal). */
  text: string;
  /** The state to store on the Sequence for its next task. */
  state: DetokState;
  /** Set when a stop string matched; text then ends exactly before it (or after it, if included). */
  stop: DetokStop | null;
}

export interface TokenizerPoolOptions {
  /** A directory with tokenizer.json and tokenizer_config.json. */
  tokenizerDir: string;
  /** Worker threads; default: cores − 1, at least 1. */
  numWorkers?: number;
  /**
   * Smallest shard worth its own message (default 256): every message costs the main thread a
   * fixed ~50 µs (Piscina run + receive), while a worker decodes 256 sequences in a few ms; so a
   * step of N sequences uses min(numWorkers, N / 256) workers.
   */
  minItemsPerShard?: number;
  /** Honour DetokStepMessage.crashForTest in the workers (tests only). */
  crashForTest?: boolean;
}

/** What the engine and the server use of the pool (implemented by TokenizerPool in pool.ts). */
export interface TokenizerPoolApi {
  readonly numWorkers: number;
  /**
   * One columnar message per shard (at most one per worker; see minItemsPerShard), shards balanced
   * by window tokens, results in the items' order. At most one call in flight is the engine's rule.
   */
  detokenizeStep(items: readonly DetokItem[]): Promise<DetokResult[]>;
  tokenize(texts: readonly string[], addSpecialTokens: boolean): Promise<number[][]>;
  decode(tokenIds: readonly number[], options?: Partial<DecodeParams>): Promise<string>;
  close(): Promise<void>;
}

export interface DecodeParams {
  skipSpecialTokens: boolean;
  spacesBetweenSpecialTokens: boolean;
}

// ---- Wire messages (pool ⇄ worker) ---------------------------------------------------------

/** Bits of the flags column of a DetokStepMessage. */
export const DetokFlag = {
  skipSpecialTokens: 1,
  spacesBetweenSpecialTokens: 2,
  includeStopStrInOutput: 4,
  isFinal: 8,
} as const;

/** How a test asks a worker to die ('throw': the task fails; 'exit': the thread exits). */
export type CrashMode = 'throw' | 'exit';

/**
 * One shard of a step. All numbers travel in ONE Int32Array (transferred, so posting it costs no
 * copy), all held texts in ONE string, and each distinct stop list once: structured-cloning many
 * small strings and buffers is what costs the main thread time. Layout: wire-layout.ts.
 */
export interface DetokStepMessage {
  kind: 'detokenize';
  tokenizerDir: string;
  numItems: number;
  numWindowTokens: number;
  /** i32, see detokStepViews(): window offsets, state offsets, flags, stop list refs, held-text offsets, tokens. */
  columns: Int32Array;
  /** Held texts of all items, back to back (item i: heldText.slice(heldStarts[i], heldStarts[i+1])). */
  heldText: string;
  /** Distinct stop lists of the shard; item i uses stopLists[stopListIndexes[i]] (-1 = none). */
  stopLists: string[][];
  crashForTest?: CrashMode;
}

/** A shard's results: one Int32Array (transferred) and two strings. Layout: wire-layout.ts. */
export interface DetokStepReply {
  numItems: number;
  /** i32, see detokReplyViews(): new state offsets, stop index/token, text and held-text offsets. */
  columns: Int32Array;
  /** New texts of all items, back to back. */
  text: string;
  heldText: string;
  /** Time the worker spent on this shard, ms. */
  busyMs: number;
  /** worker_threads threadId of the worker that ran it. */
  threadId: number;
}

export interface TokenizeMessage {
  kind: 'tokenize';
  tokenizerDir: string;
  texts: string[];
  addSpecialTokens: boolean;
}

export interface TokenizeReply {
  /** i32 [total tokens], text i's ids are tokenIds[starts[i], starts[i+1]) */
  tokenIds: Int32Array;
  /** i32 [numTexts + 1] */
  starts: Int32Array;
}

export interface DecodeMessage {
  kind: 'decode';
  tokenizerDir: string;
  tokenIds: Int32Array;
  skipSpecialTokens: boolean;
  spacesBetweenSpecialTokens: boolean;
}

/**
 * Warm-up barrier: each worker takes one (a blocked worker takes no other task), counts itself in
 * `arrived` (a SharedArrayBuffer) and waits until numWorkers have: then all of them are running
 * with the tokenizer loaded.
 */
export interface BarrierMessage {
  kind: 'barrier';
  /** i32 [1], shared */
  arrived: Int32Array;
  numWorkers: number;
  timeoutMs: number;
}

export type WorkerMessage = DetokStepMessage | TokenizeMessage | DecodeMessage | BarrierMessage;

/** workerData given to every worker by the pool. */
export interface WorkerInit {
  isCrashForTestAllowed: boolean;
  /** Loaded when the worker starts, so the first step does not pay for it. */
  tokenizerDir: string;
}
