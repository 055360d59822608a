/**
 * The serving benchmark's parts that need no timing: the Poisson arrival schedule, the SSE
 * parser, the metrics against hand-computed (and numpy-checked) values, the request body, the
 * concurrency slots, the client's handling of what a server streams (against a scripted local
 * server; nothing timed is asserted) and the option errors, each naming its flag.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentileInterpolated, populationStd } from '../../bench/lib/stats.ts';
import { arrivalTimesS, exponentialGaps } from '../../bench/serving/arrivals.ts';
import { endpointUrl, requestBody, streamRequest, type StreamTarget } from '../../bench/serving/client.ts';
import { calculateMetrics, requestLatencies, type RequestRecord } from '../../bench/serving/metrics.ts';
import { parseServingArgs, recordedOptions } from '../../bench/serving/options.ts';
import { Slots } from '../../bench/serving/traffic.ts';
import { buildWorkload } from '../../bench/serving/workload.ts';
import { tokenizerPackageDir } from '../../src/engine/presets.ts';
import { loadTokenizer } from '../../src/workers/tokenizer-loader.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sharegptPath = path.resolve(repoRoot, '../shared/data/sharegpt.jsonl');

describe('Poisson arrivals', () => {
  it('draws exponential gaps of mean 1/rate: mean, spread and tail within stated tolerances', () => {
    const n = 200_000;
    const rate = 5;
    for (const seed of [0, 1, 12345]) {
      const gaps = exponentialGaps(n, rate, seed);
      const mean = gaps.reduce((a, b) => a + b, 0) / n;
      // The sample mean's relative standard error is 1/√n = 0.22%: 1% is over 4 standard errors.
      expect(Math.abs(mean * rate - 1)).toBeLessThan(0.01);
      // An exponential's standard deviation equals its mean (coefficient of variation 1).
      expect(Math.abs(populationStd(gaps) / mean - 1)).toBeLessThan(0.02);
      // P(gap > mean) = e^-1 = 0.3679; the binomial standard error here is 0.0011.
      const aboveMean = gaps.filter((g) => g > 1 / rate).length / n;
      expect(Math.abs(aboveMean - Math.exp(-1))).toBeLessThan(0.005);
      expect(gaps.every((g) => Number.isFinite(g) && g >= 0)).toBe(true);
    }
  });

  it('is fixed by the seed', () => {
    expect(arrivalTimesS(100, 2, 7)).toEqual(arrivalTimesS(100, 2, 7));
    expect(arrivalTimesS(100, 2, 7)).not.toEqual(arrivalTimesS(100, 2, 8));
  });

  it('rescales as vLLM does: non-decreasing, the first after one gap, the last exactly at n / rate', () => {
    for (const [n, rate] of [[1000, 10], [37, 0.5], [1, 3]] as const) {
      const times = arrivalTimesS(n, rate, 3);
      expect(times).toHaveLength(n);
      expect(times[0]).toBeGreaterThan(0);
      for (let i = 1; i < n; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]);
      expect(times[n - 1]).toBeCloseTo(n / rate, 9);
    }
  });

  it('sends everything at t = 0 for an infinite rate and refuses a rate that is not positive', () => {
    expect(arrivalTimesS(5, Number.POSITIVE_INFINITY, 0)).toEqual([0, 0, 0, 0, 0]);
    expect(() => arrivalTimesS(5, 0, 0)).toThrow(/> 0/);
  });
});

/** A successful record: chunks at the given ms, the request sent at startMs. */
function record(startMs: number, chunkTimesMs: number[], outputTokens: number): RequestRecord {
  return { isSuccess: true, error: null, startMs, chunkTimesMs, outputTokens, serverPromptTokens: null, dispatchLagMs: 0 };
}

