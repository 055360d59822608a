import { describe, expect, it } from 'vitest';
import { BATCH_MAGIC, BatchHeader, batchByteLength, pendingTokenRef } from '../../src/engine/batch-layout.ts';
import { RngStream, splitMix64At, seedToU64, type U64 } from '../../src/engine/rng.ts';
import type { ScheduledSeq } from '../../src/engine/scheduler.ts';
import { StepBatchPacker } from '../../src/engine/step-batch.ts';
import { makeSeq } from './helpers.ts';

describe('StepBatchPacker', () => {
  it('packs a hand-built schedule into the expected columns', () => {
    const blockSize = 4;
    // a: decode of its 7th token; b: first prefill chunk of 5 tokens; c: last chunk with penalties + logprobs.
    const a = makeSeq(6, { temperature: 0.5, topK: 40, topP: 0.9, minP: 0.05, seed: 1234 });
    a.appendToken(77, null);
    a.numComputedTokens = 6;
    a.blockTable.push(9, 3);
    const b = makeSeq(10);
    b.blockTable.push(5, 6);
    const c = makeSeq(3, { repetitionPenalty: 1.3, presencePenalty: 0.5, logprobs: 3 });
    c.appendToken(11, null);
    c.appendToken(12, null);
    c.numComputedTokens = 2;
    c.blockTable.push(0, 1);
    const rows: ScheduledSeq[] = [
      { seq: a, numNewTokens: 1, isSampled: true },
      { seq: b, numNewTokens: 5, isSampled: false },
      { seq: c, numNewTokens: 3, isSampled: true },
    ];
    const rng = new RngStream(42);
    const packer = new StepBatchPacker(blockSize, rng);
    const { views: v, shape, byteLength } = packer.pack(rows);

    expect(shape).toEqual({ numSeqs: 3, numTokens: 9, maxBlocksPerSeq: 2, maxTopLogprobs: 3, logitsMode: 0, numPenaltyTokens: 5, numLogitAdjusts: 0 });
    expect(byteLength).toBe(batchByteLength(shape));
    expect(v.header[BatchHeader.magic]).toBe(BATCH_MAGIC);
    expect(v.header[BatchHeader.numTokens]).toBe(9);
    expect(Array.from(v.inputIds)).toEqual([77, ...b.tokenIds.slice(0, 5), c.tokenIds[2], 11, 12]);
    expect(Array.from(v.positions)).toEqual([6, 0, 1, 2, 3, 4, 2, 3, 4]);
    // slot = block * 4 + offset: a pos 6 → block 3; b pos 0..4 → blocks 5, 6; c pos 2..4 → blocks 0, 1.
    expect(Array.from(v.slotMapping)).toEqual([14, 20, 21, 22, 23, 24, 2, 3, 4]);
    expect(Array.from(v.queryStartLoc)).toEqual([0, 1, 6, 9]);
    expect(Array.from(v.seqLens)).toEqual([7, 5, 5]);
    expect(Array.from(v.blockTables)).toEqual([9, 3, 5, 6, 0, 1]);
    expect(Array.from(v.isSampled)).toEqual([1, 0, 1]);
    expect(Array.from(v.temperature)).toEqual([0.5, 1, 1]);
    expect(Array.from(v.topK)).toEqual([40, 0, 0]);
    expect(v.topP[0]).toBeCloseTo(0.9, 6);
    expect(v.minP[0]).toBeCloseTo(0.05, 6);
    expect(Array.from(v.repetitionPenalty)).toEqual([1, 1, Math.fround(1.3)]);
    expect(Array.from(v.presencePenalty)).toEqual([0, 0, 0.5]);
    expect(Array.from(v.numLogprobs)).toEqual([0, 0, 3]);
    // Only c has penalties: its whole history, prompt first.
    expect(Array.from(v.penaltyOffsets)).toEqual([0, 0, 0, 5]);
    expect(Array.from(v.penaltyPromptLens)).toEqual([0, 0, 3]);
    expect(Array.from(v.penaltyTokens)).toEqual(c.tokenIds);
    // a is seeded: key = SplitMix64(seed) output #numOutputTokens; b draws nothing; c takes the stream's first key.
    const expectedA: U64 = { hi: 0, lo: 0 };
    splitMix64At(seedToU64(1234), 1, expectedA);
    expect([v.rngKeyLo[0], v.rngKeyHi[0]]).toEqual([expectedA.lo, expectedA.hi]);
    expect([v.rngKeyLo[1], v.rngKeyHi[1]]).toEqual([0, 0]);
    const expectedC: U64 = { hi: 0, lo: 0 };
    new RngStream(42).next(expectedC);
    expect([v.rngKeyLo[2], v.rngKeyHi[2]]).toEqual([expectedC.lo, expectedC.hi]);
  });

  it('reuses its buffer between steps while it is big enough, and grows it otherwise', () => {
    const packer = new StepBatchPacker(4, new RngStream(0));
    const big = makeSeq(40);
    big.blockTable.push(...Array.from({ length: 10 }, (_, i) => i));
    const first = packer.pack([{ seq: big, numNewTokens: 40, isSampled: true }]);
    const small = makeSeq(3);
    small.blockTable.push(11);
    const second = packer.pack([{ seq: small, numNewTokens: 3, isSampled: true }]);
    expect(second.views.buffer).toBe(first.views.buffer);
    expect(Array.from(second.views.inputIds)).toEqual(small.tokenIds);
    expect(Array.from(second.views.blockTables)).toEqual([11]);
    const many = Array.from({ length: 50 }, () => {
      const s = makeSeq(40);
      s.blockTable.push(...Array.from({ length: 10 }, (_, i) => i));
      return { seq: s, numNewTokens: 40, isSampled: true };
    });
    const third = packer.pack(many);
    expect(third.views.buffer).not.toBe(first.views.buffer);
    expect(third.views.buffer.byteLength).toBeGreaterThanOrEqual(third.byteLength);
  });
});

