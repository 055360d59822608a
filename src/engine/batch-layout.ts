/**
 * The packed step batch and the packed step result: the one contract between the
 * engine (TypeScript) and the native executor (C++, CPU and CUDA backends).
 * Mirrored by native/src/batch_layout.h: change both together.
 *
 * Every element is 4 bytes (int32 / uint32 / float32, little-endian), so a batch is
 * one ArrayBuffer that crosses into native code with no per-sequence calls.
 *
 * STEP BATCH = header int32[16], then these columns, in this order, back to back:
 *   inputIds          i32 [numTokens]        token ids of every scheduled token, sequences back to back
 *   positions         i32 [numTokens]        absolute position of each token in its sequence
 *   slotMapping       i32 [numTokens]        KV slot = block * blockSize + offset for each token
 *   queryStartLoc     i32 [numSeqs + 1]      cumulative token offsets: seq s owns [qsl[s], qsl[s+1])
 *   seqLens           i32 [numSeqs]          context length of seq s after this step (cached + new)
 *   blockTables       i32 [numSeqs * maxBlocksPerSeq]  physical block ids, row-major, unused = 0
 *   isSampled         i32 [numSeqs]          1: sample a token after the last token of s; 0: a
 *                                            prefill chunk that does not reach the prompt's end
 *   temperature       f32 [numSeqs]          0 = greedy
 *   topK              i32 [numSeqs]          <= 0 or >= vocab = off
 *   topP              f32 [numSeqs]          1 = off
 *   minP              f32 [numSeqs]          0 = off
 *   presencePenalty   f32 [numSeqs]          0 = off; over output tokens (as vLLM)
 *   frequencyPenalty  f32 [numSeqs]          0 = off; over output tokens
 *   repetitionPenalty f32 [numSeqs]          1 = off; over prompt and output tokens
 *   rngKeyLo          u32 [numSeqs]          64-bit key of this draw (the engine derives it from the
 *   rngKeyHi          u32 [numSeqs]          request's seed and output index, so a seeded request
 *                                            draws the same tokens whatever else is in the batch)
 *   numLogprobs       i32 [numSeqs]          top-N alternatives wanted for s (0..maxTopLogprobs)
 *   penaltyOffsets    i32 [numSeqs + 1]      row s's history is penaltyTokens[po[s], po[s+1])
 *   penaltyPromptLens i32 [numSeqs]          the first penaltyPromptLens[s] of it are prompt tokens
 *   penaltyTokens     i32 [numPenaltyTokens] prompt + output tokens, only for rows with penalties
 *   logitAdjustOffsets i32 [numSeqs + 1]     row s's adjustments are entries [lo[s], lo[s+1]) of the
 *                                            two columns below
 *   logitAdjustTokens  i32 [numLogitAdjusts] token id whose logit entry i adjusts; distinct within a row
 *   logitAdjustValues  f32 [numLogitAdjusts] added to that raw logit before penalties and temperature
 *                                            (vLLM's order). -inf bans the id (min_tokens: the stop ids
 *                                            and, unless ignore_eos, the EOS ids); a finite value is a
 *                                            logit_bias. Never NaN or +inf
 *
 * PENDING TOKENS (async scheduling): when header[hasPendingTokens] is 1, a negative entry of
 * inputIds or penaltyTokens is pendingTokenRef(r): the token the previous step (the one handed
 * to the executor just before this batch) samples in its row r. The executor fills it in
 * when that step ends, right before this one starts.
 *
 * STEP RESULT = header f32[8] (timings, ms), then:
 *   sampledTokenIds   i32 [numSeqs]          -1 where isSampled = 0
 *   sampledLogprobs   f32 [numSeqs]          log-softmax of the processed logits (after penalties
 *                                            and temperature, before top-k/top-p/min-p masking)
 *   topTokenIds       i32 [numSeqs * maxTopLogprobs]  best first; -1 past numLogprobs[s]
 *   topLogprobs       f32 [numSeqs * maxTopLogprobs]
 *   logits            f32 [numLogitRows * vocabSize]  only when logitsMode != 0 (tests, checks):
 *                     logitsMode 1: one row per sequence (its last token), raw model output;
 *                     logitsMode 2: one row per token.
 */

export const BATCH_MAGIC = 0x53504e31; // "SPN1"
export const BATCH_HEADER_INTS = 16;
export const RESULT_HEADER_FLOATS = 8;

