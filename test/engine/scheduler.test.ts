import { describe, expect, it } from 'vitest';
import { BlockManager } from '../../src/engine/block-manager.ts';
import { Scheduler } from '../../src/engine/scheduler.ts';
import type { Sequence } from '../../src/engine/sequence.ts';
import { completeStep, makeSeq } from './helpers.ts';

function setup(numBlocks: number, blockSize: number, maxNumSeqs: number, maxNumBatchedTokens: number) {
  const blockManager = new BlockManager(numBlocks, blockSize);
  const scheduler = new Scheduler({ maxNumSeqs, maxNumBatchedTokens, maxModelLen: 1 << 20 }, blockManager);
  return { blockManager, scheduler };
}

describe('Scheduler', () => {
  it('admits FCFS within the token budget and samples only rows that reach their end', () => {
    const { scheduler } = setup(100, 4, 8, 20);
    const a = makeSeq(8);
    const b = makeSeq(8);
    const c = makeSeq(8);
    [a, b, c].forEach((s) => scheduler.add(s));
    const out = scheduler.schedule();
    expect(out.rows.map((r) => [r.seq, r.numNewTokens, r.isSampled])).toEqual([
      [a, 8, true],
      [b, 8, true],
      [c, 4, false],
    ]);
    expect(out.numTokens).toBe(20);
    expect(out.numPrefillTokens).toBe(20);
    completeStep(out);
    // Running first: a and b decode one token each, c finishes its prompt and samples.
    const next = scheduler.schedule();
    expect(next.rows.map((r) => [r.seq, r.numNewTokens, r.isSampled])).toEqual([
      [a, 1, true],
      [b, 1, true],
      [c, 4, true],
    ]);
    expect(next.numPrefillTokens).toBe(4);
  });

  it('lists one-token rows first, longest context first, then the rest in schedule order', () => {
    const { scheduler } = setup(100, 4, 8, 32);
    const long = makeSeq(6);
    const single = makeSeq(1);
    const other = makeSeq(3);
    [long, single, other].forEach((s) => scheduler.add(s));
    const out = scheduler.schedule();
    expect(out.rows.map((r) => [r.seq, r.numNewTokens])).toEqual([
      [single, 1],
      [long, 6],
      [other, 3],
    ]);
    expect(out.numTokens).toBe(10);
  });

  it('orders decodes by context length, longest first (ties in schedule order), before a prompt chunk', () => {
    const { scheduler } = setup(100, 4, 8, 64);
    const short = makeSeq(3);
    const long = makeSeq(9);
    const tie = makeSeq(3);
    [short, long, tie].forEach((s) => scheduler.add(s));
    completeStep(scheduler.schedule()); // all three prefilled: contexts 3, 9, 3 (+1 sampled each)
    const late = makeSeq(5);
    scheduler.add(late);
    const out = scheduler.schedule();
    expect(out.rows.map((r) => [r.seq, r.numNewTokens])).toEqual([
      [long, 1],
      [short, 1],
      [tie, 1],
      [late, 5],
    ]);
  });

  it('splits a prompt longer than the budget into chunks over several steps', () => {
    const { scheduler } = setup(100, 4, 8, 16);
    const long = makeSeq(50);
    scheduler.add(long);
    const chunks: number[] = [];
    for (let step = 0; step < 4; step++) {
      const out = scheduler.schedule();
      expect(out.numTokens).toBeLessThanOrEqual(16);
      expect(out.rows).toHaveLength(1);
      chunks.push(out.rows[0].numNewTokens);
      expect(out.rows[0].isSampled).toBe(step === 3);
      completeStep(out);
    }
    expect(chunks).toEqual([16, 16, 16, 2]);
    expect(long.numOutputTokens).toBe(1);
    expect(long.blockTable.length).toBe(Math.ceil(50 / 4));
  });

  it('never exceeds maxNumSeqs or the token budget under random load', () => {
    const { scheduler, blockManager } = setup(400, 8, 5, 64);
    const seqs = Array.from({ length: 40 }, (_, i) => makeSeq(1 + ((i * 37) % 90), { maxTokens: 5 }));
    seqs.forEach((s) => scheduler.add(s));
    let steps = 0;
    while (scheduler.hasWork) {
      const out = scheduler.schedule();
      expect(out.rows.length).toBeLessThanOrEqual(5);
      expect(scheduler.running.length).toBeLessThanOrEqual(5);
      expect(out.numTokens).toBeLessThanOrEqual(64);
      expect(out.numTokens).toBe(out.rows.reduce((n, r) => n + r.numNewTokens, 0));
      expect(out.rows.length).toBeGreaterThan(0);
      completeStep(out);
      for (const r of out.rows) if (r.seq.numOutputTokens >= 5) r.seq.finish('length', undefined, 0);
      scheduler.removeFinished();
      steps++;
    }
    expect(steps).toBeGreaterThan(0);
    expect(seqs.every((s) => s.numOutputTokens === 5)).toBe(true);
    expect(blockManager.numFree).toBe(400);
  });

  it('admits in arrival order: a later short prompt never overtakes an earlier one', () => {
    const { scheduler } = setup(6, 4, 8, 100);
    const big = makeSeq(16); // 4 blocks
    const blocker = makeSeq(12); // 3 blocks: does not fit beside big
    const small = makeSeq(2); // would fit, but arrived after blocker
    [big, blocker, small].forEach((s) => scheduler.add(s));
    const out = scheduler.schedule();
    expect(out.rows.map((r) => r.seq)).toEqual([big]);
    expect(scheduler.waiting).toEqual([blocker, small]);
  });

  it('preempts the newest running sequence when blocks run out, and recomputes it later', () => {
    const { scheduler, blockManager } = setup(6, 4, 8, 100);
    const old = makeSeq(8); // 2 blocks
    const mid = makeSeq(8);
    const newest = makeSeq(8);
    [old, mid, newest].forEach((s) => scheduler.add(s));
    completeStep(scheduler.schedule());
    expect(blockManager.numFree).toBe(0);
    // Each now holds 9 tokens and needs a third block: old and mid get one by evicting newest.
    const out = scheduler.schedule();
    expect(out.preempted).toEqual([newest]);
    expect(out.rows.map((r) => r.seq)).toEqual([old, mid]);
    expect(newest.numComputedTokens).toBe(0);
    expect(newest.blockTable).toEqual([]);
    expect(newest.status).toBe('waiting');
    expect(scheduler.waiting[0]).toBe(newest);
    expect(scheduler.numPreemptions).toBe(1);
    completeStep(out);
    old.finish('stop', undefined, 0);
    scheduler.removeFinished();
    // The preempted one comes back and recomputes prompt + its output token in one chunk.
    const back = scheduler.schedule();
    const row = back.rows.find((r) => r.seq === newest);
    expect(row?.numNewTokens).toBe(9);
    expect(row?.isSampled).toBe(true);
  });

  it('preempts a sequence itself when it is the only one left and cannot grow', () => {
    const { scheduler } = setup(2, 4, 8, 100);
    const a = makeSeq(4);
    const b = makeSeq(4);
    scheduler.add(a);
    scheduler.add(b);
    completeStep(scheduler.schedule());
    const out = scheduler.schedule();
    expect(out.preempted).toEqual([b]);
    expect(out.rows.map((r) => r.seq)).toEqual([a]);
    expect(scheduler.waiting).toEqual([b]);
  });

  it('frees the blocks of finished sequences, waiting or running', () => {
    const { scheduler, blockManager } = setup(10, 4, 1, 100);
    const a = makeSeq(5);
    const b = makeSeq(5);
    scheduler.add(a);
    scheduler.add(b);
    completeStep(scheduler.schedule());
    expect(scheduler.running).toEqual([a]);
    expect(blockManager.numFree).toBe(8);
    a.finish('abort', undefined, 0);
    b.finish('abort', undefined, 0);
    scheduler.removeFinished();
    expect(scheduler.hasWork).toBe(false);
    expect(blockManager.numFree).toBe(10);
  });
});

