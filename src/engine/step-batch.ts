/**
 * Packs one scheduled step into the single step-batch buffer the executor reads
 * (layout: src/engine/batch-layout.ts). Row s of the batch is scheduled row s; its tokens
 * are the positions [numComputedTokens, numComputedTokens + numNewTokens) of its sequence:
 *
 *   inputIds/positions/slotMapping   seq 0 tokens | seq 1 tokens | ...     (numTokens)
 *   queryStartLoc                    0, n0, n0+n1, ...                      (numSeqs + 1)
 *   seqLens, isSampled, sampling and rng columns                           (numSeqs)
 *   blockTables                      numSeqs rows of maxBlocksPerSeq, padded with 0
 *   penalty columns                  token history of sampled rows with non-neutral penalties only
 *   logit-adjust columns             per sampled row: its logit_bias (added to the logits), and
 *                                    min_tokens (vLLM): while it has fewer output tokens than
 *                                    minTokens, its stop ids and (unless ignore_eos) the EOS ids
 *                                    get -inf, so none of them can be drawn yet
 *
 * A row may end on a pending token (async scheduling: the step in flight samples it, see
 * Sequence.pendingTokenStep). Its inputIds entry, and its last penalty-history entry, are a
 * pendingTokenRef to that step's row; the executor fills in the token when that step ends.
 *
 * The buffer is kept and reused while it is big enough (grown with headroom otherwise),
 * so a steady decode loop allocates nothing here.
 */
import { BatchHeader, batchByteLength, createBatch, pendingTokenRef, type BatchShape, type BatchViews, type LogitsMode } from './batch-layout.ts';
import { splitMix64At, type RngStream, type U64 } from './rng.ts';
import type { ScheduledSeq } from './scheduler.ts';
import type { Sequence } from './sequence.ts';
import type { SamplingParams } from './types.ts';

/** One row's logit adjustments (batch-layout.ts): distinct ids and what each adds (-inf: banned). */
export interface LogitAdjusts {
  readonly tokenIds: Int32Array;
  readonly values: Float32Array;
}

const NO_ADJUSTS: LogitAdjusts = { tokenIds: new Int32Array(0), values: new Float32Array(0) };

/** A request's adjustments while it is short of min_tokens (bans + logit_bias), and after. */
interface AdjustsOfParams {
  beforeMinTokens: LogitAdjusts;
  afterMinTokens: LogitAdjusts;
}

function toLogitAdjusts(valueOfId: ReadonlyMap<number, number>): LogitAdjusts {
  if (valueOfId.size === 0) return NO_ADJUSTS;
  return { tokenIds: Int32Array.from(valueOfId.keys()), values: Float32Array.from(valueOfId.values()) };
}

export interface PackedStep {
  views: BatchViews;
  shape: BatchShape;
  /** Bytes of the buffer the batch uses (the buffer itself may be longer). */
  byteLength: number;
}

export class StepBatchPacker {
  private buffer: ArrayBuffer | null = null;
  private readonly key: U64 = { hi: 0, lo: 0 };
  /** Each request's adjustment lists (its params are frozen), built once, not twice a step. */
  private readonly adjustsOfParams = new WeakMap<Readonly<SamplingParams>, AdjustsOfParams>();

  constructor(
    private readonly blockSize: number,
    /** Keys of unseeded requests. */
    private readonly rng: RngStream,
    /** The model's EOS ids (ModelSource.eosTokenIds), banned before min_tokens unless ignore_eos. */
    private readonly eosTokenIds: readonly number[] = [],
    private readonly logitsMode: LogitsMode = 0,
  ) {}

  /**
   * The logit adjustments of `seq`'s next draw: its logit_bias, plus -inf for the ids it may not
   * draw yet: none once it has minTokens output tokens (the token drawn now is output token
   * numOutputTokens + 1, as vLLM's len(output) < min_tokens test).
   */
  logitAdjustsOf(seq: Sequence): LogitAdjusts {
    const p = seq.params;
    const isShortOfMinTokens = seq.numOutputTokens + seq.numPendingTokens < p.minTokens;
    if (!isShortOfMinTokens && p.logitBias === undefined) return NO_ADJUSTS; // most rows: no lookup
    let lists = this.adjustsOfParams.get(p);
    if (lists === undefined) {
      lists = this.buildLogitAdjusts(p);
      this.adjustsOfParams.set(p, lists);
    }
    return isShortOfMinTokens ? lists.beforeMinTokens : lists.afterMinTokens;
  }

  private buildLogitAdjusts(p: Readonly<SamplingParams>): AdjustsOfParams {
    const bias = new Map<number, number>();
    for (const [key, value] of Object.entries(p.logitBias ?? {})) bias.set(Number(key), value);
    const afterMinTokens = toLogitAdjusts(bias);
    if (p.minTokens === 0) return { beforeMinTokens: afterMinTokens, afterMinTokens };
    // A ban replaces the id's bias (one entry per id): a banned id stays at -inf whatever its bias.
    const withBans = new Map(bias);
    for (const id of p.stopTokenIds) withBans.set(id, -Infinity);
    if (!p.ignoreEos) for (const id of this.eosTokenIds) withBans.set(id, -Infinity);
    return { beforeMinTokens: toLogitAdjusts(withBans), afterMinTokens };
  }

