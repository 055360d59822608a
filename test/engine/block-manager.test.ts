import { describe, expect, it } from 'vitest';
import { BlockManager } from '../../src/engine/block-manager.ts';

describe('BlockManager', () => {
  it('allocates distinct blocks until none are left, then refuses', () => {
    const bm = new BlockManager(8, 4);
    const a = bm.allocate(3);
    const b = bm.allocate(5);
    expect(new Set([...a, ...b]).size).toBe(8);
    expect(bm.numFree).toBe(0);
    expect(bm.usage).toBe(1);
    expect(bm.canAllocate(1)).toBe(false);
    expect(() => bm.allocate(1)).toThrow(/cannot allocate/);
    bm.free(a);
    expect(a).toEqual([]);
    expect(bm.numFree).toBe(3);
    expect(bm.usage).toBeCloseTo(5 / 8);
  });

  it('appendSlots grows a table to hold a token count, or changes nothing', () => {
    const bm = new BlockManager(4, 4);
    const table: number[] = [];
    expect(bm.appendSlots(table, 1)).toBe(true);
    expect(table.length).toBe(1);
    expect(bm.appendSlots(table, 4)).toBe(true);
    expect(table.length).toBe(1);
    expect(bm.appendSlots(table, 5)).toBe(true);
    expect(table.length).toBe(2);
    const other: number[] = [];
    expect(bm.appendSlots(other, 9)).toBe(false);
    expect(other).toEqual([]);
    expect(bm.numFree).toBe(2);
    expect(bm.appendSlots(other, 8)).toBe(true);
    expect(bm.numFree).toBe(0);
    expect(new Set([...table, ...other]).size).toBe(4);
  });

  it('counts references: a shared block is free only after its last holder frees it', () => {
    const bm = new BlockManager(4, 2);
    const a = bm.allocate(2);
    const shared = a.slice();
    bm.share(shared);
    expect(bm.refCount(a[0])).toBe(2);
    bm.free(a);
    expect(bm.numFree).toBe(2);
    expect(bm.refCount(shared[0])).toBe(1);
    const firstBlock = shared[0];
    bm.free(shared);
    expect(bm.numFree).toBe(4);
    expect(bm.refCount(firstBlock)).toBe(0);
  });

  it('never double-frees: a freed block, an unknown block or a repeated block throw and change nothing', () => {
    const bm = new BlockManager(6, 2);
    const a = bm.allocate(2);
    const copy = a.slice();
    bm.free(a);
    const freeAfter = bm.numFree;
    expect(() => bm.free(copy.slice())).toThrow(/double free/);
    expect(bm.numFree).toBe(freeAfter);
    const b = bm.allocate(2);
    expect(() => bm.free([b[0], 99])).toThrow(/does not exist/);
    expect(bm.refCount(b[0])).toBe(1);
    expect(() => bm.free([b[0], b[1], b[0]])).toThrow(/double free/);
    expect(bm.refCount(b[0])).toBe(1);
    expect(bm.refCount(b[1])).toBe(1);
    expect(bm.numFree).toBe(4);
    bm.free(b);
    expect(bm.numFree).toBe(6);
  });

  it('survives random allocate/free churn with consistent counts', () => {
    const bm = new BlockManager(64, 16);
    const tables: number[][] = [];
    let state = 12345;
    const rand = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    for (let i = 0; i < 2000; i++) {
      if (tables.length > 0 && rand(2) === 0) {
        const t = tables.splice(rand(tables.length), 1)[0];
        bm.free(t);
      } else {
        const table: number[] = [];
        if (bm.appendSlots(table, 1 + rand(100))) tables.push(table);
      }
      const held = tables.flat();
      expect(new Set(held).size).toBe(held.length);
      expect(bm.numFree + held.length).toBe(64);
    }
    for (const t of tables) bm.free(t);
    expect(bm.numFree).toBe(64);
  });
});

describe('BlockManager prefix cache', () => {
  it('finds registered blocks by key, also after they are freed, until they are handed out again', () => {
    const bm = new BlockManager(4, 2, true);
    const table = bm.allocate(2);
    const [b0, b1] = table;
    bm.register(b0, 'k0');
    bm.register(b1, 'k1');
    expect(bm.findCachedPrefix(['k0', 'k1', 'k2'])).toEqual([b0, b1]);
    expect(bm.findCachedPrefix(['kx', 'k1'])).toEqual([]);
    bm.free(table);
    expect(bm.numFree).toBe(4);
    expect(bm.findCachedPrefix(['k0', 'k1'])).toEqual([b0, b1]);
    // Sharing revives free cached blocks: they leave the free list.
    expect(bm.numFreeAmong([b0, b1])).toBe(2);
    const again = [b0, b1];
    bm.share(again);
    expect(bm.numFree).toBe(2);
    expect(bm.refCount(b0)).toBe(1);
    bm.free(again);
    // Fresh allocations take never-cached blocks first, then the least recently freed,
    // a sequence's tail (b1) before its head (b0).
    const fresh = bm.allocate(3);
    expect(fresh).not.toContain(b0);
    expect(bm.findCachedPrefix(['k0'])).toEqual([b0]);
    expect(bm.findCachedPrefix(['k0', 'k1'])).toEqual([b0]);
    expect(bm.numCachedBlocks).toBe(1);
  });

  it('keeps the first block registered under a key, and registers nothing when disabled', () => {
    const bm = new BlockManager(4, 2, true);
    const [a, b] = bm.allocate(2);
    bm.register(a, 'same');
    bm.register(b, 'same');
    expect(bm.findCachedPrefix(['same'])).toEqual([a]);
    const off = new BlockManager(4, 2, false);
    const [c] = off.allocate(1);
    off.register(c, 'k');
    expect(off.findCachedPrefix(['k'])).toEqual([]);
    expect(off.numCachedBlocks).toBe(0);
  });
});
