/**
 * The tokenizer worker pool (Piscina): detokenization steps sharded across workers by work,
 * prompt tokenization and decode, so the step loop's thread never decodes text.
 *
 * A step sends one columnar message per shard with its typed arrays transferred. Shards are
 * contiguous ranges of the items cut at equal cumulative work (window tokens), so results merge
 * back in item order. Tasks are stateless: a shard whose worker crashed is re-packed from the
 * items and run once more on the replacement worker Piscina starts.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';

import { applyDetokReply, packDetokShard, windowLength } from './columns.ts';
import type {
  BarrierMessage,
  CrashMode,
  DecodeMessage,
  DecodeParams,
  DetokItem,
  DetokResult,
  DetokStepMessage,
  DetokStepReply,
  TokenizeMessage,
  TokenizeReply,
  TokenizerPoolApi,
  TokenizerPoolOptions,
  WorkerInit,
  WorkerMessage,
} from './protocol.ts';

/** See TokenizerPoolOptions.minItemsPerShard. */
const DEFAULT_MIN_ITEMS_PER_SHARD = 256;

/** Fixed per-sequence cost, in window tokens, used when balancing shards. */
const ITEM_COST_TOKENS = 2;

export interface DetokStepOptions {
  /** Tests only (needs TokenizerPoolOptions.crashForTest): the first shard's first attempt crashes. */
  crashForTest?: CrashMode;
  /** Called with each shard's message right after it is posted (tests check the arrays were transferred). */
  onShardPosted?: (message: DetokStepMessage) => void;
}

/** What the last detokenizeStep() cost, for benchmarks and step timings. */
export interface DetokStepStats {
  numShards: number;
  /** Main thread: packing all shards and posting them. */
  dispatchMs: number;
  /** Main thread: turning the replies into DetokResults. */
  applyMs: number;
  /** From the call to the results being ready. */
  latencyMs: number;
  /** Busy time reported by each shard's worker, in shard order. */
  shardBusyMs: number[];
  shardThreadIds: number[];
  numRetries: number;
}

export interface ShardPlan {
  /** Item index where each shard starts, plus the end: shard s = [starts[s], starts[s+1]). */
  starts: number[];
}

export function defaultNumWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Cuts items into at most numShards contiguous ranges of about equal work. */
export function planShards(items: readonly DetokItem[], numShards: number, minItemsPerShard: number): ShardPlan {
  const numItems = items.length;
  const count = Math.max(1, Math.min(numShards, Math.floor(numItems / Math.max(1, minItemsPerShard))));
  let totalCost = 0;
  for (const item of items) totalCost += windowLength(item) + ITEM_COST_TOKENS;
  const starts = [0];
  let cost = 0;
  for (let i = 0; i < numItems && starts.length < count; i++) {
    cost += windowLength(items[i]) + ITEM_COST_TOKENS;
    if (cost >= (totalCost * starts.length) / count && i + 1 < numItems) starts.push(i + 1);
  }
  starts.push(numItems);
  return { starts };
}

export class TokenizerPool implements TokenizerPoolApi {
  readonly numWorkers: number;
  readonly tokenizerDir: string;
  readonly minItemsPerShard: number;
  lastStepStats: DetokStepStats | null = null;
  /** Worker-level errors Piscina reported (a worker that failed outside a task); tasks retry. */
  numWorkerErrors = 0;
  private readonly piscina: Piscina<WorkerMessage, unknown>;

  constructor(options: TokenizerPoolOptions) {
    if (!options.tokenizerDir) throw new Error('TokenizerPoolOptions.tokenizerDir is required');
    const numWorkers = options.numWorkers ?? defaultNumWorkers();
    if (!Number.isInteger(numWorkers) || numWorkers < 1) {
      throw new Error(`TokenizerPoolOptions.numWorkers must be an integer >= 1, got ${numWorkers}`);
    }
    this.numWorkers = numWorkers;
    const minItemsPerShard = options.minItemsPerShard ?? DEFAULT_MIN_ITEMS_PER_SHARD;
    if (!Number.isInteger(minItemsPerShard) || minItemsPerShard < 1) {
      throw new Error(`TokenizerPoolOptions.minItemsPerShard must be an integer >= 1, got ${minItemsPerShard}`);
    }
    this.minItemsPerShard = minItemsPerShard;
    this.tokenizerDir = path.resolve(options.tokenizerDir);
    const workerInit: WorkerInit = { isCrashForTestAllowed: options.crashForTest === true, tokenizerDir: this.tokenizerDir };
    this.piscina = new Piscina<WorkerMessage, unknown>({
      // A .mjs entry that registers tsx in the worker thread, then imports worker.ts (see there why).
      filename: new URL('./worker-entry.mjs', import.meta.url).href,
      minThreads: numWorkers,
      maxThreads: numWorkers,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Piscina's per-task timing histograms cost the main thread on every run(); we time steps ourselves.
      recordTiming: false,
      workerData: workerInit,
    });
    // Without a listener an 'error' event would crash the process; the failed task is retried.
    this.piscina.on('error', () => {
      this.numWorkerErrors += 1;
    });
  }

