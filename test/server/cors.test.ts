// Cross-origin requests as vLLM allows them: by default any origin, method and header, so a
// browser's preflight succeeds even where the API key would refuse the request itself; with
// --allowed-origins only those origins, and credentials only with --allow-credentials.
import { afterEach, describe, expect, it } from 'vitest';
import { CliUsageError, jsonListOf, parseCommandLine, SERVE_FLAGS } from '../../src/server/cli-flags.ts';
import { FakeEngine } from './fake-engine.ts';
import { startLiveServer, type LiveServer } from './live-server.ts';

let server: LiveServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

const preflight = (url: string, origin: string): Promise<Response> =>
  fetch(`${url}/v1/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
  });

describe('CORS', () => {
  it('by default answers any origin\'s preflight, before the API key is checked, and marks responses', async () => {
    server = await startLiveServer({ engine: new FakeEngine(), apiKey: 'secret' });
    const answer = await preflight(server.url, 'https://ui.example');
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-allow-methods')).toContain('POST');
    expect(answer.headers.get('access-control-allow-headers')).toBe('content-type,authorization');
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { origin: 'https://ui.example', 'content-type': 'application/json', authorization: 'Bearer secret' },
      body: JSON.stringify({ prompt: 'a', max_tokens: 2 }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    // A refusal is marked too, so the page can read the error.
    const refused = await fetch(`${server.url}/v1/models`, { headers: { origin: 'https://ui.example' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('with --allowed-origins and --allow-credentials, only those origins, credentials allowed', async () => {
    const cors = { allowedOrigins: ['https://a.example'], allowedMethods: ['POST'], allowedHeaders: ['content-type'], allowCredentials: true };
    server = await startLiveServer({ engine: new FakeEngine(), cors });
    const allowed = await preflight(server.url, 'https://a.example');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://a.example');
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    expect(allowed.headers.get('access-control-allow-methods')).toBe('POST');
    expect(allowed.headers.get('access-control-allow-headers')).toBe('content-type');
    const other = await preflight(server.url, 'https://b.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('reads the list flags as JSON lists, as vLLM does', () => {
    const values = parseCommandLine(['--allowed-origins', '["https://a.example", "https://b.example"]', '--allowed-headers', 'content-type'], SERVE_FLAGS, 1).values;
    expect(jsonListOf(values, 'allowed-origins')).toEqual(['https://a.example', 'https://b.example']);
    expect(jsonListOf(values, 'allowed-methods')).toBeUndefined();
    expect(() => jsonListOf(values, 'allowed-headers')).toThrow(CliUsageError);
    expect(() => jsonListOf(values, 'allowed-headers')).toThrow("--allowed-headers: 'content-type' is not a JSON list");
  });
});