describe('metrics (vLLM calculate_metrics)', () => {
  // A: 4 tokens in 4 chunks. B: one token (no TPOT). C: 5 tokens in 2 chunks (bundled). D: failed.
  const records: RequestRecord[] = [
    record(0, [100, 130, 170, 220], 4),
    record(10, [60], 1),
    record(0, [200, 260], 5),
    { isSuccess: false, error: 'HTTP 400', startMs: 0, chunkTimesMs: [], outputTokens: null, serverPromptTokens: null, dispatchLagMs: 0 },
  ];
  const metrics = calculateMetrics({ records, promptLens: [10, 20, 30, 40], outputLens: [4, 1, 6, 6], durationS: 2, percentiles: [90, 99] });

  it('derives TTFT, E2E, ITL and TPOT per request', () => {
    expect(requestLatencies(records[0])).toEqual({ ttftMs: 100, e2elMs: 220, itlMs: [30, 40, 50], tpotMs: 40 });
    // One output token: TTFT = E2E, no ITL, and TPOT is left out (vLLM: output_len > 1 only).
    expect(requestLatencies(records[1])).toEqual({ ttftMs: 50, e2elMs: 50, itlMs: [], tpotMs: null });
    // TPOT divides by tokens, not chunks: (260 − 200) / (5 − 1).
    expect(requestLatencies(records[2])).toEqual({ ttftMs: 200, e2elMs: 260, itlMs: [60], tpotMs: 15 });
    expect(requestLatencies(records[3])).toBeNull();
  });

  it('counts and rates over the completed requests', () => {
    expect(metrics).toMatchObject({ completed: 3, failed: 1, totalInputTokens: 60, totalOutputTokens: 10, numOutputLenMismatches: 1 });
    expect(metrics.requestThroughput).toBeCloseTo(1.5, 12);
    expect(metrics.outputThroughput).toBeCloseTo(5, 12);
    expect(metrics.totalTokenThroughput).toBeCloseTo(35, 12);
    expect(metrics.tokensPerChunk).toBeCloseTo(10 / 7, 12);
    expect(metrics.serverInputTokens).toBeNull();
  });

  it('summarizes with numpy mean, median, population std and linearly interpolated percentiles', () => {
    // Expected values: np.mean, np.median, np.std, np.percentile(…, 90 / 99) of the same lists.
    const close = (actual: number | undefined, expected: number) => expect(actual).toBeCloseTo(expected, 9);
    const { ttft, tpot, itl, e2el } = metrics;
    expect(ttft?.count).toBe(3);
    close(ttft?.meanMs, 116.66666666666667);
    close(ttft?.medianMs, 100);
    close(ttft?.stdMs, 62.36095644623236);
    close(ttft?.percentilesMs['90'], 180);
    close(ttft?.percentilesMs['99'], 198);
    expect(tpot?.count).toBe(2);
    close(tpot?.meanMs, 27.5);
    close(tpot?.stdMs, 12.5);
    close(tpot?.percentilesMs['99'], 39.75);
    // ITL pools every request's gaps: [30, 40, 50] + [] + [60].
    expect(itl?.count).toBe(4);
    close(itl?.meanMs, 45);
    close(itl?.medianMs, 45);
    close(itl?.stdMs, 11.180339887498949);
    close(itl?.percentilesMs['99'], 59.7);
    close(e2el?.meanMs, 176.66666666666666);
    close(e2el?.medianMs, 220);
    close(e2el?.percentilesMs['99'], 259.2);
  });

  it('interpolates percentiles as numpy does', () => {
    const sorted = [3, 1, 4, 1, 5, 9, 2, 6].sort((a, b) => a - b);
    expect(percentileInterpolated(sorted, 50)).toBeCloseTo(3.5, 12);
    expect(percentileInterpolated(sorted, 25)).toBeCloseTo(1.75, 12);
    expect(percentileInterpolated(sorted, 90)).toBeCloseTo(6.9, 12);
    expect(percentileInterpolated(sorted, 99)).toBeCloseTo(8.79, 12);
    expect(percentileInterpolated(sorted, 100)).toBe(9);
    expect(percentileInterpolated([7], 99)).toBe(7);
  });

  it('leaves a metric without samples null instead of vLLM 0 ms', () => {
    const onlyOneToken = calculateMetrics({ records: [record(0, [5], 1)], promptLens: [3], outputLens: [1], durationS: 1, percentiles: [99] });
    expect(onlyOneToken.tpot).toBeNull();
    expect(onlyOneToken.itl).toBeNull();
    expect(onlyOneToken.ttft?.meanMs).toBe(5);
    const allFailed = calculateMetrics({ records: [records[3]], promptLens: [3], outputLens: [1], durationS: 1, percentiles: [99] });
    expect(allFailed).toMatchObject({ completed: 0, failed: 1, ttft: null, tpot: null, itl: null, e2el: null, tokensPerChunk: null, requestThroughput: 0 });
  });
});

