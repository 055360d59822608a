// Clients that hang up mid-stream abort their requests: the engine gets every abort and
// every KV block comes back (fake engine; the real engine's version is in real-engine.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';
import { hangUpMidStream, waitForValue } from './stream-clients.ts';

const NUM_CLIENTS = 100;
let server: LiveServer;
const engine = new FakeEngine({ tokenIntervalMs: 5, maxModelLen: 4096 });

beforeAll(async () => {
  server = await startLiveServer({ engine });
});
afterAll(async () => {
  await server.close();
});

describe('client disconnects', () => {
  it(`${NUM_CLIENTS} streaming clients hanging up leave zero used blocks`, async () => {
    const framesRead = await Promise.all(
      Array.from({ length: NUM_CLIENTS }, (_, i) =>
        hangUpMidStream(
          `${server.url}/v1/${i % 2 === 0 ? 'completions' : 'chat/completions'}`,
          i % 2 === 0 ? { prompt: `client ${i}`, max_tokens: 2000, n: 1 + (i % 3) } : { messages: [{ role: 'user', content: `client ${i}` }], max_tokens: 2000 },
          3,
        ),
      ),
    );
    expect(framesRead.every((n) => n >= 3)).toBe(true);
    expect(await waitForValue(() => engine.numUsedBlocks, 0, 10_000)).toBe(0);
    expect(engine.stats().numRunning).toBe(0);
    // Every queued sequence was aborted (none ran to its 2000 tokens).
    expect(engine.abortedRequestIds.size).toBe(engine.addedRequestIds.length);
    expect(server.ctx.lifecycle.numInFlight).toBe(0);
  });

  it('counts the tokens sent to clients that hung up in vllm:generation_tokens_total', async () => {
    const generationTokens = async (): Promise<number> => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('vllm:generation_tokens_total{'));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const numBefore = await generationTokens();
    const numFramesRead = await hangUpMidStream(`${server.url}/v1/completions`, { prompt: 'counted', max_tokens: 2000 }, 5);
    // Every frame read carried at least one generated token (the fake engine's text is never empty).
    expect(numFramesRead).toBe(5);
    expect((await generationTokens()) - numBefore).toBeGreaterThanOrEqual(numFramesRead);
  });

  it('a non-streaming client that hangs up aborts too', async () => {
    const numAdded = engine.addedRequestIds.length;
    const controller = new AbortController();
    const pending = fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'long', max_tokens: 3000 }),
      signal: controller.signal,
    }).catch((err: unknown) => err);
    await waitForValue(() => engine.addedRequestIds.length, numAdded + 1, 5_000);
    controller.abort();
    await pending;
    const requestId = engine.addedRequestIds[numAdded];
    expect(await waitForValue(() => engine.abortedRequestIds.has(requestId), true, 5_000)).toBe(true);
    expect(await waitForValue(() => engine.numUsedBlocks, 0, 5_000)).toBe(0);
  });

  it('a non-streaming request whose client left before its job started is aborted', async () => {
    // The disconnect (the request signal's abort event) can come while the prompt is read or
    // tokenized, before the job exists: the job must still be aborted, not run to max_tokens.
    const { app } = createApp({ engine });
    const numAdded = engine.addedRequestIds.length;
    const request = new Request('http://spindle.test/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'gone', max_tokens: 3000 }),
      signal: AbortSignal.abort(),
    });
    const pending = Promise.resolve(app.fetch(request));
    await waitForValue(() => engine.addedRequestIds.length, numAdded + 1, 5_000);
    const requestId = engine.addedRequestIds[numAdded];
    expect(await waitForValue(() => engine.abortedRequestIds.has(requestId), true, 2_000)).toBe(true);
    await pending;
    expect(await waitForValue(() => engine.numUsedBlocks, 0, 5_000)).toBe(0);
  });
});
