/**
 * A deterministic stand-in for the engine, for fast server tests. Its tokenizer is byte-level
 * (id = byte + 3; 0 <unk>, 1 <s>, 2 </s>); generation echoes the prompt's bytes over and over,
 * one token per tick. It honours maxTokens, stop strings, stop ids and abort, and counts the KV
 * "blocks" each live request holds so leak tests can assert that all of them come back.
 */
import {
  EngineInputError,
  type EngineClient,
  type EngineStats,
  type ModelSamplingDefaults,
  type PromptInput,
  type RequestDelta,
  type SamplingParams,
  type TokenLogprob,
} from '../../src/engine/types.ts';

export const FAKE_BOS_ID = 1;
export const FAKE_EOS_ID = 2;
const BYTE_OFFSET = 3;
/** A prompt containing this id is refused by addRequest (to test EngineInputError → 400). */
export const FAKE_REFUSED_TOKEN_ID = 259;
const BLOCK_SIZE = 4;
const DEFAULT_CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}";

interface FakeRequest {
  requestId: string;
  output: number[];
  isAborted: boolean;
  numBlocks: number;
}

export interface FakeEngineOptions {
  maxModelLen?: number;
  /** Delay between tokens; > 0 keeps streams open long enough to disconnect mid-way. */
  tokenIntervalMs?: number;
  numBlocks?: number;
  /** A chat template of the test's own (default: one that renders roles, contents and the generation prompt). */
  chatTemplate?: string;
  /** The model's generation-config defaults (default: none). */
  samplingDefaults?: ModelSamplingDefaults;
}

export class FakeEngine implements EngineClient {
  readonly modelName = 'fake-echo';
  readonly maxModelLen: number;
  readonly vocabSize = 260;
  readonly chatTemplate: { template: string; bosToken: string; eosToken: string };
  readonly samplingDefaults: ModelSamplingDefaults;
  /** The params of every request added, in order (for assertions). */
  readonly addedParams: SamplingParams[] = [];
  isAlive = true;
  /** Every requestId ever added, and every one aborted (for assertions). */
  readonly addedRequestIds: string[] = [];
  readonly abortedRequestIds = new Set<string>();
  readonly #requests = new Map<string, FakeRequest>();
  readonly #tokenIntervalMs: number;
  readonly #numBlocks: number;
  #numUsedBlocks = 0;
  #isShutDown = false;
  #failure: Error | null = null;

  constructor(options: FakeEngineOptions = {}) {
    this.maxModelLen = options.maxModelLen ?? 128;
    this.samplingDefaults = options.samplingDefaults ?? {};
    this.#tokenIntervalMs = options.tokenIntervalMs ?? 0;
    this.#numBlocks = options.numBlocks ?? 100_000;
    this.chatTemplate = { template: options.chatTemplate ?? DEFAULT_CHAT_TEMPLATE, bosToken: '<s>', eosToken: '</s>' };
  }

  get numUsedBlocks(): number {
    return this.#numUsedBlocks;
  }

