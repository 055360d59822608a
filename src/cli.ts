/**
 * The `spindle` command (bin/spindle.mjs runs this file through tsx):
 *   spindle serve [MODEL_DIR]     the OpenAI-compatible server (no MODEL_DIR: the demo model)
 *   spindle generate [MODEL_DIR]  offline prompts → text
 *   spindle bench detokenize|throughput|serving [ARGS]
 * Flags keep vLLM's names (src/server/cli-flags.ts). Exit codes: 0 done, 1 failed, 2 bad usage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EngineConfigError } from './engine/config.ts';
import { DEFAULT_SAMPLING_PARAMS } from './engine/types.ts';
import { createApp } from './server/app.ts';
import { DEFAULT_CORS } from './server/cors.ts';
import { StatsLogger } from './server/stats-logger.ts';
import {
  CliUsageError, formatFlagHelp, GENERATE_FLAGS, jsonListOf, parseCommandLine, booleanPairOf, SERVE_FLAGS, type FlagValue,
} from './server/cli-flags.ts';
import { launchEngine, type EngineFlags } from './server/engine-launch.ts';
import { Lifecycle } from './server/lifecycle.ts';
import { exitOnSignals, listen } from './server/serve.ts';

const USAGE = `spindle: an LLM serving engine for Node.js

Usage:
  spindle serve [MODEL_DIR] [FLAGS]       serve MODEL_DIR (a Hugging Face model directory) over an
                                          OpenAI-compatible API; without it, the built-in demo model
  spindle generate [MODEL_DIR] [FLAGS]    complete prompts offline and print the text
  spindle bench detokenize|throughput|serving [ARGS]   run a benchmark from bench/
  spindle --version

Run 'spindle serve --help' or 'spindle generate --help' for the flags.`;

const BENCHMARKS = ['detokenize', 'throughput', 'serving'] as const;

function log(line: string): void {
  process.stderr.write(`spindle: ${line}\n`);
}

function packageVersion(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

type Values = Record<string, FlagValue | undefined>;
/** A numeric flag's value (parseCommandLine already converted and range-checked it). */
const num = (values: Values, name: string): number | undefined => values[name] as number | undefined;

function engineFlagsOf(values: Values, modelDir: string | null): EngineFlags {
  const dtype = (values.dtype as string | undefined) ?? 'auto';
  if (dtype === 'float16') throw new CliUsageError('--dtype float16 is not supported by the executors yet (use bfloat16 on CUDA, float32 on the CPU)');
  if (modelDir !== null && values['dummy-preset'] !== undefined) {
    throw new CliUsageError('--dummy-preset chooses the shapes when there is no MODEL_DIR; with a MODEL_DIR, --load-format dummy uses its config.json');
  }
  if (modelDir !== null && !existsSync(modelDir)) throw new CliUsageError(`MODEL_DIR '${modelDir}' does not exist`);
  const dummyPreset = values['dummy-preset'] as string | undefined;
  return {
    modelDir,
    // Naming a preset asks for dummy weights.
    loadFormat: dummyPreset !== undefined ? 'dummy' : ((values['load-format'] as 'auto' | 'dummy' | undefined) ?? 'auto'),
    dummyPreset: dummyPreset ?? 'tiny',
    device: values.device as 'cpu' | 'cuda' | undefined,
    dtype: dtype as EngineFlags['dtype'],
    seed: num(values, 'seed') ?? 0,
    maxModelLen: num(values, 'max-model-len'),
    maxNumSeqs: num(values, 'max-num-seqs'),
    maxNumBatchedTokens: num(values, 'max-num-batched-tokens'),
    blockSize: num(values, 'block-size'),
    gpuMemoryUtilization: num(values, 'gpu-memory-utilization'),
    numKvBlocks: num(values, 'num-kv-blocks'),
    detokenizerWorkers: num(values, 'detokenizer-workers'),
    enablePrefixCaching: booleanPairOf(values, 'enable-prefix-caching'),
    asyncScheduling: booleanPairOf(values, 'async-scheduling'),
    chatTemplate: typeof values['chat-template'] === 'string' ? values['chat-template'] : undefined,
    generationConfig: values['generation-config'] as EngineFlags['generationConfig'],
    enforceEager: values['enforce-eager'] === true ? true : undefined,
  };
}

