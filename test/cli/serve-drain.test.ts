// SIGTERM drain of the real command on the built-in demo model: once signalled, /health and new
// requests answer 503, the streaming request in flight runs to its end, and the process exits 0.
import { afterAll, describe, expect, it } from 'vitest';
import { realEngineSkipReason } from '../server/real-model.ts';
import { startServingCli, type ServingCli } from './cli-process.ts';

const skipReason = realEngineSkipReason();
if (skipReason) console.warn(`skipping the SIGTERM drain test: ${skipReason}`);

const MAX_TOKENS = 800;
let serving: ServingCli | undefined;

afterAll(() => {
  if (serving && serving.child.exitCode === null) serving.child.kill('SIGKILL');
});

describe.skipIf(skipReason !== '')('spindle serve on SIGTERM', () => {
  it('refuses newcomers with 503, finishes the stream in flight, exits 0', async () => {
    serving = await startServingCli(['--host', '127.0.0.1', '--port', '0', '--shutdown-timeout', '100', '--detokenizer-workers', '1'], 110_000);
    const { url } = serving;
    expect((await fetch(`${url}/health`)).status).toBe(200);

    const response = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: MAX_TOKENS, ignore_eos: true, stream: true, logprobs: 0 }),
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // Wait for the first frame, so the request is surely in flight when the signal lands.
    while (!text.includes('\n\n')) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }

    serving.child.kill('SIGTERM');
    // The handler runs on the server's next turn of its event loop: poll until it has.
    let healthStatus = 200;
    for (let i = 0; i < 100 && healthStatus === 200; i++) {
      healthStatus = (await fetch(`${url}/health`)).status;
      if (healthStatus === 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(healthStatus).toBe(503);
    const refused = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { type: string } }).error.type).toBe('service_unavailable_error');

    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const frames = text.split('\n\n').filter((frame) => frame.length > 0);
    expect(frames.at(-1)).toBe('data: [DONE]');
    type Chunk = { choices: { finish_reason: string | null; logprobs: { tokens: string[] } | null }[]; error?: { message: string } };
    const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame.slice('data: '.length)) as Chunk);
    expect(chunks.find((chunk) => chunk.error)?.error?.message).toBeUndefined();
    const numTokens = chunks.reduce((sum, chunk) => sum + (chunk.choices[0]?.logprobs?.tokens.length ?? 0), 0);
    expect(numTokens).toBe(MAX_TOKENS);
    expect(chunks.at(-1)?.choices[0].finish_reason).toBe('length');

    expect(await serving.exited).toBe(0);
    expect(serving.stderr()).toContain('SIGTERM received');
  });
});
