/**
 * Options of the serving benchmark: vLLM's `vllm bench serve` flag names where it has them,
 * Spindle's engine flags for the in-process server, parsed with node:util parseArgs and
 * validated once with zod so that every error names its flag.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { checkModelChoice, modelChoiceFields } from '../lib/model-choice.ts';
import { DEFAULT_DATASET } from '../throughput/options.ts';

const positiveInt = z.coerce.number().int().positive();

/** A rate in requests/s, or `inf` (every request at t = 0): vLLM's --request-rate. */
const requestRate = z
  // z.number() refuses Infinity, which resolved options hold for `inf`: any number passes here.
  .union([z.custom<number>((value) => typeof value === 'number'), z.string()])
  .transform((value, ctx) => {
    if (value === 'inf' || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
    const rate = typeof value === 'number' ? value : Number(value.trim() === '' ? Number.NaN : value);
    if (!Number.isFinite(rate) || rate <= 0) {
      ctx.addIssue({ code: 'custom', message: `expected requests/s > 0 or inf, got '${value}'` });
      return z.NEVER;
    }
    return rate;
  });

/** "99" or "50,90,99": the percentiles reported besides mean and median (vLLM's --metric-percentiles). */
const percentileList = z
  .union([z.string(), z.array(z.number())])
  .transform((value, ctx) => {
    const parts = typeof value === 'string' ? value.split(',').map((part) => Number(part.trim())) : value;
    if (parts.length === 0 || parts.some((p) => !Number.isFinite(p) || p <= 0 || p > 100)) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of percentiles in (0, 100], got '${String(value)}'` });
      return z.NEVER;
    }
    return parts;
  });

/** Engine flags: only meaningful when the benchmark starts Spindle itself (no --base-url). */
export const ENGINE_ONLY_FLAGS = [
  'device', 'dtype', 'maxNumSeqs', 'maxNumBatchedTokens', 'gpuMemoryUtilization', 'numKvBlocks', 'blockSize',
  'maxModelLen', 'detokenizerWorkers', 'numThreads', 'enforceEager', 'asyncScheduling',
] as const;

export const servingOptionsSchema = z
  .object({
    /** A running OpenAI-compatible server; unset: start Spindle in this process. */
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    endpoint: z.enum(['/v1/completions', '/v1/chat/completions']).default('/v1/completions'),
    /** The `model` field of the requests; default: the first model GET /v1/models lists. */
    servedModelName: z.string().min(1).optional(),
    /** Bearer token; default: $OPENAI_API_KEY as vLLM's client (never written to the results). */
    apiKey: z.string().optional(),
    /** Tokenizer directory for selecting prompts against --base-url (default: --model's, --preset's). */
    tokenizer: z.string().optional(),

    dataset: z.string().default(DEFAULT_DATASET),
    numPrompts: positiveInt.default(1000),
    randomInputLen: positiveInt.optional(),
    randomOutputLen: positiveInt.optional(),
    seed: z.coerce.number().int().min(0).default(0),
    requestRate: requestRate.default(Number.POSITIVE_INFINITY),
    maxConcurrency: positiveInt.optional(),
    /** Untimed copies of the first request sent after the readiness check (vLLM's --num-warmups). */
    numWarmups: z.coerce.number().int().min(0).default(0),
    metricPercentiles: percentileList.default([99]),
    /** Default bench/results/serving-<device or "external">-<model>.json. */
    outputJson: z.string().optional(),
    progress: z.boolean().default(true),

    ...modelChoiceFields,
    device: z.enum(['auto', 'cpu', 'cuda']).optional(),
    dtype: z.enum(['auto', 'float32', 'bfloat16']).optional(),
    maxNumSeqs: positiveInt.optional(),
    maxNumBatchedTokens: positiveInt.optional(),
    gpuMemoryUtilization: z.coerce.number().gt(0).lte(1).optional(),
    numKvBlocks: positiveInt.optional(),
    blockSize: positiveInt.optional(),
    maxModelLen: positiveInt.optional(),
    detokenizerWorkers: positiveInt.optional(),
    numThreads: z.coerce.number().int().min(0).optional(),
    enforceEager: z.boolean().optional(),
    asyncScheduling: z.boolean().optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.randomInputLen === undefined) !== (o.randomOutputLen === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['randomInputLen'], message: '--random-input-len and --random-output-len go together (random mode)' });
    }
    if (o.endpoint === '/v1/chat/completions' && o.randomInputLen !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'random prompts are token ids, which only /v1/completions takes' });
    }
    if (o.baseUrl !== undefined) {
      for (const key of ENGINE_ONLY_FLAGS) {
        if (o[key] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [key], message: 'an engine flag: with --base-url the server is already running with its own' });
        }
      }
      if (o.tokenizer === undefined && o.model === undefined && o.preset === undefined) {
        ctx.addIssue({ code: 'custom', path: ['tokenizer'], message: "the served model's tokenizer is needed to pick prompts: give --tokenizer DIR, --model DIR or --preset NAME" });
      }
      return;
    }
    if (o.tokenizer !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tokenizer'], message: 'only with --base-url: the in-process server uses its model\'s tokenizer' });
    }
    checkModelChoice(o, ctx, ', or --base-url URL of a running server');
  });

export type ServingOptions = z.output<typeof servingOptionsSchema>;
export type ServingOptionsInput = z.input<typeof servingOptionsSchema>;

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The flag that sets an option: booleans that default on are set by their --no- flag. */
function flagOf(key: string): string {
  return key === 'asyncScheduling' || key === 'progress' ? `--no-${kebab(key)}` : `--${kebab(key)}`;
}

/** Validates options; the error names the flag. */
export function resolveServingOptions(input: ServingOptionsInput): ServingOptions {
  const parsed = servingOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new Error(`${key ? `${flagOf(key)}: ` : ''}${issue?.message ?? 'invalid options'}`);
  }
  return parsed.data;
}

/** The options as the results file records them: no API key, `inf` spelled out (JSON has no Infinity). */
export function recordedOptions(o: ServingOptions): Omit<ServingOptions, 'apiKey' | 'requestRate'> & { requestRate: number | 'inf' } {
  const { apiKey: _apiKey, requestRate, ...rest } = o;
  return { ...rest, requestRate: requestRate === Number.POSITIVE_INFINITY ? 'inf' : requestRate };
}

const STRING_FLAGS = [
  'baseUrl', 'endpoint', 'servedModelName', 'apiKey', 'tokenizer', 'dataset', 'numPrompts', 'randomInputLen',
  'randomOutputLen', 'seed', 'requestRate', 'maxConcurrency', 'numWarmups', 'metricPercentiles', 'outputJson',
  'model', 'loadFormat', 'preset', 'device', 'dtype', 'maxNumSeqs', 'maxNumBatchedTokens', 'gpuMemoryUtilization',
  'numKvBlocks', 'blockSize', 'maxModelLen', 'detokenizerWorkers', 'numThreads',
] as const;

export const USAGE = `usage: tsx bench/serving.ts [--base-url URL | --model DIR | --load-format dummy --preset NAME] [options]
  server     --base-url URL (a running OpenAI-compatible server; default: Spindle in this process)
             --endpoint /v1/completions|/v1/chat/completions --served-model-name NAME
             --api-key KEY (default $OPENAI_API_KEY) --tokenizer DIR (with --base-url)
  workload   --dataset PATH (default ${DEFAULT_DATASET}) --num-prompts N (1000) --seed N (0)
             --random-input-len N --random-output-len N   (random prompts instead of ShareGPT)
  traffic    --request-rate R|inf (inf) --max-concurrency N --num-warmups N (0)
  engine     --device auto|cpu|cuda --dtype auto|float32|bfloat16 --max-num-seqs N
             --max-num-batched-tokens N --gpu-memory-utilization F --num-kv-blocks N --block-size N
             --max-model-len N --detokenizer-workers N --num-threads N --enforce-eager
             --no-async-scheduling   (in-process server only)
  outputs    --output-json PATH --metric-percentiles 50,90,99 (99) --no-progress`;

/** Parses argv (without node and the script); returns null for --help. */
export function parseServingArgs(argv: string[]): ServingOptions | null {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    help: { type: 'boolean' },
    'no-progress': { type: 'boolean' },
    'enforce-eager': { type: 'boolean' },
    'no-async-scheduling': { type: 'boolean' },
  };
  for (const name of STRING_FLAGS) options[kebab(name)] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  if (values.help) return null;
  const input: Record<string, unknown> = { progress: !values['no-progress'] };
  // Only flags given are set, so that --base-url can refuse engine flags it would ignore.
  if (values['enforce-eager'] === true) input.enforceEager = true;
  if (values['no-async-scheduling'] === true) input.asyncScheduling = false;
  for (const name of STRING_FLAGS) {
    const value = values[kebab(name)];
    if (value !== undefined) input[name] = value;
  }
  return resolveServingOptions(input as ServingOptionsInput);
}
