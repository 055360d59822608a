/**
 * The throughput benchmark's pure parts, on the CPU: the ShareGPT selection (vLLM's filter,
 * seeded order), random mode, the floor arithmetic (checked against published parameter
 * counts and against exact simulated schedules), the step statistics and the option parser.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  isKeptByShareGptFilter,
  loadShareGpt,
  randomRequests,
  seededRandom,
  selectShareGptRequests,
  shuffledIndices,
  type BenchRequest,
  type ShareGptRow,
  type TextEncoder,
} from '../../bench/throughput/dataset.ts';
import { countParams, scheduleFloor, stepCost, workloadFloor, type DeviceCeilings, type ModelShape, type StepWork } from '../../bench/throughput/floor.ts';
import { parseThroughputArgs } from '../../bench/throughput/options.ts';
import { renderThroughputSvg } from '../../bench/throughput/chart.ts';
import { summarizeSteps, timeSeries } from '../../bench/throughput/step-stats.ts';
import { MODEL_PRESETS } from '../../src/engine/presets.ts';
import { tokenizerPackageDir } from '../../src/engine/presets.ts';
import { loadTokenizer } from '../../src/workers/tokenizer-loader.ts';
import type { StepTiming } from '../../src/engine/types.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sharegptPath = path.resolve(repoRoot, '../shared/data/sharegpt.jsonl');

/** One token per whitespace-separated word (+1 for the "special" token when asked). */
const wordEncoder: TextEncoder = {
  encode: (text, addSpecialTokens) => {
    const ids = text.split(/\s+/).filter(Boolean).map((w) => w.length);
    return addSpecialTokens ? [0, ...ids] : ids;
  },
};

function words(n: number): string {
  return Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
}

function randomRows(n: number, random: () => number): ShareGptRow[] {
  // lengths straddle every edge of the filter: < 4, 1024, 2048
  return Array.from({ length: n }, (_, i) => ({
    id: `row-${i}`,
    prompt: words(Math.floor(random() * 1100)),
    completion: words(Math.floor(random() * 1300)),
  }));
}

describe('ShareGPT selection', () => {
  it('keeps exactly what vLLM keeps at the edges of the filter', () => {
    expect(isKeptByShareGptFilter(3, 100)).toBe(false);
    expect(isKeptByShareGptFilter(4, 4)).toBe(true);
    expect(isKeptByShareGptFilter(100, 3)).toBe(false);
    expect(isKeptByShareGptFilter(1024, 1024)).toBe(true);
    expect(isKeptByShareGptFilter(1025, 10)).toBe(false);
    expect(isKeptByShareGptFilter(1000, 1049)).toBe(false);
  });

  it('shuffles into a permutation that depends only on the seed', () => {
    const a = shuffledIndices(500, 7);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(shuffledIndices(500, 7)).toEqual(a);
    expect(shuffledIndices(500, 8)).not.toEqual(a);
  });

  it('takes the first numPrompts rows in shuffled order that pass the filter', () => {
    const seed = Math.floor(Math.random() * 1e6);
    const rows = randomRows(400, seededRandom(seed));
    const numPrompts = 60;
    const { requests, numRowsExamined, numRowsDropped } = selectShareGptRequests(rows, wordEncoder, numPrompts, seed);
    expect(requests).toHaveLength(numPrompts);
    // the reference: walk the same order by hand
    const expected: string[] = [];
    let examined = 0;
    for (const i of shuffledIndices(rows.length, seed)) {
      if (expected.length === numPrompts) break;
      examined++;
      const promptLen = rows[i].prompt.split(/\s+/).filter(Boolean).length + 1;
      const outputLen = rows[i].completion.split(/\s+/).filter(Boolean).length;
      if (promptLen >= 4 && outputLen >= 4 && promptLen <= 1024 && promptLen + outputLen <= 2048) expected.push(rows[i].id);
    }
    expect(requests.map((r) => r.id)).toEqual(expected);
    expect(numRowsExamined).toBe(examined);
    expect(numRowsDropped).toBe(examined - numPrompts);
    for (const r of requests) expect(isKeptByShareGptFilter(r.promptTokenIds.length, r.outputLen)).toBe(true);
    expect(selectShareGptRequests(rows, wordEncoder, numPrompts, seed).requests).toEqual(requests);
  });

  it('refuses to make up requests the dataset does not have', () => {
    const rows = [{ id: 'a', prompt: 'too short', completion: words(10) }];
    expect(() => selectShareGptRequests(rows, wordEncoder, 1, 0)).toThrow(/only 0 of 1/);
  });

  it('random mode draws ids inside the vocabulary, fixed lengths, reproducibly', () => {
    const requests = randomRequests(20, 33, 7, 1000, 3);
    expect(requests.every((r) => r.promptTokenIds.length === 33 && r.outputLen === 7)).toBe(true);
    expect(requests.flatMap((r) => r.promptTokenIds).every((id) => Number.isInteger(id) && id >= 0 && id < 1000)).toBe(true);
    expect(new Set(requests.flatMap((r) => r.promptTokenIds)).size).toBeGreaterThan(100);
    expect(randomRequests(20, 33, 7, 1000, 3)).toEqual(requests);
  });

  it.skipIf(!existsSync(sharegptPath))('counts output tokens of the real dataset with the Llama 3 tokenizer (skipped without ../shared/data)', () => {
    const tokenizer = loadTokenizer(tokenizerPackageDir('llama3'));
    const rows = loadShareGpt(sharegptPath);
    expect(rows.length).toBeGreaterThan(3000);
    const { requests } = selectShareGptRequests(rows, tokenizer, 25, 0);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const r of requests) {
      const row = byId.get(r.id);
      expect(row).toBeDefined();
      expect(r.outputLen).toBe(tokenizer.tokenizer.encode(row?.completion ?? '', { add_special_tokens: false }).ids.length);
      expect(r.promptTokenIds).toEqual(tokenizer.tokenizer.encode(row?.prompt ?? '').ids);
    }
  });
});

