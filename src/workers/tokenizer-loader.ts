/**
 * Loads a Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json) with
 * @huggingface/tokenizers, once per directory per thread, and adds what incremental decoding needs:
 * an id → token-string table and the sets of added / special token ids.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

import type { DecodeParams } from './protocol.ts';

interface TokenizerConfigJson {
  additional_special_tokens?: (string | { content: string })[];
  [key: string]: unknown;
}

export interface LoadedTokenizer {
  readonly dir: string;
  readonly tokenizer: Tokenizer;
  /** Token string of each id (index = id); undefined past the vocabulary. */
  readonly tokenOfId: readonly (string | undefined)[];
  /** Added tokens (special or not) by id: decoded as their content, outside the decoder. */
  readonly addedTokenById: ReadonlyMap<number, string>;
  /** Ids dropped by skipSpecialTokens. */
  readonly specialIds: ReadonlySet<number>;
  readonly vocabSize: number;
  /** Decodes ids[start, end) with vLLM's slow-path semantics; never cleans up spaces. */
  decodeRange(ids: ArrayLike<number>, start: number, end: number, params: DecodeParams): string;
  encode(text: string, addSpecialTokens: boolean): number[];
}

const cache = new Map<string, LoadedTokenizer>();

export function loadTokenizer(dir: string): LoadedTokenizer {
  const key = path.resolve(dir);
  const cached = cache.get(key);
  if (cached) return cached;
  const loaded = buildTokenizer(key);
  cache.set(key, loaded);
  return loaded;
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

function buildTokenizer(dir: string): LoadedTokenizer {
  const tokenizerJson = readJson(path.join(dir, 'tokenizer.json'));
  const configPath = path.join(dir, 'tokenizer_config.json');
  let configJson: TokenizerConfigJson = {};
  try {
    configJson = readJson(configPath) as TokenizerConfigJson;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const tokenizer = new Tokenizer(tokenizerJson, configJson);

  const addedTokenById = new Map<number, string>();
  const specialIds = new Set<number>();
  for (const [id, token] of tokenizer.get_added_tokens_decoder()) {
    addedTokenById.set(id, token.content);
    if (token.special) specialIds.add(id);
  }
  for (const entry of configJson.additional_special_tokens ?? []) {
    const content = typeof entry === 'string' ? entry : entry.content;
    const id = tokenizer.token_to_id(content);
    if (id !== undefined) specialIds.add(id);
  }

  const vocab = tokenizer.get_vocab(true);
  let vocabSize = 0;
  for (const id of vocab.values()) vocabSize = Math.max(vocabSize, id + 1);
  const tokenOfId: (string | undefined)[] = new Array<string | undefined>(vocabSize);
  for (const [token, id] of vocab) tokenOfId[id] = token;

  // Runs handed to the decoder never contain added tokens (decodeRange splits them out), so the
  // decoder's own per-token linear search over added tokens is pure overhead: empty it.
  const decoder = tokenizer.decoder;
  if (decoder) decoder.added_tokens = [];

  const decodeRun = (tokens: string[]): string => {
    if (tokens.length === 0) return '';
    return decoder ? decoder(tokens) : tokens.join(' ');
  };

  return {
    dir,
    tokenizer,
    tokenOfId,
    addedTokenById,
    specialIds,
    vocabSize,
    decodeRange(ids, start, end, params) {
      // As HF's slow tokenizers (and vLLM's detokenizer): runs of ordinary tokens go through the
      // decoder; added tokens stand alone; sub-texts are joined by ' ' if spacesBetweenSpecialTokens.
      const subTexts: string[] = [];
      let run: string[] = [];
      for (let i = start; i < end; i++) {
        const id = ids[i];
        if (params.skipSpecialTokens && specialIds.has(id)) continue;
        const added = addedTokenById.get(id);
        if (added !== undefined) {
          if (run.length > 0) subTexts.push(decodeRun(run));
          run = [];
          subTexts.push(added);
          continue;
        }
        const token = tokenOfId[id];
        if (token !== undefined) run.push(token);
      }
      if (run.length > 0) subTexts.push(decodeRun(run));
      if (subTexts.length === 1) return subTexts[0];
      return subTexts.join(params.spacesBetweenSpecialTokens ? ' ' : '');
    },
    encode(text, addSpecialTokens) {
      return tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    },
  };
}
