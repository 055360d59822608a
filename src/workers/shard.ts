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
import { detokReplyLength, detokReplyViews, detokStepViews } from './wire-layout.ts';

const NO_STOPS: string[] = [];

export function runDetokShard(message: DetokStepMessage): DetokStepReply {
  const startMs = performance.now();
  const tokenizer = loadTokenizer(message.tokenizerDir);
  const { numItems } = message;
  const m = detokStepViews(message.columns, numItems, message.numWindowTokens);
  const columns = new Int32Array(detokReplyLength(numItems));
  const r = detokReplyViews(columns, numItems);
  const texts: string[] = [];
  const heldTexts: string[] = [];
  let textLength = 0;
  let heldLength = 0;

  for (let i = 0; i < numItems; i++) {
    const flags = m.flags[i];
    const stop = m.stopListIndexes[i] < 0 ? NO_STOPS : message.stopLists[m.stopListIndexes[i]];
    const params: DetokParams = {
      stop,
      includeStopStrInOutput: (flags & DetokFlag.includeStopStrInOutput) !== 0,
      skipSpecialTokens: (flags & DetokFlag.skipSpecialTokens) !== 0,
      spacesBetweenSpecialTokens: (flags & DetokFlag.spacesBetweenSpecialTokens) !== 0,
    };
    const state = {
      prefixOffset: m.prefixOffsets[i],
      readOffset: m.readOffsets[i],
      numProcessedTokens: m.numProcessedTokens[i],
      heldText: message.heldText.slice(m.heldStarts[i], m.heldStarts[i + 1]),
    };
    const window = m.tokenIds.subarray(m.windowStarts[i], m.windowStarts[i + 1]);
    const isFinal = (flags & DetokFlag.isFinal) !== 0;
    const outcome = detokenizeIncrement(tokenizer, window, state, params, m.firstStopTokenIndexes[i], isFinal);
    r.prefixOffsets[i] = outcome.state.prefixOffset;
    r.readOffsets[i] = outcome.state.readOffset;
    r.numProcessedTokens[i] = outcome.state.numProcessedTokens;
    r.stopIndexes[i] = outcome.stop ? stop.indexOf(outcome.stop.stopString) : -1;
    r.stopTokenIndexes[i] = outcome.stop ? outcome.stop.tokenIndex : -1;
    r.textStarts[i] = textLength;
    r.heldStarts[i] = heldLength;
    texts.push(outcome.text);
    heldTexts.push(outcome.state.heldText);
    textLength += outcome.text.length;
    heldLength += outcome.state.heldText.length;
  }
  r.textStarts[numItems] = textLength;
  r.heldStarts[numItems] = heldLength;
  return {
    numItems,
    columns,
    text: texts.join(''),
    heldText: heldTexts.join(''),
    busyMs: performance.now() - startMs,
    threadId,
  };
}
