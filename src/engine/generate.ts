/**
 * The offline batch API over any EngineClient: queue every prompt (tokenized first), fold each stream into a
 * RequestOutput, return them in prompt order. If one prompt is refused, or one request fails,
 * the others are aborted and that error is thrown.
 */
import { collectOutput } from './request-stream.ts';
import { DEFAULT_SAMPLING_PARAMS, type EngineClient, type PromptInput, type RequestDelta, type RequestOutput, type SamplingParams } from './types.ts';

export async function generateOutputs(
  client: Pick<EngineClient, 'addRequest' | 'abort' | 'tokenize'>,
  /** Unique per call: request ids are `${idPrefix}-${index}`. */
  idPrefix: string,
  prompts: readonly PromptInput[],
  params: Partial<SamplingParams> | readonly Partial<SamplingParams>[],
): Promise<RequestOutput[]> {
  const paramsOf = (i: number): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, ...(isParamsList(params) ? params[i] : params) });
  const ids = prompts.map((_, i) => `${idPrefix}-${i}`);
  // As vLLM's LLM.generate: tokenize first, then queue every request in one turn, so the first
  // step sees them all and a seeded run's schedule (and its draws) does not hang on tokenizer timing.
  const tokenized = await Promise.all(
    prompts.map(async (prompt): Promise<PromptInput> => (typeof prompt === 'string' ? { promptTokenIds: await client.tokenize(prompt, true) } : prompt)),
  );
  const added = await Promise.allSettled(tokenized.map((prompt, i) => client.addRequest(ids[i], prompt, paramsOf(i))));
  const failure = added.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    added.forEach((r, i) => r.status === 'fulfilled' && client.abort(ids[i]));
    throw failure.reason;
  }
  try {
    return await Promise.all(added.map((r, i) => collectOutput(ids[i], (r as PromiseFulfilledResult<AsyncIterable<RequestDelta>>).value)));
  } catch (err) {
    // Nobody reads the other streams once this call has failed: stop their work (a no-op for finished ones).
    for (const id of ids) client.abort(id);
    throw err;
  }
}

function isParamsList(params: Partial<SamplingParams> | readonly Partial<SamplingParams>[]): params is readonly Partial<SamplingParams>[] {
  return Array.isArray(params);
}
