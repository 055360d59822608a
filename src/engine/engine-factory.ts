/**
 * Builds what an Engine runs on from its options: the model source (a directory is loaded
 * with loadModelSource), the validated config, the native executor, the tokenizer pool
 * and the chat template. On any failure, what was already started is closed again.
 */
import { TokenizerPool } from '../workers/pool.ts';
import { EngineConfigError, resolveEngineConfig, type EngineOptions } from './config.ts';
import type { EngineParts } from './engine.ts';
import { loadModelSource } from './model-loader.ts';
import { loadNative, type NativeExecutor } from './native.ts';
import { readChatTemplate } from './tokenizer-config.ts';

/** EngineOptions, where `model` may also be a Hugging Face model directory. */
export type CreateEngineOptions = EngineOptions | (Omit<EngineOptions, 'model'> & { model: string });

export async function createEngineParts(options: CreateEngineOptions): Promise<EngineParts> {
  const native = loadNative();
  const model = typeof options.model === 'string' ? await loadModelSource(options.model) : options.model;
  const config = resolveEngineConfig(
    { ...options, model },
    { numCudaDevices: native.cudaDeviceCount(), cudaUnavailableReason: native.cudaUnavailableReason() },
  );
  // Read (and parsed) before the executor loads the weights: a broken template fails start-up fast.
  const chatTemplate = await readChatTemplate(model.tokenizerDir, config.chatTemplate);
  const executor: NativeExecutor = new native.Executor({
    device: config.device,
    dtype: config.dtype,
    model: model.config,
    weights: model.weights,
    blockSize: config.blockSize,
    numBlocks: config.numBlocks,
    gpuMemoryUtilization: config.gpuMemoryUtilization,
    maxNumSeqs: config.maxNumSeqs,
    maxNumBatchedTokens: config.maxNumBatchedTokens,
    numThreads: config.numThreads,
    enforceEager: config.enforceEager,
  });
  let pool: TokenizerPool | null = null;
  try {
    const minBlocks = Math.ceil(config.maxModelLen / config.blockSize);
    if (executor.numBlocks < minBlocks) {
      const option = config.device === 'cuda' && config.numBlocks === 0 ? 'gpuMemoryUtilization' : 'numBlocks';
      throw new EngineConfigError(
        option,
        `the KV cache has ${executor.numBlocks} blocks of ${config.blockSize} tokens, fewer than the ${minBlocks} one sequence of ` +
          `--max-model-len ${config.maxModelLen} needs (raise the cache size or lower --max-model-len)`,
      );
    }
    pool = new TokenizerPool({ tokenizerDir: model.tokenizerDir, numWorkers: config.detokenizerWorkers });
    await pool.warmup();
    return { config, executor, pool, chatTemplate };
  } catch (err) {
    executor.close();
    await pool?.close();
    throw err;
  }
}
