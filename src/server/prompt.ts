/**
 * Prompts as requests give them (text, texts, ids, lists of ids, chat messages) → token ids,
 * tokenized here rather than in the engine so that length and vocabulary are checked before
 * anything is queued or streamed.
 */
import type { EngineClient } from '../engine/types.ts';
import { renderChatPrompt } from './chat-template.ts';
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

export async function resolveCompletionPrompts(engine: EngineClient, prompt: CompletionRequest['prompt']): Promise<ResolvedPrompt[]> {
  let prompts: ResolvedPrompt[];
  if (typeof prompt === 'string') {
    prompts = [await tokenizeText(engine, prompt, true, 'prompt')];
  } else if (isTokenIdList(prompt)) {
    prompts = [{ tokenIds: prompt, text: null }];
  } else if (typeof prompt[0] === 'string') {
    prompts = await Promise.all((prompt as string[]).map((text) => tokenizeText(engine, text, true, 'prompt')));
  } else {
    prompts = (prompt as number[][]).map((tokenIds) => ({ tokenIds, text: null }));
  }
  for (const { tokenIds } of prompts) checkTokenIdsInVocab(tokenIds, engine.vocabSize, 'prompt');
  return prompts;
}

/** The chat template already writes BOS where the model wants it, so none is added here. */
export async function resolveChatPrompt(engine: EngineClient, messages: ChatMessage[], addGenerationPrompt: boolean): Promise<ResolvedPrompt> {
  const text = renderChatPrompt(engine, messages, addGenerationPrompt);
  return tokenizeText(engine, text, false, 'messages');
}
