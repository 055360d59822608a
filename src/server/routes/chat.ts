/** POST /v1/chat/completions: chat through the model's template, streamed (SSE) or whole. */
import { Hono } from 'hono';
import type { FinishReason } from '../../engine/types.ts';
import { chatTemplateOptions } from '../chat-options.ts';
import { type AppContext, resolveModelName } from '../context.ts';
import { badRequest } from '../errors.ts';
import type { ChoiceEvent } from '../generation.ts';
import { respondWithJob } from '../job-response.ts';
import { type ChatTokenLogprob, chatLogprobs } from '../logprobs.ts';
import { resolveChatPrompt, truncatePrompt } from '../prompt.ts';
import { parseJsonBody } from '../request-body.ts';
import { paramsForSample, resolveMaxTokens, toSamplingParams } from '../sampling.ts';
import { chatRequestSchema } from '../schemas.ts';
import { refuseUnsupportedFields } from '../unsupported-fields.ts';

/**
 * Per-choice state while a job runs: the finish reasons and (for a whole body only) the
 * accumulated output; a stream keeps no output, so long streams hold no logprobs.
 */
class ChatChoices {
  readonly texts: string[];
  readonly logprobs: ChatTokenLogprob[][];
  readonly finishReasons: (FinishReason | null)[];
  readonly stopReasons: (string | number | null)[];

  constructor(
    private readonly ctx: AppContext,
    numChoices: number,
    /** top_logprobs when logprobs were asked for, else null. */
    private readonly numTopLogprobs: number | null,
    /** False when streaming: wholeBody() is then never asked for. */
    private readonly keepsOutput: boolean,
  ) {
    this.texts = Array.from({ length: numChoices }, () => '');
    this.logprobs = Array.from({ length: numChoices }, () => []);
    this.finishReasons = Array.from({ length: numChoices }, () => null);
    this.stopReasons = Array.from({ length: numChoices }, () => null);
  }

  async apply(event: ChoiceEvent): Promise<ChatTokenLogprob[] | null> {
    const { index, delta } = event;
    if (this.keepsOutput) this.texts[index] += delta.text;
    let logprobs: ChatTokenLogprob[] | null = null;
    if (this.numTopLogprobs !== null && delta.logprobs && delta.logprobs.length > 0) {
      logprobs = await chatLogprobs(delta.logprobs, this.ctx.tokenText, this.numTopLogprobs);
      if (this.keepsOutput) this.logprobs[index].push(...logprobs);
    }
    if (delta.finishReason) {
      this.finishReasons[index] = delta.finishReason;
      this.stopReasons[index] = delta.stopReason ?? null;
    }
    return logprobs;
  }
}

export function chatRoutes(ctx: AppContext): Hono {
  const routes = new Hono();
  routes.post('/v1/chat/completions', async (c) => {
    const arrivalMs = performance.now();
    const body = await parseJsonBody(c, chatRequestSchema);
    const model = resolveModelName(ctx, body.model);
    if (body.top_logprobs !== null && body.top_logprobs !== undefined && !body.logprobs) {
      throw badRequest('top_logprobs requires logprobs to be true', 'top_logprobs', 'invalid_value');
    }
    const numTopLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
    refuseUnsupportedFields(body);
    const { addGenerationPrompt, options } = chatTemplateOptions(body);
    const prompt = truncatePrompt(
      await resolveChatPrompt(ctx.engine, body.messages, addGenerationPrompt, options, body.add_special_tokens ?? false),
      body.truncate_prompt_tokens,
      ctx.engine.maxModelLen,
    );
    const maxTokens = resolveMaxTokens({
      requestedMaxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
      // vLLM's chat default: whatever the context has left.
      defaultMaxTokens: Number.POSITIVE_INFINITY,
      numPromptTokens: prompt.tokenIds.length,
      maxModelLen: ctx.engine.maxModelLen,
      modelMaxTokens: ctx.engine.samplingDefaults.maxTokens,
      promptParam: 'messages',
      maxTokensParam: body.max_completion_tokens ? 'max_completion_tokens' : 'max_tokens',
    });
    const params = toSamplingParams(body, maxTokens, numTopLogprobs, ctx.engine.vocabSize, ctx.engine.samplingDefaults);
    const n = body.n ?? 1;
    const specs = Array.from({ length: n }, (_, sampleIndex) => ({
      promptIndex: 0,
      promptTokenIds: prompt.tokenIds,
      params: paramsForSample(params, sampleIndex),
    }));
    const choices = new ChatChoices(ctx, n, numTopLogprobs, !body.stream);
    return respondWithJob(c, ctx, {
      idPrefix: 'chatcmpl',
      model,
      specs,
      arrivalMs,
      stream: body.stream
        ? {
            chunkObject: 'chat.completion.chunk',
            includeUsage: body.stream_options?.include_usage ?? false,
            continuousUsage: body.stream_options?.continuous_usage_stats ?? false,
            // As vLLM and OpenAI: each choice opens with the role and empty content, before any
            // token, so clients that take the role from the first delta see it at once.
            openingChoices: Array.from({ length: n }, (_, index) => ({
              index,
              delta: { role: 'assistant', content: '' },
              logprobs: null,
              finish_reason: null,
            })),
          }
        : null,
      async applyEvent(event) {
        const logprobs = await choices.apply(event);
        const { index, delta } = event;
        const finishReason = delta.finishReason ?? null;
        if (delta.text === '' && logprobs === null && finishReason === null) return null;
        // The role went out in the choice's opening chunk; content chunks carry none.
        return {
          index,
          delta: { content: delta.text },
          logprobs: logprobs === null ? null : { content: logprobs },
          finish_reason: finishReason,
          stop_reason: finishReason ? (delta.stopReason ?? null) : null,
        };
      },
      wholeBody: () => ({
        object: 'chat.completion',
        choices: choices.texts.map((text, index) => ({
          index,
          message: { role: 'assistant', content: text },
          logprobs: numTopLogprobs === null ? null : { content: choices.logprobs[index] },
          finish_reason: choices.finishReasons[index],
          stop_reason: choices.stopReasons[index],
        })),
      }),
    });
  });
  return routes;
}
