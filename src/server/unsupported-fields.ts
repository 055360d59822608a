/**
 * Request fields that vLLM (or one of its versions) honours and Spindle cannot: ignoring them as
 * unknown would quietly return something other than what was asked for (free text instead of
 * JSON, one sample instead of the best of several), so each is refused with a 400 naming it.
 * Their schemas are spread into schemas.ts; the refusals run before anything is tokenized.
 */
import { z } from 'zod';
import { badRequest } from './errors.ts';

/**
 * vLLM's guided-decoding fields. Current vLLM replaced them with `structured_outputs` (and now
 * ignores them as unknown), but clients written for earlier versions still send them, expecting
 * constrained output. Any type is accepted here: whatever the value, it is refused.
 */
const GUIDED_FIELDS = ['guided_json', 'guided_regex', 'guided_choice', 'guided_grammar', 'structural_tag', 'structured_outputs'] as const;

const refusedValue = z.unknown().optional();

/** Fields both /v1/completions and /v1/chat/completions refuse (when set to more than a no-op). */
export const refusedFields = {
  // Only {"type": "text"} is what Spindle does anyway; other types ask for constrained decoding.
  response_format: z.object({ type: z.string({ error: 'response_format.type must be a string' }) }, { error: 'response_format must be an object with a type' }).loose().nullish(),
  guided_json: refusedValue,
  guided_regex: refusedValue,
  guided_choice: refusedValue,
  guided_grammar: refusedValue,
  structural_tag: refusedValue,
  structured_outputs: refusedValue,
  prompt_logprobs: refusedValue,
  use_beam_search: z.boolean().nullish(),
  // vLLM's V0 bound; V1 dropped best_of altogether (ignoring it), so only best_of > n is refused.
  best_of: z.number().int().min(1, { error: 'best_of must be at least 1' }).nullish(),
};

/** Only /v1/completions: vLLM declares suffix (OpenAI's insertion) and refuses it. */
export const refusedCompletionFields = {
  suffix: z.string().nullish(),
};

type RefusedFields = { [K in keyof typeof refusedFields]?: z.infer<(typeof refusedFields)[K]> } & { n?: number | null };

const isSet = (value: unknown): boolean => value !== undefined && value !== null;

export function refuseUnsupportedFields(body: RefusedFields & { suffix?: string | null }): void {
  // vLLM's own wording: it rejects suffix the same way.
  if (isSet(body.suffix)) throw badRequest('suffix is not currently supported', 'suffix', 'unsupported');
  const responseType = body.response_format?.type;
  if (responseType !== undefined && responseType !== 'text') {
    throw badRequest(
      `response_format ${JSON.stringify({ type: responseType })} is not supported: structured outputs (constrained decoding) are not implemented; only {"type": "text"} is accepted`,
      'response_format',
      'unsupported',
    );
  }
  for (const field of GUIDED_FIELDS) {
    if (isSet(body[field])) {
      throw badRequest(`${field} is not supported: structured outputs (guided decoding) are not implemented`, field, 'unsupported');
    }
  }
  if (isSet(body.prompt_logprobs)) {
    throw badRequest('prompt_logprobs is not supported: prompt logprobs are not computed', 'prompt_logprobs', 'unsupported');
  }
  if (body.use_beam_search) {
    throw badRequest('use_beam_search is not supported: beam search is not implemented', 'use_beam_search', 'unsupported');
  }
  const n = body.n ?? 1;
  if (body.best_of !== undefined && body.best_of !== null && body.best_of > n) {
    throw badRequest(
      `best_of (${body.best_of}) greater than n (${n}) is not supported: only the n sequences returned are generated, none is chosen among more`,
      'best_of',
      'unsupported',
    );
  }
}
