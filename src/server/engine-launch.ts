/**
 * From the command line's engine flags to a running Engine: picks the model (a directory, vLLM's
 * dummy weights, or the built-in demo model) and the device, and logs what it loads.
 */
import { Engine } from '../engine/engine.ts';
import type { EngineOptions } from '../engine/config.ts';
import { dummyModelSource, loadModelSource } from '../engine/model-loader.ts';
import { loadNative } from '../engine/native.ts';
import type { ModelSource } from '../engine/types.ts';
import { DEMO_MODEL_NAME, ensureDemoModel } from './demo-model.ts';

export interface EngineFlags {
  /** null: --load-format dummy with a preset, or the demo model. */
  modelDir: string | null;
  loadFormat: 'auto' | 'dummy';
  /** Preset for --load-format dummy without a directory (src/engine/presets.ts). */
  dummyPreset: string;
  /** undefined: CUDA when a device is present, else the CPU (the demo model: the CPU). */
  device: 'cpu' | 'cuda' | undefined;
  dtype: 'auto' | 'float32' | 'bfloat16';
  seed: number;
  maxModelLen?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  blockSize?: number;
  gpuMemoryUtilization?: number;
  /** KV cache blocks (--num-kv-blocks); sizes the CPU cache, overrides the GPU's profile. */
  numKvBlocks?: number;
  detokenizerWorkers?: number;
  /** undefined: the engine's default (on, as in vLLM v1). */
  enablePrefixCaching?: boolean;
  enforceEager?: boolean;
  /** undefined: the engine's default (on). */
  asyncScheduling?: boolean;
  /** --chat-template: a file's path or the template itself; undefined: the model's own. */
  chatTemplate?: string;
  /** --generation-config; undefined: the engine's default ('auto'). */
  generationConfig?: 'auto' | 'vllm';
}

export interface LaunchedEngine {
  engine: Engine;
  /** What /v1/models reports as `root`: the model directory or the preset's name. */
  modelRoot: string;
  /** The name served when --served-model-name is not given. */
  defaultServedName: string;
}

/**
 * What is about to load, for the log line. There is no progress bar: the executor reads the
 * weight files itself, and reading them beforehand only to show progress would read them twice.
 */
function describeWeights(source: ModelSource): string {
  if (source.weights.kind === 'dummy') return 'random weights';
  const files = new Set(source.weights.tensors.map((tensor) => tensor.file));
  const numBytes = source.weights.tensors.reduce((sum, tensor) => sum + tensor.byteLength, 0);
  return `${files.size} weight file${files.size === 1 ? '' : 's'}, ${(numBytes / 2 ** 20).toFixed(1)} MiB`;
}

async function pickModel(flags: EngineFlags, log: (line: string) => void): Promise<{ source: ModelSource; isDemo: boolean }> {
  if (flags.modelDir === null && flags.loadFormat === 'dummy') {
    return { source: dummyModelSource(flags.dummyPreset, flags.seed), isDemo: false };
  }
  const isDemo = flags.modelDir === null;
  const dir = flags.modelDir ?? ensureDemoModel(log);
  const source = await loadModelSource(dir, { onNote: (note) => log(`note: ${note}`) });
  if (flags.loadFormat === 'dummy') {
    // vLLM's dummy format: the directory's shapes and tokenizer, random weights.
    return { source: { ...source, weights: { kind: 'dummy', seed: flags.seed } }, isDemo };
  }
  return { source, isDemo };
}

function pickDevice(flags: EngineFlags, isDemo: boolean): 'cpu' | 'cuda' {
  if (flags.device !== undefined) return flags.device;
  if (isDemo) return 'cpu';
  return loadNative().cudaDeviceCount() > 0 ? 'cuda' : 'cpu';
}

export async function launchEngine(flags: EngineFlags, log: (line: string) => void): Promise<LaunchedEngine> {
  const { source, isDemo } = await pickModel(flags, log);
  const device = pickDevice(flags, isDemo);
  const options: EngineOptions = {
    model: source,
    device,
    dtype: flags.dtype,
    seed: flags.seed,
    maxModelLen: flags.maxModelLen,
    maxNumSeqs: flags.maxNumSeqs,
    maxNumBatchedTokens: flags.maxNumBatchedTokens,
    blockSize: flags.blockSize,
    gpuMemoryUtilization: flags.gpuMemoryUtilization,
    numBlocks: flags.numKvBlocks,
    detokenizerWorkers: flags.detokenizerWorkers,
    enablePrefixCaching: flags.enablePrefixCaching,
    enforceEager: flags.enforceEager,
    asyncScheduling: flags.asyncScheduling,
    chatTemplate: flags.chatTemplate,
    generationConfig: flags.generationConfig,
  };
  log(`loading ${isDemo ? 'the demo model' : source.name} on ${device}: ${describeWeights(source)}`);
  const engine = await Engine.create(options);
  const defaults = Object.entries(engine.samplingDefaults);
  if (defaults.length > 0) {
    // As vLLM warns: requests without these fields do not get vLLM's (or OpenAI's) defaults.
    log(`sampling defaults from the model's generation_config.json: ${defaults.map(([k, v]) => `${k} ${v}`).join(', ')} (--generation-config vllm to ignore them)`);
  }
  return {
    engine,
    modelRoot: source.dir ?? source.name,
    defaultServedName: isDemo ? DEMO_MODEL_NAME : source.name,
  };
}
