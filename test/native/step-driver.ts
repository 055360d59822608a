/**
 * Drives a native Executor directly in tests: keeps each sequence's computed length and block
 * table, packs one step (batch-layout.ts createBatch) from "feed these tokens to these
 * sequences", and slices the result's per-token logits back per sequence. Greedy sampling
 * only (temperature 0, no penalties): the tests here check the forward pass.
 */
import { createBatch, readResult, type BatchShape } from '../../src/engine/batch-layout.ts';
import type { NativeExecutor } from '../../src/engine/native.ts';

export interface FeedEntry {
  seqId: number;
  tokens: number[];
  /** Sample after the last token (the prompt's end or a decode); default true. */
  isSampled?: boolean;
}

export interface StepOutput {
  /** Per sequence: one logits row per fed token (logitsMode 2), or only the last (mode 1). */
  logits: Map<number, Float32Array[]>;
  /** Per sequence: the greedy token, or -1 when not sampled. */
  sampled: Map<number, number>;
}

/** Seeded permutation (Fisher-Yates over a small LCG): for shuffled block tables. */
export function seededPermutation(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let state = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export class StepDriver {
  private readonly freeBlocks: number[];
  private readonly blockTables = new Map<number, number[]>();
  private readonly numComputed = new Map<number, number>();

  /** `blockOrder`: the order blocks are handed out (default 0, 1, 2, ...). */
  constructor(
    private readonly executor: NativeExecutor,
    private readonly blockSize: number,
    private readonly vocabSize: number,
    blockOrder?: number[],
  ) {
    this.freeBlocks = [...(blockOrder ?? Array.from({ length: executor.numBlocks }, (_, i) => i))].reverse();
  }

  private ensureBlocks(seqId: number, numTokens: number): number[] {
    const table = this.blockTables.get(seqId) ?? [];
    while (table.length * this.blockSize < numTokens) {
      const block = this.freeBlocks.pop();
      if (block === undefined) throw new Error('StepDriver: out of KV blocks');
      table.push(block);
    }
    this.blockTables.set(seqId, table);
    return table;
  }

  /** Frees a sequence's blocks (for reuse by later sequences). */
  release(seqId: number): void {
    for (const block of this.blockTables.get(seqId) ?? []) this.freeBlocks.push(block);
    this.blockTables.delete(seqId);
    this.numComputed.delete(seqId);
  }

  async step(entries: FeedEntry[], logitsMode: 1 | 2 = 2): Promise<StepOutput> {
    const numTokens = entries.reduce((n, e) => n + e.tokens.length, 0);
    const tables = entries.map((e) => this.ensureBlocks(e.seqId, (this.numComputed.get(e.seqId) ?? 0) + e.tokens.length));
    const shape: BatchShape = {
      numSeqs: entries.length,
      numTokens,
      maxBlocksPerSeq: Math.max(1, ...tables.map((t) => t.length)),
      maxTopLogprobs: 0,
      logitsMode,
      numPenaltyTokens: 0,
    };
    const batch = createBatch(shape);
    let at = 0;
    entries.forEach((entry, s) => {
      const start = this.numComputed.get(entry.seqId) ?? 0;
      const table = tables[s];
      batch.queryStartLoc[s] = at;
      entry.tokens.forEach((token, i) => {
        const pos = start + i;
        batch.inputIds[at] = token;
        batch.positions[at] = pos;
        batch.slotMapping[at] = table[Math.floor(pos / this.blockSize)] * this.blockSize + (pos % this.blockSize);
        at++;
      });
      batch.seqLens[s] = start + entry.tokens.length;
      batch.blockTables.set(table, s * shape.maxBlocksPerSeq);
      batch.isSampled[s] = entry.isSampled === false ? 0 : 1;
      batch.temperature[s] = 0;
      batch.topP[s] = 1;
      batch.repetitionPenalty[s] = 1;
      this.numComputed.set(entry.seqId, start + entry.tokens.length);
    });
    batch.queryStartLoc[entries.length] = at;

    const result = readResult(await this.executor.step(batch.buffer), shape, this.vocabSize);
    const logits = new Map<number, Float32Array[]>();
    const sampled = new Map<number, number>();
    entries.forEach((entry, s) => {
      const firstRow = logitsMode === 2 ? batch.queryStartLoc[s] : s;
      const numRows = logitsMode === 2 ? entry.tokens.length : 1;
      const rows: Float32Array[] = [];
      for (let r = 0; r < numRows; r++) rows.push(result.logits.slice((firstRow + r) * this.vocabSize, (firstRow + r + 1) * this.vocabSize));
      logits.set(entry.seqId, rows);
      sampled.set(entry.seqId, result.sampledTokenIds[s]);
    });
    return { logits, sampled };
  }
}

/** ‖a − b‖ / ‖b‖ over all rows together (rows paired in order). */
export function relativeError(actual: ArrayLike<number>[], expected: ArrayLike<number>[]): number {
  if (actual.length !== expected.length) throw new Error(`relativeError: ${actual.length} rows vs ${expected.length}`);
  let diff = 0;
  let norm = 0;
  actual.forEach((row, r) => {
    const ref = expected[r];
    if (row.length !== ref.length) throw new Error(`relativeError: row ${r} has ${row.length} values vs ${ref.length}`);
    for (let i = 0; i < row.length; i++) {
      diff += (row[i] - ref[i]) ** 2;
      norm += ref[i] ** 2;
    }
  });
  return Math.sqrt(diff) / Math.sqrt(norm);
}
