/**
 * Worker side of a detokenization step: runs one columnar shard through the pure detokenizer and
 * packs the reply. Also used in-process by the "inline batched" benchmark mode and by tests.
 */
import { performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';

import { detokenizeIncrement } from './detokenize.ts';
import { DetokFlag } from './protocol.ts';
import type { DetokParams, DetokStepMessage, DetokStepReply } from './protocol.ts';
import { loadTokenizer } from './tokenizer-loader.ts';

export function runDetokShard(message: DetokStepMessage): DetokStepReply {
  const startMs = performance.now();
  const tokenizer = loadTokenizer(message.tokenizerDir);
  const { numItems } = message;
  const texts = new Array<string>(numItems);
  const heldTexts = new Array<string>(numItems);
  const prefixOffsets = new Int32Array(numItems);
  const readOffsets = new Int32Array(numItems);
  const numProcessedTokens = new Int32Array(numItems);
  const stopIndexes = new Int32Array(numItems).fill(-1);
  const stopTokenIndexes = new Int32Array(numItems).fill(-1);

  for (let i = 0; i < numItems; i++) {
    const flags = message.flags[i];
    const stop = message.stopStrings.slice(message.stopStarts[i], message.stopStarts[i + 1]);
    const params: DetokParams = {
      stop,
      includeStopStrInOutput: (flags & DetokFlag.includeStopStrInOutput) !== 0,
      skipSpecialTokens: (flags & DetokFlag.skipSpecialTokens) !== 0,
      spacesBetweenSpecialTokens: (flags & DetokFlag.spacesBetweenSpecialTokens) !== 0,
    };
    const window = message.tokenIds.subarray(message.windowStarts[i], message.windowStarts[i + 1]);
    const state = {
      prefixOffset: message.prefixOffsets[i],
      readOffset: message.readOffsets[i],
      numProcessedTokens: message.numProcessedTokens[i],
      heldText: message.heldTexts[i],
    };
    const outcome = detokenizeIncrement(
      tokenizer,
      window,
      state,
      params,
      message.firstStopTokenIndexes[i],
      (flags & DetokFlag.isFinal) !== 0,
    );
    texts[i] = outcome.text;
    heldTexts[i] = outcome.state.heldText;
    prefixOffsets[i] = outcome.state.prefixOffset;
    readOffsets[i] = outcome.state.readOffset;
    numProcessedTokens[i] = outcome.state.numProcessedTokens;
    if (outcome.stop !== null) {
      stopIndexes[i] = stop.indexOf(outcome.stop.stopString);
      stopTokenIndexes[i] = outcome.stop.tokenIndex;
    }
  }
  return {
    texts,
    heldTexts,
    prefixOffsets,
    readOffsets,
    numProcessedTokens,
    stopIndexes,
    stopTokenIndexes,
    busyMs: performance.now() - startMs,
    threadId,
  };
}
