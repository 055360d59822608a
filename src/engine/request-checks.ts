/**
 * The checks addRequest makes before anything is queued. The server validates request
 * bodies first; these guard the library API too and hold what only the engine knows
 * (context length, vocabulary, KV cache size). Messages follow vLLM's wording.
 */
import { EngineInputError, type SamplingParams } from './types.ts';

export interface RequestLimits {
  maxModelLen: number;
  vocabSize: number;
  maxLogprobs: number;
}

export function checkRequest(promptTokenIds: readonly number[], params: SamplingParams, limits: RequestLimits): void {
  const numPromptTokens = promptTokenIds.length;
  if (numPromptTokens === 0) throw new EngineInputError('The prompt cannot be empty.', 'prompt');
  for (const id of promptTokenIds) {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) {
      throw new EngineInputError(`Token id ${id} is out of vocabulary (vocab size ${limits.vocabSize}).`, 'prompt');
    }
  }
  checkParams(params, limits);
  const max = limits.maxModelLen;
  if (numPromptTokens >= max) {
    throw new EngineInputError(
      `This model's maximum context length is ${max} tokens. However, your request has ${numPromptTokens} input tokens. ` +
        'Please reduce the length of the input messages.',
      'prompt',
    );
  }
  if (numPromptTokens + params.maxTokens > max) {
    throw new EngineInputError(
      `This model's maximum context length is ${max} tokens. However, you requested ${numPromptTokens + params.maxTokens} tokens ` +
        `(${numPromptTokens} in the messages, ${params.maxTokens} in the completion). ` +
        'Please reduce the length of the messages or completion.',
      'max_tokens',
    );
  }
}

function checkParams(p: SamplingParams, limits: RequestLimits): void {
  const fail = (param: string, message: string): never => {
    throw new EngineInputError(message, param);
  };
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 1) fail('max_tokens', `max_tokens must be at least 1, got ${p.maxTokens}.`);
  if (!Number.isInteger(p.minTokens) || p.minTokens < 0) fail('min_tokens', `min_tokens must be greater than or equal to 0, got ${p.minTokens}.`);
  if (p.minTokens > p.maxTokens) fail('min_tokens', `min_tokens must be less than or equal to max_tokens=${p.maxTokens}, got ${p.minTokens}.`);
  if (!(p.temperature >= 0)) fail('temperature', `temperature must be non-negative, got ${p.temperature}.`);
  if (!(p.topP > 0 && p.topP <= 1)) fail('top_p', `top_p must be in (0, 1], got ${p.topP}.`);
  if (!Number.isInteger(p.topK) || p.topK < -1) fail('top_k', `top_k must be -1 (disable), or at least 1, got ${p.topK}.`);
  if (!(p.minP >= 0 && p.minP <= 1)) fail('min_p', `min_p must be in [0, 1], got ${p.minP}.`);
  if (!(p.repetitionPenalty > 0)) fail('repetition_penalty', `repetition_penalty must be greater than zero, got ${p.repetitionPenalty}.`);
  if (!(p.presencePenalty >= -2 && p.presencePenalty <= 2)) fail('presence_penalty', `presence_penalty must be in [-2, 2], got ${p.presencePenalty}.`);
  if (!(p.frequencyPenalty >= -2 && p.frequencyPenalty <= 2)) fail('frequency_penalty', `frequency_penalty must be in [-2, 2], got ${p.frequencyPenalty}.`);
  if (p.logprobs !== null && (!Number.isInteger(p.logprobs) || p.logprobs < 0 || p.logprobs > limits.maxLogprobs)) {
    fail('logprobs', `Requested sample logprobs of ${p.logprobs}, which is greater than max allowed: ${limits.maxLogprobs}`);
  }
  for (const id of p.stopTokenIds) {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) fail('stop_token_ids', `stop_token_ids contains ${id}, outside the vocabulary.`);
  }
  if (p.seed !== undefined && !Number.isSafeInteger(p.seed)) fail('seed', `seed must be an integer, got ${p.seed}.`);
  if (p.logitBias !== undefined) checkLogitBias(p.logitBias, limits.vocabSize);
}

/** vLLM's checks of logit_bias (its engine's _validate_logit_bias), plus the value range OpenAI documents. */
function checkLogitBias(logitBias: Readonly<Record<number, number>>, vocabSize: number): void {
  const outside: string[] = [];
  for (const [key, value] of Object.entries(logitBias)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) outside.push(key);
    // vLLM's server clamps to [-100, 100] before this (src/server/sampling.ts does too); a
    // library caller gets told instead, and NaN or ±Infinity would poison the row's softmax.
    if (typeof value !== 'number' || !(value >= -100 && value <= 100)) {
      throw new EngineInputError(`logit_bias values must be numbers in [-100, 100], got ${value} for token id ${key}.`, 'logit_bias');
    }
  }
  if (outside.length > 0) {
    throw new EngineInputError(
      `token_id(s) [${outside.join(', ')}] in logit_bias contain out-of-vocab token ids. Vocabulary size: ${vocabSize}`,
      'logit_bias',
    );
  }
}
