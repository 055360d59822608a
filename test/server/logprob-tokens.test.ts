// Logprob token texts on a real SentencePiece model (stories260K, Llama 2 style): each token's
// text is what it adds to the output in context (" upon", not "upon"), as vLLM reports it, so the
// tokens of a completion concatenate to its text and text_offset points into that text.
import { existsSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { repoRoot } from '../cli/cli-process.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';
import { realEngineSkipReason } from './real-model.ts';

const modelDir = path.resolve(repoRoot, '../shared/models/stories260K-hf');
const skipReason = !existsSync(modelDir) ? `${modelDir} is absent` : realEngineSkipReason();
if (skipReason) console.warn(`skipping the logprob token-text tests: ${skipReason}`);

let engine: Engine;
let server: LiveServer;
let client: OpenAI;

describe.skipIf(skipReason !== '')('logprob token texts', () => {
  beforeAll(async () => {
    engine = await Engine.create({ model: modelDir, device: 'cpu', numBlocks: 64, blockSize: 16, detokenizerWorkers: 1, numThreads: 1 });
    server = await startLiveServer({ engine, servedModelNames: ['stories'] });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await engine?.shutdown(0);
  });

  it('completions: tokens concatenate to the text, with their leading spaces', async () => {
    const completion = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 24, temperature: 0, ignore_eos: true, logprobs: 2 } as OpenAI.CompletionCreateParamsNonStreaming);
    const { text, logprobs } = completion.choices[0];
    const tokens = logprobs?.tokens ?? [];
    expect(tokens).toHaveLength(24);
    expect(text.split(' ').length).toBeGreaterThan(4);
    expect(tokens.join('')).toBe(text);
    tokens.forEach((token, i) => {
      expect(text.slice(logprobs?.text_offset?.[i], (logprobs?.text_offset?.[i] ?? 0) + token.length)).toBe(token);
      expect(Object.keys(logprobs?.top_logprobs?.[i] ?? {})).toContain(token);
    });
  });

  it('streamed completions: the tokens of all chunks concatenate to the streamed text', async () => {
    const stream = await client.completions.create({ model: 'stories', prompt: 'Tom and his dog', max_tokens: 16, temperature: 0, ignore_eos: true, logprobs: 0, stream: true } as OpenAI.CompletionCreateParamsStreaming);
    let text = '';
    const tokens: string[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      tokens.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
    }
    expect(tokens.join('')).toBe(text);
  });
});
