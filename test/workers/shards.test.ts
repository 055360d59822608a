/** Shard planning: contiguous ranges covering every item once, balanced by window tokens. */
import { describe, expect, it } from 'vitest';

import { windowLength } from '../../src/workers/columns.ts';
import { planShards } from '../../src/workers/pool.ts';
import { initialDetokState } from '../../src/workers/protocol.ts';
import type { DetokItem } from '../../src/workers/protocol.ts';
import { PLAIN_PARAMS, makeRng, randInt } from './helpers.ts';

const ITEM_COST_TOKENS = 2;

function item(seqId: number, numWindowTokens: number): DetokItem {
  const tokenIds = new Array<number>(numWindowTokens + 3).fill(1);
  return {
    seqId,
    tokenIds,
    state: { ...initialDetokState([]), prefixOffset: 3, readOffset: 3 },
    params: PLAIN_PARAMS,
    firstStopTokenIndex: 0,
    isFinal: false,
  };
}

describe('planShards', () => {
  it('cuts contiguous ranges of about equal work', () => {
    const rng = makeRng(3);
    for (let trial = 0; trial < 200; trial++) {
      const items = Array.from({ length: randInt(rng, 1, 600) }, (_, i) => item(i, rng() < 0.1 ? randInt(rng, 20, 400) : randInt(rng, 1, 8)));
      const numShards = randInt(rng, 1, 17);
      const minItemsPerShard = randInt(rng, 1, 20);
      const { starts } = planShards(items, numShards, minItemsPerShard);
      const count = starts.length - 1;
      expect(starts[0]).toBe(0);
      expect(starts[count]).toBe(items.length);
      for (let s = 0; s < count; s++) expect(starts[s + 1]).toBeGreaterThan(starts[s]);
      expect(count).toBeLessThanOrEqual(Math.max(1, Math.min(numShards, Math.floor(items.length / minItemsPerShard))));
      const costs = items.map((it) => windowLength(it) + ITEM_COST_TOKENS);
      const total = costs.reduce((a, b) => a + b, 0);
      const largestItem = Math.max(...costs);
      for (let s = 0; s < count; s++) {
        const shardCost = costs.slice(starts[s], starts[s + 1]).reduce((a, b) => a + b, 0);
        // Each cut lands at the first item reaching the next equal share, so no shard exceeds
        // one share by more than the item that crossed the line.
        expect(shardCost).toBeLessThanOrEqual(total / count + largestItem);
      }
    }
  });
});