describe('Scheduler with prefix caching', () => {
  function cached(numBlocks: number, blockSize: number) {
    const blockManager = new BlockManager(numBlocks, blockSize, true);
    const scheduler = new Scheduler({ maxNumSeqs: 8, maxNumBatchedTokens: 1000, maxModelLen: 1 << 20 }, blockManager);
    return { blockManager, scheduler };
  }
  const withPrompt = (prompt: number[]) => {
    const seq = makeSeq(prompt.length);
    seq.tokenIds.splice(0, prompt.length, ...prompt);
    return seq;
  };
  const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

  it('a later request with the same prompt starts after the cached full blocks, never at its last token', () => {
    const { scheduler, blockManager } = cached(40, 8);
    const a = withPrompt(range(40));
    scheduler.add(a);
    const first = scheduler.schedule();
    completeStep(first);
    scheduler.cacheComputedBlocks(first.rows);
    expect(blockManager.numCachedBlocks).toBe(5);
    const b = withPrompt(range(40));
    const c = withPrompt([...range(16), ...range(24, 500)]);
    const d = withPrompt([...range(8, 900), ...range(32, 8)]); // same tokens as a's blocks 1-4, other first block
    [b, c, d].forEach((s) => scheduler.add(s));
    const out = scheduler.schedule();
    const rowOf = (s: typeof a) => out.rows.find((r) => r.seq === s);
    // 40 tokens = 5 full blocks, but the last token must be computed: 4 blocks reused, 8 tokens computed.
    expect(rowOf(b)).toMatchObject({ numNewTokens: 8, isSampled: true });
    expect(b.numComputedTokens).toBe(32);
    expect(b.blockTable.slice(0, 4)).toEqual(a.blockTable.slice(0, 4));
    expect(blockManager.refCount(a.blockTable[0])).toBe(3);
    expect(rowOf(c)?.numNewTokens).toBe(24);
    expect(c.blockTable.slice(0, 2)).toEqual(a.blockTable.slice(0, 2));
    expect(rowOf(d)?.numNewTokens).toBe(40);
    expect(d.blockTable.some((blk) => a.blockTable.includes(blk))).toBe(false);
    for (const s of [a, b, c, d]) s.finish('stop', undefined, 0);
    scheduler.removeFinished();
    expect(blockManager.numFree).toBe(40);
  });

  it('counts each admitted lookup once in the hit/query metrics, and a refused admission not at all', () => {
    const { scheduler, blockManager } = cached(6, 8);
    const a = withPrompt(range(40));
    scheduler.add(a);
    const first = scheduler.schedule();
    completeStep(first);
    scheduler.cacheComputedBlocks(first.rows);
    // a's first lookup found nothing among its 4 candidate blocks (40 tokens, last one excluded).
    expect([blockManager.numQueriedBlocks, blockManager.numHitBlocks]).toEqual([4, 0]);
    // b shares a's 5 full blocks and needs 1 fresh one, but a's decode takes the last free block: b waits.
    const b = withPrompt(range(48));
    scheduler.add(b);
    for (let attempt = 0; attempt < 3; attempt++) expect(scheduler.schedule().rows.map((r) => r.seq)).toEqual([a]);
    expect([blockManager.numQueriedBlocks, blockManager.numHitBlocks]).toEqual([4, 0]);
    a.finish('stop', undefined, 0);
    scheduler.removeFinished();
    const out = scheduler.schedule();
    expect(out.rows.map((r) => r.seq)).toEqual([b]);
    expect(b.numComputedTokens).toBe(40);
    // b's one admitted lookup: 5 candidate blocks (48 tokens, last one excluded), all of them a's.
    expect(blockManager.numQueriedBlocks).toBe(4 + 5);
    expect(blockManager.numHitBlocks).toBe(b.numComputedTokens / 8);
  });

  it('a preempted sequence gets back what is left of its cached blocks (its tail is reused first)', () => {
    const { scheduler, blockManager } = cached(7, 4);
    const old = withPrompt(range(8));
    const mid = withPrompt(range(8, 100));
    const newest = withPrompt(range(8, 200));
    [old, mid, newest].forEach((s) => scheduler.add(s));
    const first = scheduler.schedule();
    completeStep(first);
    scheduler.cacheComputedBlocks(first.rows);
    const [headBlock] = newest.blockTable;
    // old takes the last free block; mid's block comes from preempting newest, whose tail block goes first.
    const out = scheduler.schedule();
    expect(out.preempted).toEqual([newest]);
    completeStep(out);
    scheduler.cacheComputedBlocks(out.rows);
    old.finish('stop', undefined, 0);
    scheduler.removeFinished();
    const back = scheduler.schedule();
    // newest holds 9 tokens: its first block is still cached, so 5 tokens are computed, not 9.
    expect(back.rows.find((r) => r.seq === newest)).toMatchObject({ numNewTokens: 5, isSampled: true });
    expect(newest.blockTable[0]).toBe(headBlock);
  });
});

