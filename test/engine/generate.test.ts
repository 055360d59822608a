import { describe, expect, it } from 'vitest';
import { generateOutputs } from '../../src/engine/generate.ts';
import type { EngineClient, PromptInput, RequestDelta } from '../../src/engine/types.ts';

/** A client whose request 'g-0' fails mid-stream and whose other requests never end until aborted. */
function fakeClient() {
  const aborted = new Set<string>();
  const waiters = new Map<string, () => void>();
  const client: Pick<EngineClient, 'addRequest' | 'abort' | 'tokenize'> = {
    tokenize: async (text) => [text.length],
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

  it('queues every request in one turn, text prompts tokenized first, so the first step sees them all (as vLLM LLM.generate)', async () => {
    let numTokenized = 0;
    const seen: { prompt: PromptInput; numTokenized: number }[] = [];
    const client: Pick<EngineClient, 'addRequest' | 'abort' | 'tokenize'> = {
      async tokenize(text) {
        // Tokenizations finish at different times, the longest prompt last.
        await new Promise((resolve) => setTimeout(resolve, text.length));
        numTokenized += 1;
        return [text.length, 1];
      },
      async addRequest(requestId, prompt) {
        seen.push({ prompt, numTokenized });
        async function* deltas(): AsyncGenerator<RequestDelta> {
          yield { requestId, text: '', tokenIds: [], finishReason: 'length' };
        }
        return deltas();
      },
      abort() {},
    };
    const outputs = await generateOutputs(client, 'q', ['a much longer prompt', { promptTokenIds: [4] }, 'short'], {});
    expect(outputs.map((o) => o.requestId)).toEqual(['q-0', 'q-1', 'q-2']);
    expect(seen).toEqual([
      { prompt: { promptTokenIds: [20, 1] }, numTokenized: 2 },
      { prompt: { promptTokenIds: [4] }, numTokenized: 2 },
      { prompt: { promptTokenIds: [5, 1] }, numTokenized: 2 },
    ]);
  });
});
