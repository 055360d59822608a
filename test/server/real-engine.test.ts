// The server against the real engine on the CPU (tiny random Mistral-shaped model): the openai
// client on both endpoints, n=2 streaming, usage = tokens produced, 100 clients hanging up
// mid-stream leaving zero used KV blocks, /metrics after real traffic, /tokenize ↔ /detokenize.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';
import { createCpuEngine, realEngineSkipReason, writeTinyChatModel, type RealModel } from './real-model.ts';
import { hangUpMidStream, waitForValue } from './stream-clients.ts';

const skipReason = realEngineSkipReason();
if (skipReason) console.warn(`skipping the real-engine server tests: ${skipReason}`);

const NUM_BLOCKS = 2048;
let model: RealModel;
let engine: Engine;
let server: LiveServer;
let client: OpenAI;

describe.skipIf(skipReason !== '')('server on the real CPU engine', () => {
  beforeAll(async () => {
    model = writeTinyChatModel();
    engine = await createCpuEngine(model.dir, NUM_BLOCKS);
    server = await startLiveServer({ engine, servedModelNames: ['tiny'] });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await engine?.shutdown(0);
    model?.remove();
  });

  it('completes, whole and streamed, with usage equal to the tokens produced', async () => {
    const whole = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, ignore_eos: true, logprobs: 0 } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(whole.choices[0].finish_reason).toBe('length');
    expect(whole.choices[0].logprobs?.tokens).toHaveLength(12);
    expect(whole.usage?.completion_tokens).toBe(12);
    const promptIds = (await (await fetch(`${server.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Once upon a time' }) })).json()) as { count: number };
    expect(whole.usage?.prompt_tokens).toBe(promptIds.count);

    const stream = await client.completions.create({
      model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, stream: true, stream_options: { include_usage: true }, logprobs: 0,
      temperature: 0, ignore_eos: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    let text = '';
    let numTokens = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.text;
        numTokens += choice.logprobs?.tokens?.length ?? 0;
      }
    }
    expect(numTokens).toBe(12);
    expect(usage?.completion_tokens).toBe(numTokens);
    // greedy is deterministic: the same prompt, whole, gives the same text
    const greedy = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(text).toBe(greedy.choices[0].text);
  });

  it('chats, whole and streamed; n=2 streams two indexed choices with one finish_reason each', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Tell me a story' }];
    const whole = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 10, temperature: 0 });
    expect(whole.choices[0].message.role).toBe('assistant');
    expect(whole.usage?.completion_tokens).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({
      model: 'tiny', messages, max_tokens: 10, n: 2, stream: true, stream_options: { include_usage: true },
      logprobs: true, top_logprobs: 2, seed: 5,
    });
    const finishes = new Map<number, string[]>();
    const roles = new Map<number, number>();
    let numTokens = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        if (choice.delta.role) roles.set(choice.index, (roles.get(choice.index) ?? 0) + 1);
        numTokens += choice.logprobs?.content?.length ?? 0;
        for (const entry of choice.logprobs?.content ?? []) {
          expect(entry.top_logprobs.length).toBeLessThanOrEqual(2);
          expect(Number.isFinite(entry.logprob)).toBe(true);
        }
        if (choice.finish_reason) finishes.set(choice.index, [...(finishes.get(choice.index) ?? []), choice.finish_reason]);
      }
    }
    expect([...finishes.keys()].sort()).toEqual([0, 1]);
    expect(finishes.get(0)).toHaveLength(1);
    expect(finishes.get(1)).toHaveLength(1);
    expect(roles.get(0)).toBe(1);
    expect(roles.get(1)).toBe(1);
    expect(usage?.completion_tokens).toBe(numTokens);
  });

  it('add_special_tokens: the real tokenizer adds BOS to a completion prompt by default, to a chat prompt only when asked', async () => {
    const complete = (extra: object) =>
      client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 1, ...extra } as OpenAI.CompletionCreateParamsNonStreaming);
    const withBos = (await complete({})).usage?.prompt_tokens ?? 0;
    expect((await complete({ add_special_tokens: false })).usage?.prompt_tokens).toBe(withBos - 1);
    const chat = (extra: object) =>
      client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const templated = (await chat({})).usage?.prompt_tokens ?? 0;
    expect((await chat({ add_special_tokens: true })).usage?.prompt_tokens).toBe(templated + 1);
  });

  it('100 streaming clients hanging up mid-stream leave zero used KV blocks', async () => {
    const framesRead = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        hangUpMidStream(
          `${server.url}/v1/${i % 2 === 0 ? 'completions' : 'chat/completions'}`,
          i % 2 === 0
            ? { prompt: `Story number ${i}:`, max_tokens: 800, ignore_eos: true }
            : { messages: [{ role: 'user', content: `Story number ${i}` }], max_tokens: 800, ignore_eos: true },
          2,
        ),
      ),
    );
    expect(framesRead.every((n) => n >= 2)).toBe(true);
    expect(await waitForValue(() => engine.stats().numFreeBlocks, engine.stats().numBlocks, 60_000)).toBe(engine.stats().numBlocks);
    expect(engine.stats().numRunning).toBe(0);
    expect(engine.stats().numWaiting).toBe(0);
    expect(engine.numLiveRequests).toBe(0);
    expect(server.ctx.lifecycle.numInFlight).toBe(0);
  });

  it('/metrics reflects real traffic; /tokenize and /detokenize round-trip', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const value = (name: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
      if (!line) throw new Error(`${name} missing from /metrics`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(value('vllm:num_requests_running')).toBe(0);
    expect(value('vllm:kv_cache_usage_perc')).toBe(0);
    expect(value('vllm:gpu_cache_usage_perc')).toBe(0);
    expect(value('vllm:generation_tokens_total')).toBeGreaterThanOrEqual(12 * 3 + 100);
    expect(value('vllm:prompt_tokens_total')).toBeGreaterThan(100);
    expect(value('vllm:time_to_first_token_seconds_count')).toBeGreaterThanOrEqual(5);

    const prompt = 'The quick brown fox, 42 times!';
    const post = (path: string, body: object) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
    const tokenized = (await post('/tokenize', { prompt, add_special_tokens: false })) as { tokens: number[]; count: number };
    expect(tokenized.count).toBe(tokenized.tokens.length);
    expect(tokenized.tokens.length).toBeGreaterThan(3);
    const detokenized = (await post('/detokenize', { tokens: tokenized.tokens })) as { prompt: string };
    expect(detokenized.prompt).toBe(prompt);
  });

  it('logit_bias +100 (or 1000, clamped to 100 as vLLM) makes greedy output that token, on both endpoints', async () => {
    const post = (path: string, body: object) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
    // A word's last piece: no leading-space marker, so its text repeats the same in and out of context.
    const { tokens } = (await post('/tokenize', { prompt: 'Thermodynamics', add_special_tokens: false })) as { tokens: number[] };
    const target = tokens[tokens.length - 1];
    const textOf = async (ids: number[]): Promise<string> => ((await post('/detokenize', { tokens: ids })) as { prompt: string }).prompt;
    const piece = await textOf([target]);
    expect(piece).toMatch(/^\S+$/);
    const expected = await textOf(new Array<number>(6).fill(target));
    expect(expected).toBe(piece.repeat(6));

    const plain = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(plain.choices[0].text).not.toBe(expected);
    const biased = await client.completions.create({
      model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, ignore_eos: true, logprobs: 0, logit_bias: { [target]: 100 },
    } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(biased.choices[0].text).toBe(expected);
    expect(biased.choices[0].logprobs?.tokens).toEqual(new Array<string>(6).fill(piece));
    // The engine refuses values past 100, so 1000 going through shows the server clamped it.
    const chat = await client.chat.completions.create({
      model: 'tiny', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 6, temperature: 0, logit_bias: { [target]: 1000 },
    });
    expect(chat.choices[0].message.content).toBe(expected);

    // Errors come back through the client as 400s naming logit_bias.
    const refused = await client.completions
      .create({ model: 'tiny', prompt: 'Once', max_tokens: 2, logit_bias: { [engine.vocabSize]: 5 } })
      .then(() => null, (error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    if (!(refused instanceof OpenAI.BadRequestError)) return;
    expect(refused.status).toBe(400);
    expect(refused.param).toBe('logit_bias');
    expect(refused.message).toContain(`token_id(s) [${engine.vocabSize}] in logit_bias contain out-of-vocab token ids`);
    const chatRefused = await client.chat.completions
      .create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], logit_bias: { '5': Number.NaN } })
      .then(() => null, (error: unknown) => error);
    // JSON.stringify(NaN) is null: a value that is not a number.
    expect(chatRefused).toBeInstanceOf(OpenAI.BadRequestError);
    if (chatRefused instanceof OpenAI.BadRequestError) expect(chatRefused.param).toBe('logit_bias');
  });
});
