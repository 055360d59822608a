/**
 * One streamed request to an OpenAI-compatible server, timed as vLLM's benchmark client times it.
 *
 * Why node:http rather than the `openai` package or fetch: the timestamps must be those of the
 * bytes' arrival. node:http hands over each socket read in a 'data' event and nothing else runs
 * in between, so every event the read completes is stamped with the read's time. The `openai`
 * client yields events through its own async iterator (stamped when the consumer resumes, after
 * whatever else the event loop queued) and retries failed requests by default, which would hide
 * failures and inflate latencies. fetch (undici) delivers the same reads but adds a web-stream
 * layer and its default 300 s headers/body timeouts, which fail requests that wait longer than
 * that for their first token under `--request-rate inf`; node:http has no such timeouts
 * (vLLM's client allows 6 hours).
 */
import http from 'node:http';
import https from 'node:https';
import type { RequestRecord } from './metrics.ts';
import { createParser } from 'eventsource-parser';

export type Endpoint = '/v1/completions' | '/v1/chat/completions';

export interface StreamTarget {
  /** The server's root, e.g. http://127.0.0.1:8000 (the endpoint's path is appended). */
  baseUrl: string;
  /** Keeps connections alive between requests; sized by --max-concurrency. */
  agent: http.Agent;
  /** Bearer token; null sends no Authorization header. */
  apiKey: string | null;
}

export interface RequestSpec {
  endpoint: Endpoint;
  model: string;
  /** Text (ShareGPT) or token ids (random mode; completions only). */
  prompt: string | number[];
  maxTokens: number;
}

/**
 * The request body: greedy, EOS ignored, exactly maxTokens, streamed with a usage chunk at the
 * end, as vLLM's benchmark asks (its completions client also sends repetition_penalty 1.0).
 */
export function requestBody(spec: RequestSpec): Record<string, unknown> {
  const common = {
    model: spec.model,
    temperature: 0,
    repetition_penalty: 1.0,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (spec.endpoint === '/v1/chat/completions') {
    if (typeof spec.prompt !== 'string') throw new Error('chat requests need a text prompt');
    return { ...common, messages: [{ role: 'user', content: spec.prompt }], max_completion_tokens: spec.maxTokens };
  }
  return { ...common, prompt: spec.prompt, max_tokens: spec.maxTokens };
}

interface UsageJson {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
}

interface ChunkJson {
  choices?: unknown;
  usage?: UsageJson | null;
  error?: { message?: unknown } | null;
}

/** Per-stream state while chunks arrive. */
class StreamState {
  readonly chunkTimesMs: number[] = [];
  outputTokens: number | null = null;
  serverPromptTokens: number | null = null;
  error: string | null = null;
  isDone = false;

  /** Applies one event's data, stamped with the arrival of the read that completed it. */
  apply(data: string, timeMs: number): void {
    if (data === '[DONE]') {
      this.isDone = true;
      return;
    }
    let chunk: ChunkJson;
    try {
      chunk = JSON.parse(data) as ChunkJson;
    } catch {
      this.error ??= `not JSON in the stream: ${data.slice(0, 200)}`;
      return;
    }
    if (chunk.error) {
      // A server that fails after the stream began sends an error frame (then [DONE]).
      this.error ??= `error frame: ${String(chunk.error.message ?? JSON.stringify(chunk.error))}`;
      return;
    }
    // As vLLM's client: a chunk counts as output when its choices list is non-empty, even with
    // empty text (the chat role chunk and a finish-only chunk count too).
    if (Array.isArray(chunk.choices) && chunk.choices.length > 0) this.chunkTimesMs.push(timeMs);
    const usage = chunk.usage;
    if (usage && typeof usage.completion_tokens === 'number') {
      this.outputTokens = usage.completion_tokens;
      if (typeof usage.prompt_tokens === 'number') this.serverPromptTokens = usage.prompt_tokens;
    }
  }

  /** Why the finished stream does not count as a success, or null. */
  failure(): string | null {
    if (this.error !== null) return this.error;
    if (this.chunkTimesMs.length === 0) return 'the stream ended without a chunk carrying a choice';
    if (this.outputTokens === null) return 'no usage chunk (stream_options.include_usage): output tokens unknown';
    if (!this.isDone) return 'the stream ended before data: [DONE]';
    return null;
  }
}

/** Sends one request and records its timing; never rejects (a failure is a record). */
export function streamRequest(target: StreamTarget, spec: RequestSpec, dispatchLagMs: number): Promise<RequestRecord> {
  const body = JSON.stringify(requestBody(spec));
  const url = endpointUrl(target.baseUrl, spec.endpoint);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (target.apiKey !== null) headers.authorization = `Bearer ${target.apiKey}`;
  const send = url.protocol === 'https:' ? https.request : http.request;
  const state = new StreamState();

  return new Promise<RequestRecord>((resolve) => {
    // Taken before the connection is opened, as vLLM's st: connecting counts in TTFT.
    const startMs = performance.now();
    let isSettled = false;
    const settle = (error: string | null): void => {
      if (isSettled) return;
      isSettled = true;
      resolve({
        isSuccess: error === null,
        error,
        startMs,
        chunkTimesMs: state.chunkTimesMs,
        outputTokens: state.outputTokens,
        serverPromptTokens: state.serverPromptTokens,
        dispatchLagMs,
      });
    };
    const request = send(url, { method: 'POST', agent: target.agent, headers }, (response) => {
      response.setEncoding('utf8');
      if (response.statusCode !== 200) {
        let text = '';
        response.on('data', (part: string) => {
          if (text.length < 2000) text += part;
        });
        response.on('end', () => settle(`HTTP ${response.statusCode}: ${text.trim().slice(0, 500)}`));
        response.on('error', (err) => settle(`HTTP ${response.statusCode}: ${err.message}`));
        return;
      }
      // Every event a read completes is stamped with that read's arrival time.
      let lastReadMs = startMs;
      const parser = createParser({ onEvent: (event) => state.apply(event.data, lastReadMs) });
      response.on('data', (part: string) => {
        lastReadMs = performance.now();
        parser.feed(part);
      });
      response.on('end', () => {
        // A last event the server did not close with a blank line still counts.
        parser.reset({ consume: true });
        settle(state.failure());
      });
      response.on('error', (err) => settle(`the stream broke: ${err.message}`));
      response.on('close', () => {
        if (!response.complete) settle('the connection closed before the response was complete');
      });
    });
    request.on('error', (err) => settle(`request failed: ${err.message}`));
    request.end(body);
  });
}

/** base URL + path, as vLLM joins --base-url and --endpoint (a trailing slash is dropped). */
export function endpointUrl(baseUrl: string, path: string): URL {
  return new URL(`${baseUrl.replace(/\/+$/, '')}${path}`);
}

/** The first model the server lists (GET /v1/models): what requests name when no name is given. */
export async function firstServedModel(baseUrl: string, apiKey: string | null): Promise<string> {
  const url = endpointUrl(baseUrl, '/v1/models');
  const response = await fetch(url, { headers: apiKey !== null ? { authorization: `Bearer ${apiKey}` } : {} });
  if (!response.ok) throw new Error(`GET ${url.href}: HTTP ${response.status}`);
  const json = (await response.json()) as { data?: { id?: unknown }[] };
  const id = json.data?.[0]?.id;
  if (typeof id !== 'string') throw new Error(`GET ${url.href} listed no model: give --served-model-name`);
  return id;
}