describe('requests', () => {
  it('asks for exactly max_tokens, EOS ignored, greedy, streamed with usage', () => {
    expect(requestBody({ endpoint: '/v1/completions', model: 'm', prompt: [1, 2, 3], maxTokens: 7 })).toEqual({
      model: 'm', prompt: [1, 2, 3], max_tokens: 7, temperature: 0, repetition_penalty: 1, ignore_eos: true, stream: true, stream_options: { include_usage: true },
    });
    expect(requestBody({ endpoint: '/v1/chat/completions', model: 'm', prompt: 'hi', maxTokens: 7 })).toMatchObject({
      messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 7, ignore_eos: true, stream_options: { include_usage: true },
    });
    expect(() => requestBody({ endpoint: '/v1/chat/completions', model: 'm', prompt: [1], maxTokens: 7 })).toThrow(/text prompt/);
    expect(endpointUrl('http://h:1/', '/v1/completions').href).toBe('http://h:1/v1/completions');
  });

  it('holds at most the limit of slots, handing them over in order', async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    await slots.acquire();
    await slots.acquire();
    const third = slots.acquire().then(() => order.push(3));
    const fourth = slots.acquire().then(() => order.push(4));
    await Promise.resolve();
    expect(order).toEqual([]);
    slots.release();
    await third;
    expect(order).toEqual([3]);
    slots.release();
    await fourth;
    expect(order).toEqual([3, 4]);
  });
});

