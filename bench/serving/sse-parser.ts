/**
 * Incremental parser of a server-sent-events body (the WHATWG event-stream format), fed the
 * text of each network read as it arrives. It returns the `data` of every event the read
 * completed, so the caller can stamp them all with the read's arrival time.
 *
 * What OpenAI-compatible servers send is `data: {json}\n\n` … `data: [DONE]\n\n`, but proxies
 * and other servers may use CRLF, split an event over several `data:` lines, or send `:` comment
 * lines as keep-alive pings; those are handled as the format says (comments and other fields
 * are ignored, an event without data is not an event).
 */
export class SseParser {
  #buffer = '';
  #dataLines: string[] = [];

  /** Feeds one read's text; returns the data of each event it completed, in order. */
  push(text: string): string[] {
    this.#buffer += text;
    const events: string[] = [];
    let start = 0;
    for (;;) {
      const newline = this.#buffer.indexOf('\n', start);
      if (newline < 0) break;
      // A CR before the LF belongs to the line ending (CRLF).
      const end = newline > start && this.#buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      const line = this.#buffer.slice(start, end);
      start = newline + 1;
      if (line === '') {
        // A blank line dispatches the event, if it had data.
        if (this.#dataLines.length > 0) events.push(this.#dataLines.join('\n'));
        this.#dataLines = [];
      } else if (line.startsWith('data:')) {
        // One space after the colon is part of the syntax, not of the value.
        this.#dataLines.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
      }
      // Anything else (a ':' comment, event:, id:, retry:) carries no data for the benchmark.
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  /**
   * At the end of the body: the data of an event the server did not close with a blank line, or
   * null. The format says to drop it; vLLM's client keeps such a last event when it parses, and so
   * does this benchmark's client, so that a server that omits the final blank line is not failed.
   */
  finish(): string | null {
    const line = this.#buffer;
    this.#buffer = '';
    if (line.startsWith('data:')) this.#dataLines.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
    const pending = this.#dataLines.length > 0 ? this.#dataLines.join('\n') : null;
    this.#dataLines = [];
    return pending;
  }
}
