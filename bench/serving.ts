/**
 * Online serving benchmark (after vLLM's `vllm bench serve` / benchmark_serving.py): streamed
 * completions sent to an OpenAI-compatible server at a Poisson --request-rate (or all at once),
 * optionally at most --max-concurrency at a time, EOS ignored so each request generates exactly
 * its max_tokens. Reports request and token throughput and TTFT, TPOT, ITL and E2E latency as
 * vLLM defines them (bench/serving/metrics.ts). Against --base-url, any server; without it,
 * Spindle started in this process from the engine flags.
 *
 *   npx tsx bench/serving.ts --load-format dummy --preset tiny --device cpu --num-prompts 20 --request-rate 1
 *   npx tsx bench/serving.ts --base-url http://127.0.0.1:8000 --preset llama-3.1-8b --request-rate 10
 * `spindle bench serving ARGS` calls run(ARGS); libraries call runServingBench(options).
 */
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getPreset, tokenizerPackageDir } from '../src/engine/presets.ts';
import type { ModelSource } from '../src/engine/types.ts';
import { loadTokenizer } from '../src/workers/tokenizer-loader.ts';
import { machineInfo, type MachineInfo } from './lib/machine.ts';
import { writeJsonFile } from './lib/results-file.ts';
import { arrivalTimesS } from './serving/arrivals.ts';
import { firstServedModel, streamRequest, type RequestSpec, type StreamTarget } from './serving/client.ts';
import { startInProcessServer, type InProcessServer } from './serving/in-process-server.ts';
import { calculateMetrics } from './serving/metrics.ts';
import { parseServingArgs, recordedOptions, resolveServingOptions, USAGE, type ServingOptions, type ServingOptionsInput } from './serving/options.ts';
import { formatResult, summarizeRequests, type ServingResult } from './serving/report.ts';
import { runTraffic } from './serving/traffic.ts';
import { buildWorkload, type ServingRequest } from './serving/workload.ts';
import { modelSourceFor } from './throughput/engine-options.ts';
import { deviceNameFor } from './throughput/report.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ServingBenchOutput {
  result: ServingResult;
  jsonPath: string;
}

/** Against --base-url the tokenizer comes from --tokenizer, else --model's directory, else --preset's package. */
function externalTokenizerDir(o: ServingOptions): string {
  if (o.tokenizer !== undefined) return o.tokenizer;
  if (o.model !== undefined) return o.model;
  return tokenizerPackageDir(getPreset(o.preset ?? '').tokenizer);
}

/** The in-process engine's flags: the engine's own defaults where a flag was not given. */
function engineFlags(o: ServingOptions): Parameters<typeof startInProcessServer>[0] {
  return {
    ...o,
    device: o.device ?? 'auto',
    dtype: o.dtype ?? 'auto',
    enforceEager: o.enforceEager ?? false,
    asyncScheduling: o.asyncScheduling ?? true,
  };
}

/** The GPU machine's copy of the tree has no .git: its scripts pass the commit in SPINDLE_GIT_COMMIT. */
function machineWithCommit(): MachineInfo {
  const machine = machineInfo();
  const fromEnv = process.env.SPINDLE_GIT_COMMIT;
  return machine.gitCommit === 'unknown' && fromEnv ? { ...machine, gitCommit: fromEnv } : machine;
}

