/**
 * What the chat and completions routes do alike once their choices are specified: start the job
 * while holding a lifecycle slot (so draining waits for it), then answer either as an SSE stream of
 * chunks or, after every event was applied, as one JSON body, both with OpenAI's id, created,
 * model and usage fields. The routes keep what differs: their per-choice state and choice shapes.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import type { AppContext } from './context.ts';
import { type ChoiceEvent, type ChoiceSpec, GenerationJob } from './generation.ts';
import { streamJob } from './sse.ts';

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface JobResponseOptions {
  /** 'chatcmpl' or 'cmpl': prefixes the response id and the engine's request ids. */
  idPrefix: string;
  /** The model name reported back. */
  model: string;
  specs: ChoiceSpec[];
  /** performance.now() when the request arrived (latency metrics start there). */
  arrivalMs: number;
  /**
   * null for one JSON body; else the chunks' object type, whether a usage chunk ends them, and the
   * choice entries (if any) that open the stream, each in a chunk of its own before any token.
   */
  stream: { chunkObject: string; includeUsage: boolean; continuousUsage?: boolean; openingChoices?: readonly object[] } | null;
  /**
   * Records one event in the route's per-choice state and returns the choice entry of its stream
   * chunk, or null to send no chunk (an empty, unfinished delta). Not streaming, the entry is unused.
   */
  applyEvent(event: ChoiceEvent): Promise<object | null>;
  /** The whole body's object type and choices, once every event has been applied. */
  wholeBody(): { object: string; choices: object[] };
}

function openAiUsage({ promptTokens, completionTokens }: { promptTokens: number; completionTokens: number }): OpenAiUsage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

function usageOf(job: GenerationJob): OpenAiUsage {
  return openAiUsage(job.usage);
}

/** Starts the request's job and answers it, streamed or whole. */
export async function respondWithJob(c: Context, ctx: AppContext, options: JobResponseOptions): Promise<Response> {
  const release = ctx.lifecycle.begin();
  let job: GenerationJob;
  try {
    job = await GenerationJob.start(ctx.engine, ctx.metrics, `${options.idPrefix}-${randomUUID()}`, options.specs, options.arrivalMs);
  } catch (err) {
    release();
    throw err;
  }
  const id = `${options.idPrefix}-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(Date.now() / 1000);
  const { model, stream } = options;

  if (stream) {
    const object = stream.chunkObject;
    // The opening chunks are shaped as every other chunk (same id, created, model). As vLLM's:
    // without continuous usage stats no chunk but the last carries a usage field; with them
    // (and include_usage), each chunk carries its choice's usage so far.
    const continuousUsage = stream.includeUsage && (stream.continuousUsage ?? false);
    const chunkOfChoice = (choice: object, index: number): object => {
      const chunk = { id, object, created, model, choices: [choice] };
      return continuousUsage ? { ...chunk, usage: openAiUsage(job.choiceUsage(index)) } : chunk;
    };
    return streamJob(job, {
      openingChunks: (stream.openingChoices ?? []).map(chunkOfChoice),
      async chunkOf(event) {
        const choice = await options.applyEvent(event);
        return choice === null ? null : chunkOfChoice(choice, event.index);
      },
      usageChunk: stream.includeUsage ? () => ({ id, object, created, model, choices: [], usage: usageOf(job) }) : null,
    }, { signal: c.req.raw.signal, describeError: ctx.describeError, onEnd: release });
  }

  const onAbort = () => job.abort();
  c.req.raw.signal.addEventListener('abort', onAbort);
  // The client may have left while the body was read or the prompt tokenized.
  if (c.req.raw.signal.aborted) onAbort();
  try {
    for await (const event of job.events()) await options.applyEvent(event);
  } finally {
    c.req.raw.signal.removeEventListener('abort', onAbort);
    release();
  }
  const { object, choices } = options.wholeBody();
  return c.json({ id, object, created, model, choices, usage: usageOf(job) });
}
