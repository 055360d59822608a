/**
 * Pure incremental detokenization of one sequence over its token window (HF/vLLM prefix/read
 * offsets), with stop strings. Runs in the workers, and in-process in tests and benchmarks.
 *
 * Each step decodes tokens[prefixOffset..readOffset) ("prefix text") and tokens[prefixOffset..end)
 * ("new text"); the new characters are new text minus prefix text. A decode that ends in U+FFFD is
 * a character split across tokens: it is held (readOffset stays) until a later token completes
 * it, or emitted as is when the sequence finishes (the full decode then has U+FFFD too).
 */
import type { DetokParams, DetokResult, DetokState } from './protocol.ts';
import { findStop, holdbackCut, holdbackLength } from './stop-strings.ts';
import type { LoadedTokenizer } from './tokenizer-loader.ts';

const REPLACEMENT_CHAR = '\uFFFD';

export type DetokOutcome = Omit<DetokResult, 'seqId'>;

/**
 * Feeds tokens[state.numProcessedTokens..end) to the detokenizer.
 * @param window tokens[state.prefixOffset..end) of the sequence (absolute index = prefixOffset + i)
 * @param firstStopTokenIndex stop strings completed by a token before this index are ignored
 * @param isFinal the sequence has finished: emit everything still held
 */
export function detokenizeIncrement(
  tokenizer: LoadedTokenizer,
  window: ArrayLike<number>,
  state: DetokState,
  params: DetokParams,
  firstStopTokenIndex: number,
  isFinal: boolean,
): DetokOutcome {
  const windowBase = state.prefixOffset;
  const end = windowBase + window.length;
  let { prefixOffset, readOffset, numProcessedTokens, heldText } = state;
  const stops = params.stop;
  const hasStops = stops.length > 0;
  const numHoldbackChars = holdbackLength(stops);
  const emitted: string[] = [];

  const decode = (from: number, to: number): string => tokenizer.decodeRange(window, from - windowBase, to - windowBase, params);

  /** New complete characters up to token `upTo` (exclusive), or '' while a character is split. */
  const advance = (upTo: number, isFlush: boolean): string => {
    const prefixText = decode(prefixOffset, readOffset);
    const newText = decode(prefixOffset, upTo);
    if (newText.length <= prefixText.length) return '';
    if (!isFlush && newText.endsWith(REPLACEMENT_CHAR)) return '';
    prefixOffset = readOffset;
    readOffset = upTo;
    return newText.slice(prefixText.length);
  };

  const finish = (): DetokOutcome => ({
    text: emitted.join(''),
    state: { prefixOffset, readOffset, numProcessedTokens, heldText },
    stop: null,
  });

  /** Appends new text, checking stops; returns the outcome when a stop string ends the output. */
  const take = (delta: string, tokenIndex: number, isLast: boolean): DetokOutcome | null => {
    if (!hasStops) {
      emitted.push(delta);
      return null;
    }
    const pending = heldText + delta;
    if (tokenIndex >= firstStopTokenIndex) {
      const match = findStop(pending, heldText.length, stops);
      if (match !== null) {
        const stopString = stops[match.stopIndex];
        const cutAt = match.position + (params.includeStopStrInOutput ? stopString.length : 0);
        emitted.push(pending.slice(0, cutAt));
        heldText = '';
        return { ...finish(), stop: { stopString, tokenIndex } };
      }
    }
    const cut = isLast ? pending.length : holdbackCut(pending, numHoldbackChars);
    emitted.push(pending.slice(0, cut));
    heldText = pending.slice(cut);
    return null;
  };

  // With stop strings, one token at a time: the result must name the token that completed the
  // stop. Without, one decode covers all new tokens (the prefix property makes it equivalent).
  const tokensPerPass = hasStops ? 1 : Math.max(1, end - numProcessedTokens);
  while (numProcessedTokens < end) {
    const upTo = Math.min(end, numProcessedTokens + tokensPerPass);
    const delta = advance(upTo, false);
    numProcessedTokens = upTo;
    if (delta.length === 0) continue;
    const stopped = take(delta, upTo - 1, false);
    if (stopped) return stopped;
  }

  if (isFinal) {
    const delta = readOffset < end ? advance(end, true) : '';
    const stopped = take(delta, end - 1, true);
    if (stopped) return stopped;
  }
  return finish();
}
