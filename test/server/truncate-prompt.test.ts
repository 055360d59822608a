// vLLM's truncate_prompt_tokens: a prompt longer than k tokens keeps its last k (-1: max_model_len),
// on both endpoints; echo then shows the tokens the model saw; bad values get a 400.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';

let server: LiveServer;
const engine = new FakeEngine({ maxModelLen: 64 });

beforeAll(async () => {
  server = await startLiveServer({ engine });
});
afterAll(async () => {
  await server.close();
});

async function post(path: string, body: object): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('truncate_prompt_tokens', () => {
  const long = 'abcdefghijklmnopqrstuvwxyz'.repeat(4); // 104 bytes: over max_model_len 64

  it('keeps the last k tokens of a completion prompt, and echo shows them', async () => {
    expect((await post('/v1/completions', { prompt: long, max_tokens: 2 })).status).toBe(400);
    const { status, json } = await post('/v1/completions', { prompt: long, max_tokens: 2, echo: true, truncate_prompt_tokens: 10 });
    expect(status).toBe(200);
    expect(json.usage).toMatchObject({ prompt_tokens: 10 });
    const text = (json.choices as { text: string }[])[0].text;
    expect(text.startsWith(long.slice(-10))).toBe(true);
    // A prompt already shorter than k is left as it is.
    expect((await post('/v1/completions', { prompt: 'short', max_tokens: 2, truncate_prompt_tokens: 10 })).json.usage).toMatchObject({ prompt_tokens: 6 });
  });

  it('truncates the rendered chat prompt too; -1 means max_model_len', async () => {
    const chat = await post('/v1/chat/completions', { messages: [{ role: 'user', content: long }], max_tokens: 2, truncate_prompt_tokens: 20 });
    expect(chat.status).toBe(200);
    expect(chat.json.usage).toMatchObject({ prompt_tokens: 20 });
    // max_model_len tokens of prompt leave no room for output: the usual context-length 400.
    const full = await post('/v1/completions', { prompt: long, max_tokens: 2, truncate_prompt_tokens: -1 });
    expect(full.status).toBe(400);
    expect(JSON.stringify(full.json)).toContain('maximum context length');
  });

  it('refuses 0, other negatives, non-integers and more than max_model_len', async () => {
    for (const k of [0, -2, 1.5]) {
      const { status, json } = await post('/v1/completions', { prompt: 'a', truncate_prompt_tokens: k });
      expect(status, `k = ${k}`).toBe(400);
      expect(json.error).toMatchObject({ param: 'truncate_prompt_tokens' });
    }
    const { status, json } = await post('/v1/completions', { prompt: 'a', truncate_prompt_tokens: 65 });
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ param: 'truncate_prompt_tokens', message: 'truncate_prompt_tokens value (65) is greater than max_model_len (64). Please, select a smaller truncation size.' });
  });
});
