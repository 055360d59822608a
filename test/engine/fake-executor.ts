/**
 * A stand-in for the native executor that checks the engine's packing instead of running
 * a model. It keeps a paged "KV cache" of (token id, position) per slot, written through
 * slotMapping, and picks each sampled row's next token from a hash of the context it reads
 * back through blockTables/seqLens. A wrong slot, block table or position therefore gives
 * a different token (or throws), so "same output alone and in a crowd" is a real test of
 * the scheduler + packer, independent of the native code.
 */
import {
  BATCH_COLUMNS, BATCH_HEADER_INTS, BatchHeader, pendingTokenRow, readResult, resultByteLength, type BatchShape, type LogitsMode,
} from '../../src/engine/batch-layout.ts';

type Columns = Record<(typeof BATCH_COLUMNS)[number][0], Int32Array | Uint32Array | Float32Array>;

/** Read-only views over a packed batch (the TS mirror of ParseStepBatch). */
export function viewBatch(buffer: ArrayBuffer): { shape: BatchShape; columns: Columns } {
  const header = new Int32Array(buffer, 0, BATCH_HEADER_INTS);
  const shape: BatchShape = {
    numSeqs: header[BatchHeader.numSeqs],
    numTokens: header[BatchHeader.numTokens],
    maxBlocksPerSeq: header[BatchHeader.maxBlocksPerSeq],
    maxTopLogprobs: header[BatchHeader.maxTopLogprobs],
    logitsMode: header[BatchHeader.logitsMode] as LogitsMode,
    numPenaltyTokens: header[BatchHeader.numPenaltyTokens],
    numLogitAdjusts: header[BatchHeader.numLogitAdjusts],
  };
  const columns: Partial<Columns> = {};
  let offset = BATCH_HEADER_INTS * 4;
  for (const [name, kind, length] of BATCH_COLUMNS) {
    const n = length(shape);
    columns[name] = kind === 'f32' ? new Float32Array(buffer, offset, n) : kind === 'u32' ? new Uint32Array(buffer, offset, n) : new Int32Array(buffer, offset, n);
    offset += n * 4;
  }
  return { shape, columns: columns as Columns };
}

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x9e3779b1);
  return (h ^ (h >>> 15)) >>> 0;
}

export interface FakeExecutorOptions {
  numBlocks: number;
  blockSize: number;
  vocabSize: number;
  /** Throw from this step (1-based) on. */
  failAtStep?: number;
}

export class FakeExecutor {
  readonly numBlocks: number;
  readonly device = 'cpu' as const;
  readonly deviceName = 'fake';
  numSteps = 0;
  isClosed = false;
  private readonly slotTokens: Int32Array;
  private readonly slotPositions: Int32Array;
  private numInFlight = 0;
  /** The last step's sampled ids (null after a failure), for the next step's pending tokens. */
  private previousSampled: Int32Array | null = null;

  constructor(private readonly options: FakeExecutorOptions) {
    this.numBlocks = options.numBlocks;
    this.slotTokens = new Int32Array(options.numBlocks * options.blockSize).fill(-1);
    this.slotPositions = new Int32Array(options.numBlocks * options.blockSize).fill(-1);
  }

  /** The token the fake model samples after `context` (what a correct engine must produce). */
  static nextToken(context: readonly number[], vocabSize: number, temperature: number, keyLo: number, keyHi: number): number {
    let h = 0x12345678;
    for (const t of context) h = mix(h, t);
    if (temperature > 0) h = mix(mix(h, keyLo), keyHi);
    return h % vocabSize;
  }

