/**
 * The chat request fields that change how the conversation is rendered through the model's chat
 * template, as vLLM reads them: chat_template_kwargs, continue_final_message, tools and
 * tool_choice. Their schemas live here (spread into schemas.ts) together with the checks that
 * need more than one field, so that every refusal is decided before anything is tokenized.
 */
import { z } from 'zod';
import type { ChatTemplateOptions, TemplateTool } from './chat-template.ts';
import { badRequest } from './errors.ts';

/** vLLM's FunctionDefinition: extra keys (OpenAI's `strict`) are kept and reach the template. */
const functionSchema = z
  .object({
    name: z.string({ error: 'a tool needs function.name, a string' }),
    description: z.string({ error: 'function.description must be a string' }).nullish(),
    parameters: z.record(z.string(), z.unknown(), { error: 'function.parameters must be a JSON schema object' }).nullish(),
  })
  .loose();

const toolSchema = z
  .object({
    // vLLM accepts only function tools, "function" when omitted.
    type: z.literal('function', { error: 'only "function" tools exist' }).optional(),
    function: functionSchema,
  })
  .loose();
export type ToolParam = z.infer<typeof toolSchema>;

const namedToolChoiceSchema = z.object({
  type: z.literal('function').optional(),
  function: z.object({ name: z.string().min(1) }),
});

/** Fields of /v1/chat/completions and of /tokenize's messages form. */
export const chatTemplateFields = {
  chat_template_kwargs: z
    .record(z.string(), z.unknown(), { error: 'chat_template_kwargs must be an object of template variables' })
    .nullish(),
  continue_final_message: z.boolean().nullish(),
  tools: z.array(toolSchema, { error: 'tools must be a list of {"type": "function", "function": {...}} objects' }).nullish(),
};

/** Only /v1/chat/completions: /tokenize has no tool_choice in vLLM (its tools always reach the template). */
export const toolChoiceField = {
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), namedToolChoiceSchema], {
      error: 'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}',
    })
    .nullish(),
};

export interface ChatTemplateRequest {
  add_generation_prompt?: boolean | null;
  chat_template_kwargs?: Record<string, unknown> | null;
  continue_final_message?: boolean | null;
  tools?: ToolParam[] | null;
}

/**
 * Template variables the renderer sets from the request's own fields. vLLM lets its top-level
 * fields silently win over chat_template_kwargs (older versions did the opposite), and refuses
 * `chat_template` and `tokenize`; a clear 400 beats either silent choice.
 */
const RESERVED_TEMPLATE_VARIABLES = ['messages', 'tools', 'add_generation_prompt', 'continue_final_message', 'chat_template', 'tokenize'];

/**
 * A tool as vLLM hands it to the template (pydantic's model_dump): type and the function's
 * name, description and parameters first and always present (null when not given), then any
 * extra keys. Templates print tools with tojson, so key order and nulls are part of the prompt.
 */
function templateTool(tool: ToolParam): TemplateTool {
  const { type: _type, function: fn, ...extraToolKeys } = tool;
  const { name, description, parameters, ...extraFunctionKeys } = fn;
  return {
    type: 'function',
    function: { name, description: description ?? null, parameters: parameters ?? null, ...extraFunctionKeys },
    ...extraToolKeys,
  };
}

function resolveAddGenerationPrompt(body: ChatTemplateRequest): boolean {
  const addGenerationPrompt = body.add_generation_prompt ?? true;
  if (body.continue_final_message && addGenerationPrompt) {
    // vLLM refuses the pair when add_generation_prompt is sent as true; when it is left out, its
    // default (true) reaches transformers, which refuses the pair too. Either way the client must
    // send add_generation_prompt: false, so say so.
    const hint = body.add_generation_prompt === true ? '' : ' add_generation_prompt defaults to true: send add_generation_prompt: false with continue_final_message: true.';
    throw badRequest(`Cannot set both \`continue_final_message\` and \`add_generation_prompt\` to True.${hint}`, 'continue_final_message', 'invalid_value');
  }
  return addGenerationPrompt;
}