/** A local server streaming a scripted body per prompt, to check what the client makes of it. */
describe('client against scripted streams', () => {
  const chunk = (choices: object[], usage?: object): string => `data: ${JSON.stringify({ id: 'x', object: 'text_completion', choices, ...(usage ? { usage } : {}) })}\n\n`;
  const usage = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 };
  const scripts: Record<string, { status: number; body: string }> = {
    ok: { status: 200, body: chunk([{ index: 0, text: 'a' }]) + ': ping\n\n' + chunk([{ index: 0, text: 'bc' }]) + chunk([], usage) + 'data: [DONE]\n\n' },
    noUsage: { status: 200, body: chunk([{ index: 0, text: 'a' }]) + 'data: [DONE]\n\n' },
    errorFrame: { status: 200, body: chunk([{ index: 0, text: 'a' }]) + 'data: {"error":{"message":"engine died"}}\n\n' + 'data: [DONE]\n\n' },
    noChoice: { status: 200, body: chunk([], usage) + 'data: [DONE]\n\n' },
    truncated: { status: 200, body: chunk([{ index: 0, text: 'a' }]) + chunk([], usage) },
    badRequest: { status: 400, body: '{"error":{"message":"maximum context length"}}' },
  };
  let server: http.Server;
  let target: StreamTarget;
  const bodies: Record<string, unknown>[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (part: Buffer) => (text += part.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as Record<string, unknown>;
        bodies.push(body);
        const script = scripts[String(body.prompt)];
        res.writeHead(script.status, { 'content-type': script.status === 200 ? 'text/event-stream' : 'application/json' });
        // Written in pieces cut mid-event, as a network would deliver them.
        const cut = Math.floor(script.body.length / 3);
        res.write(script.body.slice(0, cut));
        res.write(script.body.slice(cut, 2 * cut));
        res.end(script.body.slice(2 * cut));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    target = { baseUrl: `http://127.0.0.1:${port}`, agent: new http.Agent({ keepAlive: true }), apiKey: 'k' };
  });

  afterAll(async () => {
    target.agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const send = (prompt: string) => streamRequest(target, { endpoint: '/v1/completions', model: 'm', prompt, maxTokens: 3 }, 1.5);

  it('counts the chunks carrying a choice and takes the output tokens from usage', async () => {
    const r = await send('ok');
    expect(r).toMatchObject({ isSuccess: true, error: null, outputTokens: 3, serverPromptTokens: 5, dispatchLagMs: 1.5 });
    expect(r.chunkTimesMs).toHaveLength(2);
    expect(r.chunkTimesMs[0]).toBeGreaterThanOrEqual(r.startMs);
    expect(r.chunkTimesMs[1]).toBeGreaterThanOrEqual(r.chunkTimesMs[0]);
    expect(bodies.at(-1)).toMatchObject({ model: 'm', max_tokens: 3, ignore_eos: true, stream: true });
  });

  it('fails a request whose stream lacks usage, carries an error frame, no choice or no [DONE]', async () => {
    expect(await send('noUsage')).toMatchObject({ isSuccess: false, error: expect.stringMatching(/no usage chunk/) });
    expect(await send('errorFrame')).toMatchObject({ isSuccess: false, error: expect.stringMatching(/engine died/) });
    expect(await send('noChoice')).toMatchObject({ isSuccess: false, error: expect.stringMatching(/without a chunk carrying a choice/) });
    expect(await send('truncated')).toMatchObject({ isSuccess: false, error: expect.stringMatching(/before data: \[DONE\]/) });
  });

  it('fails a refused request with its status and message', async () => {
    expect(await send('badRequest')).toMatchObject({ isSuccess: false, error: expect.stringMatching(/^HTTP 400: .*maximum context length/) });
  });
});

describe('options', () => {
  const dummy = ['--load-format', 'dummy', '--preset', 'tiny'];
  const errorOf = (argv: string[]): string => {
    try {
      parseServingArgs(argv);
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
    return 'no error';
  };

  it('takes vLLM defaults and a rate that is a number or inf', () => {
    const o = parseServingArgs(dummy);
    expect(o).toMatchObject({ endpoint: '/v1/completions', numPrompts: 1000, seed: 0, requestRate: Number.POSITIVE_INFINITY, numWarmups: 0, metricPercentiles: [99] });
    expect(parseServingArgs([...dummy, '--request-rate', '2.5'])?.requestRate).toBe(2.5);
    expect(parseServingArgs([...dummy, '--request-rate', 'inf'])?.requestRate).toBe(Number.POSITIVE_INFINITY);
    expect(parseServingArgs([...dummy, '--metric-percentiles', '50,90,99.9'])?.metricPercentiles).toEqual([50, 90, 99.9]);
    expect(parseServingArgs(['--help'])).toBeNull();
  });

  it('records no API key and spells an infinite rate out', () => {
    const o = parseServingArgs([...dummy, '--api-key', 'secret']);
    expect(o).not.toBeNull();
    if (!o) return;
    const recorded = recordedOptions(o);
    expect(JSON.stringify(recorded)).not.toContain('secret');
    expect(recorded.requestRate).toBe('inf');
  });

  it('names the flag in every error', () => {
    expect(errorOf([...dummy, '--request-rate', '0'])).toMatch(/^--request-rate: /);
    expect(errorOf([...dummy, '--request-rate', 'fast'])).toMatch(/^--request-rate: .*'fast'/);
    expect(errorOf([...dummy, '--max-concurrency', '0'])).toMatch(/^--max-concurrency: /);
    expect(errorOf([...dummy, '--num-prompts', '2.5'])).toMatch(/^--num-prompts: /);
    expect(errorOf([...dummy, '--random-input-len', '8'])).toMatch(/^--random-input-len: .*go together/);
    expect(errorOf([...dummy, '--random-input-len', '8', '--random-output-len', '8', '--endpoint', '/v1/chat/completions'])).toMatch(/^--endpoint: /);
    expect(errorOf([...dummy, '--endpoint', '/v1/embeddings'])).toMatch(/^--endpoint: /);
    expect(errorOf([...dummy, '--metric-percentiles', '50,101'])).toMatch(/^--metric-percentiles: /);
    expect(errorOf([...dummy, '--tokenizer', '/tmp/x'])).toMatch(/^--tokenizer: only with --base-url/);
    expect(errorOf(['--load-format', 'dummy'])).toMatch(/^--preset: /);
    expect(errorOf([])).toMatch(/^--model: /);
    expect(errorOf(['--base-url', 'ftp://host'])).toMatch(/^--base-url: /);
    expect(errorOf(['--base-url', 'http://127.0.0.1:8000'])).toMatch(/^--tokenizer: /);
    expect(errorOf(['--base-url', 'http://127.0.0.1:8000', '--preset', 'tiny', '--max-num-seqs', '8'])).toMatch(/^--max-num-seqs: an engine flag/);
    expect(errorOf(['--base-url', 'http://127.0.0.1:8000', '--preset', 'tiny', '--no-async-scheduling'])).toMatch(/^--no-async-scheduling: an engine flag/);
    expect(errorOf([...dummy, '--request-ratee', '1'])).toMatch(/--request-ratee/);
  });
});

describe('workload', () => {
  it('sends random prompts as token ids of exactly the asked length', () => {
    const w = buildWorkload({ dataset: '', numPrompts: 3, seed: 1, randomInputLen: 12, randomOutputLen: 5 }, { vocabSize: 1000, encode: () => [] });
    expect(w.requests.map((r) => [r.promptLen, r.outputLen, Array.isArray(r.prompt) ? r.prompt.length : -1])).toEqual([[12, 5, 12], [12, 5, 12], [12, 5, 12]]);
    expect(w.totals).toMatchObject({ numRequests: 3, numPromptTokens: 36, numOutputTokens: 15 });
  });

  it.skipIf(!existsSync(sharegptPath))('sends ShareGPT prompts as text whose tokens are the counted prompt (skipped without ../shared/data)', () => {
    const tokenizer = loadTokenizer(tokenizerPackageDir('llama3'));
    const w = buildWorkload({ dataset: sharegptPath, numPrompts: 10, seed: 0 }, tokenizer);
    expect(w.requests).toHaveLength(10);
    for (const r of w.requests) {
      expect(typeof r.prompt).toBe('string');
      expect(tokenizer.encode(r.prompt as string, true)).toHaveLength(r.promptLen);
    }
  });
});
