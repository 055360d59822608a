/**
 * OpenAI/vLLM request fields → the engine's SamplingParams, with the checks that need the prompt:
 * context length (prompt + max_tokens ≤ max_model_len), ids inside the vocabulary, min ≤ max.
 * Everything here runs before a stream's first byte, so every refusal is a clean 400.
 */
import { DEFAULT_SAMPLING_PARAMS, type ModelSamplingDefaults, type SamplingParams } from '../engine/types.ts';
import { badRequest } from './errors.ts';

/** The sampling fields both endpoints share (see schemas.ts), already type-checked. */
export interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  /** Keys are integer strings, values finite (schemas.ts). */
  logit_bias?: Record<string, number> | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  ignore_eos?: boolean | null;
  min_tokens?: number | null;
  include_stop_str_in_output?: boolean | null;
  skip_special_tokens?: boolean | null;
  spaces_between_special_tokens?: boolean | null;
}

export interface TokenBudget {
  /** max_tokens as asked (chat: max_completion_tokens wins), or null. */
  requestedMaxTokens: number | null;
  /** Used when none is asked: 16 for completions, Infinity (= the rest of the context) for chat. */
  defaultMaxTokens: number;
  /** The model's max_new_tokens (generation config): caps every request, asked or not, as in vLLM. */
  modelMaxTokens?: number;
  numPromptTokens: number;
  maxModelLen: number;
  /** 'prompt' or 'messages': named in the error when the prompt alone is too long. */
  promptParam: string;
  maxTokensParam: string;
}

function contextLengthError(budget: TokenBudget, numRequested: number, maxTokens: number, param: string): Error {
  return badRequest(
    `This model's maximum context length is ${budget.maxModelLen} tokens. However, you requested ` +
      `${numRequested} tokens (${budget.numPromptTokens} in the ${budget.promptParam}, ${maxTokens} in the completion). ` +
      `Please reduce the length of the ${budget.promptParam} or completion.`,
    param,
    'context_length_exceeded',
  );
}

/** Resolves max_tokens: explicit values must fit the context; defaults shrink to what is left. */
export function resolveMaxTokens(budget: TokenBudget): number {
  const numLeft = budget.maxModelLen - budget.numPromptTokens;
  if (numLeft < 1) {
    throw contextLengthError(budget, budget.numPromptTokens + 1, 1, budget.promptParam);
  }
  const modelCap = budget.modelMaxTokens ?? Number.POSITIVE_INFINITY;
  if (budget.requestedMaxTokens === null) return Math.min(budget.defaultMaxTokens, numLeft, modelCap);
  if (budget.requestedMaxTokens > numLeft) {
    throw contextLengthError(budget, budget.numPromptTokens + budget.requestedMaxTokens, budget.requestedMaxTokens, budget.maxTokensParam);
  }
  return Math.min(budget.requestedMaxTokens, modelCap);
}

export function checkTokenIdsInVocab(tokenIds: readonly number[], vocabSize: number, param: string): void {
  const outside = tokenIds.find((id) => id >= vocabSize);
  if (outside !== undefined) {
    throw badRequest(`token id ${outside} is out of vocabulary (vocab_size ${vocabSize})`, param, 'invalid_value');
  }
}

/** The largest bias OpenAI documents; vLLM clamps to ±this rather than refusing. */
const MAX_LOGIT_BIAS = 100;

/**
 * logit_bias as the engine takes it: ids as numbers, values clamped to [-100, 100] (vLLM's
 * SamplingParams.from_optional does the same, so a client sending -1000 to ban a token still
 * works), ids checked against the vocabulary with vLLM's message. Empty = absent.
 */
export function toLogitBias(fields: Pick<SamplingFields, 'logit_bias'>, vocabSize: number): Record<number, number> | undefined {
  const entries = Object.entries(fields.logit_bias ?? {});
  if (entries.length === 0) return undefined;
  const logitBias: Record<number, number> = {};
  const outside: number[] = [];
  for (const [key, value] of entries) {
    const id = Number(key); // " 5", "+5" and "05" are 5, as Python's int() reads them
    if (id < 0 || id >= vocabSize) outside.push(id);
    logitBias[id] = Math.min(MAX_LOGIT_BIAS, Math.max(-MAX_LOGIT_BIAS, value));
  }
  if (outside.length > 0) {
    throw badRequest(
      `token_id(s) [${outside.join(', ')}] in logit_bias contain out-of-vocab token ids. Vocabulary size: ${vocabSize}`,
      'logit_bias',
      'invalid_value',
    );
  }
  return logitBias;
}

/**
 * `defaults`: the model's generation-config defaults, for the fields a request leaves out (then
 * vLLM's own defaults).
 */
export function toSamplingParams(
  fields: SamplingFields,
  maxTokens: number,
  logprobs: number | null,
  vocabSize: number,
  defaults: ModelSamplingDefaults = {},
): SamplingParams {
  const minTokens = fields.min_tokens ?? DEFAULT_SAMPLING_PARAMS.minTokens;
  if (minTokens > maxTokens) {
    throw badRequest(`min_tokens (${minTokens}) must not exceed max_tokens (${maxTokens})`, 'min_tokens', 'invalid_value');
  }
  const stopTokenIds = fields.stop_token_ids ?? [];
  checkTokenIdsInVocab(stopTokenIds, vocabSize, 'stop_token_ids');
  const stop = typeof fields.stop === 'string' ? [fields.stop] : (fields.stop ?? []);
  if (stop.some((s) => s.length === 0)) throw badRequest('stop strings must not be empty', 'stop', 'invalid_value');
  const topK = fields.top_k ?? defaults.topK ?? DEFAULT_SAMPLING_PARAMS.topK;
  return {
    maxTokens,
    minTokens,
    temperature: fields.temperature ?? defaults.temperature ?? DEFAULT_SAMPLING_PARAMS.temperature,
    topP: fields.top_p ?? defaults.topP ?? DEFAULT_SAMPLING_PARAMS.topP,
    topK: topK === -1 ? 0 : topK,
    minP: fields.min_p ?? defaults.minP ?? DEFAULT_SAMPLING_PARAMS.minP,
    presencePenalty: fields.presence_penalty ?? DEFAULT_SAMPLING_PARAMS.presencePenalty,
    frequencyPenalty: fields.frequency_penalty ?? DEFAULT_SAMPLING_PARAMS.frequencyPenalty,
    repetitionPenalty: fields.repetition_penalty ?? defaults.repetitionPenalty ?? DEFAULT_SAMPLING_PARAMS.repetitionPenalty,
    seed: fields.seed ?? undefined,
    stop,
    stopTokenIds,
    logitBias: toLogitBias(fields, vocabSize),
    includeStopStrInOutput: fields.include_stop_str_in_output ?? DEFAULT_SAMPLING_PARAMS.includeStopStrInOutput,
    ignoreEos: fields.ignore_eos ?? DEFAULT_SAMPLING_PARAMS.ignoreEos,
    logprobs,
    skipSpecialTokens: fields.skip_special_tokens ?? DEFAULT_SAMPLING_PARAMS.skipSpecialTokens,
    spacesBetweenSpecialTokens: fields.spaces_between_special_tokens ?? DEFAULT_SAMPLING_PARAMS.spacesBetweenSpecialTokens,
  };
}

/**
 * The params of sample i of n: a seeded request gives each sample its own seed (seed + i), so the
 * n samples differ yet the whole request stays reproducible.
 */
export function paramsForSample(params: SamplingParams, sampleIndex: number): SamplingParams {
  if (params.seed === undefined || sampleIndex === 0) return params;
  return { ...params, seed: params.seed + sampleIndex };
}
