/**
 * The only importer of the native addon (native/build/Release/spindle_native.node),
 * with the TypeScript shape of what it exports. Everything else imports from here.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Model hyper-parameters after config.json is validated (src/engine/model-config.ts). */
export interface NativeModelConfig {
  /** Llama and Mistral share 'llama'; Qwen2 adds q/k/v bias; Qwen3 adds q/k RMSNorm. */
  family: 'llama' | 'qwen2' | 'qwen3';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Llama 3.1 frequency scaling; null = plain RoPE. */
  ropeScaling: { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number } | null;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2). */
  attentionBias: boolean;
  /** RMSNorm over each head of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
}

/** One tensor of a safetensors file, located and shape-checked by src/engine/weights.ts. */
export interface NativeTensorSource {
  /** Hugging Face name, e.g. 'model.layers.0.self_attn.q_proj.weight'. */
  name: string;
  /** Absolute path of the .safetensors file. */
  file: string;
  dtype: 'F32' | 'BF16' | 'F16';
  shape: number[];
  /** Absolute byte offset of the data in the file (8 + header length + data_offsets[0]). */
  byteOffset: number;
  byteLength: number;
}

export type NativeWeights =
  | { kind: 'safetensors'; tensors: NativeTensorSource[] }
  /** vLLM's --load-format dummy: seeded random values, no files read. */
  | { kind: 'dummy'; seed: number };

export interface NativeExecutorOptions {
  device: 'cpu' | 'cuda';
  /** Compute/storage dtype of weights and KV cache. The CPU backend computes in float32. */
  dtype: 'float32' | 'bfloat16';
  model: NativeModelConfig;
  weights: NativeWeights;
  blockSize: number;
  /**
   * KV cache blocks; 0 on CUDA = size from gpuMemoryUtilization after a profiling step; 0 on the
   * CPU = at most 4 GiB of cache, and no more than maxNumSeqs full-length sequences need.
   */
  numBlocks: number;
  gpuMemoryUtilization: number;
  /** Largest batch the engine will send (sizes scratch buffers and CUDA graphs). */
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** CPU threads for kernels; 0 = all cores. */
  numThreads: number;
  /** CUDA: no graphs, every kernel launched one by one (vLLM's --enforce-eager); default false. */
  enforceEager?: boolean;
}

export interface NativeExecutor {
  /**
   * Runs one step off the JS thread; resolves with the packed step result (batch-layout.ts).
   * The batch is copied at the call. Steps run in call order; a second may be handed over
   * while one runs (it starts when that one ends, its pending tokens filled in), a third is
   * refused.
   */
  step(batch: ArrayBuffer): Promise<ArrayBuffer>;
  /** Blocks in the KV cache (as sized on load). */
  readonly numBlocks: number;
  readonly device: 'cpu' | 'cuda';
  /** Human-readable device name, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu (16 threads)'. */
  readonly deviceName: string;
  /** Frees device memory and threads; later calls throw. */
  close(): void;
}

/**
 * Test-only: the CPU backend's routines on plain arrays, so each is checked against a float64
 * reference (test/native/cpu-kernels.test.ts). Shapes as in native/src/cpu/kernels.h.
 */
export interface NativeCpuKernels {
  /** y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]). */
  matMulTransB(x: Float32Array, w: Float32Array, bias: Float32Array | null, m: number, n: number, k: number, numThreads: number): Float32Array;
  /** RMSNorm of each row of x[rows, dim]. */
  rmsNorm(x: Float32Array, weight: Float32Array, eps: number, rows: number, dim: number, numThreads: number): Float32Array;
  /** RoPE (rotate_half) of x[tokens, heads, headDim]; llama3 = [factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings]. */
  rope(x: Float32Array, positions: Int32Array, heads: number, headDim: number, ropeTheta: number, llama3: Float32Array | null, numThreads: number): Float32Array;
  /** silu(gate) * up, elementwise. */
  siluMul(gate: Float32Array, up: Float32Array, numThreads: number): Float32Array;
  /**
   * Causal attention over a paged cache: q[tokens, heads, headDim], caches [numBlocks, blockSize,
   * kvHeads, headDim]; dims = [numHeads, numKvHeads, headDim, blockSize, maxBlocksPerSeq, numBlocks].
   */
  pagedAttention(q: Float32Array, kCache: Float32Array, vCache: Float32Array, tokenSeq: Int32Array, contextLens: Int32Array, blockTables: Int32Array, dims: Int32Array, numThreads: number): Float32Array;
  /**
   * The batched sampler on given logits: row s of logits[numSeqs, vocab] is sampled for sequence s
   * of the packed batch; returns the step result (batch-layout.ts, no logits section).
   * `reference`: the plain full-vocabulary sampler that the fast one must match draw for draw.
   */
  sample(batch: ArrayBuffer, logits: Float32Array, vocab: number, numThreads: number, reference: boolean): ArrayBuffer;
  /** Rows the fast sampler has handed to the reference in this process (non-finite logits, top_p too close to call). */
  samplerRowsToReference(): number;
  /** GumbelNoise(key, i) for i < count (sampling_math.h): the noise both samplers add to logit i. */
  gumbelNoise(keyLo: number, keyHi: number, count: number): Float32Array;
  /**
   * Over the noise's 32-bit inputs [firstBits, firstBits + count): how many exceed the bound the
   * sampler skips ids by (must be 0), the smallest margin, and mismatches of Mix64Top31.
   */
  samplerNoiseBoundCheck(firstBits: number, count: number): { violations: number; minSlack: number; mixMismatches: number };
  /** Largest relative error of the sampler's exp against std::exp over count points of [lo, hi]. */
  samplerExpError(lo: number, hi: number, count: number): number;
}

export interface NativeBinding {
  Executor: new (options: NativeExecutorOptions) => NativeExecutor;
  /** Test-only entry points of the CPU routines. */
  cpuKernels: NativeCpuKernels;
  /** Number of usable CUDA devices; 0 when the addon was built without CUDA or none is present. */
  cudaDeviceCount(): number;
  /** Why CUDA is unavailable ('' when it is available): shown in skipped tests and logs. */
  cudaUnavailableReason(): string;
  /** Test-only: the packed batch the CUDA backend steps once to size its KV cache. */
  packProfileBatchForTest(numTokens: number, blockSize: number, vocabSize: number): ArrayBuffer;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// SPINDLE_NATIVE_ADDON points at another build of the addon (e.g. a CPU-only build made with
// `cmake-js compile --directory native --out <dir> --CDSPINDLE_CUDA=OFF`).
const addonPath = process.env.SPINDLE_NATIVE_ADDON ?? path.resolve(here, '../../native/build/Release/spindle_native.node');

let cached: NativeBinding | undefined;

/** Loads the addon once; throws an Error that says how to build it when it is missing. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  try {
    cached = createRequire(import.meta.url)(addonPath) as NativeBinding;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot load the native addon at ${addonPath} (run 'npm run build:native'): ${reason}`);
  }
  return cached;
}
