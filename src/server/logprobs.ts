/**
 * The engine's per-token logprobs → OpenAI's two shapes: completions' column lists
 * (tokens / token_logprobs / top_logprobs / text_offset) and chat's `content` entries.
 * −∞ (a token the processed distribution rules out) is written as −9999.0: JSON has no −∞,
 * and clients choke on null where a number is promised.
 */
import type { TokenLogprob } from '../engine/types.ts';
import type { TokenTextCache } from './token-text.ts';

export const LOGPROB_FLOOR = -9999.0;

export function finiteLogprob(logprob: number): number {
  return Number.isFinite(logprob) ? logprob : LOGPROB_FLOOR;
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

function allIds(entries: readonly TokenLogprob[]): number[] {
  return entries.flatMap((entry) => [entry.tokenId, ...entry.top.map((alt) => alt.tokenId)]);
}

/** Characters as vLLM's Python counts them (code points), not JavaScript's UTF-16 units. */
export function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Completions shape for one delta. `textOffset` is where this delta's text starts within the
 * choice's text; the returned `nextTextOffset` is where the next delta's starts.
 */
export async function completionLogprobs(
  entries: readonly TokenLogprob[],
  tokenText: TokenTextCache,
  textOffset: number,
): Promise<{ logprobs: CompletionLogprobs; nextTextOffset: number }> {
  const ids = allIds(entries);
  const texts = await tokenText.textsOf(ids);
  const textOf = new Map(ids.map((id, i) => [id, texts[i]]));
  const logprobs: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = textOffset;
  for (const entry of entries) {
    const token = textOf.get(entry.tokenId) ?? '';
    logprobs.tokens.push(token);
    logprobs.token_logprobs.push(finiteLogprob(entry.logprob));
    // As OpenAI documents: the sampled token is always among the alternatives (up to N + 1).
    const top: Record<string, number> = {};
    for (const alt of entry.top) top[textOf.get(alt.tokenId) ?? ''] = finiteLogprob(alt.logprob);
    if (!(token in top)) top[token] = finiteLogprob(entry.logprob);
    logprobs.top_logprobs.push(top);
    logprobs.text_offset.push(offset);
    offset += codePointLength(token);
  }
  return { logprobs, nextTextOffset: offset };
}

export function mergeCompletionLogprobs(parts: readonly CompletionLogprobs[]): CompletionLogprobs {
  return {
    tokens: parts.flatMap((p) => p.tokens),
    token_logprobs: parts.flatMap((p) => p.token_logprobs),
    top_logprobs: parts.flatMap((p) => p.top_logprobs),
    text_offset: parts.flatMap((p) => p.text_offset),
  };
}

const utf8 = new TextEncoder();

/** Chat shape for one delta; `numTop` is the request's top_logprobs. */
export async function chatLogprobs(entries: readonly TokenLogprob[], tokenText: TokenTextCache, numTop: number): Promise<ChatTokenLogprob[]> {
  const ids = allIds(entries);
  const texts = await tokenText.textsOf(ids);
  const textOf = new Map(ids.map((id, i) => [id, texts[i]]));
  const entryOf = (tokenId: number, logprob: number) => {
    const token = textOf.get(tokenId) ?? '';
    return { token, logprob: finiteLogprob(logprob), bytes: [...utf8.encode(token)] };
  };
  return entries.map((entry) => ({
    ...entryOf(entry.tokenId, entry.logprob),
    top_logprobs: entry.top.slice(0, numTop).map((alt) => entryOf(alt.tokenId, alt.logprob)),
  }));
}
