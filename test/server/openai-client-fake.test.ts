// The openai npm package against a live server backed by the fake (echo) engine: both endpoints,
// whole and streamed, n > 1, echo, usage, logprobs, stop strings and the API key.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';

/** What the fake engine writes for a prompt: its bytes, cycled, cut to maxTokens bytes (ASCII). */
function echoOf(prompt: string, maxTokens: number): string {
  return Array.from({ length: maxTokens }, (_, i) => prompt[i % prompt.length]).join('');
}

let server: LiveServer;
let client: OpenAI;
const engine = new FakeEngine();
const API_KEY = 'test-key-123';

beforeAll(async () => {
  server = await startLiveServer({ engine, apiKey: API_KEY, servedModelNames: ['echo-a', 'echo-b'] });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY, maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

describe('openai client against the fake engine', () => {
  it('completes text and counts usage', async () => {
    const prompt = 'Hello there';
    const completion = await client.completions.create({ model: 'echo-a', prompt, max_tokens: 7 });
    expect(completion.object).toBe('text_completion');
    expect(completion.model).toBe('echo-a');
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0].text).toBe(echoOf(prompt, 7));
    expect(completion.choices[0].finish_reason).toBe('length');
    // byte-level fake tokenizer: one token per byte plus BOS
    expect(completion.usage).toEqual({ prompt_tokens: prompt.length + 1, completion_tokens: 7, total_tokens: prompt.length + 8 });
  });

  it('accepts a second served name and token-id prompts', async () => {
    const ids = await engine.tokenize('xyz', false);
    const completion = await client.completions.create({ model: 'echo-b', prompt: [ids, ids], max_tokens: 4 });
    expect(completion.choices.map((c) => [c.index, c.text])).toEqual([[0, 'xyzx'], [1, 'xyzx']]);
    expect(completion.usage?.prompt_tokens).toBe(6);
  });

  it('echoes each prompt before its n choices, whole and streamed', async () => {
    const prompts = ['ab', 'xyz'];
    const ids = await Promise.all(prompts.map((p) => engine.tokenize(p, false)));
    const expected = [0, 0, 1, 1].map((p, index) => [index, prompts[p] + echoOf(prompts[p], 3)]);
    const whole = await client.completions.create({ model: 'echo-a', prompt: ids, n: 2, max_tokens: 3, echo: true });
    expect(whole.choices.map((c) => [c.index, c.text])).toEqual(expected);
    const stream = await client.completions.create({ model: 'echo-a', prompt: ids, n: 2, max_tokens: 3, echo: true, stream: true });
    const streamed = ['', '', '', ''];
    for await (const chunk of stream) for (const choice of chunk.choices) streamed[choice.index] += choice.text;
    expect(streamed.map((text, index) => [index, text])).toEqual(expected);
  });

  it('streams completions whose text concatenates to the whole answer', async () => {
    const prompt = 'stream me';
    const stream = await client.completions.create({ model: 'echo-a', prompt, max_tokens: 12, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const finishReasons: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.text;
        if (choice.finish_reason) finishReasons.push(choice.finish_reason);
      }
    }
    expect(text).toBe(echoOf(prompt, 12));
    expect(finishReasons).toEqual(['length']);
    expect(usage?.completion_tokens).toBe(12);
  });

  it('chats, whole and streamed, the role in an opening chunk of its own', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'ping' }];
    const whole = await client.chat.completions.create({ model: 'echo-a', messages, max_tokens: 9 });
    expect(whole.choices[0].message.role).toBe('assistant');
    expect(whole.choices[0].message.content).toHaveLength(9);

    const stream = await client.chat.completions.create({ model: 'echo-a', messages, max_tokens: 9, stream: true });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.slice(1).every((c) => c.choices[0].delta.role === undefined)).toBe(true);
    expect(chunks.map((c) => c.choices[0].delta.content).join('')).toBe(whole.choices[0].message.content);
  });

  it('opens each streamed chat choice with a role-only chunk, as vLLM does, and no later chunk has a role', async () => {
    const n = 3;
    const stream = await client.chat.completions.create({
      model: 'echo-a', messages: [{ role: 'user', content: 'roles' }], max_tokens: 4, n, stream: true,
      stream_options: { include_usage: true }, logprobs: true, top_logprobs: 1,
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const usageChunk = chunks.at(-1);
    expect(usageChunk?.choices).toEqual([]);
    const choiceChunks = chunks.slice(0, -1);
    // The n opening chunks come first, in index order, before any token of any choice.
    const opening = choiceChunks.slice(0, n);
    expect(opening.map((c) => c.choices)).toEqual(
      Array.from({ length: n }, (_, index) => [{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
    );
    const content = choiceChunks.slice(n);
    expect(content.length).toBeGreaterThanOrEqual(n);
    for (const chunk of content) {
      expect(chunk.choices).toHaveLength(1);
      expect(chunk.choices[0].delta.role).toBeUndefined();
      expect(chunk.choices[0].delta.content?.length).toBeGreaterThan(0);
    }
    // Opening chunks are shaped as the content chunks: same id, created, model and top-level
    // fields (neither carries usage; only the last chunk does, as in vLLM).
    for (const chunk of opening) {
      expect(Object.keys(chunk).sort()).toEqual(Object.keys(content[0]).sort());
      expect([chunk.id, chunk.object, chunk.created, chunk.model]).toEqual([content[0].id, content[0].object, content[0].created, content[0].model]);
    }
    expect('usage' in content[0]).toBe(false);
    expect(usageChunk?.id).toBe(content[0].id);
  });

  it('sends the role chunk as soon as the request is accepted, before the first token', async () => {
    // The first token of this engine is a minute away: only the opening chunk can arrive sooner,
    // and the request gives up (failing the test) long before that.
    const slowEngine = new FakeEngine({ tokenIntervalMs: 60_000 });
    const slowServer = await startLiveServer({ engine: slowEngine });
    try {
      const slowClient = new OpenAI({ baseURL: `${slowServer.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const stream = await slowClient.chat.completions.create(
        { model: 'fake-echo', messages: [{ role: 'user', content: 'slow' }], stream: true },
        { signal: AbortSignal.timeout(5_000) },
      );
      const first = await stream[Symbol.asyncIterator]().next();
      expect(first.done, 'the stream gave up before any chunk came').toBe(false);
      expect(first.value?.choices).toEqual([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      stream.controller.abort();
    } finally {
      await slowServer.close();
    }
  });

  it('streams n=2 as two indexed choices, each with exactly one finish_reason', async () => {
    const stream = await client.chat.completions.create({
      model: 'echo-a', messages: [{ role: 'user', content: 'twins' }], max_tokens: 6, n: 2, stream: true,
      stream_options: { include_usage: true }, logprobs: true, top_logprobs: 0,
    });
    const texts = new Map<number, string>();
    const finishes = new Map<number, string[]>();
    let numTokens = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) {
        usage = chunk.usage;
        expect(chunk.choices).toEqual([]);
      }
      for (const choice of chunk.choices) {
        texts.set(choice.index, (texts.get(choice.index) ?? '') + (choice.delta.content ?? ''));
        numTokens += choice.logprobs?.content?.length ?? 0;
        if (choice.finish_reason) finishes.set(choice.index, [...(finishes.get(choice.index) ?? []), choice.finish_reason]);
      }
    }
    expect([...texts.keys()].sort()).toEqual([0, 1]);
    expect(finishes.get(0)).toEqual(['length']);
    expect(finishes.get(1)).toEqual(['length']);
    expect(numTokens).toBe(12);
    expect(usage?.completion_tokens).toBe(numTokens);
  });

  it('with continuous_usage_stats (vLLM), every chunk carries its choice\'s usage so far; the last chunk the total', async () => {
    const body = {
      model: 'echo-a', messages: [{ role: 'user' as const, content: 'count me' }], max_tokens: 5, n: 2, stream: true as const,
      logprobs: true, top_logprobs: 0,
      stream_options: { include_usage: true, continuous_usage_stats: true } as OpenAI.ChatCompletionStreamOptions,
    };
    const stream = await client.chat.completions.create(body);
    const tokensSoFar = new Map<number, number>();
    let promptTokens = -1;
    let last: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      expect(chunk.usage, 'every chunk has usage').toBeDefined();
      const usage = chunk.usage as OpenAI.CompletionUsage;
      if (chunk.choices.length === 0) {
        last = usage;
        continue;
      }
      const { index, logprobs } = chunk.choices[0];
      tokensSoFar.set(index, (tokensSoFar.get(index) ?? 0) + (logprobs?.content?.length ?? 0));
      expect(usage.completion_tokens, `choice ${index}`).toBe(tokensSoFar.get(index));
      expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
      promptTokens = usage.prompt_tokens;
    }
    expect([...tokensSoFar.values()]).toEqual([5, 5]);
    expect(last).toEqual({ prompt_tokens: promptTokens, completion_tokens: 10, total_tokens: promptTokens + 10 });
    // Without include_usage it does nothing, as in vLLM.
    const quiet = await client.chat.completions.create({ ...body, stream_options: { continuous_usage_stats: true } as OpenAI.ChatCompletionStreamOptions });
    for await (const chunk of quiet) expect(chunk.usage ?? null).toBeNull();
  });

  it('cuts at a stop string and reports it', async () => {
    const completion = await client.completions.create({ model: 'echo-a', prompt: 'abcdef', max_tokens: 20, stop: ['de'] });
    expect(completion.choices[0].text).toBe('abc');
    expect(completion.choices[0].finish_reason).toBe('stop');
    expect((completion.choices[0] as unknown as { stop_reason: string }).stop_reason).toBe('de');
  });

  it('writes -inf logprobs as -9999.0', async () => {
    const completion = await client.completions.create({ model: 'echo-a', prompt: 'ab', max_tokens: 3, logprobs: 2 });
    const logprobs = completion.choices[0].logprobs;
    expect(logprobs?.tokens).toEqual(['a', 'b', 'a']);
    expect(logprobs?.text_offset).toEqual([0, 1, 2]);
    const alternatives = logprobs?.top_logprobs?.flatMap((top) => Object.values(top)) ?? [];
    expect(alternatives).toContain(-9999);
    expect(alternatives.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('refuses a wrong API key with 401', async () => {
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    // Outside /v1 there is no key to give.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('lists the served models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['echo-a', 'echo-b']);
    expect(models.data[0]).toMatchObject({ object: 'model', owned_by: 'spindle', max_model_len: engine.maxModelLen });
  });
});