  /**
   * `inFlightStep`: the step in flight whose sampled tokens rows may end on (async
   * scheduling), or -1 when none is: every token is known then.
   */
  pack(rows: readonly ScheduledSeq[], inFlightStep = -1): PackedStep {
    const shape = this.shapeOf(rows);
    const byteLength = batchByteLength(shape);
    if (!this.buffer || this.buffer.byteLength < byteLength || this.buffer.byteLength === 0) {
      // Headroom: prefill chunks vary step to step; don't reallocate for each.
      this.buffer = new ArrayBuffer(Math.ceil((byteLength * 1.5) / 64) * 64);
    }
    const v = createBatch(shape, this.buffer);
    const bs = this.blockSize;
    let tokenIndex = 0;
    let penaltyIndex = 0;
    let adjustIndex = 0;
    let hasPendingTokens = false;
    v.queryStartLoc[0] = 0;
    v.penaltyOffsets[0] = 0;
    v.logitAdjustOffsets[0] = 0;
    for (let s = 0; s < rows.length; s++) {
      const { seq, numNewTokens, isSampled } = rows[s];
      const start = seq.numComputedTokens;
      const end = start + numNewTokens;
      const table = seq.blockTable;
      const pendingRow = this.pendingRowOf(seq, inFlightStep);
      for (let pos = start; pos < end; pos++) {
        if (pos < seq.numTokens) {
          v.inputIds[tokenIndex] = seq.tokenIds[pos];
        } else {
          if (pendingRow < 0) throw new Error(`seq ${seq.seqId}: position ${pos} is past its tokens, and none is pending`);
          v.inputIds[tokenIndex] = pendingTokenRef(pendingRow);
          hasPendingTokens = true;
        }
        v.positions[tokenIndex] = pos;
        v.slotMapping[tokenIndex] = table[Math.floor(pos / bs)] * bs + (pos % bs);
        tokenIndex++;
      }
      v.queryStartLoc[s + 1] = tokenIndex;
      v.seqLens[s] = end;
      const numBlocks = Math.ceil(end / bs);
      const rowStart = s * shape.maxBlocksPerSeq;
      for (let b = 0; b < numBlocks; b++) v.blockTables[rowStart + b] = table[b];
      v.isSampled[s] = isSampled ? 1 : 0;

      const p = seq.params;
      v.temperature[s] = p.temperature;
      v.topK[s] = p.topK;
      v.topP[s] = p.topP;
      v.minP[s] = p.minP;
      v.presencePenalty[s] = p.presencePenalty;
      v.frequencyPenalty[s] = p.frequencyPenalty;
      v.repetitionPenalty[s] = p.repetitionPenalty;
      if (isSampled) {
        // Keyed by the index of the token drawn, so a seeded request draws the same with or
        // without async scheduling.
        if (seq.seed) splitMix64At(seq.seed, seq.numOutputTokens + seq.numPendingTokens, this.key);
        else this.rng.next(this.key);
        v.rngKeyLo[s] = this.key.lo;
        v.rngKeyHi[s] = this.key.hi;
        v.numLogprobs[s] = p.logprobs ?? 0;
        if (seq.hasPenalties) {
          const ids = seq.tokenIds;
          for (let i = 0; i < ids.length; i++) v.penaltyTokens[penaltyIndex++] = ids[i];
          if (pendingRow >= 0) v.penaltyTokens[penaltyIndex++] = pendingTokenRef(pendingRow);
          v.penaltyPromptLens[s] = seq.numPromptTokens;
        }
        const adjusts = this.logitAdjustsOf(seq);
        v.logitAdjustTokens.set(adjusts.tokenIds, adjustIndex);
        v.logitAdjustValues.set(adjusts.values, adjustIndex);
        adjustIndex += adjusts.tokenIds.length;
      }
      v.penaltyOffsets[s + 1] = penaltyIndex;
      v.logitAdjustOffsets[s + 1] = adjustIndex;
    }
    v.header[BatchHeader.hasPendingTokens] = hasPendingTokens ? 1 : 0;
    return { views: v, shape, byteLength };
  }

  /** The in-flight step's row that samples `seq`'s pending token, or -1 when it has none. */
  private pendingRowOf(seq: Sequence, inFlightStep: number): number {
    if (seq.numPendingTokens === 0) return -1;
    if (seq.pendingTokenStep !== inFlightStep) {
      throw new Error(`seq ${seq.seqId} waits on step ${seq.pendingTokenStep}, but step ${inFlightStep} is in flight`);
    }
    return seq.pendingTokenRow;
  }

  private shapeOf(rows: readonly ScheduledSeq[]): BatchShape {
    let numTokens = 0;
    let maxBlocksPerSeq = 0;
    let maxTopLogprobs = 0;
    let numPenaltyTokens = 0;
    let numLogitAdjusts = 0;
    for (const { seq, numNewTokens, isSampled } of rows) {
      numTokens += numNewTokens;
      maxBlocksPerSeq = Math.max(maxBlocksPerSeq, Math.ceil((seq.numComputedTokens + numNewTokens) / this.blockSize));
      if (!isSampled) continue;
      maxTopLogprobs = Math.max(maxTopLogprobs, seq.params.logprobs ?? 0);
      if (seq.hasPenalties) numPenaltyTokens += seq.numTokens + seq.numPendingTokens;
      numLogitAdjusts += this.logitAdjustsOf(seq).tokenIds.length;
    }
    return { numSeqs: rows.length, numTokens, maxBlocksPerSeq, maxTopLogprobs, logitsMode: this.logitsMode, numPenaltyTokens, numLogitAdjusts };
  }
}
