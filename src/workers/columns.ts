/**
 * Main-thread side of a detokenization step: packs DetokItems into one columnar message per shard
 * and turns a reply back into DetokResults. No decoding happens here: only copies of token windows
 * into one Int32Array and of a few numbers per sequence.
 */
import { DetokFlag } from './protocol.ts';
import type { DetokItem, DetokResult, DetokStepMessage, DetokStepReply } from './protocol.ts';

/** Tokens a shard's worker decodes for this item: the cost used to balance shards. */
export function windowLength(item: DetokItem): number {
  return item.tokenIds.length - item.state.prefixOffset;
}

export function packDetokShard(items: readonly DetokItem[], tokenizerDir: string): DetokStepMessage {
  const numItems = items.length;
  let numWindowTokens = 0;
  let numStops = 0;
  for (const item of items) {
    numWindowTokens += windowLength(item);
    numStops += item.params.stop.length;
  }
  const tokenIds = new Int32Array(numWindowTokens);
  const windowStarts = new Int32Array(numItems + 1);
  const prefixOffsets = new Int32Array(numItems);
  const readOffsets = new Int32Array(numItems);
  const numProcessedTokens = new Int32Array(numItems);
  const firstStopTokenIndexes = new Int32Array(numItems);
  const flags = new Uint8Array(numItems);
  const heldTexts = new Array<string>(numItems);
  const stopStrings = new Array<string>(numStops);
  const stopStarts = new Int32Array(numItems + 1);

  let tokenCursor = 0;
  let stopCursor = 0;
  for (let i = 0; i < numItems; i++) {
    const { tokenIds: ids, state, params } = items[i];
    windowStarts[i] = tokenCursor;
    for (let t = state.prefixOffset; t < ids.length; t++) tokenIds[tokenCursor++] = ids[t];
    prefixOffsets[i] = state.prefixOffset;
    readOffsets[i] = state.readOffset;
    numProcessedTokens[i] = state.numProcessedTokens;
    firstStopTokenIndexes[i] = items[i].firstStopTokenIndex;
    flags[i] =
      (params.skipSpecialTokens ? DetokFlag.skipSpecialTokens : 0) |
      (params.spacesBetweenSpecialTokens ? DetokFlag.spacesBetweenSpecialTokens : 0) |
      (params.includeStopStrInOutput ? DetokFlag.includeStopStrInOutput : 0) |
      (items[i].isFinal ? DetokFlag.isFinal : 0);
    heldTexts[i] = state.heldText;
    stopStarts[i] = stopCursor;
    for (const stop of params.stop) stopStrings[stopCursor++] = stop;
  }
  windowStarts[numItems] = tokenCursor;
  stopStarts[numItems] = stopCursor;
  return {
    kind: 'detokenize',
    tokenizerDir,
    numItems,
    tokenIds,
    windowStarts,
    prefixOffsets,
    readOffsets,
    numProcessedTokens,
    firstStopTokenIndexes,
    flags,
    heldTexts,
    stopStrings,
    stopStarts,
  };
}

/** The typed arrays of a message, to hand to postMessage as transferables. */
export function shardTransferables(message: DetokStepMessage): ArrayBuffer[] {
  return [
    message.tokenIds,
    message.windowStarts,
    message.prefixOffsets,
    message.readOffsets,
    message.numProcessedTokens,
    message.firstStopTokenIndexes,
    message.flags,
    message.stopStarts,
  ].map((array) => array.buffer as ArrayBuffer);
}

export function replyTransferables(reply: DetokStepReply): ArrayBuffer[] {
  return [reply.prefixOffsets, reply.readOffsets, reply.numProcessedTokens, reply.stopIndexes, reply.stopTokenIndexes].map(
    (array) => array.buffer as ArrayBuffer,
  );
}

/** Writes the reply of the shard of items[firstItemIndex..] into `out` at the same positions. */
export function applyDetokReply(
  items: readonly DetokItem[],
  firstItemIndex: number,
  reply: DetokStepReply,
  out: DetokResult[],
): void {
  for (let i = 0; i < reply.texts.length; i++) {
    const itemIndex = firstItemIndex + i;
    const item = items[itemIndex];
    const stopIndex = reply.stopIndexes[i];
    out[itemIndex] = {
      seqId: item.seqId,
      text: reply.texts[i],
      state: {
        prefixOffset: reply.prefixOffsets[i],
        readOffset: reply.readOffsets[i],
        numProcessedTokens: reply.numProcessedTokens[i],
        heldText: reply.heldTexts[i],
      },
      stop: stopIndex < 0 ? null : { stopString: item.params.stop[stopIndex], tokenIndex: reply.stopTokenIndexes[i] },
    };
  }
}
