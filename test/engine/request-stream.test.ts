import { describe, expect, it } from 'vitest';
import { RequestStream } from '../../src/engine/request-stream.ts';

describe('RequestStream', () => {
  it('hands deltas to a waiting consumer and merges what piles up for a slow one', async () => {
    const stream = new RequestStream('r', () => {});
    const it = stream[Symbol.asyncIterator]();
    const first = it.next();
    stream.push({ requestId: 'r', text: 'a', tokenIds: [1], promptTokenIds: [9] });
    expect(await first).toEqual({ done: false, value: { requestId: 'r', text: 'a', tokenIds: [1], promptTokenIds: [9] } });
    stream.push({ requestId: 'r', text: 'b', tokenIds: [2], logprobs: [{ tokenId: 2, logprob: -1, top: [] }] });
    stream.push({ requestId: 'r', text: 'c', tokenIds: [3], logprobs: [{ tokenId: 3, logprob: -2, top: [] }], finishReason: 'length', usage: { promptTokens: 1, completionTokens: 3 } });
    stream.push({ requestId: 'r', text: 'ignored after the end', tokenIds: [] });
    const merged = await it.next();
    expect(merged.value).toEqual({
      requestId: 'r',
      text: 'bc',
      tokenIds: [2, 3],
      logprobs: [{ tokenId: 2, logprob: -1, top: [] }, { tokenId: 3, logprob: -2, top: [] }],
      finishReason: 'length',
      usage: { promptTokens: 1, completionTokens: 3 },
    });
    expect((await it.next()).done).toBe(true);
  });

  it('a consumer that leaves early cancels the request; a failure rejects the next read', async () => {
    let numCancels = 0;
    const stream = new RequestStream('r', () => numCancels++);
    for await (const delta of (stream.push({ requestId: 'r', text: 'x', tokenIds: [] }), stream)) {
      expect(delta.text).toBe('x');
      break;
    }
    expect(numCancels).toBe(1);
    const failing = new RequestStream('f', () => numCancels++);
    const it = failing[Symbol.asyncIterator]();
    const pending = it.next();
    failing.fail(new Error('boom'));
    await expect(pending).rejects.toThrow('boom');
    expect(numCancels).toBe(1);
    expect(() => failing[Symbol.asyncIterator]()).toThrow(/only once/);
  });
});