  /** threadIds of the live workers (a crashed one is replaced by a new thread). */
  get workerThreadIds(): number[] {
    return this.piscina.threads.map((worker) => worker.threadId);
  }

  /** Resolves once every worker has started and loaded the tokenizer (see BarrierMessage). */
  async warmup(timeoutMs = 120_000): Promise<void> {
    const arrived = new Int32Array(new SharedArrayBuffer(4));
    const message: BarrierMessage = { kind: 'barrier', arrived, numWorkers: this.numWorkers, timeoutMs };
    const tasks: Promise<unknown>[] = [];
    for (let i = 0; i < this.numWorkers; i++) tasks.push(this.piscina.run(message));
    await Promise.all(tasks);
  }

  async detokenizeStep(items: readonly DetokItem[], options: DetokStepOptions = {}): Promise<DetokResult[]> {
    const startMs = performance.now();
    const results = new Array<DetokResult>(items.length);
    if (items.length === 0) return results;
    const { starts } = planShards(items, this.numWorkers, this.minItemsPerShard);
    const numShards = starts.length - 1;
    const replies: Promise<DetokStepReply>[] = [];
    let numRetries = 0;
    for (let s = 0; s < numShards; s++) {
      const slice = items.slice(starts[s], starts[s + 1]);
      const crashForTest = s === 0 ? options.crashForTest : undefined;
      const firstTry = this.runShard(slice, crashForTest, options.onShardPosted);
      // The caller's token lists keep growing while this runs (the engine's next step): a retry
      // must cover the tokens of this call only, or its text would run ahead of its tokens.
      const numTokensAtCall = slice.map((item) => item.tokenIds.length);
      replies.push(
        firstTry.catch(() => {
          // The worker died or threw; Piscina has replaced it. The task is stateless: run it again.
          numRetries += 1;
          const asCalled = slice.map((item, i) => ({ ...item, tokenIds: Array.from(item.tokenIds).slice(0, numTokensAtCall[i]) }));
          return this.runShard(asCalled, undefined, options.onShardPosted);
        }),
      );
    }
    const dispatchMs = performance.now() - startMs;
    const settled = await Promise.all(replies);
    const applyStartMs = performance.now();
    for (let s = 0; s < numShards; s++) {
      applyDetokReply(items, starts[s], settled[s], results);
    }
    const endMs = performance.now();
    this.lastStepStats = {
      numShards,
      dispatchMs,
      applyMs: endMs - applyStartMs,
      latencyMs: endMs - startMs,
      shardBusyMs: settled.map((reply) => reply.busyMs),
      shardThreadIds: settled.map((reply) => reply.threadId),
      numRetries,
    };
    return results;
  }

  async tokenize(texts: readonly string[], addSpecialTokens: boolean): Promise<number[][]> {
    const message: TokenizeMessage = { kind: 'tokenize', tokenizerDir: this.tokenizerDir, texts: [...texts], addSpecialTokens };
    const reply = (await this.runWithRetry(message)) as TokenizeReply;
    const idLists: number[][] = [];
    for (let i = 0; i < texts.length; i++) idLists.push(Array.from(reply.tokenIds.subarray(reply.starts[i], reply.starts[i + 1])));
    return idLists;
  }

  async decode(tokenIds: readonly number[], options: Partial<DecodeParams> = {}): Promise<string> {
    const message: DecodeMessage = {
      kind: 'decode',
      tokenizerDir: this.tokenizerDir,
      tokenIds: Int32Array.from(tokenIds),
      skipSpecialTokens: options.skipSpecialTokens ?? true,
      spacesBetweenSpecialTokens: options.spacesBetweenSpecialTokens ?? true,
    };
    return (await this.runWithRetry(message)) as string;
  }

  async close(): Promise<void> {
    await this.piscina.close();
  }

  private runShard(
    items: readonly DetokItem[],
    crashForTest: CrashMode | undefined,
    onShardPosted: ((message: DetokStepMessage) => void) | undefined,
  ): Promise<DetokStepReply> {
    const message: DetokStepMessage = packDetokShard(items, this.tokenizerDir);
    if (crashForTest !== undefined) message.crashForTest = crashForTest;
    // The columns buffer is transferred (detached here), so posting copies only the two strings.
    const reply = this.piscina.run(message, { transferList: [message.columns.buffer as ArrayBuffer] }) as Promise<DetokStepReply>;
    onShardPosted?.(message);
    return reply;
  }

  /** Tokenize/decode messages are small and not transferred, so the same message can be re-sent. */
  private async runWithRetry(message: WorkerMessage): Promise<unknown> {
    try {
      return await this.piscina.run(message);
    } catch {
      return await this.piscina.run(message);
    }
  }
}

export function createTokenizerPool(options: TokenizerPoolOptions): TokenizerPool {
  return new TokenizerPool(options);
}
