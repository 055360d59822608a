/**
 * Named views over the single Int32Array of a detokenization message and of its reply
 * (the sizes follow from numItems and numWindowTokens; both sides use these functions).
 *
 * MESSAGE columns, n = numItems, back to back:
 *   windowStarts          [n + 1]  item i's window is tokenIds[windowStarts[i], windowStarts[i+1])
 *   prefixOffsets         [n]      absolute index of each window's first token (state.prefixOffset)
 *   readOffsets           [n]
 *   numProcessedTokens    [n]
 *   firstStopTokenIndexes [n]
 *   flags                 [n]      DetokFlag bits
 *   stopListIndexes       [n]      index into message.stopLists, -1 = no stop strings
 *   heldStarts            [n + 1]  item i's held text is heldText.slice(heldStarts[i], heldStarts[i+1])
 *   tokenIds              [numWindowTokens]
 *
 * REPLY columns, n = numItems:
 *   prefixOffsets, readOffsets, numProcessedTokens  [n] each: the new state
 *   stopIndexes           [n]      index into the item's stop list, -1 = none
 *   stopTokenIndexes      [n]      absolute index of the token that completed the stop, -1 = none
 *   textStarts            [n + 1]  into reply.text
 *   heldStarts            [n + 1]  into reply.heldText
 */

export interface DetokStepViews {
  windowStarts: Int32Array;
  prefixOffsets: Int32Array;
  readOffsets: Int32Array;
  numProcessedTokens: Int32Array;
  firstStopTokenIndexes: Int32Array;
  flags: Int32Array;
  stopListIndexes: Int32Array;
  heldStarts: Int32Array;
  tokenIds: Int32Array;
}

export interface DetokReplyViews {
  prefixOffsets: Int32Array;
  readOffsets: Int32Array;
  numProcessedTokens: Int32Array;
  stopIndexes: Int32Array;
  stopTokenIndexes: Int32Array;
  textStarts: Int32Array;
  heldStarts: Int32Array;
}

/** Cuts `columns` into consecutive views of the given lengths. */
function cut<K extends string>(columns: Int32Array, lengths: [K, number][]): Record<K, Int32Array> {
  const views = {} as Record<K, Int32Array>;
  let offset = 0;
  for (const [name, length] of lengths) {
    views[name] = columns.subarray(offset, offset + length);
    offset += length;
  }
  return views;
}

export function detokStepLength(numItems: number, numWindowTokens: number): number {
  return 7 * numItems + 2 * (numItems + 1) + numWindowTokens;
}

export function detokStepViews(columns: Int32Array, numItems: number, numWindowTokens: number): DetokStepViews {
  const n = numItems;
  return cut(columns, [
    ['windowStarts', n + 1],
    ['prefixOffsets', n],
    ['readOffsets', n],
    ['numProcessedTokens', n],
    ['firstStopTokenIndexes', n],
    ['flags', n],
    ['stopListIndexes', n],
    ['heldStarts', n + 1],
    ['tokenIds', numWindowTokens],
  ]);
}

export function detokReplyLength(numItems: number): number {
  return 5 * numItems + 2 * (numItems + 1);
}

export function detokReplyViews(columns: Int32Array, numItems: number): DetokReplyViews {
  const n = numItems;
  return cut(columns, [
    ['prefixOffsets', n],
    ['readOffsets', n],
    ['numProcessedTokens', n],
    ['stopIndexes', n],
    ['stopTokenIndexes', n],
    ['textStarts', n + 1],
    ['heldStarts', n + 1],
  ]);
}
