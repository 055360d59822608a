// A table of bad requests: each gets its documented status and an OpenAI error body, decided
// before any byte of a stream; the server still answers a good request afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_REFUSED_TOKEN_ID, FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';

interface BadRequestCase {
  name: string;
  path: string;
  method?: 'GET' | 'POST';
  /** An object is sent as JSON; a string is sent as is. */
  body?: unknown;
  contentType?: string;
  /** false: send no Authorization header. */
  withKey?: boolean;
  status: number;
  type: string;
  param: string | null;
  message: string;
  code?: string;
}

const API_KEY = 'k';
const MAX_MODEL_LEN = 64;
const msg = [{ role: 'user', content: 'hi' }];
const tool = { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } };
const cmpl = '/v1/completions';
const chat = '/v1/chat/completions';
const bad = (name: string, path: string, body: unknown, param: string | null, message: string, extra: Partial<BadRequestCase> = {}): BadRequestCase => ({
  name, path, body, param, message, status: 400, type: 'invalid_request_error', ...extra,
});

const CASES: BadRequestCase[] = [
  bad('malformed JSON', cmpl, '{"prompt": "a",', null, 'not valid JSON', { code: 'invalid_json' }),
  bad('wrong content type', cmpl, '{"prompt": "a"}', null, 'Content-Type must be application/json', { contentType: 'text/plain' }),
  bad('form content type (curl -d without -H)', cmpl, '{"prompt": "a"}', null, 'Content-Type must be application/json', { contentType: 'application/x-www-form-urlencoded' }),
  bad('content type that only starts like JSON', chat, { messages: msg }, null, 'Content-Type must be application/json', { contentType: 'application/jsonl' }),
  bad('content type that is not a media type', chat, { messages: msg }, null, 'Content-Type must be application/json', { contentType: 'json please' }),
  bad('body is not an object', cmpl, [1, 2], null, 'must be a JSON object'),
  bad('missing prompt', cmpl, { max_tokens: 3 }, 'prompt', 'prompt is required'),
  bad('prompt is a number', cmpl, { prompt: 7 }, 'prompt', 'prompt must be a string'),
  bad('prompt is an empty list', cmpl, { prompt: [] }, 'prompt', 'non-empty list'),
  bad('prompt mixes strings and ids', cmpl, { prompt: ['a', 3] }, 'prompt', 'prompt must be a string'),
  bad('max_tokens 0', cmpl, { prompt: 'a', max_tokens: 0 }, 'max_tokens', 'at least 1'),
  bad('max_tokens as a string', cmpl, { prompt: 'a', max_tokens: '10' }, 'max_tokens', 'expected number'),
  bad('max_tokens not an integer', cmpl, { prompt: 'a', max_tokens: 1.5 }, 'max_tokens', 'expected int'),
  bad('negative temperature', cmpl, { prompt: 'a', temperature: -0.1 }, 'temperature', 'non-negative'),
  bad('top_p 0', cmpl, { prompt: 'a', top_p: 0 }, 'top_p', '(0, 1]'),
  bad('top_p over 1', cmpl, { prompt: 'a', top_p: 1.5 }, 'top_p', '(0, 1]'),
  bad('top_k -2', cmpl, { prompt: 'a', top_k: -2 }, 'top_k', 'top_k must be -1 or 0'),
  bad('min_p over 1', cmpl, { prompt: 'a', min_p: 2 }, 'min_p', '[0, 1]'),
  bad('n 0', cmpl, { prompt: 'a', n: 0 }, 'n', 'at least 1'),
  bad('n too large', cmpl, { prompt: 'a', n: 1000 }, 'n', 'at most'),
  bad('logprobs 21', cmpl, { prompt: 'a', logprobs: 21 }, 'logprobs', '[0, 20]'),
  bad('logprobs -1', cmpl, { prompt: 'a', logprobs: -1 }, 'logprobs', '[0, 20]'),
  bad('presence_penalty 3', cmpl, { prompt: 'a', presence_penalty: 3 }, 'presence_penalty', '[-2, 2]'),
  bad('frequency_penalty -3', cmpl, { prompt: 'a', frequency_penalty: -3 }, 'frequency_penalty', '[-2, 2]'),
  bad('repetition_penalty 0', cmpl, { prompt: 'a', repetition_penalty: 0 }, 'repetition_penalty', 'greater than 0'),
  bad('stop is a number', cmpl, { prompt: 'a', stop: 5 }, 'stop', 'stop must be a string or a list'),
  bad('empty stop string', cmpl, { prompt: 'a', stop: [''] }, 'stop', 'must not be empty'),
  bad('negative stop token id', cmpl, { prompt: 'a', stop_token_ids: [-1] }, 'stop_token_ids.0', 'non-negative'),
  bad('stop token id out of vocabulary', cmpl, { prompt: 'a', stop_token_ids: [99999] }, 'stop_token_ids', 'out of vocabulary'),
  bad('logit_bias id out of vocabulary', cmpl, { prompt: 'a', logit_bias: { '5': 1, '300': 2, '-1': 3 } }, 'logit_bias', 'token_id(s) [300, -1] in logit_bias contain out-of-vocab token ids. Vocabulary size: 260'),
  bad('chat logit_bias id out of vocabulary', chat, { messages: msg, logit_bias: { '260': -5 }, stream: true }, 'logit_bias', 'out-of-vocab token ids'),
  bad('logit_bias key not an integer', cmpl, { prompt: 'a', logit_bias: { '1.5': 1 } }, 'logit_bias', 'Found token_id `1.5` in logit_bias but token_id must be an integer'),
  bad('logit_bias key a word', chat, { messages: msg, logit_bias: { hello: 1 } }, 'logit_bias', 'must be an integer or string representing an integer'),
  bad('logit_bias value a string', cmpl, { prompt: 'a', logit_bias: { '5': 'high' } }, 'logit_bias', 'logit_bias values must be finite numbers, got "high" for token_id 5'),
  bad('logit_bias value null', chat, { messages: msg, logit_bias: { '5': null } }, 'logit_bias', 'must be finite numbers, got null'),
  bad('logit_bias value overflows to Infinity', cmpl, '{"prompt": "a", "logit_bias": {"5": 1e999}}', 'logit_bias', 'must be finite numbers, got Infinity'),
  bad('logit_bias a list', cmpl, { prompt: 'a', logit_bias: [1, 2] }, 'logit_bias', 'logit_bias must be an object'),
  bad('fractional seed', cmpl, { prompt: 'a', seed: 1.5 }, 'seed', 'integer'),
  bad('stream not a boolean', cmpl, { prompt: 'a', stream: 'yes' }, 'stream', 'expected boolean'),
  bad('prompt id out of vocabulary', cmpl, { prompt: [1, 5000] }, 'prompt', 'out of vocabulary'),
  bad('prompt + max_tokens over max_model_len', cmpl, { prompt: 'abc', max_tokens: MAX_MODEL_LEN }, 'max_tokens', 'maximum context length', { code: 'context_length_exceeded' }),
  bad('prompt alone over max_model_len', cmpl, { prompt: 'x'.repeat(MAX_MODEL_LEN) }, 'prompt', 'maximum context length'),
  bad('context overflow, streaming', cmpl, { prompt: 'abc', max_tokens: MAX_MODEL_LEN, stream: true }, 'max_tokens', 'maximum context length'),
  bad('min_tokens over max_tokens', cmpl, { prompt: 'a', max_tokens: 2, min_tokens: 5 }, 'min_tokens', 'must not exceed'),
  bad('echo with logprobs', cmpl, { prompt: 'a', echo: true, logprobs: 1 }, 'echo', 'not supported'),
  bad('engine refuses the input', cmpl, { prompt: [1, FAKE_REFUSED_TOKEN_ID], stream: true }, 'prompt', 'refuses'),
  bad('unknown model', cmpl, { model: 'gpt-9', prompt: 'a' }, 'model', 'does not exist', { status: 404, code: 'model_not_found' }),
  bad('unknown model, streaming', cmpl, { model: 'gpt-9', prompt: 'a', stream: true }, 'model', 'does not exist', { status: 404 }),
  bad('chat without messages', chat, { max_tokens: 3 }, 'messages', 'messages is required'),
  bad('chat with empty messages', chat, { messages: [] }, 'messages', 'must not be empty'),
  bad('chat with an unknown role', chat, { messages: [{ role: 'robot', content: 'x' }] }, 'messages.0.role', 'role must be one of'),
  bad('chat content a number', chat, { messages: [{ role: 'user', content: 5 }] }, 'messages.0.content', 'content must be'),
  bad('top_logprobs without logprobs', chat, { messages: msg, top_logprobs: 2 }, 'top_logprobs', 'requires logprobs'),
  bad('top_logprobs 21', chat, { messages: msg, logprobs: true, top_logprobs: 21 }, 'top_logprobs', '[0, 20]'),
  bad('max_completion_tokens 0', chat, { messages: msg, max_completion_tokens: 0 }, 'max_completion_tokens', 'at least 1'),
  bad('chat over max_model_len', chat, { messages: msg, max_tokens: MAX_MODEL_LEN }, 'max_tokens', 'maximum context length'),
  bad('chat streaming, bad temperature', chat, { messages: msg, temperature: -1, stream: true }, 'temperature', 'non-negative'),
  bad('chat unknown model', chat, { model: 'nope', messages: msg }, 'model', 'does not exist', { status: 404 }),
  // Fields vLLM honours that Spindle cannot: refused, never ignored (unsupported-fields.ts, chat-options.ts).
  bad('tools with tool_choice left to its default ("auto")', chat, { messages: msg, tools: [tool] }, 'tool_choice', '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', { code: 'unsupported' }),
  bad('tool_choice "auto"', chat, { messages: msg, tools: [tool], tool_choice: 'auto', stream: true }, 'tool_choice', '"auto" tool choice requires'),
  bad('tool_choice "required"', chat, { messages: msg, tools: [tool], tool_choice: 'required' }, 'tool_choice', 'tool_choice "required" is not supported'),
  bad('tool_choice naming a function', chat, { messages: msg, tools: [tool], tool_choice: { type: 'function', function: { name: 'f' } } }, 'tool_choice', 'tool_choice naming the function "f" is not supported'),
  bad('tool_choice naming a function not in tools', chat, { messages: msg, tools: [tool], tool_choice: { type: 'function', function: { name: 'g' } } }, 'tool_choice', 'does not match any of the specified `tools`'),
  bad('tool_choice without tools', chat, { messages: msg, tool_choice: 'auto' }, 'tool_choice', 'When using `tool_choice`, `tools` must be set.'),
  bad('tool_choice of an unknown kind', chat, { messages: msg, tools: [tool], tool_choice: 'any' }, 'tool_choice', 'tool_choice must be "none", "auto", "required"'),
  bad('a tool without a function name', chat, { messages: msg, tools: [{ type: 'function', function: {} }], tool_choice: 'none' }, 'tools.0.function.name', 'a tool needs function.name'),
  bad('response_format json_object', chat, { messages: msg, response_format: { type: 'json_object' } }, 'response_format', 'response_format {"type":"json_object"} is not supported', { code: 'unsupported' }),
  bad('response_format json_schema, completions, streaming', cmpl, { prompt: 'a', response_format: { type: 'json_schema', json_schema: { name: 'x' } }, stream: true }, 'response_format', 'structured outputs'),
  bad('guided_json', cmpl, { prompt: 'a', guided_json: { type: 'object' } }, 'guided_json', 'guided_json is not supported'),
  bad('guided_regex', chat, { messages: msg, guided_regex: '[a-z]+' }, 'guided_regex', 'guided_regex is not supported'),
  bad('guided_choice', chat, { messages: msg, guided_choice: ['yes', 'no'] }, 'guided_choice', 'guided_choice is not supported'),
  bad('guided_grammar', cmpl, { prompt: 'a', guided_grammar: 'root ::= "a"' }, 'guided_grammar', 'guided_grammar is not supported'),
  bad('structured_outputs', chat, { messages: msg, structured_outputs: { choice: ['yes', 'no'] } }, 'structured_outputs', 'structured_outputs is not supported'),
  bad('prompt_logprobs, completions', cmpl, { prompt: 'a', prompt_logprobs: 1 }, 'prompt_logprobs', 'prompt logprobs are not computed', { code: 'unsupported' }),
  bad('prompt_logprobs 0, chat', chat, { messages: msg, prompt_logprobs: 0 }, 'prompt_logprobs', 'prompt_logprobs is not supported'),
  bad('use_beam_search', cmpl, { prompt: 'a', use_beam_search: true }, 'use_beam_search', 'beam search is not implemented'),
  bad('best_of greater than n', cmpl, { prompt: 'a', n: 2, best_of: 3 }, 'best_of', 'best_of (3) greater than n (2) is not supported'),
  bad('best_of 0', chat, { messages: msg, best_of: 0 }, 'best_of', 'at least 1'),
  bad('suffix', cmpl, { prompt: 'a', suffix: 'z' }, 'suffix', 'suffix is not currently supported', { code: 'unsupported' }),
  bad('continue_final_message with add_generation_prompt true', chat, { messages: msg, continue_final_message: true, add_generation_prompt: true }, 'continue_final_message', 'Cannot set both `continue_final_message` and `add_generation_prompt` to True.'),
  bad('continue_final_message with add_generation_prompt left true', chat, { messages: msg, continue_final_message: true }, 'continue_final_message', 'send add_generation_prompt: false'),
  bad('chat_template_kwargs not an object', chat, { messages: msg, chat_template_kwargs: [1] }, 'chat_template_kwargs', 'must be an object'),
  bad('chat_template_kwargs setting add_generation_prompt', chat, { messages: msg, chat_template_kwargs: { add_generation_prompt: false } }, 'chat_template_kwargs', 'must not set add_generation_prompt'),
  bad('tokenize: continue_final_message with add_generation_prompt', '/tokenize', { messages: msg, continue_final_message: true }, 'continue_final_message', 'Cannot set both'),
  bad('tokenize with neither prompt nor messages', '/tokenize', { text: 'a' }, null, 'either prompt'),
  bad('detokenize id out of vocabulary', '/detokenize', { tokens: [1, 99999] }, 'tokens', 'out of vocabulary'),
  bad('detokenize ids not numbers', '/detokenize', { tokens: 'abc' }, 'tokens', 'expected array'),
  { name: 'unknown route', path: '/v2/everything', method: 'GET', status: 404, type: 'invalid_request_error', param: null, message: 'no route' },
  { name: 'wrong method', path: '/v1/models', method: 'POST', body: {}, status: 404, type: 'invalid_request_error', param: null, message: 'no route' },
  { name: 'missing API key', path: cmpl, body: { prompt: 'a' }, withKey: false, status: 401, type: 'authentication_error', param: null, message: 'API key', code: 'invalid_api_key' },
];

