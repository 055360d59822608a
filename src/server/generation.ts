/**
 * One API request's generation: its choices (prompts × n) queued in the engine, their delta
 * streams merged in arrival order, usage counted, latencies observed, and every unfinished
 * choice aborted when the consumer goes away (client disconnect) or asks to.
 */
import { EngineInputError, type EngineClient, type RequestDelta, type SamplingParams } from '../engine/types.ts';
import { serviceUnavailable } from './errors.ts';
import type { ServerMetrics } from './metrics.ts';

export interface ChoiceSpec {
  /** Which prompt of the request (completions accept several). */
  promptIndex: number;
  promptTokenIds: number[];
  params: SamplingParams;
}

export interface ChoiceEvent {
  /** The OpenAI choice index: promptIndex * n + sample index, as vLLM numbers them. */
  index: number;
  delta: RequestDelta;
  /** True for this choice's first event (completions send the echoed prompt with it). */
  isFirst: boolean;
}

interface ChoiceState {
  index: number;
  requestId: string;
  promptIndex: number;
  numPromptTokens: number;
  iterator: AsyncIterator<RequestDelta>;
  isFinished: boolean;
  numEvents: number;
  numTokens: number;
  lastTokenMs: number | null;
}

export class GenerationJob {
  readonly #engine: EngineClient;
  readonly #metrics: ServerMetrics;
  readonly #choices: ChoiceState[];
  readonly #numPromptTokens: number;
  readonly #arrivalMs: number;

  private constructor(engine: EngineClient, metrics: ServerMetrics, choices: ChoiceState[], numPromptTokens: number, arrivalMs: number) {
    this.#engine = engine;
    this.#metrics = metrics;
    this.#choices = choices;
    this.#numPromptTokens = numPromptTokens;
    this.#arrivalMs = arrivalMs;
  }

  /**
   * Queues every choice; if the engine refuses one, the already queued ones are aborted and the
   * refusal is rethrown, so the client gets one error and the engine keeps nothing.
   */
  static async start(
    engine: EngineClient,
    metrics: ServerMetrics,
    baseRequestId: string,
    specs: ChoiceSpec[],
    arrivalMs: number,
  ): Promise<GenerationJob> {
    const requestIds = specs.map((spec, index) => `${baseRequestId}-${spec.promptIndex}-${index}`);
    const settled = await Promise.allSettled(
      specs.map((spec, index) => engine.addRequest(requestIds[index], { promptTokenIds: spec.promptTokenIds }, spec.params)),
    );
    const refusal = settled.find((result) => result.status === 'rejected');
    if (refusal) {
      settled.forEach((result, index) => {
        if (result.status === 'fulfilled') engine.abort(requestIds[index]);
      });
      // A refusal that is not about the input comes from an engine that stopped (died, or shut down).
      if (!(refusal.reason instanceof EngineInputError) && !engine.stats().isAlive) {
        throw serviceUnavailable(`the engine has stopped: ${refusal.reason instanceof Error ? refusal.reason.message : String(refusal.reason)}`);
      }
      throw refusal.reason;
    }
    const choices = settled.map((result, index): ChoiceState => ({
      index,
      requestId: requestIds[index],
      promptIndex: specs[index].promptIndex,
      numPromptTokens: specs[index].promptTokenIds.length,
      iterator: (result as PromiseFulfilledResult<AsyncIterable<RequestDelta>>).value[Symbol.asyncIterator](),
      isFinished: false,
      numEvents: 0,
      numTokens: 0,
      lastTokenMs: null,
    }));
    const seenPrompts = new Set<number>();
    let numPromptTokens = 0;
    for (const spec of specs) {
      if (seenPrompts.has(spec.promptIndex)) continue;
      seenPrompts.add(spec.promptIndex);
      numPromptTokens += spec.promptTokenIds.length;
    }
    metrics.addPromptTokens(numPromptTokens);
    return new GenerationJob(engine, metrics, choices, numPromptTokens, arrivalMs);
  }

