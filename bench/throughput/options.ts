/**
 * Options of the throughput benchmark: vLLM's benchmark_throughput.py flag names, parsed
 * from the command line (node:util parseArgs) and validated once with zod.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { checkModelChoice, modelChoiceFields } from '../lib/model-choice.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The shared data folder sits beside the repository (here and, via .device/env.sh, on the GPU machine). */
export const DEFAULT_DATASET = path.resolve(repoRoot, '../shared/data/sharegpt.jsonl');

const positiveInt = z.coerce.number().int().positive();

export const throughputOptionsSchema = z
  .object({
    dataset: z.string().default(DEFAULT_DATASET),
    numPrompts: positiveInt.default(1000),
    seed: z.coerce.number().int().min(0).default(0),
    /** Random mode: both set = prompts of inputLen random ids, outputLen tokens each. */
    inputLen: positiveInt.optional(),
    outputLen: positiveInt.optional(),
    ...modelChoiceFields,
    device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
    dtype: z.enum(['auto', 'float32', 'bfloat16']).default('auto'),
    maxNumSeqs: positiveInt.optional(),
    maxNumBatchedTokens: positiveInt.optional(),
    gpuMemoryUtilization: z.coerce.number().gt(0).lte(1).optional(),
    numKvBlocks: positiveInt.optional(),
    blockSize: positiveInt.optional(),
    maxModelLen: positiveInt.optional(),
    detokenizerWorkers: positiveInt.optional(),
    numThreads: z.coerce.number().int().min(0).optional(),
    /** Requests of the untimed warm-up (4 tokens each) that runs before the timed run. */
    numWarmupPrompts: z.coerce.number().int().min(0).default(8),
    /** Measured ceilings from bench/floor.py; no floor is computed without them. */
    floor: z.string().optional(),
    /** Where to write the result JSON; the SVG goes beside it. Default bench/results/throughput-<device>-<model>.json. */
    outputJson: z.string().optional(),
    /** Where to write the selected requests for bench/hf_baseline.py. */
    requestsOut: z.string().optional(),
    /** Show a progress bar (only when stderr is a terminal). */
    progress: z.boolean().default(true),
    /** CUDA: no decode graphs (vLLM's --enforce-eager), to measure what they save. */
    enforceEager: z.boolean().default(false),
    /** Plan step N+1 while step N runs (the engine's default); false to measure what it hides. */
    asyncScheduling: z.boolean().default(true),
  })
  .superRefine((o, ctx) => {
    if ((o.inputLen === undefined) !== (o.outputLen === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['inputLen'], message: '--input-len and --output-len go together (random mode)' });
    }
    checkModelChoice(o, ctx);
  });

export type ThroughputOptions = z.output<typeof throughputOptionsSchema>;
export type ThroughputOptionsInput = z.input<typeof throughputOptionsSchema>;

/** Validates options; the error names the flag. */
export function resolveThroughputOptions(input: ThroughputOptionsInput): ThroughputOptions {
  const parsed = throughputOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new Error(`${key ? `--${kebab(key)}: ` : ''}${issue?.message ?? 'invalid options'}`);
  }
  return parsed.data;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

const STRING_FLAGS = [
  'dataset', 'numPrompts', 'seed', 'inputLen', 'outputLen', 'model', 'loadFormat', 'preset', 'device', 'dtype',
  'maxNumSeqs', 'maxNumBatchedTokens', 'gpuMemoryUtilization', 'numKvBlocks', 'blockSize', 'maxModelLen',
  'detokenizerWorkers', 'numThreads', 'numWarmupPrompts', 'floor', 'outputJson', 'requestsOut',
] as const;

export const USAGE = `usage: tsx bench/throughput.ts [--model DIR | --load-format dummy --preset NAME] [options]
  workload   --dataset PATH (default ${DEFAULT_DATASET}) --num-prompts N (1000) --seed N (0)
             --input-len N --output-len N   (random prompts instead of ShareGPT)
  engine     --device auto|cpu|cuda --dtype auto|float32|bfloat16 --max-num-seqs N
             --max-num-batched-tokens N --gpu-memory-utilization F --num-kv-blocks N --block-size N
             --max-model-len N --detokenizer-workers N --num-threads N --enforce-eager
             --no-async-scheduling
  outputs    --output-json PATH (SVG beside it) --requests-out PATH (for bench/hf_baseline.py)
             --floor PATH (ceilings from bench/floor.py) --num-warmup-prompts N (8) --no-progress
  compare    tsx bench/throughput.ts --compare SPINDLE.json HF.json`;

/** Parses argv (without node and the script); returns null for --help. */
export function parseThroughputArgs(argv: string[]): ThroughputOptions | null {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    help: { type: 'boolean' },
    'no-progress': { type: 'boolean' },
    'enforce-eager': { type: 'boolean' },
    'no-async-scheduling': { type: 'boolean' },
  };
  for (const name of STRING_FLAGS) options[kebab(name)] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  if (values.help) return null;
  const input: Record<string, unknown> = {
    progress: !values['no-progress'],
    enforceEager: values['enforce-eager'] === true,
    asyncScheduling: !values['no-async-scheduling'],
  };
  for (const name of STRING_FLAGS) {
    const value = values[kebab(name)];
    if (value !== undefined) input[name] = value;
  }
  return resolveThroughputOptions(input as ThroughputOptionsInput);
}
