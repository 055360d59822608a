/**
 * Prompts as requests give them (text, texts, ids, lists of ids, chat messages) → token ids,
 * tokenized here rather than in the engine so that length and vocabulary are checked before
 * anything is queued or streamed.
 */
import type { EngineClient } from '../engine/types.ts';
import { type ChatTemplateOptions, renderChatPrompt } from './chat-template.ts';
import { badRequest } from './errors.ts';
import { checkTokenIdsInVocab } from './sampling.ts';
import type { ChatMessage, CompletionRequest } from './schemas.ts';

export interface ResolvedPrompt {
  tokenIds: number[];
  /** The text as given or rendered; null for token-id prompts (decoded on demand, e.g. for echo). */
  text: string | null;
}

function isTokenIdList(prompt: CompletionRequest['prompt']): prompt is number[] {
  return Array.isArray(prompt) && typeof prompt[0] === 'number';
}

async function tokenizeText(engine: EngineClient, text: string, addSpecialTokens: boolean, param: string): Promise<ResolvedPrompt> {
  const tokenIds = await engine.tokenize(text, addSpecialTokens);
  if (tokenIds.length === 0) throw badRequest(`${param} is empty after tokenization`, param, 'invalid_value');
  return { tokenIds, text };
}

/** addSpecialTokens (vLLM's add_special_tokens, default true) applies to text prompts; token ids are taken as given. */
export async function resolveCompletionPrompts(engine: EngineClient, prompt: CompletionRequest['prompt'], addSpecialTokens = true): Promise<ResolvedPrompt[]> {
  let prompts: ResolvedPrompt[];
  if (typeof prompt === 'string') {
    prompts = [await tokenizeText(engine, prompt, addSpecialTokens, 'prompt')];
  } else if (isTokenIdList(prompt)) {
    prompts = [{ tokenIds: prompt, text: null }];
  } else if (typeof prompt[0] === 'string') {
    prompts = await Promise.all((prompt as string[]).map((text) => tokenizeText(engine, text, addSpecialTokens, 'prompt')));
  } else {
    prompts = (prompt as number[][]).map((tokenIds) => ({ tokenIds, text: null }));
  }
  for (const { tokenIds } of prompts) checkTokenIdsInVocab(tokenIds, engine.vocabSize, 'prompt');
  return prompts;
}

/**
 * The chat template already writes BOS where the model wants it, so by default (vLLM's
 * add_special_tokens: false) the tokenizer adds none on top.
 */
export async function resolveChatPrompt(
  engine: EngineClient,
  messages: ChatMessage[],
  addGenerationPrompt: boolean,
  options: ChatTemplateOptions = {},
  addSpecialTokens = false,
): Promise<ResolvedPrompt> {
  const text = renderChatPrompt(engine, messages, addGenerationPrompt, options);
  return tokenizeText(engine, text, addSpecialTokens, 'messages');
}

/**
 * vLLM's truncate_prompt_tokens: keep only the last k tokens of the prompt (-1: max_model_len of
 * them), so an over-long prompt is cut from the left instead of refused. A truncated prompt has
 * no text of its own any more: echo decodes the tokens the model saw.
 */
export function truncatePrompt(prompt: ResolvedPrompt, truncateTokens: number | null | undefined, maxModelLen: number): ResolvedPrompt {
  if (truncateTokens === undefined || truncateTokens === null) return prompt;
  const keep = truncateTokens === -1 ? maxModelLen : truncateTokens;
  if (keep > maxModelLen) {
    throw badRequest(
      `truncate_prompt_tokens value (${keep}) is greater than max_model_len (${maxModelLen}). Please, select a smaller truncation size.`,
      'truncate_prompt_tokens',
      'invalid_value',
    );
  }
  if (prompt.tokenIds.length <= keep) return prompt;
  return { tokenIds: prompt.tokenIds.slice(prompt.tokenIds.length - keep), text: null };
}

