import { describe, expect, it } from 'vitest';
import { generateOutputs } from '../../src/engine/generate.ts';
import type { EngineClient, RequestDelta } from '../../src/engine/types.ts';

/** A client whose request 'g-0' fails mid-stream and whose other requests never end until aborted. */
function fakeClient() {
  const aborted = new Set<string>();
  const waiters = new Map<string, () => void>();
  const client: Pick<EngineClient, 'addRequest' | 'abort'> = {
    async addRequest(requestId) {
      async function* deltas(): AsyncGenerator<RequestDelta> {
        yield { requestId, text: 'a', tokenIds: [1] };
        if (requestId === 'g-0') throw new Error('detokenization failed');
        await new Promise<void>((resolve) => waiters.set(requestId, resolve));
        yield { requestId, text: '', tokenIds: [], finishReason: 'abort' };
      }
      return deltas();
    },
    abort(requestId) {
      aborted.add(requestId);
      waiters.get(requestId)?.();
    },
  };
  return { client, aborted };
}

describe('generateOutputs', () => {
  it('when one request fails, aborts the others (nobody would read them) and throws its error', async () => {
    const { client, aborted } = fakeClient();
    await expect(generateOutputs(client, 'g', ['x', 'y', 'z'], {})).rejects.toThrow('detokenization failed');
    expect([...aborted].sort()).toEqual(['g-0', 'g-1', 'g-2']);
  });
});