function resolveTemplateKwargs(kwargs: Record<string, unknown> | null | undefined): Record<string, unknown> {
  if (!kwargs) return {};
  const reserved = RESERVED_TEMPLATE_VARIABLES.filter((name) => Object.hasOwn(kwargs, name));
  if (reserved.length > 0) {
    throw badRequest(
      `chat_template_kwargs must not set ${reserved.join(', ')}: ` +
        'messages, tools, add_generation_prompt and continue_final_message come from the request fields of those names, ' +
        'and chat_template and tokenize are refused here as vLLM refuses them',
      'chat_template_kwargs',
      'invalid_value',
    );
  }
  return kwargs;
}

/** How /tokenize renders messages: as chat, but its tools always reach the template (no tool_choice). */
export function templateOptions(body: ChatTemplateRequest): { addGenerationPrompt: boolean; options: ChatTemplateOptions } {
  return {
    addGenerationPrompt: resolveAddGenerationPrompt(body),
    options: {
      continueFinalMessage: body.continue_final_message ?? false,
      tools: body.tools ? body.tools.map(templateTool) : null,
      extraVariables: resolveTemplateKwargs(body.chat_template_kwargs),
    },
  };
}

export type ToolChoice = z.infer<typeof toolChoiceField.tool_choice>;

/**
 * vLLM's reading of tools + tool_choice, with what Spindle cannot do refused: it has no tool-call
 * parser and no guided decoding, so only "none" is served: the tools reach the template (the model
 * sees them, as in vLLM) and the answer is returned as text, parsed for nothing.
 */
function checkToolChoice(tools: ToolParam[] | null | undefined, toolChoice: ToolChoice): ToolParam[] | null | undefined {
  // vLLM: tool_choice defaults to "none", or to "auto" when a non-empty tools list is given; an
  // explicit null is not validated and acts as "none".
  const choice = toolChoice === undefined ? (tools && tools.length > 0 ? 'auto' : 'none') : toolChoice;
  if (choice === null || choice === 'none') return tools;
  if (tools === null || tools === undefined) {
    throw badRequest('When using `tool_choice`, `tools` must be set.', 'tool_choice', 'invalid_value');
  }
  // As vLLM (after OpenAI): "required" over an empty tools list means "none", without tools.
  if (choice === 'required' && tools.length === 0) return null;
  if (choice === 'auto') {
    throw badRequest(
      '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set, as vLLM answers without them ' +
        '(tool_choice defaults to "auto" when tools are given). Spindle has no tool-call parser: ' +
        'send tool_choice "none" to show the tools to the model through the chat template and get its answer as text.',
      'tool_choice',
      'unsupported',
    );
  }
  if (choice === 'required') {
    throw badRequest(
      'tool_choice "required" is not supported: Spindle has no guided decoding to force a tool call, nor a tool-call parser. Use tool_choice "none".',
      'tool_choice',
      'unsupported',
    );
  }
  if (!tools.some((tool) => tool.function.name === choice.function.name)) {
    throw badRequest('The tool specified in `tool_choice` does not match any of the specified `tools`', 'tool_choice', 'invalid_value');
  }
  throw badRequest(
    `tool_choice naming the function "${choice.function.name}" is not supported: Spindle has no guided decoding to force a tool call, nor a tool-call parser. Use tool_choice "none".`,
    'tool_choice',
    'unsupported',
  );
}

/** The chat endpoint's template options: tool_choice checked first, then as /tokenize. */
export function chatTemplateOptions(body: ChatTemplateRequest & { tool_choice?: ToolChoice }): { addGenerationPrompt: boolean; options: ChatTemplateOptions } {
  const tools = checkToolChoice(body.tools, body.tool_choice);
  return templateOptions({ ...body, tools });
}
