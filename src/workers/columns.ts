/**
 * Main-thread side of a detokenization step: packs DetokItems into one columnar message per shard
 * and turns a reply back into DetokResults. No decoding happens here: only copies of token windows
 * and a few numbers per sequence into one Int32Array, and of held texts into one string.
 */
import { DetokFlag } from './protocol.ts';
import type { DetokItem, DetokResult, DetokStepMessage, DetokStepReply } from './protocol.ts';
import { detokReplyViews, detokStepLength, detokStepViews } from './wire-layout.ts';

/** Tokens a shard's worker decodes for this item: the cost used to balance shards. */
export function windowLength(item: DetokItem): number {
  return item.tokenIds.length - item.state.prefixOffset;
}

export function packDetokShard(items: readonly DetokItem[], tokenizerDir: string): DetokStepMessage {
  const numItems = items.length;
  let numWindowTokens = 0;
  for (let i = 0; i < numItems; i++) numWindowTokens += windowLength(items[i]);
  const columns = new Int32Array(detokStepLength(numItems, numWindowTokens));
  const v = detokStepViews(columns, numItems, numWindowTokens);
  const stopLists: string[][] = [];
  // Sequences of one request share one params.stop array: send each distinct list once.
  const stopListIndexOf = new Map<readonly string[], number>();
  let heldText = '';
  let tokenCursor = 0;
  for (let i = 0; i < numItems; i++) {
    const { tokenIds: ids, state, params } = items[i];
    v.windowStarts[i] = tokenCursor;
    for (let t = state.prefixOffset; t < ids.length; t++) v.tokenIds[tokenCursor++] = ids[t];
    v.prefixOffsets[i] = state.prefixOffset;
    v.readOffsets[i] = state.readOffset;
    v.numProcessedTokens[i] = state.numProcessedTokens;
    v.firstStopTokenIndexes[i] = items[i].firstStopTokenIndex;
    v.flags[i] =
      (params.skipSpecialTokens ? DetokFlag.skipSpecialTokens : 0) |
      (params.spacesBetweenSpecialTokens ? DetokFlag.spacesBetweenSpecialTokens : 0) |
      (params.includeStopStrInOutput ? DetokFlag.includeStopStrInOutput : 0) |
      (items[i].isFinal ? DetokFlag.isFinal : 0);
    let stopListIndex = -1;
    if (params.stop.length > 0) {
      const known = stopListIndexOf.get(params.stop);
      if (known !== undefined) stopListIndex = known;
      else {
        stopListIndex = stopLists.push([...params.stop]) - 1;
        stopListIndexOf.set(params.stop, stopListIndex);
      }
    }
    v.stopListIndexes[i] = stopListIndex;
    v.heldStarts[i] = heldText.length;
    if (state.heldText.length > 0) heldText += state.heldText;
  }
  v.windowStarts[numItems] = tokenCursor;
  v.heldStarts[numItems] = heldText.length;
  return { kind: 'detokenize', tokenizerDir, numItems, numWindowTokens, columns, heldText, stopLists };
}

/** Writes the reply of the shard of items[firstItemIndex..] into `out` at the same positions. */
export function applyDetokReply(items: readonly DetokItem[], firstItemIndex: number, reply: DetokStepReply, out: DetokResult[]): void {
  const v = detokReplyViews(reply.columns, reply.numItems);
  const { text, heldText } = reply;
  for (let i = 0; i < reply.numItems; i++) {
    const itemIndex = firstItemIndex + i;
    const item = items[itemIndex];
    const stopIndex = v.stopIndexes[i];
    out[itemIndex] = {
      seqId: item.seqId,
      text: text.slice(v.textStarts[i], v.textStarts[i + 1]),
      state: {
        prefixOffset: v.prefixOffsets[i],
        readOffset: v.readOffsets[i],
        numProcessedTokens: v.numProcessedTokens[i],
        heldText: heldText.slice(v.heldStarts[i], v.heldStarts[i + 1]),
      },
      stop: stopIndex < 0 ? null : { stopString: item.params.stop[stopIndex], tokenIndex: v.stopTokenIndexes[i] },
    };
  }
}
