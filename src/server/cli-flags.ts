/**
 * The command line's flags, with vLLM's names: one table drives parsing (node:util parseArgs),
 * value checks and --help, so the three cannot drift apart. A bad flag is a CliUsageError
 * (the CLI prints it and exits 2).
 */
import { parseArgs } from 'node:util';

export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

type FlagKind = 'string' | 'int' | 'number' | 'boolean';

export interface FlagSpec {
  kind: FlagKind;
  help: string;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
  /** Smallest allowed value of a number flag; exclusive when minExclusive. */
  min?: number;
  minExclusive?: boolean;
  max?: number;
  /** May be given several times (collected in order). */
  multiple?: boolean;
  /** Shown in --help. */
  defaultText?: string;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

export const ENGINE_FLAGS: FlagTable = {
  'max-model-len': { kind: 'int', min: 1, help: 'Longest prompt + output in tokens', defaultText: "the model's max_position_embeddings" },
  'max-num-seqs': { kind: 'int', min: 1, help: 'Most sequences in one step', defaultText: '256' },
  'max-num-batched-tokens': { kind: 'int', min: 1, help: 'Token budget of one step (longer prompts are chunked)', defaultText: '8192' },
  'block-size': { kind: 'int', min: 1, help: 'Tokens per KV-cache block (a power of two up to 256)', defaultText: '16' },
  'num-kv-blocks': { kind: 'int', min: 1, help: 'KV-cache blocks: sizes the CPU cache; on CUDA overrides the size from --gpu-memory-utilization', defaultText: 'CPU: up to 4 GiB; CUDA: profiled' },
  'gpu-memory-utilization': { kind: 'number', min: 0, minExclusive: true, max: 1, help: 'Fraction of GPU memory for weights + KV cache', defaultText: '0.9' },
  'load-format': { kind: 'string', choices: ['auto', 'dummy'], help: 'auto: read the weights; dummy: random weights of the same shapes', defaultText: 'auto' },
  'dummy-preset': { kind: 'string', help: 'Model shapes for --load-format dummy without MODEL_DIR (tiny, llama-3.1-8b, llama-2-13b, qwen3-8b)', defaultText: 'tiny' },
  dtype: { kind: 'string', choices: ['auto', 'float32', 'bfloat16', 'float16'], help: 'Weight and KV-cache dtype (auto: bfloat16 on CUDA, float32 on the CPU)', defaultText: 'auto' },
  seed: { kind: 'int', min: 0, help: 'Seed of the sampling streams and of dummy weights', defaultText: '0' },
  device: { kind: 'string', choices: ['cpu', 'cuda'], help: 'Where the model runs', defaultText: 'cuda when a GPU is present, else cpu (demo model: cpu)' },
  'enforce-eager': { kind: 'boolean', help: 'CUDA: launch every kernel one by one instead of replaying CUDA graphs of decode steps', defaultText: 'off (graphs on)' },
  'detokenizer-workers': { kind: 'int', min: 1, max: 64, help: 'Worker threads that detokenize in parallel with the step loop', defaultText: '2' },
  // vLLM spells the pair as one argparse BooleanOptionalAction; Node 20's parseArgs has no negation.
  'enable-prefix-caching': { kind: 'boolean', help: 'Reuse the KV blocks of a prompt prefix that an earlier request computed', defaultText: 'on' },
  'no-enable-prefix-caching': { kind: 'boolean', help: 'Turn prefix caching off' },
  'generation-config': { kind: 'string', choices: ['auto', 'vllm'], help: "auto: the model's generation_config.json sets the sampling defaults of requests that leave them out; vllm: vLLM's own defaults", defaultText: 'auto' },
  'chat-template': { kind: 'string', help: "A Jinja chat template (a file's path, or the template itself) used instead of the model's", defaultText: "the model's (chat_template.jinja or tokenizer_config.json)" },
  'async-scheduling': { kind: 'boolean', help: 'Schedule and pack the next step while the current one runs, so the device never waits for the host between steps', defaultText: 'on' },
  'no-async-scheduling': { kind: 'boolean', help: 'One step at a time: the device waits while the host schedules, packs and postprocesses' },
};

export const SERVE_FLAGS: FlagTable = {
  host: { kind: 'string', help: 'Address to listen on', defaultText: '0.0.0.0' },
  port: { kind: 'int', min: 0, max: 65535, help: 'Port to listen on (0: any free port)', defaultText: '8000' },
  'served-model-name': { kind: 'string', multiple: true, help: 'Name(s) the model answers to in `model` (repeat the flag for more)', defaultText: "the model directory's name" },
  'api-key': { kind: 'string', help: 'Require `Authorization: Bearer KEY` on /v1/*', defaultText: 'none' },
  'allowed-origins': { kind: 'string', help: 'CORS: origins allowed, a JSON list as vLLM takes it (e.g. \'["https://a.example"]\')', defaultText: '["*"]' },
  'allowed-methods': { kind: 'string', help: 'CORS: methods allowed, a JSON list', defaultText: '["*"]' },
  'allowed-headers': { kind: 'string', help: 'CORS: request headers allowed, a JSON list', defaultText: '["*"]' },
  'disable-log-stats': { kind: 'boolean', help: 'Do not log the throughput, queue and KV-cache line every 10 s', defaultText: 'logged while busy' },
  'allow-credentials': { kind: 'boolean', help: 'CORS: allow credentials (cookies, Authorization) in cross-origin requests', defaultText: 'off' },
  'shutdown-timeout': { kind: 'number', min: 0, help: 'Seconds a SIGTERM waits for requests in flight before aborting them', defaultText: '30' },
  ...ENGINE_FLAGS,
};

export const GENERATE_FLAGS: FlagTable = {
  prompt: { kind: 'string', multiple: true, help: 'A prompt (repeat for a batch); without any, one prompt per line of stdin' },
  'max-tokens': { kind: 'int', min: 1, help: 'Tokens to generate per prompt', defaultText: '64' },
  temperature: { kind: 'number', min: 0, help: 'Sampling temperature (0: greedy)', defaultText: '0' },
  'top-p': { kind: 'number', min: 0, minExclusive: true, max: 1, help: 'Nucleus sampling mass', defaultText: '1' },
  'top-k': { kind: 'int', min: -1, help: 'Sample among the k most likely tokens (-1/0: off)', defaultText: 'off' },
  'ignore-eos': { kind: 'boolean', help: 'Keep generating past end-of-sequence tokens' },
  json: { kind: 'boolean', help: 'Print one JSON object per prompt instead of plain text' },
  ...ENGINE_FLAGS,
};

/**
 * --NAME / --no-NAME (e.g. --enable-prefix-caching) → the engine option: true, false, or
 * undefined for the engine's default. Giving both is an error.
 */
export function booleanPairOf(values: Readonly<Record<string, FlagValue | undefined>>, name: string): boolean | undefined {
  const isOn = values[name] === true;
  const isOff = values[`no-${name}`] === true;
  if (isOn && isOff) throw new CliUsageError(`--${name} and --no-${name} contradict each other`);
  if (isOn) return true;
  return isOff ? false : undefined;
}

export type FlagValue = string | number | boolean | string[];

export interface ParsedCommandLine {
  values: Record<string, FlagValue | undefined>;
  positionals: string[];
  isHelp: boolean;
}

function convert(name: string, spec: FlagSpec, raw: string): string | number {
  if (spec.kind === 'string') {
    if (spec.choices && !spec.choices.includes(raw)) throw new CliUsageError(`--${name}: '${raw}' is not one of ${spec.choices.join(', ')}`);
    return raw;
  }
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new CliUsageError(`--${name}: '${raw}' is not a number`);
  if (spec.kind === 'int' && !Number.isInteger(value)) throw new CliUsageError(`--${name}: '${raw}' is not an integer`);
  if (spec.min !== undefined && (spec.minExclusive ? value <= spec.min : value < spec.min)) {
    throw new CliUsageError(`--${name}: ${raw} must be ${spec.minExclusive ? 'greater than' : 'at least'} ${spec.min}`);
  }
  if (spec.max !== undefined && value > spec.max) throw new CliUsageError(`--${name}: ${raw} must be at most ${spec.max}`);
  return value;
}

/** Parses `args` against `table` (plus --help); unknown flags and bad values throw CliUsageError. */
export function parseCommandLine(args: string[], table: FlagTable, maxPositionals: number): ParsedCommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(table)) {
    options[name] = { type: spec.kind === 'boolean' ? 'boolean' : 'string', ...(spec.multiple ? { multiple: true } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliUsageError(err instanceof Error ? err.message : String(err));
  }
  const isHelp = parsed.values.help === true;
  if (!isHelp && parsed.positionals.length > maxPositionals) {
    throw new CliUsageError(`unexpected argument(s): ${parsed.positionals.slice(maxPositionals).join(' ')}`);
  }
  const values: Record<string, FlagValue | undefined> = {};
  for (const [name, spec] of Object.entries(table)) {
    const raw = parsed.values[name];
    if (raw === undefined || typeof raw === 'boolean') values[name] = raw;
    else if (Array.isArray(raw)) values[name] = raw.map((item) => String(convert(name, spec, String(item))));
    else values[name] = convert(name, spec, raw);
  }
  return { values, positionals: parsed.positionals, isHelp };
}

/** The flags part of --help, one flag per line. */
export function formatFlagHelp(table: FlagTable): string {
  const rows = Object.entries(table).map(([name, spec]) => {
    const meta = spec.kind === 'boolean' ? '' : spec.choices ? ` {${spec.choices.join(',')}}` : ` ${spec.kind === 'string' ? 'TEXT' : 'N'}`;
    const defaultText = spec.defaultText ? ` (default: ${spec.defaultText})` : '';
    return [`  --${name}${meta}`, `${spec.help}${defaultText}`];
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `${left.padEnd(width)}${right}`).join('\n');
}

/** A CORS list flag: a JSON list of strings, as vLLM parses it; undefined when not given. */
export function jsonListOf(values: Readonly<Record<string, FlagValue | undefined>>, name: string): string[] | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(raw));
  } catch {
    throw new CliUsageError(`--${name}: '${String(raw)}' is not a JSON list (e.g. '["*"]')`);
  }
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new CliUsageError(`--${name}: '${String(raw)}' must be a JSON list of strings`);
  }
  return parsed;
}
