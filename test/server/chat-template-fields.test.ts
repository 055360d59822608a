// The request fields that change what the model is given, honoured as vLLM honours them, through
// the openai client: chat_template_kwargs, continue_final_message, add_special_tokens (chat and
// completions), and tools with tool_choice "none". The fake engine echoes its prompt's bytes, so
// an answer as long as the prompt shows exactly what the template rendered.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';

// Shows tools (when not none, as transformers' templates test them), each turn closed, and a
// generation prompt that Qwen3-style enable_thinking: false opens with an empty think block.
const TEMPLATE =
  '{{ bos_token }}{% if tools is not none %}<tools>{{ tools | tojson }}</tools>{% endif %}' +
  '{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}' +
  '{% if add_generation_prompt %}<assistant>{% if enable_thinking is defined and enable_thinking is false %}<think></think>{% endif %}{% endif %}';

/** The request fields vLLM adds to OpenAI's, as a client sends them (extra body keys). */
interface VllmChatFields {
  chat_template_kwargs?: Record<string, unknown>;
  continue_final_message?: boolean;
  add_generation_prompt?: boolean;
  add_special_tokens?: boolean;
}
type ChatBody = Omit<OpenAI.ChatCompletionCreateParamsNonStreaming, 'model' | 'max_tokens'> & VllmChatFields;

let server: LiveServer;
let client: OpenAI;
const engine = new FakeEngine({ maxModelLen: 2048, chatTemplate: TEMPLATE });
const user: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hi' }];
const weatherTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true },
};

beforeAll(async () => {
  server = await startLiveServer({ engine });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
});

function chat(body: ChatBody, maxTokens: number): Promise<OpenAI.ChatCompletion> {
  return client.chat.completions.create({ model: 'fake-echo', max_tokens: maxTokens, ...body } as OpenAI.ChatCompletionCreateParamsNonStreaming);
}

/** The prompt as rendered (from the echo) and its token count (one per byte, plus BOS if added). */
async function seenPrompt(body: ChatBody): Promise<{ text: string; numTokens: number }> {
  const probe = await chat(body, 1);
  const numTokens = probe.usage?.prompt_tokens ?? 0;
  // The echo skips BOS: it cycles the prompt's byte tokens, so as many as there are bytes show them all.
  const numBytes = numTokens - (body.add_special_tokens ? 1 : 0);
  const whole = await chat(body, numBytes);
  return { text: whole.choices[0].message.content ?? '', numTokens };
}

describe('chat fields that change the prompt', () => {
  it('passes chat_template_kwargs to the template as variables (Qwen3 enable_thinking: false)', async () => {
    expect((await seenPrompt({ messages: user })).text).toBe('<s><user>Hi</user><assistant>');
    expect((await seenPrompt({ messages: user, chat_template_kwargs: { enable_thinking: false } })).text).toBe('<s><user>Hi</user><assistant><think></think>');
    expect((await seenPrompt({ messages: user, chat_template_kwargs: { enable_thinking: true, unused: [1, { a: null }] } })).text).toBe('<s><user>Hi</user><assistant>');
  });

  it('lets chat_template_kwargs override the special tokens, as transformers does', async () => {
    expect((await seenPrompt({ messages: user, chat_template_kwargs: { bos_token: '<BOS>' } })).text).toBe('<BOS><user>Hi</user><assistant>');
  });

  it('continues the final message, open, with continue_final_message and add_generation_prompt false', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [...user, { role: 'assistant', content: 'Once upon' }];
    expect((await seenPrompt({ messages, add_generation_prompt: false })).text).toBe('<s><user>Hi</user><assistant>Once upon</assistant>');
    const continued = await seenPrompt({ messages, add_generation_prompt: false, continue_final_message: true });
    expect(continued.text).toBe('<s><user>Hi</user><assistant>Once upon');
    expect(continued.numTokens).toBe(continued.text.length);
  });

  it('adds no special tokens to a chat prompt unless add_special_tokens is true', async () => {
    const plain = await seenPrompt({ messages: user });
    const withSpecial = await seenPrompt({ messages: user, add_special_tokens: true });
    expect(withSpecial.text).toBe(plain.text);
    expect(plain.numTokens).toBe(plain.text.length);
    expect(withSpecial.numTokens).toBe(plain.numTokens + 1);
  });

  it('adds special tokens to a completion prompt unless add_special_tokens is false', async () => {
    const prompt = 'Once upon a time';
    const create = (extra: { add_special_tokens?: boolean }) =>
      client.completions.create({ model: 'fake-echo', prompt, max_tokens: 4, ...extra } as OpenAI.CompletionCreateParamsNonStreaming);
    expect((await create({})).usage?.prompt_tokens).toBe(prompt.length + 1);
    expect((await create({ add_special_tokens: true })).usage?.prompt_tokens).toBe(prompt.length + 1);
    const without = await create({ add_special_tokens: false });
    expect(without.usage?.prompt_tokens).toBe(prompt.length);
    expect(without.choices[0].text).toBe('Once');
    // Token-id prompts are taken as given either way.
    const ids = await engine.tokenize('abc', false);
    const fromIds = await client.completions.create({ model: 'fake-echo', prompt: ids, max_tokens: 2, add_special_tokens: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(fromIds.usage?.prompt_tokens).toBe(3);
  });

  it('shows tools to the model with tool_choice "none", as vLLM does, and answers in text', async () => {
    const { text } = await seenPrompt({ messages: user, tools: [weatherTool], tool_choice: 'none' });
    // As vLLM's model_dump: type, then name, description (null when not given), parameters, extras.
    const dumped = '[{"type": "function", "function": {"name": "get_weather", "description": null, "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}]';
    expect(text).toBe(`<s><tools>${dumped}</tools><user>Hi</user><assistant>`);
    const answer = await chat({ messages: user, tools: [weatherTool], tool_choice: 'none' }, 5);
    expect(answer.choices[0].message.content).toBe('<s><t');
    expect(answer.choices[0].message.tool_calls ?? []).toEqual([]);
    expect(answer.choices[0].finish_reason).toBe('length');
  });

  it('gives the template tools = none when there are none, and treats "required" over no tools as "none"', async () => {
    expect((await seenPrompt({ messages: user })).text).not.toContain('<tools>');
    expect((await seenPrompt({ messages: user, tools: [] })).text).toBe('<s><tools>[]</tools><user>Hi</user><assistant>');
    expect((await seenPrompt({ messages: user, tools: [], tool_choice: 'required' })).text).toBe('<s><user>Hi</user><assistant>');
  });

  it('renders /tokenize messages with the same fields as chat', async () => {
    const fields = { chat_template_kwargs: { enable_thinking: false }, tools: [weatherTool] };
    const viaChat = await seenPrompt({ messages: user, ...fields, tool_choice: 'none' });
    const response = await fetch(`${server.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user, ...fields }),
    });
    const tokenized = (await response.json()) as { tokens: number[] };
    expect(await engine.detokenize(tokenized.tokens)).toBe(viaChat.text);
    const continued = await fetch(`${server.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [...user, { role: 'assistant', content: 'Once' }], add_generation_prompt: false, continue_final_message: true }),
    });
    expect(await engine.detokenize(((await continued.json()) as { tokens: number[] }).tokens)).toBe('<s><user>Hi</user><assistant>Once');
  });
});
