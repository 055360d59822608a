/** POST /v1/completions: text completions, streamed (SSE) or whole. */
import { Hono } from 'hono';
import type { FinishReason } from '../../engine/types.ts';
import { type AppContext, resolveModelName } from '../context.ts';
import { badRequest } from '../errors.ts';
import type { ChoiceEvent, ChoiceSpec } from '../generation.ts';
import { respondWithJob } from '../job-response.ts';
import { codePointLength, type CompletionLogprobs, completionLogprobs, mergeCompletionLogprobs } from '../logprobs.ts';
import { type ResolvedPrompt, resolveCompletionPrompts, truncatePrompt } from '../prompt.ts';
import { parseJsonBody } from '../request-body.ts';
import { paramsForSample, resolveMaxTokens, toSamplingParams } from '../sampling.ts';
import { type CompletionRequest, completionRequestSchema } from '../schemas.ts';
import { refuseUnsupportedFields } from '../unsupported-fields.ts';

/** vLLM's default for /v1/completions when max_tokens is not given. */
const DEFAULT_COMPLETION_MAX_TOKENS = 16;

function buildSpecs(ctx: AppContext, body: CompletionRequest, prompts: ResolvedPrompt[]): ChoiceSpec[] {
  const n = body.n ?? 1;
  const logprobs = body.logprobs ?? null;
  return prompts.flatMap((prompt, promptIndex) => {
    const maxTokens = resolveMaxTokens({
      requestedMaxTokens: body.max_tokens ?? null,
      defaultMaxTokens: DEFAULT_COMPLETION_MAX_TOKENS,
      numPromptTokens: prompt.tokenIds.length,
      maxModelLen: ctx.engine.maxModelLen,
      modelMaxTokens: ctx.engine.samplingDefaults.maxTokens,
      promptParam: 'prompt',
      maxTokensParam: 'max_tokens',
    });
    const params = toSamplingParams(body, maxTokens, logprobs, ctx.engine.vocabSize, ctx.engine.samplingDefaults);
    return Array.from({ length: n }, (_, sampleIndex) => ({
      promptIndex,
      promptTokenIds: prompt.tokenIds,
      params: paramsForSample(params, sampleIndex),
    }));
  });
}

/**
 * Per-choice state while a job runs: echo prefix, logprob offsets, and (for a whole body only)
 * the accumulated output; a stream keeps none of it, so long streams hold no logprobs.
 */
class CompletionChoices {
  readonly #echoTexts: (string | null)[];
  readonly #textOffsets: number[];
  readonly texts: string[];
  readonly logprobs: CompletionLogprobs[][];
  readonly finishReasons: (FinishReason | null)[];
  readonly stopReasons: (string | number | null)[];

  constructor(
    private readonly ctx: AppContext,
    echoTexts: (string | null)[],
    private readonly wantsLogprobs: boolean,
    /** False when streaming: wholeBody() is then never asked for. */
    private readonly keepsOutput: boolean,
  ) {
    this.#echoTexts = echoTexts;
    this.#textOffsets = echoTexts.map((text) => codePointLength(text ?? ''));
    this.texts = echoTexts.map(() => '');
    this.logprobs = echoTexts.map(() => []);
    this.finishReasons = echoTexts.map(() => null);
    this.stopReasons = echoTexts.map(() => null);
  }

  /** Applies one event; returns this event's text and logprobs (echo prepended on the first). */
  async apply(event: ChoiceEvent): Promise<{ text: string; logprobs: CompletionLogprobs | null }> {
    const { index, delta } = event;
    const echo = event.isFirst ? (this.#echoTexts[index] ?? '') : '';
    const text = echo + delta.text;
    if (this.keepsOutput) this.texts[index] += text;
    let logprobs: CompletionLogprobs | null = null;
    if (this.wantsLogprobs && delta.logprobs && delta.logprobs.length > 0) {
      const result = await completionLogprobs(delta.logprobs, this.ctx.tokenText, this.#textOffsets[index]);
      this.#textOffsets[index] = result.nextTextOffset;
      logprobs = result.logprobs;
      if (this.keepsOutput) this.logprobs[index].push(logprobs);
    }
    if (delta.finishReason) {
      this.finishReasons[index] = delta.finishReason;
      this.stopReasons[index] = delta.stopReason ?? null;
    }
    return { text, logprobs };
  }
}

export function completionsRoutes(ctx: AppContext): Hono {
  const routes = new Hono();
  routes.post('/v1/completions', async (c) => {
    const arrivalMs = performance.now();
    const body = await parseJsonBody(c, completionRequestSchema);
    const model = resolveModelName(ctx, body.model);
    if (body.echo && body.logprobs !== null && body.logprobs !== undefined) {
      throw badRequest('echo together with logprobs is not supported (prompt logprobs are not computed)', 'echo', 'unsupported');
    }
    refuseUnsupportedFields(body);
    const prompts = (await resolveCompletionPrompts(ctx.engine, body.prompt, body.add_special_tokens ?? true)).map((prompt) =>
      truncatePrompt(prompt, body.truncate_prompt_tokens, ctx.engine.maxModelLen),
    );
    const specs = buildSpecs(ctx, body, prompts);
    // One echo text per prompt (token-id prompts decoded once), shared by its n choices.
    const promptEchoTexts = await Promise.all(
      prompts.map(async (prompt) => (body.echo ? (prompt.text ?? (await ctx.engine.detokenize(prompt.tokenIds))) : null)),
    );
    const echoTexts = specs.map((spec) => promptEchoTexts[spec.promptIndex]);
    const choices = new CompletionChoices(ctx, echoTexts, body.logprobs !== null && body.logprobs !== undefined, !body.stream);
    return respondWithJob(c, ctx, {
      idPrefix: 'cmpl',
      model,
      specs,
      arrivalMs,
      stream: body.stream
        ? {
            chunkObject: 'text_completion',
            includeUsage: body.stream_options?.include_usage ?? false,
            continuousUsage: body.stream_options?.continuous_usage_stats ?? false,
          }
        : null,
      async applyEvent(event) {
        const { text, logprobs } = await choices.apply(event);
        const finishReason = event.delta.finishReason ?? null;
        if (text === '' && logprobs === null && finishReason === null) return null;
        return { index: event.index, text, logprobs, finish_reason: finishReason, stop_reason: finishReason ? (event.delta.stopReason ?? null) : null };
      },
      wholeBody: () => ({
        object: 'text_completion',
        choices: choices.texts.map((text, index) => ({
          index,
          text,
          logprobs: choices.logprobs[index].length > 0 ? mergeCompletionLogprobs(choices.logprobs[index]) : null,
          finish_reason: choices.finishReasons[index],
          stop_reason: choices.stopReasons[index],
        })),
      }),
    });
  });
  return routes;
}
