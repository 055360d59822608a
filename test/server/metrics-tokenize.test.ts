// /metrics under vLLM's names with values that follow the traffic, /tokenize ↔ /detokenize,
// /version, /health (engine dead → 503) and draining (503 for newcomers, in-flight finishes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';
import { readSseFrames } from './stream-clients.ts';

let server: LiveServer;
const engine = new FakeEngine();

beforeAll(async () => {
  server = await startLiveServer({ engine });
});
afterAll(async () => {
  await server.close();
});

function post(path: string, body: object): Promise<Response> {
  return fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Sample values of a metric in Prometheus text format (one per label set / bucket). */
function samples(text: string, name: string): number[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
}

describe('metrics', () => {
  it('exposes vLLM names with values that follow the requests', async () => {
    const prompts = ['one', 'three'];
    const maxTokens = 5;
    for (const prompt of prompts) expect((await post('/v1/completions', { prompt, max_tokens: maxTokens })).status).toBe(200);
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const numPromptTokens = prompts.reduce((sum, p) => sum + p.length + 1, 0);
    expect(samples(text, 'vllm:prompt_tokens_total')).toEqual([numPromptTokens]);
    expect(samples(text, 'vllm:generation_tokens_total')).toEqual([prompts.length * maxTokens]);
    expect(samples(text, 'vllm:num_requests_running')).toEqual([0]);
    expect(samples(text, 'vllm:num_requests_waiting')).toEqual([0]);
    expect(samples(text, 'vllm:kv_cache_usage_perc')).toEqual([0]);
    expect(samples(text, 'vllm:gpu_cache_usage_perc')).toEqual([0]);
    expect(samples(text, 'vllm:time_to_first_token_seconds_count')).toEqual([prompts.length]);
    expect(samples(text, 'vllm:e2e_request_latency_seconds_count')).toEqual([prompts.length]);
    // every token after the first of each request contributes one inter-token gap
    expect(samples(text, 'vllm:inter_token_latency_seconds_count')).toEqual([prompts.length * (maxTokens - 1)]);
    const ttftSum = samples(text, 'vllm:time_to_first_token_seconds_sum')[0];
    const e2eSum = samples(text, 'vllm:e2e_request_latency_seconds_sum')[0];
    expect(ttftSum).toBeGreaterThan(0);
    expect(e2eSum).toBeGreaterThanOrEqual(ttftSum);
  });

  it('keeps one registry per app', () => {
    const a = createApp({ engine: new FakeEngine() }).ctx.metrics.registry;
    const b = createApp({ engine: new FakeEngine() }).ctx.metrics.registry;
    expect(a).not.toBe(b);
    expect(a.getSingleMetric('vllm:num_requests_running')).toBeDefined();
  });
});

describe('tokenize and detokenize', () => {
  it('round-trips text', async () => {
    const prompt = 'Grüße, world! 👋';
    const tokenized = (await (await post('/tokenize', { prompt, add_special_tokens: false })).json()) as { tokens: number[]; count: number; max_model_len: number };
    expect(tokenized.count).toBe(tokenized.tokens.length);
    expect(tokenized.tokens).toEqual(await engine.tokenize(prompt, false));
    expect(tokenized.max_model_len).toBe(engine.maxModelLen);
    const detokenized = (await (await post('/detokenize', { tokens: tokenized.tokens })).json()) as { prompt: string };
    expect(detokenized.prompt).toBe(prompt);
  });

  it('tokenizes chat messages through the template', async () => {
    const messages = [{ role: 'user', content: 'hey' }];
    const tokenized = (await (await post('/tokenize', { messages })).json()) as { tokens: number[] };
    const detokenized = (await (await post('/detokenize', { tokens: tokenized.tokens })).json()) as { prompt: string };
    // the fake tokenizer reads the template's BOS as plain text
    expect(detokenized.prompt).toBe(`${engine.chatTemplate.bosToken}[user] hey\n[assistant] `);
  });
});

describe('version and health', () => {
  it('answers /version and /health', async () => {
    const version = (await (await fetch(`${server.url}/version`)).json()) as { version: string };
    expect(version.version).toMatch(/^\d+\.\d+\.\d+/);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('answers 503 on /health once the engine died', async () => {
    const dead = new FakeEngine();
    dead.isAlive = false;
    const { app } = createApp({ engine: dead });
    const response = await app.request('/health');
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe('service_unavailable_error');
    const completion = await app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"x"}' });
    expect(completion.status).toBe(503);
    expect(((await completion.json()) as { error: { message: string } }).error.message).toContain('the engine has stopped');
  });
});

describe('draining', () => {
  it('refuses newcomers with 503 while the request in flight finishes', async () => {
    const slow = new FakeEngine({ tokenIntervalMs: 10 });
    const local = await startLiveServer({ engine: slow });
    try {
      const inFlight = fetch(`${local.url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'abc', max_tokens: 30, stream: true }),
      });
      const response = await inFlight;
      expect(response.status).toBe(200);
      const drained = local.ctx.lifecycle.drain(10_000);
      expect((await fetch(`${local.url}/health`)).status).toBe(503);
      const refused = await fetch(`${local.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"x"}' });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('shutting down');
      const frames = (await readSseFrames(response)) as { choices: { text: string; finish_reason: string | null }[] }[];
      expect(frames.map((f) => f.choices[0].text).join('')).toHaveLength(30);
      expect(frames.at(-1)?.choices[0].finish_reason).toBe('length');
      expect(await drained).toBe(true);
    } finally {
      await local.close();
    }
  });

  it('counts a request in flight from its arrival, not only once its job has started', async () => {
    // A request still tokenizing its prompt when the drain starts must be waited for; else the
    // engine is shut down under it and the client gets an error instead of its completion.
    let releaseTokenize = (): void => {};
    const tokenizeGate = new Promise<void>((resolve) => (releaseTokenize = resolve));
    let numTokenizeCalls = 0;
    const gated = new (class extends FakeEngine {
      override async tokenize(text: string, addSpecialTokens: boolean): Promise<number[]> {
        numTokenizeCalls++;
        await tokenizeGate;
        return super.tokenize(text, addSpecialTokens);
      }
    })();
    const local = await startLiveServer({ engine: gated });
    try {
      const pending = fetch(`${local.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"wait","max_tokens":3}' });
      while (numTokenizeCalls === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      let isDrained = false;
      const drained = local.ctx.lifecycle.drain(10_000).then((result) => (isDrained = result));
      await new Promise((resolve) => setImmediate(resolve));
      expect(isDrained).toBe(false);
      releaseTokenize();
      const response = await pending;
      expect(response.status).toBe(200);
      expect(((await response.json()) as { choices: { text: string }[] }).choices[0].text).toBe('wai');
      expect(await drained).toBe(true);
    } finally {
      await local.close();
    }
  });
});