describe('Scheduler with a step in flight (async scheduling)', () => {
  /** Admits `seqs` and launches their step as the engine does: computed, next token pending. */
  function launch(scheduler: Scheduler, seqs: Sequence[]): void {
    for (const seq of seqs) scheduler.add(seq);
    const rows = scheduler.schedule().rows;
    expect(rows.map((r) => r.seq)).toEqual(seqs);
    rows.forEach((row, s) => {
      row.seq.numComputedTokens += row.numNewTokens;
      row.seq.pendingTokenStep = 1;
      row.seq.pendingTokenRow = s;
    });
  }
  const withOutputs = (numPromptTokens: number, maxTokens: number, numOutputTokens: number): Sequence => {
    const seq = makeSeq(numPromptTokens, { maxTokens });
    for (let i = 0; i < numOutputTokens; i++) seq.appendToken(5, null);
    return seq;
  };

  it('schedules the pending token as a one-token sampled row, and no row when it will be the last', () => {
    const scheduler = new Scheduler({ maxNumSeqs: 8, maxNumBatchedTokens: 64, maxModelLen: 9 }, new BlockManager(100, 4));
    const next = withOutputs(6, 10, 0);
    const lastByMaxTokens = withOutputs(6, 3, 2);
    const lastByModelLen = withOutputs(7, 100, 1); // 9 tokens with the pending one
    launch(scheduler, [next, lastByMaxTokens, lastByModelLen]);
    expect(scheduler.schedule().rows.map((r) => [r.seq, r.numNewTokens, r.isSampled])).toEqual([[next, 1, true]]);
    expect(next.blockTable).toHaveLength(2); // position 6 (the pending token) is in the second block
  });

  it('does not admit a sequence preempted while its token is in flight until that token lands', () => {
    const blockManager = new BlockManager(3, 4);
    const scheduler = new Scheduler({ maxNumSeqs: 8, maxNumBatchedTokens: 64, maxModelLen: 64 }, blockManager);
    const older = makeSeq(4);
    const newer = makeSeq(4);
    launch(scheduler, [older, newer]);
    // Each pending token starts a second block; there is one free: the newer is preempted.
    const out = scheduler.schedule();
    expect(out.rows.map((r) => r.seq)).toEqual([older]);
    expect(out.preempted).toEqual([newer]);
    expect(scheduler.waiting).toEqual([newer]);
    older.finish('length', undefined, 0);
    scheduler.removeFinished();
    // Blocks are free now, but its token is still in flight: it waits.
    expect(scheduler.schedule().rows).toEqual([]);
    newer.pendingTokenStep = -1;
    newer.appendToken(9, null);
    expect(scheduler.schedule().rows.map((r) => [r.seq, r.numNewTokens, r.isSampled])).toEqual([[newer, 5, true]]);
  });
});
