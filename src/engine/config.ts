/**
 * Engine options: validated once with zod, resolved against the model and the machine,
 * then frozen. Every error names the option by its vLLM command-line flag, so a CLI user
 * and a library user read the same message.
 */
import { z } from 'zod';
import type { ModelSource, StepTiming } from './types.ts';

/** The vLLM flag of each option, used in every validation message. */
export const OPTION_FLAGS = {
  model: '--model',
  maxModelLen: '--max-model-len',
  maxNumSeqs: '--max-num-seqs',
  maxNumBatchedTokens: '--max-num-batched-tokens',
  blockSize: '--block-size',
  enablePrefixCaching: '--enable-prefix-caching',
  numBlocks: '--num-kv-blocks',
  kvCacheMemoryBytes: '--kv-cache-memory-bytes',
  gpuMemoryUtilization: '--gpu-memory-utilization',
  device: '--device',
  enforceEager: '--enforce-eager',
  asyncScheduling: '--async-scheduling',
  chatTemplate: '--chat-template',
  generationConfig: '--generation-config',
  dtype: '--dtype',
  seed: '--seed',
  detokenizerWorkers: '--detokenizer-workers',
  numThreads: '--num-threads',
  maxLogprobs: '--max-logprobs',
  stepTimingsCapacity: '--step-timings-capacity',
  onStep: 'onStep',
} as const;

type OptionName = keyof typeof OPTION_FLAGS;

const positiveInt = z.number().int().positive();

/** Largest top-N the native sampler returns (kMaxTopLogprobs in native/src/batch_layout.h). */
export const MAX_TOP_LOGPROBS = 20;

const modelSourceSchema = z.custom<ModelSource>(
  (value) =>
    typeof value === 'object' && value !== null && 'config' in value && 'weights' in value && 'tokenizerDir' in value,
  { message: 'must be a model source (loadModelSource(dir) or dummyModelSource(preset, seed))' },
);

const optionsSchema = z.object({
  model: modelSourceSchema,
  /** Longest prompt + output; defaults to the model's max_position_embeddings. */
  maxModelLen: positiveInt.optional(),
  maxNumSeqs: positiveInt.default(256),
  /** Token budget of one step (chunked prefill splits longer prompts). */
  maxNumBatchedTokens: positiveInt.default(8192),
  blockSize: positiveInt
    .refine((n) => n <= 256 && (n & (n - 1)) === 0, { message: 'must be a power of two up to 256' })
    .default(16),
  /** Reuse the KV blocks of a prompt prefix another request already computed (vLLM v1: on). */
  enablePrefixCaching: z.boolean().default(true),
  /** KV cache blocks; unset = from kvCacheMemoryBytes (CPU) or gpuMemoryUtilization (CUDA). */
  numBlocks: positiveInt.optional(),
  /** KV cache budget on the CPU when numBlocks is unset (vLLM's VLLM_CPU_KVCACHE_SPACE: 4 GiB). */
  kvCacheMemoryBytes: positiveInt.default(4 * 1024 ** 3),
  gpuMemoryUtilization: z.number().gt(0).lte(1).default(0.9),
  device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  /** CUDA: launch every kernel one by one instead of replaying decode steps' CUDA graphs. */
  enforceEager: z.boolean().default(false),
  /**
   * Schedule and pack step N+1 while step N runs (step-loop.ts); off: one step at a time, the
   * device idle while the host works between them.
   */
  asyncScheduling: z.boolean().default(true),
  /**
   * vLLM's --chat-template: a Jinja file's path, or the template itself, used instead of the
   * model's own (for a model that has none, or to change it).
   */
  chatTemplate: z.string().min(1).optional(),
  /**
   * vLLM's --generation-config: 'auto' takes the model's generation_config.json sampling
   * defaults (temperature, top_p, top_k, min_p, repetition_penalty, max_new_tokens) for
   * requests that leave them out; 'vllm' ignores them.
   */
  generationConfig: z.enum(['auto', 'vllm']).default('auto'),
  dtype: z.enum(['auto', 'float32', 'bfloat16']).default('auto'),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  detokenizerWorkers: positiveInt.max(64).default(2),
  /** CPU kernel threads; 0 = all cores. */
  numThreads: z.number().int().min(0).default(0),
  maxLogprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).default(MAX_TOP_LOGPROBS),
  stepTimingsCapacity: positiveInt.default(4096),
  /** Called after every step (benchmarks); keep it cheap. */
  onStep: z.custom<(timing: StepTiming) => void>((v) => typeof v === 'function', { message: 'must be a function' }).optional(),
});

export type EngineOptions = z.input<typeof optionsSchema>;

/** What the machine offers, asked once by Engine.create (kept out of here so this stays pure). */
export interface MachineInfo {
  numCudaDevices: number;
  cudaUnavailableReason: string;
}

