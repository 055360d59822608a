/**
 * The Piscina worker: one task = one columnar detokenization shard, a batch of prompts to
 * tokenize, or one decode. Stateless apart from the tokenizer cache (one load per directory).
 */
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';

import type { CrashMode, DetokStepReply, TokenizeReply, WorkerInit, WorkerMessage } from './protocol.ts';
import { runDetokShard } from './shard.ts';
import { loadTokenizer } from './tokenizer-loader.ts';

const init = (workerData ?? { isCrashForTestAllowed: false, tokenizerDir: '' }) as WorkerInit;
if (init.tokenizerDir) loadTokenizer(init.tokenizerDir);

/** Piscina posts a moved reply with its typed arrays transferred, not copied; the pool gets `value`. */
type Moved = ReturnType<typeof move>;

function movable<T extends object>(value: T, buffers: ArrayBuffer[]): Moved {
  return move({ [transferableSymbol]: buffers, [valueSymbol]: value });
}

function crash(mode: CrashMode): never {
  if (mode === 'exit') process.exit(1);
  throw new Error('worker crash requested by test (crashForTest: throw)');
}

export default function runTask(message: WorkerMessage): Moved | string {
  switch (message.kind) {
    case 'detokenize': {
      if (message.crashForTest !== undefined && init.isCrashForTestAllowed) crash(message.crashForTest);
      const reply: DetokStepReply = runDetokShard(message);
      return movable(reply, [reply.columns.buffer as ArrayBuffer]);
    }
    case 'tokenize': {
      const tokenizer = loadTokenizer(message.tokenizerDir);
      const idLists = message.texts.map((text) => tokenizer.encode(text, message.addSpecialTokens));
      const starts = new Int32Array(idLists.length + 1);
      for (let i = 0; i < idLists.length; i++) starts[i + 1] = starts[i] + idLists[i].length;
      const tokenIds = new Int32Array(starts[idLists.length]);
      idLists.forEach((ids, i) => tokenIds.set(ids, starts[i]));
      const reply: TokenizeReply = { tokenIds, starts };
      return movable(reply, [tokenIds.buffer, starts.buffer]);
    }
    case 'barrier': {
      Atomics.add(message.arrived, 0, 1);
      Atomics.notify(message.arrived, 0);
      const deadlineMs = Date.now() + message.timeoutMs;
      for (let seen = Atomics.load(message.arrived, 0); seen < message.numWorkers; seen = Atomics.load(message.arrived, 0)) {
        const leftMs = deadlineMs - Date.now();
        if (leftMs <= 0) throw new Error(`warm-up barrier: ${seen} of ${message.numWorkers} workers arrived`);
        Atomics.wait(message.arrived, 0, seen, leftMs);
      }
      return 'ready';
    }
    case 'decode': {
      const tokenizer = loadTokenizer(message.tokenizerDir);
      return tokenizer.decodeRange(message.tokenIds, 0, message.tokenIds.length, message);
    }
  }
}
