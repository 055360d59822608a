// An engine that fails mid-generation (every stream rejects at once): a stream ends with an
// error frame and [DONE], a whole response is a 500 error body, and the process lives on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';
import { readSseFrames, waitForValue } from './stream-clients.ts';

let server: LiveServer;
let engine: FakeEngine;

beforeAll(async () => {
  engine = new FakeEngine({ tokenIntervalMs: 10, maxModelLen: 4096 });
  server = await startLiveServer({ engine });
});
afterAll(async () => {
  await server.close();
});

function post(body: object): Promise<Response> {
  return fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('engine failure mid-generation', () => {
  it('ends streams with an error frame and answers whole requests with 500', async () => {
    const streamed = await post({ prompt: 'abc', max_tokens: 1000, n: 3, stream: true });
    const whole = post({ prompt: 'abc', max_tokens: 1000, n: 2 });
    await waitForValue(() => engine.addedRequestIds.length, 5, 5_000);
    engine.failAll(new Error('simulated step failure'));

    expect(streamed.status).toBe(200);
    const frames = (await readSseFrames(streamed)) as { error?: { message: string; type: string } }[];
    expect(frames.at(-1)?.error?.type).toBe('server_error');
    expect(frames.at(-1)?.error?.message).toContain('simulated step failure');

    const wholeResponse = await whole;
    expect(wholeResponse.status).toBe(500);
    expect(((await wholeResponse.json()) as { error: { message: string } }).error.message).toContain('simulated step failure');

    // Still serving: /health reports the dead engine, new generations get 503.
    expect((await fetch(`${server.url}/health`)).status).toBe(503);
    expect((await post({ prompt: 'x' })).status).toBe(503);
    expect(server.ctx.lifecycle.numInFlight).toBe(0);
  });
});