/** Header slots of the step batch (int32 indices). */
export const BatchHeader = {
  magic: 0,
  numSeqs: 1,
  numTokens: 2,
  maxBlocksPerSeq: 3,
  maxTopLogprobs: 4,
  logitsMode: 5,
  numPenaltyTokens: 6,
  numLogitAdjusts: 7,
  /** 1 when inputIds/penaltyTokens hold pending-token references (see above). */
  hasPendingTokens: 8,
} as const;

/** The inputIds/penaltyTokens entry for the token the previous step samples in its row `row`. */
export function pendingTokenRef(row: number): number {
  return -1 - row;
}

/** The previous step's row a pending-token reference stands for (native/src/batch_layout.h PendingTokenRow). */
export function pendingTokenRow(entry: number): number {
  return -1 - entry;
}

/** Header slots of the step result (float32 indices), all in milliseconds. */
export const ResultTiming = {
  /** Forward pass (device time on the GPU, wall time on the CPU). */
  forwardMs: 0,
  /** Batched sampling. */
  sampleMs: 1,
  /** The one device-to-host copy (0 on the CPU). */
  copyMs: 2,
  /** From the native step's start to its results being ready. */
  totalMs: 3,
  /** Not a time: device-to-host copies the step made (CUDA: 1, the result slab; CPU: 0). */
  deviceToHostCopies: 4,
  /** Not a time: 1 when the forward pass replayed a captured CUDA graph (decode-only steps). */
  cudaGraphReplayed: 5,
  /**
   * How long the executor ran no step before this one started: from the previous step's end
   * (0 for the first). With a step handed over ahead (async scheduling), only the hand-over.
   */
  executorIdleMs: 6,
} as const;

export type LogitsMode = 0 | 1 | 2;

export interface BatchShape {
  numSeqs: number;
  numTokens: number;
  maxBlocksPerSeq: number;
  maxTopLogprobs: number;
  logitsMode: LogitsMode;
  numPenaltyTokens: number;
  /** Length of logitAdjustTokens/Values; absent = 0 (a batch that adjusts no logit). */
  numLogitAdjusts?: number;
}

type ColumnKind = 'i32' | 'u32' | 'f32';
type Length = (s: BatchShape) => number;

const perToken: Length = (s) => s.numTokens;
const perSeq: Length = (s) => s.numSeqs;
const perSeqPlusOne: Length = (s) => s.numSeqs + 1;

/** Batch columns in layout order. */
export const BATCH_COLUMNS = [
  ['inputIds', 'i32', perToken],
  ['positions', 'i32', perToken],
  ['slotMapping', 'i32', perToken],
  ['queryStartLoc', 'i32', perSeqPlusOne],
  ['seqLens', 'i32', perSeq],
  ['blockTables', 'i32', (s: BatchShape) => s.numSeqs * s.maxBlocksPerSeq],
  ['isSampled', 'i32', perSeq],
  ['temperature', 'f32', perSeq],
  ['topK', 'i32', perSeq],
  ['topP', 'f32', perSeq],
  ['minP', 'f32', perSeq],
  ['presencePenalty', 'f32', perSeq],
  ['frequencyPenalty', 'f32', perSeq],
  ['repetitionPenalty', 'f32', perSeq],
  ['rngKeyLo', 'u32', perSeq],
  ['rngKeyHi', 'u32', perSeq],
  ['numLogprobs', 'i32', perSeq],
  ['penaltyOffsets', 'i32', perSeqPlusOne],
  ['penaltyPromptLens', 'i32', perSeq],
  ['penaltyTokens', 'i32', (s: BatchShape) => s.numPenaltyTokens],
  ['logitAdjustOffsets', 'i32', perSeqPlusOne],
  ['logitAdjustTokens', 'i32', (s: BatchShape) => s.numLogitAdjusts ?? 0],
  ['logitAdjustValues', 'f32', (s: BatchShape) => s.numLogitAdjusts ?? 0],
] as const satisfies ReadonlyArray<readonly [string, ColumnKind, Length]>;

type ColumnSpec = (typeof BATCH_COLUMNS)[number];
type ArrayOf<K extends ColumnKind> = K extends 'f32' ? Float32Array : K extends 'u32' ? Uint32Array : Int32Array;

/** Typed-array views over every column of one packed batch. */
export type BatchViews = { [C in ColumnSpec as C[0]]: ArrayOf<C[1]> } & { header: Int32Array; buffer: ArrayBuffer };

