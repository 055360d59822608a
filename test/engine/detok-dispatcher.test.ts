import { describe, expect, it } from 'vitest';
import { DetokDispatcher, type DetokSink } from '../../src/engine/detok-dispatcher.ts';
import type { Sequence } from '../../src/engine/sequence.ts';
import type { DetokItem, DetokResult } from '../../src/workers/protocol.ts';
import { makeSeq } from './helpers.ts';

/** A pool whose batches resolve only when the test says so; text = the new token ids, spelled out. */
class ManualPool {
  readonly batches: { items: DetokItem[]; resolve: (r: DetokResult[]) => void; reject: (e: Error) => void }[] = [];
  maxInFlight = 0;
  private inFlight = 0;

  detokenizeStep(items: readonly DetokItem[]): Promise<DetokResult[]> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    // Copy what the pool would copy synchronously (the engine keeps appending to tokenIds).
    const copied = items.map((item) => ({ ...item, tokenIds: Array.from(item.tokenIds), state: { ...item.state } }));
    return new Promise((resolve, reject) => {
      this.batches.push({
        items: copied,
        resolve: (r) => {
          this.inFlight -= 1;
          resolve(r);
        },
        reject: (e) => {
          this.inFlight -= 1;
          reject(e);
        },
      });
    });
  }

  /** Results that "decode" each new token to `<id>` and find `stopAt` (a token id) if given. */
  static resultsFor(items: DetokItem[], stopAt?: number): DetokResult[] {
    return items.map((item) => {
      const ids = Array.from(item.tokenIds);
      let text = '';
      let stop: DetokResult['stop'] = null;
      let end = ids.length;
      for (let i = item.state.numProcessedTokens; i < ids.length; i++) {
        if (ids[i] === stopAt && i >= item.firstStopTokenIndex) {
          stop = { stopString: `<${stopAt}>`, tokenIndex: i };
          end = i + 1;
          break;
        }
        text += `<${ids[i]}>`;
      }
      return { seqId: item.seqId, text, stop, state: { ...item.state, numProcessedTokens: end, readOffset: end } };
    });
  }
}

const flushMicrotasks = (): Promise<void> => new Promise((r) => setImmediate(r));

function recordingSink(): DetokSink & { deltas: { seq: Sequence; text: string; numCovered: number; isLast: boolean }[]; failed: Sequence[] } {
  const deltas: { seq: Sequence; text: string; numCovered: number; isLast: boolean }[] = [];
  const failed: Sequence[] = [];
  return {
    deltas,
    failed,
    deliver: (seq, text, numCovered, isLast) => {
      deltas.push({ seq, text, numCovered, isLast });
      if (isLast) seq.isReported = true;
    },
    fail: (seqs) => failed.push(...seqs),
  };
}

describe('DetokDispatcher', () => {
  it('keeps at most one batch in flight; tokens made meanwhile go in the next batch, sent after the results are applied', async () => {
    const pool = new ManualPool();
    const sink = recordingSink();
    const d = new DetokDispatcher(pool, sink);
    const seq = makeSeq(3);
    seq.appendToken(10, null);
    d.markDirty(seq);
    d.flush(1);
    seq.appendToken(11, null);
    d.markDirty(seq);
    d.flush(2);
    seq.appendToken(12, null);
    d.markDirty(seq);
    d.flush(3);
    expect(pool.batches).toHaveLength(1);
    expect(d.lagSteps).toBe(3 - 0);
    pool.batches[0].resolve(ManualPool.resultsFor(pool.batches[0].items));
    await flushMicrotasks();
    // The first result is applied (text of token 10), then one batch with 11 and 12 goes out.
    expect(sink.deltas.map((x) => x.text)).toEqual(['<10>']);
    expect(pool.batches).toHaveLength(2);
    expect(pool.batches[1].items[0].state.numProcessedTokens).toBe(4);
    expect(Array.from(pool.batches[1].items[0].tokenIds).slice(4)).toEqual([11, 12]);
    pool.batches[1].resolve(ManualPool.resultsFor(pool.batches[1].items));
    await flushMicrotasks();
    expect(sink.deltas.map((x) => [x.text, x.numCovered])).toEqual([['<10>', 4], ['<11><12>', 6]]);
    expect(pool.maxInFlight).toBe(1);
    expect(d.isIdle).toBe(true);
    expect(d.lagSteps).toBe(0);
  });

  it('a stop string finishes the sequence and drops the tokens after the one completing it', async () => {
    const pool = new ManualPool();
    const sink = recordingSink();
    const d = new DetokDispatcher(pool, sink);
    const seq = makeSeq(2);
    [20, 21, 22].forEach((t) => seq.appendToken(t, null));
    d.markDirty(seq);
    d.flush(1);
    seq.appendToken(23, null); // made while the batch was in flight
    d.markDirty(seq);
    pool.batches[0].resolve(ManualPool.resultsFor(pool.batches[0].items, 21));
    await flushMicrotasks();
    expect(seq.isFinished).toBe(true);
    expect(seq).toMatchObject({ finishReason: 'stop', stopReason: '<21>' });
    expect(seq.outputTokenIds).toEqual([20, 21]);
    expect(sink.deltas).toEqual([{ seq, text: '<20>', numCovered: 4, isLast: true }]);
    // Nothing more is sent for it.
    expect(pool.batches).toHaveLength(1);
  });

  it('a finished sequence is sent once more as final; a stop token is left out of its text', async () => {
    const pool = new ManualPool();
    const sink = recordingSink();
    const d = new DetokDispatcher(pool, sink);
    const seq = makeSeq(2, { stopTokenIds: [99] });
    seq.appendToken(30, null);
    seq.appendToken(99, null);
    seq.finish('stop', 99, 0);
    d.markDirty(seq);
    d.flush(1);
    const item = pool.batches[0].items[0];
    expect(item.isFinal).toBe(true);
    expect(Array.from(item.tokenIds)).toEqual([...seq.promptTokenIds, 30]);
    pool.batches[0].resolve(ManualPool.resultsFor(pool.batches[0].items));
    await flushMicrotasks();
    expect(sink.deltas).toEqual([{ seq, text: '<30>', numCovered: 4, isLast: true }]);
  });

  it('a failed batch fails its sequences, and later batches still go out', async () => {
    const pool = new ManualPool();
    const sink = recordingSink();
    const d = new DetokDispatcher(pool, sink);
    const a = makeSeq(2);
    a.appendToken(1, null);
    d.markDirty(a);
    d.flush(1);
    const b = makeSeq(2);
    b.appendToken(2, null);
    d.markDirty(b);
    d.flush(2);
    pool.batches[0].reject(new Error('worker gone'));
    await flushMicrotasks();
    expect(sink.failed).toEqual([a]);
    expect(pool.batches).toHaveLength(2);
    expect(pool.batches[1].items.map((i) => i.seqId)).toEqual([b.seqId]);
  });
});