describe('StepBatchPacker, packing ahead of a step in flight (async scheduling)', () => {
  it('packs a reference to the in-flight step\'s row where the pending token goes, and flags the batch', () => {
    // seq: 3 prompt tokens + 1 output, all computed; step 7 (in flight) samples its 5th token in its row 2.
    const seq = makeSeq(3, { repetitionPenalty: 1.2, seed: 5, minTokens: 3, stopTokenIds: [9] });
    seq.appendToken(40, null);
    seq.numComputedTokens = 4;
    seq.blockTable.push(2, 8);
    seq.pendingTokenStep = 7;
    seq.pendingTokenRow = 2;
    const packer = new StepBatchPacker(4, new RngStream(1), [2]);
    const packed = packer.pack([{ seq, numNewTokens: 1, isSampled: true }], 7);
    const v = packed.views;
    expect(pendingTokenRef(2)).toBe(-3);
    expect(Array.from(v.inputIds)).toEqual([-3]);
    expect(Array.from(v.positions)).toEqual([4]);
    expect(Array.from(v.slotMapping)).toEqual([8 * 4]);
    expect(Array.from(v.penaltyTokens)).toEqual([...seq.tokenIds, -3]);
    expect(v.header[BatchHeader.hasPendingTokens]).toBe(1);
    // The token drawn is output token 3 (index 2): 2 come before it, fewer than min_tokens 3,
    // so the stop id and EOS are still banned; a seeded request's key is that of index 2.
    expect(Array.from(v.logitAdjustTokens)).toEqual([9, 2]);
    const key: U64 = { hi: 0, lo: 0 };
    splitMix64At(seedToU64(5), 2, key);
    expect([v.rngKeyLo[0], v.rngKeyHi[0]]).toEqual([key.lo, key.hi]);
    // The next batch packed into the same buffer, with every token known, is not flagged.
    seq.pendingTokenStep = -1;
    seq.appendToken(123, null);
    seq.numComputedTokens = 4;
    expect(packer.pack([{ seq, numNewTokens: 1, isSampled: true }]).views.header[BatchHeader.hasPendingTokens]).toBe(0);
  });

  it('refuses a row that waits on a step other than the one in flight', () => {
    const seq = makeSeq(3);
    seq.numComputedTokens = 3;
    seq.blockTable.push(0);
    seq.pendingTokenStep = 4;
    seq.pendingTokenRow = 0;
    expect(() => new StepBatchPacker(4, new RngStream(1)).pack([{ seq, numNewTokens: 1, isSampled: true }], 5)).toThrow(/waits on step 4/);
  });
});
