/** POST /tokenize and /detokenize, in vLLM's shapes. */
import { Hono } from 'hono';
import { type AppContext, resolveModelName } from '../context.ts';
import { templateOptions } from '../chat-options.ts';
import { renderChatPrompt } from '../chat-template.ts';
import { parseJsonBody } from '../request-body.ts';
import { checkTokenIdsInVocab } from '../sampling.ts';
import { detokenizeRequestSchema, tokenizeRequestSchema } from '../schemas.ts';

export function tokenizeRoutes(ctx: AppContext): Hono {
  const routes = new Hono();
  routes.post('/tokenize', async (c) => {
    const body = await parseJsonBody(c, tokenizeRequestSchema);
    resolveModelName(ctx, body.model);
    let tokens: number[];
    if ('prompt' in body) {
      tokens = await ctx.engine.tokenize(body.prompt, body.add_special_tokens ?? true);
    } else {
      // As vLLM: a chat prompt's special tokens come from its template, so none are added by
      // default; the messages are rendered as /v1/chat/completions renders them, tools included.
      const { addGenerationPrompt, options } = templateOptions(body);
      const text = renderChatPrompt(ctx.engine, body.messages, addGenerationPrompt, options);
      tokens = await ctx.engine.tokenize(text, body.add_special_tokens ?? false);
    }
    return c.json({ count: tokens.length, max_model_len: ctx.engine.maxModelLen, tokens, token_strs: null });
  });
  routes.post('/detokenize', async (c) => {
    const body = await parseJsonBody(c, detokenizeRequestSchema);
    resolveModelName(ctx, body.model);
    checkTokenIdsInVocab(body.tokens, ctx.engine.vocabSize, 'tokens');
    return c.json({ prompt: await ctx.engine.detokenize(body.tokens) });
  });
  return routes;
}
