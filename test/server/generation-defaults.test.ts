// The model's generation-config sampling defaults (vLLM's --generation-config auto): a request
// that leaves a field out gets the model's value, one that sets it keeps its own, and the
// model's max_new_tokens caps every request's max_tokens, asked for or not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';

let server: LiveServer;
const engine = new FakeEngine({ maxModelLen: 256, samplingDefaults: { temperature: 0.6, topP: 0.9, topK: 20, repetitionPenalty: 1.1, maxTokens: 7 } });

beforeAll(async () => {
  server = await startLiveServer({ engine });
});
afterAll(async () => {
  await server.close();
});

async function post(path: string, body: object): Promise<void> {
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  await response.json();
}

describe('generation-config sampling defaults', () => {
  it('fill the fields a request leaves out; a field the request sets wins', async () => {
    await post('/v1/completions', { prompt: 'a', max_tokens: 3 });
    expect(engine.addedParams.at(-1)).toMatchObject({ temperature: 0.6, topP: 0.9, topK: 20, repetitionPenalty: 1.1, minP: 0, maxTokens: 3 });
    await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], temperature: 0, top_p: 1, top_k: -1, repetition_penalty: 1, max_tokens: 2 });
    expect(engine.addedParams.at(-1)).toMatchObject({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, maxTokens: 2 }); // top_k -1 is "off", 0 inside
  });

  it('cap max_tokens at the model\'s max_new_tokens, as vLLM does, whether it was asked for or not', async () => {
    await post('/v1/completions', { prompt: 'a', max_tokens: 50 });
    expect(engine.addedParams.at(-1)?.maxTokens).toBe(7);
    await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
    expect(engine.addedParams.at(-1)?.maxTokens).toBe(7);
  });
});
