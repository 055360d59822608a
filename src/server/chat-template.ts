/**
 * Chat messages → prompt text through the model's own Jinja chat template (tokenizer_config.json),
 * rendered with @huggingface/jinja as transformers' apply_chat_template would. The template was
 * parsed when the engine read it (a broken one fails start-up): here it is only rendered.
 */
import type { Template } from '@huggingface/jinja';
import { parseChatTemplate } from '../engine/tokenizer-config.ts';
import type { EngineClient } from '../engine/types.ts';
import { badRequest } from './errors.ts';
import type { ChatMessage } from './schemas.ts';

/** Text parts are joined with newlines, as vLLM does for text-only content lists. */
function contentText(content: ChatMessage['content']): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => part.text).join('\n');
}

export function renderChatPrompt(engine: Pick<EngineClient, 'modelName' | 'chatTemplate'>, messages: ChatMessage[], addGenerationPrompt: boolean): string {
  const chatTemplate = engine.chatTemplate;
  if (chatTemplate === null) {
    throw badRequest(
      `the model ${engine.modelName} has no chat template (tokenizer_config.json has no chat_template); use /v1/completions`,
      'messages',
      'chat_template_missing',
    );
  }
  let template: Template;
  try {
    // The engine's start-up parse is cached: this is a lookup (an EngineClient that did not read
    // tokenizer_config.json, e.g. a test's fake, has its template parsed on first use).
    template = parseChatTemplate(chatTemplate.template);
  } catch (err) {
    throw new Error(`the model's chat template does not parse: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return template.render({
      messages: messages.map((message) => ({ ...message, content: contentText(message.content) })),
      add_generation_prompt: addGenerationPrompt,
      bos_token: chatTemplate.bosToken,
      eos_token: chatTemplate.eosToken,
    });
  } catch (err) {
    // Templates raise on conversations they do not accept (e.g. roles that do not alternate).
    throw badRequest(`the chat template rejected the messages: ${err instanceof Error ? err.message : String(err)}`, 'messages', 'invalid_value');
  }
}
