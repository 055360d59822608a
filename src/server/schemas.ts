/**
 * Request bodies of the OpenAI-compatible endpoints, as zod schemas. Field names and ranges follow
 * vLLM's protocol; unknown fields are stripped (ignored), as OpenAI clients send extras freely.
 * Checks that need more than one field (min_tokens ≤ max_tokens, context length) live in sampling.ts.
 * Fields that change how chat is rendered are in chat-options.ts; those that would change the
 * answer and that Spindle cannot honour are refused, not ignored (unsupported-fields.ts).
 */
import { z } from 'zod';
import { chatTemplateFields, toolChoiceField } from './chat-options.ts';
import { refusedCompletionFields, refusedFields } from './unsupported-fields.ts';

/** vLLM caps the alternatives per token at 20, as OpenAI does. */
export const MAX_TOP_LOGPROBS = 20;
/** Guards the server against one request fanning out into thousands of sequences. */
export const MAX_N = 128;

const tokenId = z.number().int().min(0, { error: 'token ids must be non-negative integers' });

/** A JSON object key that Python's int() reads (vLLM converts logit_bias keys with it), less its `_` separators. */
const INTEGER_KEY = /^\s*[+-]?\d+\s*$/;

/**
 * OpenAI's logit_bias: {"token id": bias}. Keys must be integers and values numbers (every
 * issue is reported under `logit_bias`, the field the client sent); sampling.ts checks the
 * ids against the vocabulary and clamps the values to [-100, 100], as vLLM does.
 */
const logitBias = z
  .record(z.string(), z.unknown(), { error: 'logit_bias must be an object mapping token ids to numbers' })
  .transform((bias, ctx) => {
    const checked: Record<string, number> = {};
    for (const [key, value] of Object.entries(bias)) {
      if (!INTEGER_KEY.test(key)) {
        ctx.addIssue({ code: 'custom', message: `Found token_id \`${key}\` in logit_bias but token_id must be an integer or string representing an integer` });
        return z.NEVER;
      }
      // JSON has no NaN or Infinity, but 1e999 parses to Infinity.
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        ctx.addIssue({ code: 'custom', message: `logit_bias values must be finite numbers, got ${typeof value === 'number' ? value : (JSON.stringify(value) ?? typeof value)} for token_id ${key}` });
        return z.NEVER;
      }
      checked[key] = value;
    }
    return checked;
  });

