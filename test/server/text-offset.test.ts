// text_offset counts characters (Unicode code points), as vLLM's Python str indices do, not
// UTF-16 units: a token holding an emoji (a surrogate pair in JavaScript) moves the next
// token's offset by one.
import { describe, expect, it } from 'vitest';
import { completionLogprobs } from '../../src/server/logprobs.ts';
import type { TokenTextCache } from '../../src/server/token-text.ts';

const TEXTS = new Map<number, string>([[1, 'a😀'], [2, 'é'], [3, ' b']]);
const tokenText = { textsOf: async (ids: readonly number[]) => ids.map((id) => TEXTS.get(id) ?? '') } as unknown as TokenTextCache;
const entry = (tokenId: number) => ({ tokenId, logprob: -1, top: [] });

describe('completion logprobs text_offset', () => {
  it('advances by code points, across deltas too', async () => {
    const first = await completionLogprobs([entry(1), entry(2)], tokenText, 5);
    expect(first.logprobs.text_offset).toEqual([5, 7]);
    const second = await completionLogprobs([entry(3)], tokenText, first.nextTextOffset);
    expect(second.logprobs.text_offset).toEqual([8]);
    expect(second.nextTextOffset).toBe(10);
  });
});
