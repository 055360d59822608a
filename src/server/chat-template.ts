/**
 * Chat messages → prompt text through the model's own Jinja chat template (tokenizer_config.json),
 * rendered with @huggingface/jinja as transformers' apply_chat_template would.
 */
import { Template } from '@huggingface/jinja';
import type { EngineClient } from '../engine/types.ts';
import { badRequest } from './errors.ts';
import type { ChatMessage } from './schemas.ts';

/** Parsed templates by source text: a template is parsed once, rendered per request. */
const parsedTemplates = new Map<string, Template>();

function parseTemplate(source: string): Template {
  let template = parsedTemplates.get(source);
  if (!template) {
    template = new Template(source);
    parsedTemplates.set(source, template);
  }
  return template;
}

/** Text parts are joined with newlines, as vLLM does for text-only content lists. */
function contentText(content: ChatMessage['content']): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => part.text).join('\n');
}

export function renderChatPrompt(engine: EngineClient, messages: ChatMessage[], addGenerationPrompt: boolean): string {
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
    template = parseTemplate(chatTemplate.template);
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