let server: LiveServer;
const engine = new FakeEngine({ maxModelLen: MAX_MODEL_LEN });

beforeAll(async () => {
  server = await startLiveServer({ engine, apiKey: API_KEY });
});
afterAll(async () => {
  await server.close();
});

async function send(c: BadRequestCase): Promise<Response> {
  const headers: Record<string, string> = {};
  if (c.withKey !== false) headers.authorization = `Bearer ${API_KEY}`;
  const method = c.method ?? 'POST';
  if (method === 'POST') headers['content-type'] = c.contentType ?? 'application/json';
  const body = c.body === undefined ? undefined : typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
  return fetch(`${server.url}${c.path}`, { method, headers, body });
}

describe('bad requests', () => {
  it('has at least 30 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const response = await send(c);
    expect(response.status).toBe(c.status);
    expect(response.headers.get('content-type')).toContain('application/json');
    const body = (await response.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error.type).toBe(c.type);
    expect(body.error.param).toBe(c.param);
    expect(body.error.message).toContain(c.message);
    if (c.code !== undefined) expect(body.error.code).toBe(c.code);
  });

  it('still serves a good request, and nothing is left in the engine', async () => {
    const response = await send({ ...CASES[0], body: { prompt: 'ok', max_tokens: 3 }, status: 200 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: { text: string }[] };
    expect(body.choices[0].text).toBe('oko');
    expect(engine.numUsedBlocks).toBe(0);
    expect(engine.stats().numRunning).toBe(0);
  });

  it('accepts what vLLM accepts at the edges: a negative seed, a repetition_penalty above 2, logit_bias past ±100 (clamped) or with padded keys', async () => {
    const bodies = [
      { prompt: 'ok', max_tokens: 2, seed: -7 },
      { prompt: 'ok', max_tokens: 2, repetition_penalty: 3.5 },
      { prompt: 'ok', max_tokens: 2, logit_bias: { '5': 1000, ' +7 ': -1e300, '007': 0 } },
    ];
    for (const body of bodies) {
      const response = await send({ ...CASES[0], body, status: 200 });
      expect(response.status).toBe(200);
    }
  });

  it('parses a body as JSON without a Content-Type, or with any JSON media type, as FastAPI does', async () => {
    // A Uint8Array body, because fetch gives a string body text/plain when no type is set.
    const body = new TextEncoder().encode(JSON.stringify({ prompt: 'ok', max_tokens: 2 }));
    const contentTypes = [undefined, '', 'application/json; charset=utf-8', 'Application/JSON', 'application/vnd.api+json'];
    for (const contentType of contentTypes) {
      const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` };
      if (contentType !== undefined) headers['content-type'] = contentType;
      const response = await fetch(`${server.url}${cmpl}`, { method: 'POST', headers, body });
      expect([contentType, response.status]).toEqual([contentType, 200]);
      expect(((await response.json()) as { choices: { text: string }[] }).choices[0].text).toBe('ok');
    }
  });

  it('ignores unknown fields', async () => {
    const response = await send({ ...CASES[0], body: { prompt: 'ok', max_tokens: 2, best_of_all: true, user: 'u1', response_format: { type: 'text' } }, status: 200 });
    expect(response.status).toBe(200);
  });

  it('accepts the refused fields where they ask for nothing Spindle does not do', async () => {
    const noOps: [string, Record<string, unknown>][] = [
      [cmpl, { prompt: 'ok', max_tokens: 2, response_format: { type: 'text' }, use_beam_search: false, best_of: 1, prompt_logprobs: null, suffix: null, guided_json: null }],
      [cmpl, { prompt: 'ok', max_tokens: 2, n: 2, best_of: 2 }],
      [chat, { messages: msg, max_tokens: 2, tools: [tool], tool_choice: 'none', response_format: { type: 'text' }, structured_outputs: null }],
      [chat, { messages: msg, max_tokens: 2, tools: [tool], tool_choice: null }],
      [chat, { messages: msg, max_tokens: 2, tool_choice: 'none' }],
      [chat, { messages: msg, max_tokens: 2, continue_final_message: true, add_generation_prompt: false, chat_template_kwargs: {} }],
    ];
    for (const [path, body] of noOps) {
      const response = await send({ ...CASES[0], path, body, status: 200 });
      expect([body, response.status]).toEqual([body, 200]);
    }
  });
});
