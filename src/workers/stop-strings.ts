/**
 * Stop-string matching over streamed text, across token boundaries.
 *
 * The caller keeps the last (longest stop − 1) characters of its output held back: any stop string
 * that the next text completes then starts inside heldText + newText, so searching that string is
 * enough. Lengths and positions are UTF-16 code units, as JS strings count them.
 */

export interface StopMatch {
  /** Index of the matched stop string in the stop list. */
  stopIndex: number;
  /** Position of the match in the searched text. */
  position: number;
}

/**
 * Finds the earliest stop string in `text` that ends after `numOldChars` (text before that was
 * already searched). Ties at one position go to the stop listed first.
 */
export function findStop(text: string, numOldChars: number, stops: readonly string[]): StopMatch | null {
  let best: StopMatch | null = null;
  for (let stopIndex = 0; stopIndex < stops.length; stopIndex++) {
    const stop = stops[stopIndex];
    if (stop.length === 0) continue;
    const from = Math.max(0, numOldChars - stop.length + 1);
    const position = text.indexOf(stop, from);
    if (position < 0) continue;
    if (best === null || position < best.position) best = { stopIndex, position };
  }
  return best;
}

/** Characters to hold back so that a stop string split across steps is still found. */
export function holdbackLength(stops: readonly string[]): number {
  let maxLength = 0;
  for (const stop of stops) maxLength = Math.max(maxLength, stop.length);
  return Math.max(0, maxLength - 1);
}

/**
 * Where to cut `text` so that at least `numHeldChars` stay held back, without splitting a
 * surrogate pair (the emitted part must be valid text on its own).
 */
export function holdbackCut(text: string, numHeldChars: number): number {
  let cut = Math.max(0, text.length - numHeldChars);
  if (cut > 0 && cut < text.length && isLowSurrogate(text.charCodeAt(cut)) && isHighSurrogate(text.charCodeAt(cut - 1))) {
    cut -= 1;
  }
  return cut;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
