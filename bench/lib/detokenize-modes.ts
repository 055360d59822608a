/**
 * Runs the simulated step loop in one detokenization mode and measures each step:
 * main-thread time as event-loop active time (so the pool's posting and receiving count too),
 * latency from dispatch to results applied, worker busy time per thread.
 */
import { performance } from 'node:perf_hooks';

import { applyDetokReply, packDetokShard } from '../../src/workers/columns.ts';
import { detokenizeIncrement } from '../../src/workers/detokenize.ts';
import { TokenizerPool } from '../../src/workers/pool.ts';
import type { DetokItem, DetokResult } from '../../src/workers/protocol.ts';
import { runDetokShard } from '../../src/workers/shard.ts';
import type { LoadedTokenizer } from '../../src/workers/tokenizer-loader.ts';
import { SlotSimulator, type TokenSource, type buildStreams } from './detokenize-workload.ts';
import { summarize, type Summary } from './stats.ts';

export type ModeName = 'sequential' | 'batched' | `pool-${number}`;

export interface ModeMeasurement {
  tokenizer: string;
  source: TokenSource;
  mode: ModeName;
  /** 0 for the inline modes. */
  numWorkers: number;
  batchSize: number;
  numSteps: number;
  /** Main thread's event-loop active time per step (the step loop's critical path). */
  mainMs: Summary;
  /** Pool: synchronous part of detokenizeStep (pack + post). */
  dispatchMs: Summary | null;
  /** From dispatch to the results applied to the sequences. */
  latencyMs: Summary;
  /** Tokens detokenized per second of latency (one batch in flight at a time). */
  tokensPerS: number;
  /** Pool: total busy ms per worker thread over the measured steps. */
  workerBusyMs: number[] | null;
  /** Pool: busiest worker's busy time / mean (1 = perfectly balanced). */
  workerBalance: number | null;
  numStopsMatched: number;
  numSequencesFinished: number;
  /** Digest of all texts and stops (warm-up steps included): equal across modes = identical text. */
  textDigest: string;
}

type Streams = ReturnType<typeof buildStreams>;

export interface MeasureModeInput {
  mode: ModeName;
  tokenizerName: string;
  tokenizerDir: string;
  tokenizer: LoadedTokenizer;
  streamsBySource: Map<TokenSource, Streams>;
  options: { batchSizes: number[]; numSteps: number; numWarmupSteps: number; stopFraction: number; minItemsPerShard: number };
}

type StepRunner = (items: readonly DetokItem[]) => Promise<DetokResult[]> | DetokResult[];

function sequentialRunner(tokenizer: LoadedTokenizer): StepRunner {
  return (items) =>
    items.map((item) => {
      const window = (item.tokenIds as number[]).slice(item.state.prefixOffset);
      return { seqId: item.seqId, ...detokenizeIncrement(tokenizer, window, item.state, item.params, item.firstStopTokenIndex, item.isFinal) };
    });
}

function batchedRunner(tokenizerDir: string): StepRunner {
  return (items) => {
    const reply = runDetokShard(packDetokShard(items, tokenizerDir));
    const results = new Array<DetokResult>(items.length);
    applyDetokReply(items, 0, reply, results);
    return results;
  };
}

export async function measureMode(input: MeasureModeInput): Promise<ModeMeasurement[]> {
  const { mode, tokenizer, options } = input;
  const numWorkers = mode.startsWith('pool-') ? Number(mode.slice('pool-'.length)) : 0;
  const pool = numWorkers > 0 ? new TokenizerPool({ tokenizerDir: input.tokenizerDir, numWorkers, minItemsPerShard: options.minItemsPerShard }) : null;
  try {
    if (pool) await pool.warmup();
    const runner: StepRunner = pool
      ? (items) => pool.detokenizeStep(items)
      : mode === 'sequential'
        ? sequentialRunner(tokenizer)
        : batchedRunner(input.tokenizerDir);
    const out: ModeMeasurement[] = [];
    for (const [source, streams] of input.streamsBySource) {
      for (const batchSize of options.batchSizes) {
        out.push(await measureOne(input, source, streams, batchSize, runner, pool, numWorkers));
      }
    }
    return out;
  } finally {
    await pool?.close();
  }
}

async function measureOne(
  input: MeasureModeInput,
  source: TokenSource,
  streams: Streams,
  batchSize: number,
  runner: StepRunner,
  pool: TokenizerPool | null,
  numWorkers: number,
): Promise<ModeMeasurement> {
  const { options } = input;
  const simulator = new SlotSimulator(streams, batchSize, options.stopFraction);
  const mainMs: number[] = [];
  const dispatchMs: number[] = [];
  const latencyMs: number[] = [];
  const busyByThread = new Map<number, number>();
  for (let step = 0; step < options.numWarmupSteps + options.numSteps; step++) {
    const items = simulator.buildItems();
    const loopBefore = performance.eventLoopUtilization();
    const startMs = performance.now();
    const pending = runner(items);
    const postedMs = performance.now();
    const results = await pending;
    simulator.applyResults(results);
    const endMs = performance.now();
    const loop = performance.eventLoopUtilization(loopBefore);
    simulator.recordDigest(results);
    if (step < options.numWarmupSteps) continue;
    mainMs.push(loop.active);
    latencyMs.push(endMs - startMs);
    if (pool) {
      dispatchMs.push(postedMs - startMs);
      const stats = pool.lastStepStats;
      stats?.shardThreadIds.forEach((threadId, s) => busyByThread.set(threadId, (busyByThread.get(threadId) ?? 0) + stats.shardBusyMs[s]));
    }
  }
  const latency = summarize(latencyMs);
  const busy = pool ? [...busyByThread.values()] : null;
  const meanBusy = busy && busy.length > 0 ? busy.reduce((a, b) => a + b, 0) / numWorkers : 0;
  return {
    tokenizer: input.tokenizerName,
    source,
    mode: input.mode,
    numWorkers,
    batchSize,
    numSteps: options.numSteps,
    mainMs: summarize(mainMs),
    dispatchMs: pool ? summarize(dispatchMs) : null,
    latencyMs: latency,
    tokensPerS: (batchSize * options.numSteps) / ((latency.mean * latency.count) / 1000),
    workerBusyMs: busy,
    workerBalance: busy && meanBusy > 0 ? Math.max(...busy) / meanBusy : null,
    numStopsMatched: simulator.numStopsMatched,
    numSequencesFinished: simulator.numFinished,
    textDigest: simulator.textDigest(),
  };
}