  async addRequest(requestId: string, prompt: PromptInput, params: SamplingParams): Promise<AsyncIterable<RequestDelta>> {
    if (this.#isShutDown) throw new Error('engine is shut down');
    if (!this.isAlive) throw new Error('the engine is dead');
    const promptTokenIds = typeof prompt === 'string' ? await this.tokenize(prompt, true) : prompt.promptTokenIds;
    if (promptTokenIds.includes(FAKE_REFUSED_TOKEN_ID)) throw new EngineInputError('the fake engine refuses this token id', 'prompt');
    if (promptTokenIds.length + params.maxTokens > this.maxModelLen) throw new EngineInputError('over the maximum context length', 'max_tokens');
    const request: FakeRequest = { requestId, output: [], isAborted: false, numBlocks: 0 };
    this.#requests.set(requestId, request);
    this.addedRequestIds.push(requestId);
    this.addedParams.push(params);
    this.#allocate(request, promptTokenIds.length);
    return this.#generate(request, promptTokenIds, params);
  }

  abort(requestId: string): void {
    const request = this.#requests.get(requestId);
    if (!request) return;
    request.isAborted = true;
    this.abortedRequestIds.add(requestId);
    // As the real engine: blocks come back at the next step boundary, read or not.
    setTimeout(() => this.#free(request), this.#tokenIntervalMs);
  }

  /** As the real engine when a step fails: every live stream rejects, the engine is dead. */
  failAll(error: Error): void {
    this.#failure = error;
    this.isAlive = false;
  }

  async tokenize(text: string, addSpecialTokens: boolean): Promise<number[]> {
    const ids = [...Buffer.from(text, 'utf8')].map((byte) => byte + BYTE_OFFSET);
    return addSpecialTokens ? [FAKE_BOS_ID, ...ids] : ids;
  }

  async detokenize(tokenIds: number[]): Promise<string> {
    const bytes = tokenIds.filter((id) => id >= BYTE_OFFSET && id < BYTE_OFFSET + 256).map((id) => id - BYTE_OFFSET);
    return Buffer.from(bytes).toString('utf8');
  }

  stats(): EngineStats {
    const numRunning = [...this.#requests.values()].filter((r) => !r.isAborted).length;
    return {
      numRunning,
      numWaiting: 0,
      kvUsage: this.#numUsedBlocks / this.#numBlocks,
      numBlocks: this.#numBlocks,
      numFreeBlocks: this.#numBlocks - this.#numUsedBlocks,
      isAlive: this.isAlive,
      numPreemptions: 0,
      prefixCacheQueries: 0,
      prefixCacheHits: 0,
    };
  }

  async shutdown(timeoutMs: number): Promise<void> {
    this.#isShutDown = true;
    const deadlineMs = Date.now() + timeoutMs;
    while (this.#requests.size > 0 && Date.now() < deadlineMs) await sleep(5);
    for (const request of this.#requests.values()) request.isAborted = true;
  }

  #allocate(request: FakeRequest, numTokens: number): void {
    const numNeeded = Math.ceil(numTokens / BLOCK_SIZE);
    this.#numUsedBlocks += numNeeded - request.numBlocks;
    request.numBlocks = numNeeded;
  }

  #free(request: FakeRequest): void {
    if (!this.#requests.has(request.requestId)) return;
    this.#numUsedBlocks -= request.numBlocks;
    request.numBlocks = 0;
    this.#requests.delete(request.requestId);
  }

  /** Echo generation: the prompt's non-special ids, cycled. */
  async *#generate(request: FakeRequest, promptTokenIds: number[], params: SamplingParams): AsyncGenerator<RequestDelta> {
    const source = promptTokenIds.filter((id) => id >= BYTE_OFFSET);
    const cycle = source.length > 0 ? source : [BYTE_OFFSET + 'x'.charCodeAt(0)];
    let text = '';
    let numSent = 0;
    let isFirst = true;
    try {
      for (let i = 0; ; i++) {
        await sleep(this.#tokenIntervalMs);
        if (this.#failure) throw this.#failure;
        const base = { requestId: request.requestId, ...(isFirst ? { promptTokenIds } : {}) };
        isFirst = false;
        if (request.isAborted) {
          yield this.#finish(request, { ...base, text: '', tokenIds: [], finishReason: 'abort', usage: this.#usage(promptTokenIds, request) });
          return;
        }
        const tokenId = cycle[i % cycle.length];
        request.output.push(tokenId);
        this.#allocate(request, promptTokenIds.length + request.output.length);
        const logprobs = params.logprobs === null ? undefined : [fakeLogprob(tokenId, params.logprobs)];
        const isStopId = params.stopTokenIds.includes(tokenId) || (!params.ignoreEos && tokenId === FAKE_EOS_ID);
        if (isStopId && request.output.length > params.minTokens) {
          yield this.#finish(request, { ...base, text: '', tokenIds: [tokenId], logprobs, finishReason: 'stop', stopReason: tokenId, usage: this.#usage(promptTokenIds, request) });
          return;
        }
        // `text` is all output so far; `numSent` chars of it went out. A tail that could begin a
        // stop string is held back, as the real detokenizer does.
        text += await this.detokenize([tokenId]);
        const stop = request.output.length > params.minTokens ? params.stop.find((s) => text.includes(s)) : undefined;
        if (stop !== undefined) {
          const cut = text.indexOf(stop) + (params.includeStopStrInOutput ? stop.length : 0);
          const finalText = text.slice(numSent, Math.max(cut, numSent));
          yield this.#finish(request, { ...base, text: finalText, tokenIds: [tokenId], logprobs, finishReason: 'stop', stopReason: stop, usage: this.#usage(promptTokenIds, request) });
          return;
        }
        const isLast = request.output.length >= params.maxTokens;
        const sendUpTo = isLast ? text.length : text.length - heldBackLength(text, params.stop);
        const delta: RequestDelta = { ...base, text: text.slice(numSent, Math.max(sendUpTo, numSent)), tokenIds: [tokenId], logprobs };
        numSent = Math.max(sendUpTo, numSent);
        if (isLast) {
          yield this.#finish(request, { ...delta, finishReason: 'length', usage: this.#usage(promptTokenIds, request) });
          return;
        }
        yield delta;
      }
    } finally {
      this.#free(request);
    }
  }

  /** As the real engine: a finished request's blocks are free before its last delta is seen. */
  #finish(request: FakeRequest, delta: RequestDelta): RequestDelta {
    this.#free(request);
    return delta;
  }

  #usage(promptTokenIds: number[], request: FakeRequest): { promptTokens: number; completionTokens: number } {
    return { promptTokens: promptTokenIds.length, completionTokens: request.output.length };
  }
}

/** The sampled token at −0.5; alternatives descend, and the last is −∞ (written as −9999.0). */
function fakeLogprob(tokenId: number, numTop: number): TokenLogprob {
  const top = Array.from({ length: numTop }, (_, rank) => ({
    tokenId: BYTE_OFFSET + ((tokenId - BYTE_OFFSET + rank) % 256),
    logprob: rank === numTop - 1 && numTop > 1 ? Number.NEGATIVE_INFINITY : -0.5 - rank,
  }));
  return { tokenId, logprob: -0.5, top };
}

/** Length of the longest tail of `text` that is a proper prefix of a stop string. */
function heldBackLength(text: string, stops: readonly string[]): number {
  let longest = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > longest; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