export interface EngineConfig {
  readonly model: ModelSource;
  readonly maxModelLen: number;
  readonly maxNumSeqs: number;
  readonly maxNumBatchedTokens: number;
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  /** 0 on CUDA without an override: the executor sizes the cache from gpuMemoryUtilization. */
  readonly numBlocks: number;
  readonly gpuMemoryUtilization: number;
  readonly device: 'cpu' | 'cuda';
  readonly enforceEager: boolean;
  readonly asyncScheduling: boolean;
  readonly chatTemplate: string | undefined;
  readonly generationConfig: 'auto' | 'vllm';
  readonly dtype: 'float32' | 'bfloat16';
  readonly seed: number;
  readonly detokenizerWorkers: number;
  readonly numThreads: number;
  readonly maxLogprobs: number;
  readonly stepTimingsCapacity: number;
  readonly onStep: ((timing: StepTiming) => void) | undefined;
}

/** An option the engine refuses at start-up; the message starts with the option's flag. */
export class EngineConfigError extends Error {
  constructor(
    readonly option: OptionName,
    message: string,
  ) {
    super(`${OPTION_FLAGS[option]}: ${message}`);
    this.name = 'EngineConfigError';
  }
}

function isOptionName(key: unknown): key is OptionName {
  return typeof key === 'string' && key in OPTION_FLAGS;
}

/** KV cache bytes of one block on the CPU (float32 keys and values over every layer). */
export function cpuBytesPerBlock(model: ModelSource, blockSize: number): number {
  const c = model.config;
  return 2 * c.numLayers * blockSize * c.numKvHeads * c.headDim * 4;
}

/** Validates `options`, resolves defaults against the model and machine, and freezes the result. */
export function resolveEngineConfig(options: EngineOptions, machine: MachineInfo): EngineConfig {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path[0];
    const option: OptionName = isOptionName(key) ? key : 'model';
    throw new EngineConfigError(option, issue?.message ?? 'invalid');
  }
  const o = parsed.data;
  const modelMaxLen = o.model.maxModelLen;
  const maxModelLen = o.maxModelLen ?? modelMaxLen;
  if (maxModelLen > modelMaxLen) {
    throw new EngineConfigError(
      'maxModelLen',
      `${maxModelLen} is greater than the derived max_model_len (${o.model.maxModelLenSource} in the model's config.json)`,
    );
  }
  if (o.maxNumBatchedTokens < o.maxNumSeqs) {
    throw new EngineConfigError(
      'maxNumBatchedTokens',
      `${o.maxNumBatchedTokens} must be greater than or equal to --max-num-seqs (${o.maxNumSeqs})`,
    );
  }
  const device: 'cpu' | 'cuda' = o.device === 'auto' ? (machine.numCudaDevices > 0 ? 'cuda' : 'cpu') : o.device;
  if (device === 'cuda' && machine.numCudaDevices === 0) {
    throw new EngineConfigError('device', `cuda is not available: ${machine.cudaUnavailableReason || 'no device'}`);
  }
  const dtype = o.dtype === 'auto' ? (device === 'cuda' ? 'bfloat16' : 'float32') : o.dtype;
  if (device === 'cpu' && dtype !== 'float32') {
    throw new EngineConfigError('dtype', `${dtype} is not supported on the CPU (use float32)`);
  }
  const minBlocks = Math.ceil(maxModelLen / o.blockSize);
  let numBlocks = o.numBlocks ?? 0;
  if (o.numBlocks === undefined && device === 'cpu') {
    // No point holding more than every sequence at full length could use.
    const fromMemory = Math.floor(o.kvCacheMemoryBytes / cpuBytesPerBlock(o.model, o.blockSize));
    numBlocks = Math.min(fromMemory, minBlocks * o.maxNumSeqs);
    if (numBlocks < minBlocks) {
      throw new EngineConfigError(
        'kvCacheMemoryBytes',
        `${o.kvCacheMemoryBytes} bytes hold ${fromMemory} blocks, fewer than the ${minBlocks} one sequence of --max-model-len ${maxModelLen} needs`,
      );
    }
  }
  if (numBlocks > 0 && numBlocks < minBlocks) {
    throw new EngineConfigError(
      'numBlocks',
      `${numBlocks} blocks of ${o.blockSize} tokens cannot hold one sequence of --max-model-len ${maxModelLen} (needs ${minBlocks})`,
    );
  }
  return Object.freeze({
    model: o.model,
    maxModelLen,
    maxNumSeqs: o.maxNumSeqs,
    maxNumBatchedTokens: o.maxNumBatchedTokens,
    blockSize: o.blockSize,
    enablePrefixCaching: o.enablePrefixCaching,
    numBlocks,
    gpuMemoryUtilization: o.gpuMemoryUtilization,
    device,
    enforceEager: o.enforceEager,
    asyncScheduling: o.asyncScheduling,
    chatTemplate: o.chatTemplate,
    generationConfig: o.generationConfig,
    dtype,
    seed: o.seed,
    detokenizerWorkers: o.detokenizerWorkers,
    numThreads: o.numThreads,
    maxLogprobs: o.maxLogprobs,
    stepTimingsCapacity: o.stepTimingsCapacity,
    onStep: o.onStep,
  });
}
