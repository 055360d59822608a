/**
 * Chat messages → prompt text through the model's own Jinja chat template (tokenizer-config.ts),
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

/**
 * A message as the template receives it: text content, and past tool calls with their
 * arguments as objects, not JSON text, as vLLM hands them to templates (which write
 * `arguments | tojson`); empty arguments become {}.
 */
function templateMessage(message: ChatMessage, index: number): Record<string, unknown> {
  const { tool_calls: toolCalls, ...rest } = message;
  const out: Record<string, unknown> = { ...rest, content: contentText(message.content) };
  if (!toolCalls) return out;
  out.tool_calls = toolCalls.map((call, i) => {
    const text = call.function.arguments;
    let args: unknown = {};
    if (text) {
      try {
        args = JSON.parse(text) as unknown;
      } catch {
        throw badRequest(`messages[${index}].tool_calls[${i}].function.arguments is not valid JSON`, 'messages', 'invalid_value');
      }
    }
    return { ...call, type: 'function', function: { ...call.function, arguments: args } };
  });
  return out;
}

/** A tool as the template receives it (see templateTool in chat-options.ts). */
export interface TemplateTool {
  type: 'function';
  function: { name: string; description: string | null; parameters: Record<string, unknown> | null; [key: string]: unknown };
  [key: string]: unknown;
}

/** What chat requests may change in the render besides the messages (all off by default). */
export interface ChatTemplateOptions {
  /** Leave the last message open (no end-of-turn after it) for the model to continue it. */
  continueFinalMessage?: boolean;
  /** Tool definitions shown to the model; null (as transformers passes None) when none are given. */
  tools?: TemplateTool[] | null;
  /** chat_template_kwargs: extra template variables (e.g. Qwen3's enable_thinking). */
  extraVariables?: Record<string, unknown>;
}

/**
 * transformers' continue_final_message: cut the render right after the final message's content,
 * dropping whatever the template closes a turn with. Templates may trim the content (Llama 3
 * does), so it is looked for trimmed; its leading spacing is kept when the render kept it.
 * (JavaScript's trim and Python's strip differ only on exotic whitespace: \uFEFF, \x1c-\x1f.)
 */
function cutAfterFinalMessage(rendered: string, finalContent: string): string {
  const trimmed = finalContent.trim();
  const at = rendered.lastIndexOf(trimmed);
  if (at < 0) {
    throw badRequest(
      'continue_final_message is set but the final message does not appear in the chat after applying the chat template! ' +
        'This can happen if the chat template deletes portions of the final message.',
      'messages',
      'invalid_value',
    );
  }
  const leftTrimmed = finalContent.trimStart();
  const keepsSpacing = rendered.slice(at, at + leftTrimmed.length) === finalContent;
  return rendered.slice(0, at + (keepsSpacing ? leftTrimmed.length : trimmed.length));
}

export function renderChatPrompt(
  engine: Pick<EngineClient, 'modelName' | 'chatTemplate'>,
  messages: ChatMessage[],
  addGenerationPrompt: boolean,
  options: ChatTemplateOptions = {},
): string {
  const chatTemplate = engine.chatTemplate;
  if (chatTemplate === null) {
    throw badRequest(
      `the model ${engine.modelName} has no chat template (no chat_template.jinja, and tokenizer_config.json has no chat_template); ` +
        'use /v1/completions, or give the server one with --chat-template',
      'messages',
      'chat_template_missing',
    );
  }
  let template: Template;
  try {
    // The engine's start-up parse is cached: this is a lookup (an EngineClient that did not read
    // tokenizer_config.json, e.g. a test's fake, has its template parsed on first use).
    // As transformers: a model's 'tool_use' template, when it has one, renders requests with tools.
    const source = options.tools != null && chatTemplate.toolUseTemplate ? chatTemplate.toolUseTemplate : chatTemplate.template;
    template = parseChatTemplate(source);
  } catch (err) {
    throw new Error(`the model's chat template does not parse: ${err instanceof Error ? err.message : String(err)}`);
  }
  const templateMessages = messages.map(templateMessage);
  let rendered: string;
  try {
    rendered = template.render({
      // As transformers: the special tokens first, so chat_template_kwargs may override them; the
      // variables taken from request fields last (chat-options.ts refuses kwargs that name them).
      bos_token: chatTemplate.bosToken,
      eos_token: chatTemplate.eosToken,
      ...options.extraVariables,
      messages: templateMessages,
      add_generation_prompt: addGenerationPrompt,
      // null, not undefined, when none are given, as transformers passes None: in Jinja an
      // undefined `tools` passes `tools is not none`, and templates would render an empty tool block.
      tools: options.tools ?? null,
    });
  } catch (err) {
    // Templates raise on conversations they do not accept (e.g. roles that do not alternate).
    throw badRequest(`the chat template rejected the messages: ${err instanceof Error ? err.message : String(err)}`, 'messages', 'invalid_value');
  }
  const finalMessage = messages.at(-1);
  return options.continueFinalMessage && finalMessage ? cutAfterFinalMessage(rendered, contentText(finalMessage.content)) : rendered;
}
