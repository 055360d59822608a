/**
 * The text of single tokens, for logprobs (`tokens`, `top_logprobs` keys), as vLLM reports it:
 * what the token adds to text before it. Decoded alone, a SentencePiece token loses its leading
 * space ("▁upon" → "upon"), so each id is decoded after an anchor token whose text is then cut
 * off ("a upon" → " upon"). Each id is decoded once and remembered: a vocabulary is at most a few
 * 100k entries.
 */
import type { EngineClient } from '../engine/types.ts';

/** Tokenized without special tokens, its last id is the anchor (a plain word in every vocabulary). */
const ANCHOR_TEXT = 'a';

export class TokenTextCache {
  readonly #engine: EngineClient;
  readonly #textById = new Map<number, string>();
  #anchor: Promise<{ tokenId: number; text: string } | null> | null = null;

  constructor(engine: EngineClient) {
    this.#engine = engine;
  }

  /** Texts of the given ids, in order. */
  async textsOf(tokenIds: readonly number[]): Promise<string[]> {
    const missing = [...new Set(tokenIds.filter((id) => !this.#textById.has(id)))];
    if (missing.length > 0) {
      const anchor = await this.#anchorToken();
      const decoded = await Promise.all(missing.map((id) => this.#decodeInContext(id, anchor)));
      missing.forEach((id, i) => this.#textById.set(id, decoded[i]));
    }
    return tokenIds.map((id) => this.#textById.get(id) ?? '');
  }

  async #decodeInContext(tokenId: number, anchor: { tokenId: number; text: string } | null): Promise<string> {
    if (anchor !== null) {
      const text = await this.#engine.detokenize([anchor.tokenId, tokenId]);
      if (text.startsWith(anchor.text)) return text.slice(anchor.text.length);
    }
    return this.#engine.detokenize([tokenId]);
  }

  /** null when the tokenizer has no usable anchor: tokens are then decoded alone. */
  #anchorToken(): Promise<{ tokenId: number; text: string } | null> {
    this.#anchor ??= (async () => {
      const ids = await this.#engine.tokenize(ANCHOR_TEXT, false);
      const tokenId = ids.at(-1);
      if (tokenId === undefined) return null;
      const text = await this.#engine.detokenize([tokenId]);
      return text.length > 0 ? { tokenId, text } : null;
    })();
    // A failed look-up (the worker pool restarting) is retried by the next caller, not kept.
    this.#anchor.catch(() => {
      this.#anchor = null;
    });
    return this.#anchor;
  }
}
