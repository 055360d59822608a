/** Clients for tests: streaming requests that hang up mid-stream, and polling helpers. */

/**
 * POSTs a streaming request, reads until `numFramesBeforeHangUp` SSE frames arrived, then
 * aborts the connection. Resolves the number of frames read (fewer only if the stream ended).
 */
export async function hangUpMidStream(url: string, body: object, numFramesBeforeHangUp: number): Promise<number> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
    signal: controller.signal,
  });
  if (response.status !== 200 || !response.body) throw new Error(`status ${response.status}: ${await response.text()}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let numFrames = 0;
  while (numFrames < numFramesBeforeHangUp) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    numFrames = text.split('\n\n').length - 1;
  }
  controller.abort();
  await reader.cancel().catch(() => {});
  return numFrames;
}

/** Polls `read` until it returns `expected` or timeoutMs passes; returns the last value read. */
export async function waitForValue<T>(read: () => T, expected: T, timeoutMs: number): Promise<T> {
  const deadlineMs = Date.now() + timeoutMs;
  let value = read();
  while (value !== expected && Date.now() < deadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = read();
  }
  return value;
}

/** Reads a whole SSE response into its parsed JSON frames; `[DONE]` must come last. */
export async function readSseFrames(response: Response): Promise<unknown[]> {
  const text = await response.text();
  const frames = text.split('\n\n').filter((frame) => frame.length > 0);
  if (frames.at(-1) !== 'data: [DONE]') throw new Error(`stream did not end with [DONE]: ${text.slice(-200)}`);
  return frames.slice(0, -1).map((frame) => {
    if (!frame.startsWith('data: ')) throw new Error(`not an SSE data frame: ${frame}`);
    return JSON.parse(frame.slice('data: '.length)) as unknown;
  });
}
