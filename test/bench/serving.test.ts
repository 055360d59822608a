/**
 * The serving benchmark end to end on the CPU: Spindle started in process on the tiny preset
 * (dummy weights), a handful of random prompts sent at a Poisson rate with a concurrency limit,
 * the JSON written and read back. Checks the result's shape and that every request succeeded
 * with exactly its max_tokens; no timing is asserted.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runServingBench } from '../../bench/serving.ts';
import type { ServingResult } from '../../bench/serving/report.ts';
import { realEngineSkipReason } from '../server/real-model.ts';

const skipReason = realEngineSkipReason();

describe.skipIf(skipReason !== '')(`serving benchmark in process on the CPU${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spindle-serving-bench-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every request to its max_tokens and writes the result', async () => {
    const outputJson = path.join(dir, 'serving.json');
    const lines: string[] = [];
    const numPrompts = 6;
    const { result, jsonPath } = await runServingBench(
      {
        loadFormat: 'dummy', preset: 'tiny', device: 'cpu', numThreads: 1, detokenizerWorkers: 1, numKvBlocks: 64, maxModelLen: 256,
        numPrompts, randomInputLen: 12, randomOutputLen: 6, requestRate: 50, maxConcurrency: 3, numWarmups: 1,
        metricPercentiles: [50, 99], progress: false, outputJson,
      },
      (line) => lines.push(line),
    );
    expect(jsonPath).toBe(outputJson);
    const written = JSON.parse(readFileSync(outputJson, 'utf8')) as ServingResult;
    // What was written is what was returned (nothing in the result is lost to JSON).
    expect(written).toEqual(JSON.parse(JSON.stringify(result)));

    expect(written.benchmark).toBe('serving');
    expect(written.machine).toMatchObject({ gitCommit: expect.any(String), command: expect.any(String), numCores: expect.any(Number) });
    expect(written.options).toMatchObject({ requestRate: 50, maxConcurrency: 3, numPrompts });
    expect(written.options).not.toHaveProperty('apiKey');
    expect(written.server).toMatchObject({ kind: 'in-process', endpoint: '/v1/completions', servedModelName: 'tiny', engine: { device: 'cpu', model: { name: 'tiny', isDummy: true } } });
    expect(written.workload).toMatchObject({ numRequests: numPrompts, numPromptTokens: numPrompts * 12, numOutputTokens: numPrompts * 6 });
    expect(written.traffic).toMatchObject({ requestRate: 50, maxConcurrency: 3, numWarmups: 1 });
    expect(written.traffic.lastArrivalS).toBeCloseTo(numPrompts / 50, 9);

    const r = written.results;
    expect(r).toMatchObject({ completed: numPrompts, failed: 0, totalInputTokens: numPrompts * 12, totalOutputTokens: numPrompts * 6, numOutputLenMismatches: 0 });
    // Spindle's usage counts the same prompt tokens as the client's tokenizer.
    expect(r.serverInputTokens).toBe(numPrompts * 12);
    for (const stats of [r.ttft, r.tpot, r.e2el]) {
      expect(stats?.count).toBe(numPrompts);
      expect(Object.keys(stats?.percentilesMs ?? {})).toEqual(['50', '99']);
    }
    expect(r.itl?.count).toBeGreaterThan(0);
    expect(r.durationS).toBeGreaterThan(0);

    expect(written.requests).toHaveLength(numPrompts);
    for (const q of written.requests) {
      expect(q).toMatchObject({ isSuccess: true, error: null, outputTokens: 6, serverPromptTokens: 12, promptLen: 12, outputLen: 6 });
      expect(q.numChunks).toBeGreaterThan(0);
      expect(q.numChunks).toBeLessThanOrEqual(6);
      expect(q.ttftMs).not.toBeNull();
      expect(q.e2elMs ?? 0).toBeGreaterThanOrEqual(q.ttftMs ?? 0);
    }
    expect(lines.join('\n')).toMatch(/TTFT[\s\S]*TPOT[\s\S]*ITL[\s\S]*E2E latency/);
  });
});