  /** Prompt tokens counted once per prompt (not per sample), completion tokens over all choices. */
  /** One choice's usage so far: its prompt, and the tokens it has generated. */
  choiceUsage(index: number): { promptTokens: number; completionTokens: number } {
    const choice = this.#choices[index];
    return { promptTokens: choice.numPromptTokens, completionTokens: choice.numTokens };
  }

  get usage(): { promptTokens: number; completionTokens: number } {
    const completionTokens = this.#choices.reduce((sum, choice) => sum + choice.numTokens, 0);
    return { promptTokens: this.#numPromptTokens, completionTokens };
  }

  /**
   * Every choice's deltas as they arrive; each choice ends with exactly one delta carrying
   * finishReason. Leaving the loop early (return/throw) aborts what is unfinished.
   */
  async *events(): AsyncGenerator<ChoiceEvent> {
    // Each choice has at most one pull pending; settled pulls queue up here in arrival order, so
    // an event costs O(1) whatever the number of choices (a race over all pending pulls per
    // event would cost O(choices) on the step loop's thread). Both outcomes are handled at once:
    // when the engine fails every stream, the first failure ends the loop, the rest are dropped.
    type Pulled = { choice: ChoiceState; result: IteratorResult<RequestDelta> } | { choice: ChoiceState; error: unknown };
    const arrived: Pulled[] = [];
    let numArrivedRead = 0;
    let wake: (() => void) | null = null;
    const settle = (pulled: Pulled): void => {
      arrived.push(pulled);
      wake?.();
    };
    const pull = (choice: ChoiceState): void => {
      choice.iterator.next().then(
        (result) => settle({ choice, result }),
        (error: unknown) => settle({ choice, error }),
      );
    };
    let numPending = 0;
    try {
      for (const choice of this.#choices) pull(choice);
      numPending = this.#choices.length;
      while (numPending > 0) {
        if (numArrivedRead === arrived.length) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
        const pulled = arrived[numArrivedRead++];
        if (numArrivedRead === arrived.length) {
          arrived.length = 0;
          numArrivedRead = 0;
        }
        numPending--;
        if ('error' in pulled) throw pulled.error;
        const { choice, result } = pulled;
        // A stream that ends without a finish reason still owes the client one.
        const delta: RequestDelta = result.done
          ? { requestId: choice.requestId, text: '', tokenIds: [], finishReason: 'abort' }
          : result.value;
        this.#observe(choice, delta);
        yield { index: choice.index, delta, isFirst: choice.numEvents++ === 0 };
        if (delta.finishReason) {
          choice.isFinished = true;
          // Lets the engine's stream run its cleanup; nothing more is read from it.
          void choice.iterator.return?.()?.catch(() => {});
        } else {
          pull(choice);
          numPending++;
        }
      }
    } finally {
      this.abort();
    }
  }

  /**
   * Aborts every unfinished choice (the engine frees their blocks at its next step) and closes
   * its stream, since nobody will read it any more.
   */
  abort(): void {
    for (const choice of this.#choices) {
      if (choice.isFinished) continue;
      choice.isFinished = true;
      this.#engine.abort(choice.requestId);
      void choice.iterator.return?.()?.catch(() => {});
    }
  }

  #observe(choice: ChoiceState, delta: RequestDelta): void {
    const nowMs = performance.now();
    const numNewTokens = delta.tokenIds.length;
    if (numNewTokens > 0) {
      if (choice.lastTokenMs === null) this.#metrics.observeFirstToken((nowMs - this.#arrivalMs) / 1000);
      else this.#metrics.observeTokenGap((nowMs - choice.lastTokenMs) / 1000, numNewTokens);
      choice.lastTokenMs = nowMs;
      choice.numTokens += numNewTokens;
      this.#metrics.addGenerationTokens(numNewTokens);
    }
    if (delta.finishReason) {
      const request = {
        finishReason: delta.finishReason,
        promptTokens: delta.usage?.promptTokens ?? 0,
        generationTokens: delta.usage?.completionTokens ?? choice.numTokens,
        timing: delta.timing,
      };
      this.#metrics.observeFinished(request, (nowMs - this.#arrivalMs) / 1000);
    }
  }
}
