/**
 * Offline throughput benchmark (after vLLM's benchmark_throughput.py): ShareGPT requests (or
 * random ones) through Spindle's library API, EOS ignored so every request makes exactly its
 * reference completion's token count. Reports requests/s and tokens/s, how busy the device
 * was, where the host time went per step, and the physical floor of the same workload.
 *
 *   npx tsx bench/throughput.ts --load-format dummy --preset tiny --device cpu --num-prompts 50
 *   npx tsx bench/throughput.ts --compare bench/results/throughput-X.json hf.json
 * `spindle bench throughput ARGS` calls run(ARGS); libraries call runThroughputBench(options).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/workers/tokenizer-loader.ts';
import { machineInfo } from './lib/machine.ts';
import { writeJsonFile, writeTextFile } from './lib/results-file.ts';
import { renderThroughputSvg } from './throughput/chart.ts';
import { loadShareGpt, randomRequests, selectShareGptRequests, workloadTotals, type BenchRequest } from './throughput/dataset.ts';
import { engineOptionsFor, modelSourceFor } from './throughput/engine-options.ts';
import { runOnEngine } from './throughput/engine-run.ts';
import { scheduleFloor, workloadFloor } from './throughput/floor.ts';
import { parseThroughputArgs, resolveThroughputOptions, USAGE, type ThroughputOptionsInput } from './throughput/options.ts';
import { compareWithPeer, deviceNameFor, formatComparison, formatResult, rates, readCeilings, type FloorReport, type ThroughputResult } from './throughput/report.ts';
import { writeRequestsFile } from './throughput/requests-file.ts';
import { estimateStepWork, summarizeSteps, timeSeries } from './throughput/step-stats.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NUM_CHART_BUCKETS = 60;

export interface ThroughputBenchOutput {
  result: ThroughputResult;
  jsonPath: string;
  svgPath: string;
}

/** Runs the benchmark, writes its JSON and SVG, prints its table, and returns the result. */
export async function runThroughputBench(input: ThroughputOptionsInput, log: (line: string) => void = console.log): Promise<ThroughputBenchOutput> {
  const o = resolveThroughputOptions(input);
  const model = await modelSourceFor(o);
  const isRandom = o.inputLen !== undefined && o.outputLen !== undefined;
  let requests: BenchRequest[];
  let numRowsExamined: number | null = null;
  let numRowsDropped: number | null = null;
  if (o.inputLen !== undefined && o.outputLen !== undefined) {
    requests = randomRequests(o.numPrompts, o.inputLen, o.outputLen, model.config.vocabSize, o.seed);
  } else {
    const tokenizer = loadTokenizer(model.tokenizerDir);
    const selection = selectShareGptRequests(loadShareGpt(o.dataset), tokenizer, o.numPrompts, o.seed);
    ({ requests, numRowsExamined, numRowsDropped } = selection);
  }
  const source = isRandom ? `random ${o.inputLen} in / ${o.outputLen} out` : `ShareGPT ${path.basename(o.dataset)}, seed ${o.seed}`;
  const engineOptions = engineOptionsFor(o, model);
  if (o.requestsOut) {
    writeRequestsFile(o.requestsOut, { version: 1, source, seed: o.seed, modelName: model.name, model: model.config, dtype: o.dtype === 'float32' ? 'float32' : 'bfloat16', requests });
    log(`requests for bench/hf_baseline.py: ${o.requestsOut}`);
  }

  const run = await runOnEngine(engineOptions, requests, o.numWarmupPrompts, o.progress);
  const totals = workloadTotals(requests);
  const steps = summarizeSteps(run.steps, run.wallMs);
  const dtypeBytes = run.dtype === 'bfloat16' ? 2 : 4;
  let floor: FloorReport | null = null;
  if (o.floor) {
    const ceilings = readCeilings(o.floor);
    const workload = workloadFloor(model.config, dtypeBytes, requests, run, ceilings);
    const schedule = scheduleFloor(model.config, dtypeBytes, run.steps.map((t) => estimateStepWork(t, run.numKvBlocks, run.blockSize)), ceilings);
    floor = {
      ceilings: { ...ceilings, file: o.floor },
      workload,
      schedule,
      wallOverWorkloadFloor: run.wallMs / 1000 / workload.seconds,
      wallOverScheduleFloor: run.wallMs / 1000 / schedule.seconds,
    };
  }
  const { wallMs, runStartMs, steps: _steps, numGeneratedTokens, numPreemptions, createS, ...engineConfig } = run;
  const result: ThroughputResult = {
    benchmark: 'throughput',
    engine: 'spindle',
    deviceName: deviceNameFor(run.device),
    machine: machineWithCommit(),
    options: o,
    engineConfig,
    model: { name: model.name, isDummy: model.weights.kind === 'dummy', config: model.config },
    workload: { ...totals, source, numRowsExamined, numRowsDropped },
    results: { ...rates(totals, wallMs), numGeneratedTokens, numPreemptions, engineCreateS: createS },
    steps,
    floor,
    timeSeries: timeSeries(run.steps, runStartMs, wallMs, Math.min(NUM_CHART_BUCKETS, Math.max(1, run.steps.length))),
  };
  const jsonPath = writeJsonFile(o.outputJson ?? path.join(repoRoot, 'bench/results', `throughput-${run.device}-${model.name}.json`), result);
  const svgPath = writeTextFile(jsonPath.replace(/\.json$/, '') + '.svg', renderThroughputSvg(result.timeSeries, `Spindle ${model.name}: ${result.results.requestsPerS.toFixed(2)} req/s on ${result.deviceName}`));
  log(formatResult(result));
  log(`wrote ${path.relative(process.cwd(), jsonPath)} and ${path.relative(process.cwd(), svgPath)}`);
  return { result, jsonPath, svgPath };
}

/** The GPU machine's copy of the tree has no .git: gpu-run.sh passes the commit in SPINDLE_GIT_COMMIT. */
function machineWithCommit(): ReturnType<typeof machineInfo> {
  const machine = machineInfo();
  const fromEnv = process.env.SPINDLE_GIT_COMMIT;
  return machine.gitCommit === 'unknown' && fromEnv ? { ...machine, gitCommit: fromEnv } : machine;
}

/** `--compare SPINDLE.json HF.json`: prints both and records the comparison in Spindle's JSON. */
export function compareResults(spindlePath: string, hfPath: string, log: (line: string) => void = console.log): void {
  const spindle = JSON.parse(readFileSync(spindlePath, 'utf8')) as ThroughputResult;
  const comparison = compareWithPeer(spindle, JSON.parse(readFileSync(hfPath, 'utf8')));
  writeJsonFile(spindlePath, { ...spindle, comparison });
  log(formatComparison(spindle, comparison));
}

/** The command line (`spindle bench throughput ARGS` calls this). */
export async function run(argv: string[]): Promise<void> {
  if (argv[0] === '--compare') {
    if (argv.length !== 3) throw new Error('usage: tsx bench/throughput.ts --compare SPINDLE.json HF.json');
    compareResults(argv[1], argv[2]);
    return;
  }
  const options = parseThroughputArgs(argv);
  if (!options) {
    console.log(USAGE);
    return;
  }
  await runThroughputBench(options);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
