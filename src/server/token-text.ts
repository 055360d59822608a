/**
 * The text of single tokens, for logprobs (`tokens`, `top_logprobs` keys). Each id is decoded
 * once through the engine's tokenizer and remembered: a vocabulary is at most a few 100k entries.
 */
import type { EngineClient } from '../engine/types.ts';

export class TokenTextCache {
  readonly #engine: EngineClient;
  readonly #textById = new Map<number, string>();

  constructor(engine: EngineClient) {
    this.#engine = engine;
  }

  /** Texts of the given ids, in order. */
  async textsOf(tokenIds: readonly number[]): Promise<string[]> {
    const missing = [...new Set(tokenIds.filter((id) => !this.#textById.has(id)))];
    const decoded = await Promise.all(missing.map((id) => this.#engine.detokenize([id])));
    missing.forEach((id, i) => this.#textById.set(id, decoded[i]));
    return tokenIds.map((id) => this.#textById.get(id) ?? '');
  }
}
