/**
 * Test helpers for the native executor: a tiny dummy model, executor options, and a batch
 * builder over createBatch() that fills positions and slots from each sequence's block table
 * (so every batch it builds passes the executor's validation unless a test breaks it on purpose).
 */
import { BATCH_COLUMNS, createBatch, type BatchShape, type BatchViews, type LogitsMode } from '../../src/engine/batch-layout.ts';
import { loadNative, type NativeBinding, type NativeExecutor, type NativeExecutorOptions, type NativeModelConfig } from '../../src/engine/native.ts';
import { type RowSamplingFields, writeRowSampling } from './row-sampling.ts';

export const native: NativeBinding = loadNative();

/** A 2-layer Llama-shaped model small enough for thousands of rows per step. */
export function tinyModel(overrides: Partial<NativeModelConfig> = {}): NativeModelConfig {
  return {
    family: 'llama',
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    vocabSize: 64,
    maxPositionEmbeddings: 256,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: true,
    attentionBias: false,
    qkNorm: false,
    ...overrides,
  };
}

export function dummyOptions(overrides: Partial<NativeExecutorOptions> = {}): NativeExecutorOptions {
  return {
    device: 'cpu',
    dtype: 'float32',
    model: tinyModel(),
    weights: { kind: 'dummy', seed: 7 },
    blockSize: 16,
    numBlocks: 64,
    gpuMemoryUtilization: 0.9,
    maxNumSeqs: 512,
    maxNumBatchedTokens: 4096,
    // Two cores are shared by two vitest workers.
    numThreads: 1,
    ...overrides,
  };
}

/** Sampling settings of one row (batch-layout.ts names); defaults = plain sampling at T = 1. */
export interface RowSampling extends RowSamplingFields {
  /** Penalty history: prompt tokens, then output tokens. */
  promptTokens: number[];
  outputTokens: number[];
}

export const DEFAULT_ROW_SAMPLING: Readonly<RowSampling> = Object.freeze({
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
  numLogprobs: 0,
  rngKeyLo: 0,
  rngKeyHi: 0,
  promptTokens: [],
  outputTokens: [],
});

export interface SeqInput {
  /** Tokens fed this step. */
  newTokens: number[];
  /** Tokens of the sequence already in the cache (positions start here). */
  numCachedTokens?: number;
  /** Physical blocks of the whole sequence, in order. */
  blockIds: number[];
  isSampled?: boolean;
  sampling?: Partial<RowSampling>;
}

export interface BuiltBatch {
  views: BatchViews;
  shape: BatchShape;
}

export function buildBatch(seqs: SeqInput[], blockSize: number, maxTopLogprobs = 0, logitsMode: LogitsMode = 0): BuiltBatch {
  const rows = seqs.map((s) => ({ ...DEFAULT_ROW_SAMPLING, ...s.sampling }));
  const shape: BatchShape = {
    numSeqs: seqs.length,
    numTokens: seqs.reduce((n, s) => n + s.newTokens.length, 0),
    maxBlocksPerSeq: Math.max(1, ...seqs.map((s) => s.blockIds.length)),
    maxTopLogprobs,
    logitsMode,
    numPenaltyTokens: rows.reduce((n, r) => n + r.promptTokens.length + r.outputTokens.length, 0),
  };
  const b = createBatch(shape);
  let token = 0;
  let penalty = 0;
  seqs.forEach((seq, s) => {
    const cached = seq.numCachedTokens ?? 0;
    b.queryStartLoc[s] = token;
    seq.newTokens.forEach((id, i) => {
      const pos = cached + i;
      b.inputIds[token] = id;
      b.positions[token] = pos;
      b.slotMapping[token] = seq.blockIds[Math.floor(pos / blockSize)] * blockSize + (pos % blockSize);
      token++;
    });
    b.seqLens[s] = cached + seq.newTokens.length;
    b.blockTables.set(seq.blockIds, s * shape.maxBlocksPerSeq);
    b.isSampled[s] = seq.isSampled === false ? 0 : 1;
    const r = rows[s];
    writeRowSampling(b, s, r);
    b.penaltyOffsets[s] = penalty;
    b.penaltyPromptLens[s] = r.promptTokens.length;
    for (const id of [...r.promptTokens, ...r.outputTokens]) b.penaltyTokens[penalty++] = id;
  });
  b.queryStartLoc[seqs.length] = token;
  b.penaltyOffsets[seqs.length] = penalty;
  return { views: b, shape };
}

/** One (token id, adjustment) entry of a row: the adjustment is a bias, or -Infinity to ban the id. */
export type LogitAdjust = readonly [tokenId: number, value: number];

/** `built` with row s's logit-adjust columns holding adjusts[s], in order (no check: tests break it on purpose). */
export function withLogitAdjusts(built: BuiltBatch, adjusts: readonly (readonly LogitAdjust[])[]): BuiltBatch {
  const shape = { ...built.shape, numLogitAdjusts: adjusts.reduce((n, row) => n + row.length, 0) };
  const views = createBatch(shape);
  for (const [name] of BATCH_COLUMNS) {
    if (name !== 'logitAdjustOffsets' && name !== 'logitAdjustTokens' && name !== 'logitAdjustValues') views[name].set(built.views[name]);
  }
  let offset = 0;
  adjusts.forEach((row, s) => {
    for (const [tokenId, value] of row) {
      views.logitAdjustTokens[offset] = tokenId;
      views.logitAdjustValues[offset] = value;
      offset++;
    }
    views.logitAdjustOffsets[s + 1] = offset;
  });
  return { views, shape };
}

/** `count` one-token sequences at position 0, each in its own block: identical logits per row. */
export function singleTokenRows(count: number, tokenId: number, sampling: (row: number) => Partial<RowSampling>): SeqInput[] {
  return Array.from({ length: count }, (_, row) => ({ newTokens: [tokenId], blockIds: [row], sampling: sampling(row) }));
}

/** A dummy-weight CPU executor over a tiny model with `vocab` tokens, for sampler tests. */
export interface SamplerTarget {
  executor: NativeExecutor;
  vocab: number;
}

export function makeSamplerTarget(vocab: number, numBlocks: number, numThreads: number): SamplerTarget {
  return { executor: new native.Executor(dummyOptions({ model: tinyModel({ vocabSize: vocab }), numBlocks, numThreads })), vocab };
}

/**
 * `count` two-token rows of every sampling mix the sampler tests cover: greedy and three
 * temperatures, repetition/presence/frequency penalties over a history of prompt and output
 * ids, and every id ranked in the top-N; row i's draw is keyed (rngKeyLo + i, rngKeyHi).
 */
export function mixedSamplingRows(count: number, vocab: number, rngKeyLo: number, rngKeyHi: number): SeqInput[] {
  return Array.from({ length: count }, (_, i) => ({
    newTokens: [i % vocab, (i * 5 + 3) % vocab],
    blockIds: [i],
    sampling: {
      temperature: [0, 0.7, 1, 1.6][i % 4],
      repetitionPenalty: i % 2 === 0 ? 1.4 : 1,
      presencePenalty: i % 3 === 0 ? 0.5 : 0,
      frequencyPenalty: i % 5 === 0 ? 0.3 : 0,
      promptTokens: [i % vocab, (i * 5 + 3) % vocab],
      outputTokens: [(i * 3) % vocab, (i * 7 + 1) % vocab],
      numLogprobs: vocab,
      rngKeyLo: rngKeyLo + i,
      rngKeyHi,
    },
  }));
}
