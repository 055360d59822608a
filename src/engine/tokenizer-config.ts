/**
 * The chat template and its special tokens, read from a model's tokenizer_config.json. The
 * template is parsed (@huggingface/jinja) as it is read, so one that does not parse fails the
 * engine's start-up; the server renders the parsed template per request.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { z } from 'zod';
import { readJsonFile } from './json-file.ts';

export interface ChatTemplate {
  template: string;
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

/**
 * Reads tokenizerDir/tokenizer_config.json; null when it (or its chat_template) is absent.
 * Throws, naming the file, when the template does not parse.
 */
export async function readChatTemplate(tokenizerDir: string): Promise<ChatTemplate | null> {
  const file = path.join(tokenizerDir, 'tokenizer_config.json');
  if (!existsSync(file)) return null;
  const config = await readJsonFile(file, tokenizerConfigSchema);
  const raw = config.chat_template;
  if (raw === undefined || raw === null) return null;
  const template = typeof raw === 'string' ? raw : (raw.find((t) => t.name === 'default') ?? raw[0])?.template;
  if (template === undefined) return null;
  try {
    parseChatTemplate(template);
  } catch (err) {
    throw new Error(`${file}: field 'chat_template' is not a valid Jinja template: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { template, bosToken: tokenText(config.bos_token), eosToken: tokenText(config.eos_token) };
}
