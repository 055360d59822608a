/**
 * The chat template and its special tokens, read from a model directory as transformers does:
 * chat_template.jinja when present (what transformers writes since 4.47), else the
 * chat_template of tokenizer_config.json (a string, or named templates). The templates are
 * parsed (@huggingface/jinja) as they are read, so one that does not parse fails the engine's
 * start-up; the server renders the parsed template per request.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { z } from 'zod';
import { readJsonFile } from './json-file.ts';

export interface ChatTemplate {
  template: string;
  /**
   * The template named 'tool_use' of a list of named templates, which transformers renders
   * instead of the default when the request gives tools; absent when there is none.
   */
  toolUseTemplate?: string;
  bosToken: string;
  eosToken: string;
}

// Special tokens are a string, an AddedToken object ({content: ...}) or null.
const specialToken = z.union([z.string(), z.object({ content: z.string() }).loose(), z.null()]).optional();

const tokenizerConfigSchema = z
  .object({
    // A single template, or named templates ([{name: 'default', template}, {name: 'tool_use', ...}]).
    chat_template: z.union([z.string(), z.array(z.object({ name: z.string(), template: z.string() }))]).nullish(),
    bos_token: specialToken,
    eos_token: specialToken,
  })
  .loose();

/** Parsed templates by source text: each is parsed once (when read), then only rendered. */
const parsedTemplates = new Map<string, Template>();

/** The parsed template, from the cache after the first call; throws jinja's error if it does not parse. */
export function parseChatTemplate(source: string): Template {
  let template = parsedTemplates.get(source);
  if (!template) {
    template = new Template(source);
    parsedTemplates.set(source, template);
  }
  return template;
}

function tokenText(token: z.infer<typeof specialToken>): string {
  if (token === undefined || token === null) return '';
  return typeof token === 'string' ? token : token.content;
}

/** Parses `source`, or throws naming `file` and the field with jinja's error. */
function checkTemplate(source: string, file: string, field: string): void {
  try {
    parseChatTemplate(source);
  } catch (err) {
    throw new Error(`${file}: ${field} is not a valid Jinja template: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * vLLM's --chat-template value: the path of a file holding the template, or the template itself
 * (it has Jinja markup); anything else is an error, as a path with a typo would otherwise be
 * served as a template that prints its own name.
 */
async function templateOfOverride(value: string): Promise<{ template: string; origin: string }> {
  if (existsSync(value)) return { template: await readFile(value, 'utf8'), origin: value };
  if (/\{[{%#]/.test(value)) return { template: value, origin: '--chat-template' };
  throw new Error(`--chat-template: '${value}' is neither a file nor a Jinja template`);
}

/**
 * Reads the chat template of the model in `tokenizerDir` (chat_template.jinja, else
 * tokenizer_config.json's chat_template), or `override` (--chat-template) instead, and the
 * special tokens of tokenizer_config.json; null when there is no template. Throws, naming the
 * file, when a template does not parse.
 */
export async function readChatTemplate(tokenizerDir: string, override?: string): Promise<ChatTemplate | null> {
  const file = path.join(tokenizerDir, 'tokenizer_config.json');
  const config = existsSync(file) ? await readJsonFile(file, tokenizerConfigSchema) : null;
  const tokens = { bosToken: tokenText(config?.bos_token), eosToken: tokenText(config?.eos_token) };
  if (override !== undefined) {
    const { template, origin } = await templateOfOverride(override);
    checkTemplate(template, origin, 'the template');
    return { template, ...tokens };
  }
  const jinjaFile = path.join(tokenizerDir, 'chat_template.jinja');
  if (existsSync(jinjaFile)) {
    const template = await readFile(jinjaFile, 'utf8');
    checkTemplate(template, jinjaFile, 'the template');
    return { template, ...tokens };
  }
  const raw = config?.chat_template;
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string') {
    checkTemplate(raw, file, "field 'chat_template'");
    return { template: raw, ...tokens };
  }
  const template = (raw.find((t) => t.name === 'default') ?? raw[0])?.template;
  if (template === undefined) return null;
  checkTemplate(template, file, "field 'chat_template'");
  const toolUseTemplate = raw.find((t) => t.name === 'tool_use')?.template;
  if (toolUseTemplate === undefined) return { template, ...tokens };
  checkTemplate(toolUseTemplate, file, "field 'chat_template' (tool_use)");
  return { template, toolUseTemplate, ...tokens };
}