  step(batch: ArrayBuffer): Promise<ArrayBuffer> {
    // As the native executor: the batch is copied at the call, so the caller may reuse its
    // buffer at once (async scheduling packs the next step into it while this one runs); at
    // most two steps are in flight, and they run in call order (setImmediate keeps it).
    if (this.numInFlight >= 2) return Promise.reject(new Error('executor.step: two steps are already in flight'));
    const copy = batch.slice(0);
    this.numInFlight += 1;
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        this.numInFlight -= 1;
        try {
          resolve(this.runStep(copy));
        } catch (err) {
          this.previousSampled = null;
          reject(err);
        }
      });
    });
  }

  /** As StepQueue.FillPendingTokens: references to the previous step's rows get its tokens. */
  private fillPendingTokens(header: Int32Array, columns: Columns): void {
    if (header[BatchHeader.hasPendingTokens] !== 1) return;
    for (const column of [columns.inputIds, columns.penaltyTokens]) {
      for (let i = 0; i < column.length; i++) {
        if (column[i] >= 0) continue;
        const token = this.previousSampled?.[pendingTokenRow(column[i])] ?? -1;
        if (token < 0) throw new Error(`pending token ${column[i]}: the previous step sampled none there`);
        column[i] = token;
      }
    }
  }

  close(): void {
    // As the native executor: a second close is an error.
    if (this.isClosed) throw new Error('executor is already closed');
    this.isClosed = true;
  }

  private runStep(batch: ArrayBuffer): ArrayBuffer {
    this.numSteps += 1;
    if (this.options.failAtStep !== undefined && this.numSteps >= this.options.failAtStep) {
      throw new Error(`fake executor failure at step ${this.numSteps}`);
    }
    const { shape, columns: c } = viewBatch(batch);
    this.fillPendingTokens(new Int32Array(batch, 0, BATCH_HEADER_INTS), c);
    const bs = this.options.blockSize;
    for (let t = 0; t < shape.numTokens; t++) {
      this.slotTokens[c.slotMapping[t]] = c.inputIds[t];
      this.slotPositions[c.slotMapping[t]] = c.positions[t];
    }
    const out = new ArrayBuffer(resultByteLength(shape, this.options.vocabSize));
    const r = readResult(out, shape, this.options.vocabSize);
    r.topTokenIds.fill(-1);
    for (let s = 0; s < shape.numSeqs; s++) {
      if (!c.isSampled[s]) {
        r.sampledTokenIds[s] = -1;
        continue;
      }
      const context: number[] = [];
      for (let p = 0; p < c.seqLens[s]; p++) {
        const slot = c.blockTables[s * shape.maxBlocksPerSeq + Math.floor(p / bs)] * bs + (p % bs);
        if (this.slotPositions[slot] !== p) throw new Error(`row ${s}: slot ${slot} holds position ${this.slotPositions[slot]}, expected ${p}`);
        context.push(this.slotTokens[slot]);
      }
      let token = FakeExecutor.nextToken(context, this.options.vocabSize, c.temperature[s], c.rngKeyLo[s], c.rngKeyHi[s]);
      const historyStart = c.penaltyOffsets[s];
      const historyEnd = c.penaltyOffsets[s + 1];
      if (historyEnd > historyStart) {
        // A row with penalties ships its whole history: it must be exactly the context.
        const history = Array.from(c.penaltyTokens.subarray(historyStart, historyEnd));
        if (history.join() !== context.join()) throw new Error(`row ${s}: penalty history differs from its context`);
        // The penalties change the draw, so a row given another row's values gives another token.
        let h = mix(token, c.penaltyPromptLens[s]);
        for (const value of [c.repetitionPenalty[s], c.presencePenalty[s], c.frequencyPenalty[s]]) h = mix(h, Math.round(value * 1000));
        token = h % this.options.vocabSize;
      }
      r.sampledTokenIds[s] = token;
      r.sampledLogprobs[s] = -((token % 10) + 1) / 10;
      for (let i = 0; i < c.numLogprobs[s]; i++) {
        r.topTokenIds[s * shape.maxTopLogprobs + i] = (token + i) % this.options.vocabSize;
        r.topLogprobs[s * shape.maxTopLogprobs + i] = -(i + 1) / 10;
      }
    }
    r.timings[0] = 0.1;
    this.previousSampled = Int32Array.from(r.sampledTokenIds);
    return out;
  }
}
