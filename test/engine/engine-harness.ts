/**
 * Builds engines for the tests: the fake executor (checks packing, no model) or the native
 * CPU executor on a tiny random model written to a temp dir; both with the real tokenizer
 * worker pool.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveEngineConfig, type EngineOptions } from '../../src/engine/config.ts';
import { Engine, type EngineParts } from '../../src/engine/engine.ts';
import { loadModelSource } from '../../src/engine/model-loader.ts';
import { loadNative } from '../../src/engine/native.ts';
import { tokenizerPackageDir } from '../../src/engine/presets.ts';
import { readChatTemplate } from '../../src/engine/tokenizer-config.ts';
import type { ModelSource, RequestDelta } from '../../src/engine/types.ts';
import { TokenizerPool } from '../../src/workers/pool.ts';
import type { DetokItem, DetokResult } from '../../src/workers/protocol.ts';
import { writeRandomModel } from '../../src/tools/write-random-model.ts';
import { FakeExecutor } from './fake-executor.ts';

export type ExecutorKind = 'fake' | 'native';

const addonPath = fileURLToPath(new URL('../../native/build/Release/spindle_native.node', import.meta.url));

/**
 * Why the native executor cannot run here ('' when it can). Probed in a child process: an
 * addon half-built (unresolved symbols) kills the process that loads it, not just a test.
 */
export function nativeUnavailableReason(): string {
  const probe = spawnSync(process.execPath, ['-e', `const a = require(${JSON.stringify(addonPath)}); if (typeof a.Executor !== 'function') { console.error('the addon has no Executor'); process.exit(3); }`], { encoding: 'utf8' });
  if (probe.status === 0) return '';
  const lines = `${probe.stderr}`.trim().split('\n');
  return `cannot load the native addon (${lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `exit ${probe.status}`})`;
}

/** A model source for the fake executor: the llama2 tokenizer, no weights read. */
export function fakeModelSource(): ModelSource {
  return {
    dir: null,
    name: 'fake-llama2',
    config: {
      family: 'llama', hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16,
      vocabSize: 32000, maxPositionEmbeddings: 2048, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null,
      tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
    },
    weights: { kind: 'dummy', seed: 0 },
    tokenizerDir: tokenizerPackageDir('llama2'),
    eosTokenIds: [2],
    bosTokenId: 1,
    maxModelLen: 2048,
    maxModelLenSource: 'max_position_embeddings=2048',
    samplingDefaults: {},
  };
}

let tinyModelDir: string | null = null;

/** A 2-layer random Mistral-shaped model (llama2 tokenizer, 32k vocab) in a temp dir, written once. */
export async function tinyModelSource(): Promise<ModelSource> {
  if (!tinyModelDir) {
    tinyModelDir = mkdtempSync(path.join(tmpdir(), 'spindle-engine-test-'));
    writeRandomModel(tinyModelDir, { arch: 'mistral', numLayers: 2, hiddenSize: 64, intermediateSize: 128, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 1024, seed: 7 });
    process.once('exit', () => tinyModelDir && rmSync(tinyModelDir, { recursive: true, force: true }));
  }
  return loadModelSource(tinyModelDir, { onNote: () => {} });
}

export interface TestEngineOptions extends Partial<Omit<EngineOptions, 'model'>> {
  numBlocks?: number;
  /** Pool hook: called before each detokenization step with its 1-based index. */
  crashDetokStep?: number;
  failAtStep?: number;
  /** Replaces the model's EOS ids (to make a token that does occur end the output). */
  eosTokenIds?: number[];
}

export interface TestEngine {
  engine: Engine;
  executor: EngineParts['executor'];
  pool: TokenizerPool;
  /** Number of detok steps whose first try crashed a worker (the pool retried them). */
  numDetokCrashes: () => number;
}

export async function makeEngine(kind: ExecutorKind, options: TestEngineOptions = {}): Promise<TestEngine> {
  const { crashDetokStep, failAtStep, eosTokenIds, ...engineOptions } = options;
  const loaded = kind === 'fake' ? fakeModelSource() : await tinyModelSource();
  const model = eosTokenIds ? { ...loaded, eosTokenIds } : loaded;
  const config = resolveEngineConfig(
    { maxModelLen: 512, maxNumSeqs: 256, maxNumBatchedTokens: 512, blockSize: 16, numBlocks: 512, seed: 1, ...engineOptions, model, device: 'cpu', numThreads: 1 },
    { numCudaDevices: 0, cudaUnavailableReason: 'tests run on the CPU' },
  );
  const executor =
    kind === 'fake'
      ? new FakeExecutor({ numBlocks: config.numBlocks, blockSize: config.blockSize, vocabSize: model.config.vocabSize, failAtStep })
      : new (loadNative().Executor)({
          device: 'cpu', dtype: 'float32', model: model.config, weights: model.weights, blockSize: config.blockSize,
          numBlocks: config.numBlocks, gpuMemoryUtilization: 0.9, maxNumSeqs: config.maxNumSeqs,
          maxNumBatchedTokens: config.maxNumBatchedTokens, numThreads: 1,
        });
  const pool = new TokenizerPool({ tokenizerDir: model.tokenizerDir, numWorkers: 1, crashForTest: crashDetokStep !== undefined });
  await pool.warmup();
  let numSteps = 0;
  let numCrashes = 0;
  const detokenizeStep = (items: readonly DetokItem[]): Promise<DetokResult[]> => {
    numSteps += 1;
    if (numSteps === crashDetokStep) {
      numCrashes += 1;
      return pool.detokenizeStep(items, { crashForTest: 'exit' });
    }
    return pool.detokenizeStep(items);
  };
  const parts: EngineParts = {
    config,
    executor,
    pool: { detokenizeStep, tokenize: (t, a) => pool.tokenize(t, a), decode: (ids, o) => pool.decode(ids, o), close: () => pool.close() },
    chatTemplate: await readChatTemplate(model.tokenizerDir),
  };
  return { engine: new Engine(parts), executor, pool, numDetokCrashes: () => numCrashes };
}

export async function collect(stream: AsyncIterable<RequestDelta>): Promise<RequestDelta[]> {
  const deltas: RequestDelta[] = [];
  for await (const d of stream) deltas.push(d);
  return deltas;
}

/** Deterministic prompts of varied length over ordinary token ids. */
export function makePrompts(count: number, minLen: number, maxLen: number, seed = 1): number[][] {
  let state = seed >>> 0;
  const next = (n: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
  return Array.from({ length: count }, () => Array.from({ length: minLen + next(maxLen - minLen + 1) }, () => 100 + next(20000)));
}