describe('floor arithmetic', () => {
  it('counts the parameters the model cards publish', () => {
    // safetensors totals on the Hugging Face hub
    expect(countParams(MODEL_PRESETS['llama-3.1-8b'].config).total).toBe(8_030_261_248);
    expect(countParams(MODEL_PRESETS['llama-2-13b'].config).total).toBe(13_015_864_320);
    expect(countParams(MODEL_PRESETS['qwen3-8b'].config).total).toBe(8_190_735_360);
  });

  const ceilings: DeviceCeilings = { deviceName: 'test', copyBytesPerS: 3e12, gemmFlopsPerS: 7.8e14 };
  const model: ModelShape = MODEL_PRESETS['llama-3.1-8b'].config;

  it('a lone decode step is bound by bytes, a long prefill by FLOPs', () => {
    const decode: StepWork = { numTokens: 1, numSampled: 1, numContextTokens: 100, numAttentionPairs: 100 };
    const c1 = stepCost(model, 2, decode);
    expect(c1.bytes / ceilings.copyBytesPerS).toBeGreaterThan(c1.flops / ceilings.gemmFlopsPerS);
    expect(c1.bytes).toBeGreaterThan(2 * (countParams(model).total - countParams(model).embedding));
    const prefill: StepWork = { numTokens: 8192, numSampled: 8, numContextTokens: 8192, numAttentionPairs: 8 * (1024 * 1025) / 2 };
    const c2 = stepCost(model, 2, prefill);
    expect(c2.flops / ceilings.gemmFlopsPerS).toBeGreaterThan(c2.bytes / ceilings.copyBytesPerS);
    const f = scheduleFloor(model, 2, [decode, prefill], ceilings);
    expect(f.seconds).toBeCloseTo(c1.bytes / ceilings.copyBytesPerS + c2.flops / ceilings.gemmFlopsPerS, 12);
  });

  /**
   * An exact schedule by simulation (FCFS admission, chunked prefill under the token budget,
   * every running sequence decodes each step), with its StepWork counted token by token.
   */
  function simulate(requests: BenchRequest[], maxNumSeqs: number, maxNumBatchedTokens: number): StepWork[] {
    const live = requests.map((r) => ({ promptLen: r.promptTokenIds.length, total: r.promptTokenIds.length + r.outputLen - 1, computed: 0, sampled: 0, outputLen: r.outputLen }));
    const steps: StepWork[] = [];
    let next = 0;
    const running: typeof live = [];
    while (next < live.length || running.length > 0) {
      while (running.length < maxNumSeqs && next < live.length) running.push(live[next++]);
      let budget = maxNumBatchedTokens;
      const work: StepWork = { numTokens: 0, numSampled: 0, numContextTokens: 0, numAttentionPairs: 0 };
      for (const s of running) {
        if (budget === 0) break;
        const target = s.computed < s.promptLen ? s.promptLen : s.computed + 1;
        const n = Math.min(target - s.computed, budget);
        budget -= n;
        for (let p = s.computed; p < s.computed + n; p++) work.numAttentionPairs += p + 1;
        s.computed += n;
        work.numTokens += n;
        work.numContextTokens += s.computed;
        if (s.computed >= s.promptLen) {
          work.numSampled++;
          s.sampled++;
        }
      }
      steps.push(work);
      for (let i = running.length - 1; i >= 0; i--) if (running[i].sampled === running[i].outputLen) running.splice(i, 1);
    }
    expect(live.every((s) => s.computed === s.total)).toBe(true);
    return steps;
  }

  it('the workload floor never exceeds the floor of an exact schedule, and both count the same FLOPs', () => {
    const random = seededRandom(Math.floor(Math.random() * 1e9));
    for (let trial = 0; trial < 20; trial++) {
      const requests = Array.from({ length: 1 + Math.floor(random() * 40) }, (_, i) => ({
        id: `r${i}`,
        promptTokenIds: new Array<number>(1 + Math.floor(random() * 300)).fill(1),
        outputLen: 1 + Math.floor(random() * 200),
      }));
      const maxNumSeqs = 1 + Math.floor(random() * 32);
      const maxNumBatchedTokens = 300 + Math.floor(random() * 2000);
      const steps = simulate(requests, maxNumSeqs, maxNumBatchedTokens);
      const exact = scheduleFloor(model, 2, steps, ceilings);
      const bound = workloadFloor(model, 2, requests, { maxNumSeqs, maxNumBatchedTokens }, ceilings);
      expect(bound.seconds).toBeLessThanOrEqual(exact.seconds * (1 + 1e-12));
      expect(bound.minSteps).toBeLessThanOrEqual(steps.length);
      expect(Math.abs(bound.flops - exact.flops) / exact.flops).toBeLessThan(1e-12);
    }
  });
});

