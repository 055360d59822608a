/**
 * Without --base-url the benchmark serves Spindle itself, in this process, on 127.0.0.1 and a
 * free port: the engine and the HTTP app `spindle serve` would run, built from the same flags
 * as the throughput benchmark's engine.
 *
 * The client then shares the event loop with the engine's step loop, so a chunk's arrival can be
 * stamped up to one step's JavaScript work late (the dispatch lag in the report shows how late
 * sends were). For figures to compare with vLLM's, run `spindle serve` as its own process and
 * point --base-url at it, as vLLM's benchmark runs beside `vllm serve`.
 */
import { Engine } from '../../src/engine/engine.ts';
import type { NativeModelConfig } from '../../src/engine/native.ts';
import type { ModelSource } from '../../src/engine/types.ts';
import { createApp } from '../../src/server/app.ts';
import { listen } from '../../src/server/serve.ts';
import { engineOptionsFor, type EngineBenchFlags } from '../throughput/engine-options.ts';

/** What the results file records of the server the benchmark started. */
export interface InProcessEngineInfo {
  model: { name: string; isDummy: boolean; config: NativeModelConfig };
  device: 'cpu' | 'cuda';
  dtype: 'float32' | 'bfloat16';
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number;
  blockSize: number;
  numKvBlocks: number;
  enablePrefixCaching: boolean;
  asyncScheduling: boolean;
  detokenizerWorkers: number;
  engineCreateS: number;
}

export interface InProcessServer {
  baseUrl: string;
  servedModelName: string;
  info: InProcessEngineInfo;
  close(): Promise<void>;
}

export async function startInProcessServer(flags: EngineBenchFlags, model: ModelSource): Promise<InProcessServer> {
  const createStartMs = performance.now();
  const engine = await Engine.create(engineOptionsFor(flags, model));
  const engineCreateS = (performance.now() - createStartMs) / 1000;
  const { app } = createApp({ engine, servedModelNames: [model.name] });
  let server;
  try {
    server = await listen(app, '127.0.0.1', 0);
  } catch (err) {
    await engine.shutdown(0);
    throw err;
  }
  const c = engine.config;
  const running = server;
  return {
    baseUrl: running.url,
    servedModelName: model.name,
    info: {
      model: { name: model.name, isDummy: model.weights.kind === 'dummy', config: model.config },
      device: c.device,
      dtype: c.dtype,
      maxNumSeqs: c.maxNumSeqs,
      maxNumBatchedTokens: c.maxNumBatchedTokens,
      maxModelLen: c.maxModelLen,
      blockSize: c.blockSize,
      numKvBlocks: engine.stats().numBlocks,
      enablePrefixCaching: c.enablePrefixCaching,
      asyncScheduling: c.asyncScheduling,
      detokenizerWorkers: c.detokenizerWorkers,
      engineCreateS,
    },
    async close() {
      running.server.closeAllConnections();
      await running.close();
      await engine.shutdown(0);
    },
  };
}
