/**
 * From the benchmark's flags to the engine's options: the model source (a HF directory, or a
 * preset with dummy weights) and the passthrough flags, left unset where the engine's own
 * defaults should apply.
 */
import { Engine } from '../../src/engine/engine.ts';
import type { CreateEngineOptions } from '../../src/engine/engine-factory.ts';
import { dummyModelSource, loadModelSource } from '../../src/engine/model-loader.ts';
import type { ModelSource } from '../../src/engine/types.ts';
import type { ThroughputOptions } from './options.ts';

export { Engine };
export type EngineOptionsForBench = Omit<CreateEngineOptions, 'onStep' | 'model'> & { model: ModelSource };

/** The flags both benchmarks that start an engine take (throughput's options; serving's with defaults filled). */
export type EngineBenchFlags = Pick<
  ThroughputOptions,
  | 'model' | 'loadFormat' | 'preset' | 'device' | 'dtype' | 'seed' | 'enforceEager' | 'asyncScheduling' | 'maxNumSeqs'
  | 'maxNumBatchedTokens' | 'gpuMemoryUtilization' | 'numKvBlocks' | 'blockSize' | 'maxModelLen' | 'detokenizerWorkers' | 'numThreads'
>;

/** Seed of the dummy weights (vLLM's dummy loader is seeded too). */
const DUMMY_WEIGHTS_SEED = 0;

export async function modelSourceFor(o: Pick<EngineBenchFlags, 'model' | 'loadFormat' | 'preset'>): Promise<ModelSource> {
  if (o.loadFormat === 'dummy') return dummyModelSource(o.preset ?? '', DUMMY_WEIGHTS_SEED);
  return loadModelSource(o.model ?? '');
}

export function engineOptionsFor(o: EngineBenchFlags, model: ModelSource): EngineOptionsForBench {
  const options: EngineOptionsForBench = {
    model, device: o.device, dtype: o.dtype, seed: o.seed, enforceEager: o.enforceEager, asyncScheduling: o.asyncScheduling,
  };
  if (o.maxNumSeqs !== undefined) options.maxNumSeqs = o.maxNumSeqs;
  if (o.maxNumBatchedTokens !== undefined) options.maxNumBatchedTokens = o.maxNumBatchedTokens;
  if (o.gpuMemoryUtilization !== undefined) options.gpuMemoryUtilization = o.gpuMemoryUtilization;
  if (o.numKvBlocks !== undefined) options.numBlocks = o.numKvBlocks;
  if (o.blockSize !== undefined) options.blockSize = o.blockSize;
  if (o.maxModelLen !== undefined) options.maxModelLen = o.maxModelLen;
  if (o.detokenizerWorkers !== undefined) options.detokenizerWorkers = o.detokenizerWorkers;
  if (o.numThreads !== undefined) options.numThreads = o.numThreads;
  return options;
}