/** Runs the benchmark, writes its JSON, prints its table, and returns the result. */
export async function runServingBench(input: ServingOptionsInput, log: (line: string) => void = console.log): Promise<ServingBenchOutput> {
  const o = resolveServingOptions(input);
  const model: ModelSource | null = o.baseUrl === undefined ? await modelSourceFor(o) : null;
  const tokenizer = loadTokenizer(model?.tokenizerDir ?? externalTokenizerDir(o));
  const workload = buildWorkload(o, tokenizer);
  const machine = machineWithCommit();

  let server: InProcessServer | null = null;
  if (model !== null) {
    log(`starting Spindle in process: ${model.name}${model.weights.kind === 'dummy' ? ' (dummy weights)' : ''}`);
    server = await startInProcessServer(engineFlags(o), model);
  }
  const baseUrl = server?.baseUrl ?? o.baseUrl ?? '';
  const apiKey = o.apiKey ?? process.env.OPENAI_API_KEY ?? null;
  // One connection per request in flight, kept alive for the next (vLLM's connector is limited
  // to --max-concurrency too).
  const agentOptions = { keepAlive: true, maxSockets: o.maxConcurrency ?? Number.POSITIVE_INFINITY };
  const agent = baseUrl.startsWith('https:') ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  try {
    const servedModelName = o.servedModelName ?? server?.servedModelName ?? (await firstServedModel(baseUrl, apiKey));
    const target: StreamTarget = { baseUrl, agent, apiKey };
    const specOf = (r: ServingRequest): RequestSpec => ({ endpoint: o.endpoint, model: servedModelName, prompt: r.prompt, maxTokens: r.outputLen });

    // As vLLM: the first request, untimed, checks that the endpoint works before the run.
    const first = workload.requests[0];
    log(`checking ${baseUrl}${o.endpoint} with one request (${first.promptLen} prompt tokens, ${first.outputLen} output)`);
    const check = await streamRequest(target, specOf(first), 0);
    if (!check.isSuccess) throw new Error(`the first request failed, nothing was measured: ${check.error ?? 'unknown error'}`);
    if (o.numWarmups > 0) {
      log(`warming up with ${o.numWarmups} copies of it`);
      await runTraffic(new Array<number>(o.numWarmups).fill(0), o.maxConcurrency, () => streamRequest(target, specOf(first), 0), false);
    }

    const arrivalsS = arrivalTimesS(workload.requests.length, o.requestRate, o.seed);
    log(`sending ${workload.requests.length} requests at ${o.requestRate === Number.POSITIVE_INFINITY ? 'once' : `${o.requestRate} requests/s (Poisson)`}` +
      `${o.maxConcurrency !== undefined ? `, at most ${o.maxConcurrency} in flight` : ''}`);
    const traffic = await runTraffic(arrivalsS, o.maxConcurrency, (i, lagMs) => streamRequest(target, specOf(workload.requests[i]), lagMs), o.progress);
    const metrics = calculateMetrics({
      records: traffic.records,
      promptLens: workload.requests.map((r) => r.promptLen),
      outputLens: workload.requests.map((r) => r.outputLen),
      durationS: traffic.durationMs / 1000,
      percentiles: o.metricPercentiles,
    });
    const options = recordedOptions(o);
    const result: ServingResult = {
      benchmark: 'serving',
      machine,
      options,
      server: {
        kind: server ? 'in-process' : 'external',
        baseUrl,
        endpoint: o.endpoint,
        servedModelName,
        deviceName: server ? deviceNameFor(server.info.device) : null,
        engine: server?.info ?? null,
      },
      workload: { ...workload.totals, source: workload.source, numRowsExamined: workload.numRowsExamined, numRowsDropped: workload.numRowsDropped },
      traffic: { requestRate: options.requestRate, maxConcurrency: o.maxConcurrency ?? null, lastArrivalS: arrivalsS[arrivalsS.length - 1] ?? 0, numWarmups: o.numWarmups },
      results: metrics,
      requests: summarizeRequests(workload.requests, traffic.records, arrivalsS),
    };
    const defaultName = `serving-${server ? server.info.device : 'external'}-${(server ? server.info.model.name : servedModelName).replace(/[^\w.-]+/g, '_')}.json`;
    const jsonPath = writeJsonFile(o.outputJson ?? path.join(repoRoot, 'bench/results', defaultName), result);
    log(formatResult(result));
    log(`wrote ${path.relative(process.cwd(), jsonPath)}`);
    return { result, jsonPath };
  } finally {
    agent.destroy();
    await server?.close();
  }
}

/** The command line (`spindle bench serving ARGS` calls this). */
export async function run(argv: string[]): Promise<void> {
  const options = parseServingArgs(argv);
  if (!options) {
    console.log(USAGE);
    return;
  }
  await runServingBench(options);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