function timing(step: number, startMs: number, over: Partial<StepTiming>): StepTiming {
  return {
    step, startMs, scheduleMs: 0.1, packMs: 0.2, launchGapMs: 0.6, handover: 'afterStep', executeMs: 10, executorIdleMs: 0.4, stepWallMs: 9.7,
    forwardMs: 8, sampleMs: 1, copyMs: 0.5, postprocessMs: 0.3,
    detokDispatchMs: 0.1, detokLagSteps: 1, numSeqs: 4, numTokens: 4, numPrefillTokens: 0, numRunning: 4, numWaiting: 0, kvUsage: 0.5, ...over,
  };
}

describe('step statistics', () => {
  it('busy fraction, host time not hidden and the per-phase totals', () => {
    const steps = Array.from({ length: 10 }, (_, i) => timing(i + 1, 1000 + 11 * i, { numRunning: i, kvUsage: i / 20 }));
    // After a sleep the executor's idle time is the sleep: the launch gap stands in for it.
    steps[0] = timing(1, 1000, { handover: 'afterSleep', executorIdleMs: 50, numRunning: 0, kvUsage: 0 });
    steps[3] = timing(4, 1033, { forwardMs: 9, sampleMs: 0.5, copyMs: 0.5, numRunning: 3, kvUsage: 3 / 20 }); // native > step wall: clamped
    steps[5] = timing(6, 1055, { handover: 'ahead', launchGapMs: 0, numRunning: 5, kvUsage: 5 / 20 });
    const s = summarizeSteps(steps, 110);
    expect(s.nativeMs).toBeCloseTo(9 * 9.5 + 10, 9);
    expect(s.gpuBusyFraction).toBeCloseTo((9 * 9.5 + 10) / 110, 9);
    expect(s.phases.stepHostMs.totalMs).toBeCloseTo(9 * 0.2, 9);
    // Per step: executor idle 0.4 + step host 0.2; the first 0.6 + 0.2; the clamped one 0.4 + 0.
    expect(s.hostNotHiddenMs).toBeCloseTo(8 * 0.6 + 0.8 + 0.4, 9);
    expect(s.numHandedOverAhead).toBe(1);
    expect(s.outsideStepsMs).toBeCloseTo(110 - (6.0 + 9 * 9.5 + 10), 9);
    expect(s.peakNumRunning).toBe(9);
    expect(s.peakKvUsage).toBeCloseTo(0.45, 12);
    const series = timeSeries(steps, 1000, 110, 5);
    expect(series.reduce((n, b) => n + b.numSteps, 0)).toBe(10);
    expect(series[0].tokensPerS).toBeCloseTo((2 * 4) / 0.022, 6);
    const svg = renderThroughputSvg(series, 'test <run>');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('test &lt;run&gt;');
    expect(svg.match(/<polyline points="([^"]*)"/)?.[1].split(' ')).toHaveLength(5);
  });
});

describe('options', () => {
  it('parses vLLM flag names and names the flag on errors', () => {
    const o = parseThroughputArgs(['--load-format', 'dummy', '--preset', 'tiny', '--num-prompts', '50', '--max-num-seqs', '64', '--no-progress']);
    expect(o).toMatchObject({ loadFormat: 'dummy', preset: 'tiny', numPrompts: 50, maxNumSeqs: 64, progress: false, seed: 0 });
    expect(() => parseThroughputArgs(['--load-format', 'dummy'])).toThrow(/--preset/);
    expect(() => parseThroughputArgs(['--model', 'x', '--input-len', '5'])).toThrow(/--input-len/);
    expect(() => parseThroughputArgs(['--model', 'x', '--num-prompts', '0'])).toThrow(/--num-prompts/);
    expect(parseThroughputArgs(['--help'])).toBeNull();
  });
});