async function serveCommand(args: string[]): Promise<number> {
  const { values, positionals, isHelp } = parseCommandLine(args, SERVE_FLAGS, 1);
  if (isHelp) {
    console.log(`Usage: spindle serve [MODEL_DIR] [FLAGS]\n\nWithout MODEL_DIR: the built-in demo model on the CPU.\n\nFlags:\n${formatFlagHelp(SERVE_FLAGS)}`);
    return 0;
  }
  const flags = engineFlagsOf(values, positionals[0] ?? null);
  const launched = await launchEngine(flags, log);
  const lifecycle = new Lifecycle();
  const servedModelNames = (values['served-model-name'] as string[] | undefined) ?? [launched.defaultServedName];
  const { app, ctx } = createApp({
    engine: launched.engine,
    servedModelNames,
    modelRoot: launched.modelRoot,
    apiKey: (values['api-key'] as string | undefined) ?? null,
    lifecycle,
    cors: {
      allowedOrigins: jsonListOf(values, 'allowed-origins') ?? DEFAULT_CORS.allowedOrigins,
      allowedMethods: jsonListOf(values, 'allowed-methods') ?? DEFAULT_CORS.allowedMethods,
      allowedHeaders: jsonListOf(values, 'allowed-headers') ?? DEFAULT_CORS.allowedHeaders,
      allowCredentials: values['allow-credentials'] === true,
    },
  });
  const server = await listen(app, (values.host as string | undefined) ?? '0.0.0.0', num(values, 'port') ?? 8000, log);
  exitOnSignals({ server, engine: launched.engine, lifecycle, shutdownTimeoutMs: (num(values, 'shutdown-timeout') ?? 30) * 1000, log });
  const config = launched.engine.config;
  log(`model ${servedModelNames.join(', ')}: max_model_len ${config.maxModelLen}, ${launched.engine.stats().numBlocks} KV blocks of ${config.blockSize} tokens, ${config.device} ${config.dtype}`);
  log(`serving at ${server.url} (OpenAI API under ${server.url}/v1)`);
  if (values['disable-log-stats'] !== true) new StatsLogger(launched.engine, ctx.metrics, log).start();
  return -1;
}

async function readPromptsFromStdin(): Promise<string[]> {
  const prompts: string[] = [];
  for await (const line of createInterface({ input: process.stdin })) if (line.trim() !== '') prompts.push(line);
  return prompts;
}

async function generateCommand(args: string[]): Promise<number> {
  const { values, positionals, isHelp } = parseCommandLine(args, GENERATE_FLAGS, 1);
  if (isHelp) {
    console.log(`Usage: spindle generate [MODEL_DIR] [FLAGS]\n\nWithout MODEL_DIR: the built-in demo model on the CPU.\n\nFlags:\n${formatFlagHelp(GENERATE_FLAGS)}`);
    return 0;
  }
  const flags = engineFlagsOf(values, positionals[0] ?? null);
  const prompts = (values.prompt as string[] | undefined) ?? (await readPromptsFromStdin());
  if (prompts.length === 0) throw new CliUsageError('no prompts: give --prompt TEXT or lines on stdin');
  const { engine } = await launchEngine(flags, log);
  try {
    const outputs = await engine.generate(prompts, {
      maxTokens: num(values, 'max-tokens') ?? 64,
      temperature: (values.temperature as number | undefined) ?? 0,
      topP: (values['top-p'] as number | undefined) ?? DEFAULT_SAMPLING_PARAMS.topP,
      topK: num(values, 'top-k') ?? DEFAULT_SAMPLING_PARAMS.topK,
      ignoreEos: values['ignore-eos'] === true,
      // No per-request seed: --seed seeds the engine's stream (as vLLM's LLM(seed=...)), so a
      // rerun reproduces the outputs while duplicate prompts are still sampled independently.
    });
    for (const [i, output] of outputs.entries()) {
      if (values.json === true) {
        console.log(JSON.stringify({ prompt: prompts[i], text: output.text, finish_reason: output.finishReason, num_tokens: output.tokenIds.length }));
      } else {
        console.log(`${prompts[i]}${output.text}`);
      }
    }
  } finally {
    await engine.shutdown(0);
  }
  return 0;
}

async function benchCommand(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || !(BENCHMARKS as readonly string[]).includes(name)) {
    throw new CliUsageError(`bench takes one of: ${BENCHMARKS.join(', ')}`);
  }
  const file = new URL(`../bench/${name}.ts`, import.meta.url);
  if (!existsSync(file)) {
    log(`bench/${name}.ts is not in this checkout (yet): nothing to run`);
    return 1;
  }
  const module = (await import(file.href)) as { run?: (args: string[]) => Promise<unknown> | unknown };
  if (typeof module.run === 'function') {
    await module.run(rest);
    return 0;
  }
  // No exported run(args): the script runs itself when it is the main module, so run it so.
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(file), ...rest], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'generate':
      return generateCommand(rest);
    case 'bench':
      return benchCommand(rest);
    case '--version':
    case '-v':
      console.log(packageVersion());
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE);
      return 0;
    default:
      throw new CliUsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (exitCode) => {
    // -1: a server is running; it exits on SIGTERM/SIGINT.
    if (exitCode >= 0) process.exit(exitCode);
  },
  (err: unknown) => {
    // An option the engine refuses (its message starts with the flag) is bad usage too.
    if (err instanceof CliUsageError || err instanceof EngineConfigError) {
      const command = ['serve', 'generate'].includes(process.argv[2] ?? '') ? `${process.argv[2]} ` : '';
      log(`${err.message}\nRun 'spindle ${command}--help' for usage.`);
      process.exit(2);
    }
    log(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
