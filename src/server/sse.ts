/**
 * Server-sent events as OpenAI and vLLM clients parse them: each chunk one `data: {json}\n\n`
 * frame, `data: [DONE]\n\n` last. A generation job's events become chunks through the route's
 * format; a client that goes away (stream cancelled or request signal aborted) aborts the job.
 */
import type { ApiErrorBody } from './errors.ts';
import type { ChoiceEvent, GenerationJob } from './generation.ts';

export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // Proxies such as nginx would otherwise buffer the stream.
  'x-accel-buffering': 'no',
});

const encoder = new TextEncoder();

export function sseFrame(payload: object | string): Uint8Array {
  const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return encoder.encode(`data: ${data}\n\n`);
}

/** How a route turns its job's events into chunks. */
export interface ChunkFormat {
  /**
   * Sent in order before any event is awaited, so the client has them as soon as the job is
   * accepted (chat: one assistant-role chunk per choice, as vLLM and OpenAI open their streams).
   */
  openingChunks: readonly object[];
  /** The chunk for one event, or null to send nothing (an empty, unfinished delta). */
  chunkOf(event: ChoiceEvent): Promise<object | null>;
  /** With stream_options.include_usage: the last chunk, `choices: []` and the usage. */
  usageChunk: (() => object) | null;
}

export interface StreamOptions {
  /** The request's abort signal (the HTTP layer aborts it when the client disconnects). */
  signal: AbortSignal;
  /** Maps an error thrown mid-stream to the body of an error frame (app.ts decides the body). */
  describeError: (err: unknown) => ApiErrorBody;
  /** Called once when the stream has ended for any reason. */
  onEnd: () => void;
}

async function* chunksOf(job: GenerationJob, format: ChunkFormat): AsyncGenerator<object> {
  yield* format.openingChunks;
  for await (const event of job.events()) {
    const chunk = await format.chunkOf(event);
    if (chunk !== null) yield chunk;
  }
  if (format.usageChunk) yield format.usageChunk();
}

/** Streams a started job as an SSE response; errors after the first byte become an error frame. */
export function streamJob(job: GenerationJob, format: ChunkFormat, options: StreamOptions): Response {
  const chunks = chunksOf(job, format);
  let isEnded = false;
  const end = (): void => {
    if (isEnded) return;
    isEnded = true;
    options.signal.removeEventListener('abort', onAbort);
    job.abort();
    options.onEnd();
  };
  const onAbort = (): void => {
    end();
    // Ends the generator at its next resumption; the aborted engine streams finish promptly.
    void chunks.return(undefined).catch(() => {});
  };
  options.signal.addEventListener('abort', onAbort);
  if (options.signal.aborted) onAbort();

  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await chunks.next();
        if (isEnded) return;
        if (!next.done) {
          controller.enqueue(sseFrame(next.value));
          return;
        }
        controller.enqueue(sseFrame('[DONE]'));
      } catch (err) {
        if (isEnded) return;
        controller.enqueue(sseFrame(options.describeError(err)));
        controller.enqueue(sseFrame('[DONE]'));
      }
      end();
      controller.close();
    },
    cancel() {
      onAbort();
    },
  });
  return new Response(body, { status: 200, headers: { ...SSE_HEADERS } });
}