function viewOf(kind: ColumnKind, buffer: ArrayBuffer, byteOffset: number, length: number): Int32Array | Uint32Array | Float32Array {
  if (kind === 'f32') return new Float32Array(buffer, byteOffset, length);
  if (kind === 'u32') return new Uint32Array(buffer, byteOffset, length);
  return new Int32Array(buffer, byteOffset, length);
}

export function batchByteLength(shape: BatchShape): number {
  let ints = BATCH_HEADER_INTS;
  for (const [, , length] of BATCH_COLUMNS) ints += length(shape);
  return ints * 4;
}

/**
 * Allocates one batch buffer for `shape`, writes its header, and returns views over
 * every column (zero-filled). Pass an existing buffer of at least batchByteLength(shape)
 * bytes to reuse it.
 */
export function createBatch(shape: BatchShape, reuse?: ArrayBuffer): BatchViews {
  const byteLength = batchByteLength(shape);
  const buffer = reuse && reuse.byteLength >= byteLength ? reuse : new ArrayBuffer(byteLength);
  const header = new Int32Array(buffer, 0, BATCH_HEADER_INTS);
  header.fill(0);
  header[BatchHeader.magic] = BATCH_MAGIC;
  header[BatchHeader.numSeqs] = shape.numSeqs;
  header[BatchHeader.numTokens] = shape.numTokens;
  header[BatchHeader.maxBlocksPerSeq] = shape.maxBlocksPerSeq;
  header[BatchHeader.maxTopLogprobs] = shape.maxTopLogprobs;
  header[BatchHeader.logitsMode] = shape.logitsMode;
  header[BatchHeader.numPenaltyTokens] = shape.numPenaltyTokens;
  header[BatchHeader.numLogitAdjusts] = shape.numLogitAdjusts ?? 0;
  const views: Record<string, Int32Array | Uint32Array | Float32Array | ArrayBuffer> = { header, buffer };
  let offset = BATCH_HEADER_INTS * 4;
  for (const [name, kind, length] of BATCH_COLUMNS) {
    const n = length(shape);
    const view = viewOf(kind, buffer, offset, n);
    view.fill(0);
    views[name] = view;
    offset += n * 4;
  }
  return views as unknown as BatchViews;
}

export interface ResultViews {
  timings: Float32Array;
  sampledTokenIds: Int32Array;
  sampledLogprobs: Float32Array;
  topTokenIds: Int32Array;
  topLogprobs: Float32Array;
  /** Empty unless the batch asked for logits. */
  logits: Float32Array;
}

export function numLogitRows(shape: Pick<BatchShape, 'numSeqs' | 'numTokens' | 'logitsMode'>): number {
  if (shape.logitsMode === 1) return shape.numSeqs;
  if (shape.logitsMode === 2) return shape.numTokens;
  return 0;
}

export function resultByteLength(shape: BatchShape, vocabSize: number): number {
  const n = shape.numSeqs;
  return 4 * (RESULT_HEADER_FLOATS + 2 * n + 2 * n * shape.maxTopLogprobs + numLogitRows(shape) * vocabSize);
}

/** Views over a step result returned by the native executor. */
export function readResult(buffer: ArrayBuffer, shape: BatchShape, vocabSize: number): ResultViews {
  const n = shape.numSeqs;
  const k = shape.maxTopLogprobs;
  const expected = resultByteLength(shape, vocabSize);
  if (buffer.byteLength < expected) {
    throw new Error(`step result is ${buffer.byteLength} bytes, expected ${expected}`);
  }
  let offset = 0;
  const take = <T>(make: (o: number) => T, count: number): T => {
    const view = make(offset);
    offset += count * 4;
    return view;
  };
  return {
    timings: take((o) => new Float32Array(buffer, o, RESULT_HEADER_FLOATS), RESULT_HEADER_FLOATS),
    sampledTokenIds: take((o) => new Int32Array(buffer, o, n), n),
    sampledLogprobs: take((o) => new Float32Array(buffer, o, n), n),
    topTokenIds: take((o) => new Int32Array(buffer, o, n * k), n * k),
    topLogprobs: take((o) => new Float32Array(buffer, o, n * k), n * k),
    logits: take((o) => new Float32Array(buffer, o, numLogitRows(shape) * vocabSize), numLogitRows(shape) * vocabSize),
  };
}