/** Fields shared by /v1/completions and /v1/chat/completions. */
const samplingFields = {
  model: z.string().nullish(),
  max_tokens: z.number().int().min(1, { error: 'max_tokens must be at least 1' }).nullish(),
  temperature: z.number().min(0, { error: 'temperature must be non-negative' }).nullish(),
  top_p: z.number().gt(0, { error: 'top_p must be in (0, 1]' }).max(1, { error: 'top_p must be in (0, 1]' }).nullish(),
  top_k: z.number().int().min(-1, { error: 'top_k must be -1 or 0 (disabled) or a positive integer' }).nullish(),
  min_p: z.number().min(0, { error: 'min_p must be in [0, 1]' }).max(1, { error: 'min_p must be in [0, 1]' }).nullish(),
  n: z.number().int().min(1, { error: 'n must be at least 1' }).max(MAX_N, { error: `n must be at most ${MAX_N}` }).nullish(),
  stop: z.union([z.string(), z.array(z.string())], { error: 'stop must be a string or a list of strings' }).nullish(),
  stop_token_ids: z.array(tokenId).nullish(),
  logit_bias: logitBias.nullish(),
  // Any integer, as vLLM (int64; negatives wrap as int64 does in src/engine/rng.ts); JSON numbers are exact up to 2^53.
  seed: z.number().int({ error: 'seed must be an integer' }).min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullish(),
  presence_penalty: z.number().min(-2, { error: 'presence_penalty must be in [-2, 2]' }).max(2, { error: 'presence_penalty must be in [-2, 2]' }).nullish(),
  frequency_penalty: z.number().min(-2, { error: 'frequency_penalty must be in [-2, 2]' }).max(2, { error: 'frequency_penalty must be in [-2, 2]' }).nullish(),
  // vLLM bounds it only below (> 0); 1 = off.
  repetition_penalty: z.number().gt(0, { error: 'repetition_penalty must be greater than 0' }).nullish(),
  ignore_eos: z.boolean().nullish(),
  min_tokens: z.number().int().min(0, { error: 'min_tokens must be non-negative' }).nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  spaces_between_special_tokens: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  // continuous_usage_stats (vLLM): with include_usage, every chunk carries its choice's usage so far.
  stream_options: z.object({ include_usage: z.boolean().nullish(), continuous_usage_stats: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  // vLLM: keep the prompt's last k tokens (-1: max_model_len).
  truncate_prompt_tokens: z
    .number()
    .int({ error: 'truncate_prompt_tokens must be an integer' })
    .refine((k) => k === -1 || k >= 1, { error: 'truncate_prompt_tokens must be -1 or at least 1' })
    .nullish(),
};

const promptSchema = z.union([
  z.string(),
  z.array(z.string()).min(1, { error: 'prompt must not be an empty list' }),
  z.array(tokenId).min(1, { error: 'prompt must not be an empty list' }),
  z.array(z.array(tokenId).min(1, { error: 'a token-id prompt must not be empty' })).min(1, { error: 'prompt must not be an empty list' }),
], {
  error: (issue) =>
    issue.input === undefined
      ? 'prompt is required'
      : 'prompt must be a string, a non-empty list of strings, of token ids or of token-id lists',
});

export const completionRequestSchema = z.object({
  ...samplingFields,
  prompt: promptSchema,
  logprobs: z.number().int().min(0, { error: 'logprobs must be in [0, 20]' }).max(MAX_TOP_LOGPROBS, { error: `logprobs must be in [0, ${MAX_TOP_LOGPROBS}]` }).nullish(),
  echo: z.boolean().nullish(),
  // vLLM's default for completions: the tokenizer adds BOS etc. to a text prompt.
  add_special_tokens: z.boolean().nullish(),
  ...refusedFields,
  ...refusedCompletionFields,
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

const textPartSchema = z.object({ type: z.literal('text'), text: z.string() });
/** A tool call an assistant message made earlier in the conversation (OpenAI's shape). */
const toolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function', { error: 'a tool call\'s type must be "function"' }).optional(),
  function: z.object({ name: z.string(), arguments: z.string().nullish() }),
});

const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool'], { error: 'role must be one of system, developer, user, assistant, tool' }),
  content: z.union([z.string(), z.array(textPartSchema), z.null()], { error: 'content must be a string or a list of text parts' }).optional(),
  name: z.string().optional(),
  // Replayed tool use (with tool_choice "none" the template still renders past calls and results).
  tool_calls: z.array(toolCallSchema, { error: 'tool_calls must be a list of {id, type: "function", function: {name, arguments}}' }).nullish(),
  tool_call_id: z.string().nullish(),
});
export type ChatMessage = z.infer<typeof messageSchema>;

export const chatRequestSchema = z.object({
  ...samplingFields,
  messages: z
    .array(messageSchema, { error: (issue) => (issue.input === undefined ? 'messages is required' : 'messages must be a list of chat messages') })
    .min(1, { error: 'messages must not be empty' }),
  max_completion_tokens: z.number().int().min(1, { error: 'max_completion_tokens must be at least 1' }).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0, { error: 'top_logprobs must be in [0, 20]' }).max(MAX_TOP_LOGPROBS, { error: `top_logprobs must be in [0, ${MAX_TOP_LOGPROBS}]` }).nullish(),
  add_generation_prompt: z.boolean().nullish(),
  // vLLM's chat default is false: the template already writes BOS where the model wants it.
  add_special_tokens: z.boolean().nullish(),
  ...chatTemplateFields,
  ...toolChoiceField,
  ...refusedFields,
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export const tokenizeRequestSchema = z.union([
  z.object({ model: z.string().nullish(), prompt: z.string(), add_special_tokens: z.boolean().nullish() }),
  z.object({
    model: z.string().nullish(),
    messages: z.array(messageSchema).min(1, { error: 'messages must not be empty' }),
    add_generation_prompt: z.boolean().nullish(),
    add_special_tokens: z.boolean().nullish(),
    ...chatTemplateFields,
  }),
], { error: 'tokenize takes either prompt (a string) or messages (a list of chat messages)' });
export type TokenizeRequest = z.infer<typeof tokenizeRequestSchema>;

export const detokenizeRequestSchema = z.object({
  model: z.string().nullish(),
  tokens: z.array(tokenId),
});
