/**
 * The engine's life: Engine.create from a model directory (native executor, worker pool,
 * chat template), per-step timings and the onStep hook, the idle loop, and shutdown
 * (running requests finish within the timeout; later ones are refused; late ones aborted).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { tokenizerPackageDir } from '../../src/engine/presets.ts';
import { collectOutput } from '../../src/engine/request-stream.ts';
import { readChatTemplate } from '../../src/engine/tokenizer-config.ts';
import { DEFAULT_SAMPLING_PARAMS, type SamplingParams, type StepTiming } from '../../src/engine/types.ts';
import { writeRandomModel } from '../../src/tools/write-random-model.ts';
import { collect, makeEngine, makePrompts, nativeUnavailableReason } from './engine-harness.ts';

const nativeReason = nativeUnavailableReason();
if (nativeReason) console.warn(`engine-lifecycle: Engine.create tests skipped: ${nativeReason}`);
const params = (over: Partial<SamplingParams> = {}): SamplingParams => ({ ...DEFAULT_SAMPLING_PARAMS, temperature: 0, ignoreEos: true, maxTokens: 8, ...over });

describe('Engine.create', () => {
  it.skipIf(nativeReason !== '')('loads a model directory, serves a request and shuts down; refuses a KV cache smaller than one sequence', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'spindle-create-'));
    try {
      writeRandomModel(dir, { arch: 'qwen3', numLayers: 1, hiddenSize: 32, intermediateSize: 64, numHeads: 2, numKvHeads: 1, vocabSize: 151936, maxPositionEmbeddings: 256, seed: 3 });
      const engine = await Engine.create({ model: dir, numBlocks: 64, blockSize: 16, maxNumSeqs: 4, maxNumBatchedTokens: 64, numThreads: 1, detokenizerWorkers: 1 });
      try {
        expect(engine.maxModelLen).toBe(256);
        expect(engine.vocabSize).toBe(151936);
        expect(engine.chatTemplate?.template).toContain('<|im_start|>');
        expect(engine.chatTemplate?.eosToken).toBe('<|im_end|>');
        expect(engine.stats()).toMatchObject({ numBlocks: 64, numFreeBlocks: 64, isAlive: true });
        const ids = await engine.tokenize('hello world', false);
        expect(await engine.detokenize(ids)).toBe('hello world');
        const [out] = await engine.generate(['hello world'], params({ maxTokens: 5 }));
        expect(out.tokenIds).toHaveLength(5);
        expect(out.promptTokenIds).toEqual(ids);
      } finally {
        await engine.shutdown(1000);
      }
      await expect(Engine.create({ model: dir, numBlocks: 8, blockSize: 16, numThreads: 1 })).rejects.toThrow(/^--num-kv-blocks: 8 blocks/);
      // The model's generation-config sampling defaults, unless --generation-config vllm.
      const generationFile = path.join(dir, 'generation_config.json');
      writeFileSync(generationFile, JSON.stringify({ ...JSON.parse(readFileSync(generationFile, 'utf8')), temperature: 0.7, top_p: 0.8 }));
      for (const [generationConfig, want] of [['auto', { temperature: 0.7, topP: 0.8 }], ['vllm', {}]] as const) {
        const e = await Engine.create({ model: dir, numBlocks: 64, blockSize: 16, numThreads: 1, detokenizerWorkers: 1, generationConfig });
        expect(e.samplingDefaults, generationConfig).toEqual(want);
        await e.shutdown(1000);
      }
      // --chat-template replaces the model's own; a bad one fails start-up.
      const custom = await Engine.create({ model: dir, numBlocks: 64, blockSize: 16, numThreads: 1, detokenizerWorkers: 1, chatTemplate: '{{ messages[0].content }}!' });
      expect(custom.chatTemplate?.template).toBe('{{ messages[0].content }}!');
      await custom.shutdown(1000);
      await expect(Engine.create({ model: dir, numBlocks: 64, blockSize: 16, numThreads: 1, chatTemplate: 'no-such-template.jinja' })).rejects.toThrow(/--chat-template/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('chat template', () => {
  it('reads the template and its special tokens from tokenizer_config.json, or gives null', async () => {
    const llama3 = await readChatTemplate(tokenizerPackageDir('llama3'));
    expect(llama3?.template).toContain('<|start_header_id|>');
    expect(llama3?.bosToken).toBe('<|begin_of_text|>');
    expect(await readChatTemplate(tokenizerPackageDir('llama2'))).toBeNull();
    expect(await readChatTemplate(tmpdir())).toBeNull();
  });
});

describe('engine loop (fake executor)', () => {
  it('records one timing per step in a bounded ring and calls onStep with it', async () => {
    const seen: StepTiming[] = [];
    const t = await makeEngine('fake', { stepTimingsCapacity: 5, onStep: (timing) => seen.push(timing) });
    try {
      const prompts = makePrompts(3, 4, 10, 4);
      await t.engine.generate(prompts.map((p) => ({ promptTokenIds: p })), params());
      expect(seen.length).toBe(t.engine.numSteps);
      expect(seen.length).toBeGreaterThanOrEqual(8);
      expect(seen.map((s) => s.step)).toEqual(seen.map((_, i) => i + 1));
      const ring = t.engine.stepTimings();
      expect(ring).toEqual(seen.slice(-5));
      expect(t.engine.stepTimings(2)).toEqual(seen.slice(-2));
      // First step: every prompt prefilled at once; later steps: one decode token per sequence.
      expect(seen[0]).toMatchObject({ numSeqs: 3, numTokens: prompts.flat().length, numPrefillTokens: prompts.flat().length });
      expect(seen[1]).toMatchObject({ numSeqs: 3, numTokens: 3, numPrefillTokens: 0 });
      for (const s of seen) {
        for (const key of ['scheduleMs', 'packMs', 'executeMs', 'postprocessMs', 'detokDispatchMs'] as const) expect(s[key]).toBeGreaterThanOrEqual(0);
        expect(s.kvUsage).toBeGreaterThanOrEqual(0);
        expect(s.kvUsage).toBeLessThanOrEqual(1);
      }
    } finally {
      await t.engine.shutdown(1000);
    }
  });

  it('concurrent generate() calls with text prompts do not collide', async () => {
    const t = await makeEngine('fake');
    try {
      const [a, b] = await Promise.all([t.engine.generate(['one', 'two'], params()), t.engine.generate(['three'], params())]);
      expect(a.map((o) => o.finishReason)).toEqual(['length', 'length']);
      expect(b[0].promptTokenIds).toEqual(await t.engine.tokenize('three', true));
      await expect(t.engine.generate(['ok', { promptTokenIds: [] }], params())).rejects.toThrow(/empty/);
      expect(t.engine.numLiveRequests).toBe(0);
    } finally {
      await t.engine.shutdown(1000);
    }
  });

  it('an abort while the prompt is still being tokenized ends the request before it runs', async () => {
    const t = await makeEngine('fake');
    try {
      const pending = t.engine.addRequest('hangup', 'a prompt still in the tokenizer', params({ maxTokens: 300 }));
      t.engine.abort('hangup');
      const deltas = await collect(await pending);
      expect(deltas).toHaveLength(1);
      expect(deltas[0]).toMatchObject({ finishReason: 'abort', tokenIds: [], usage: { completionTokens: 0 } });
      expect(t.engine.numSteps).toBe(0);
      expect(t.engine.numLiveRequests).toBe(0);
    } finally {
      await t.engine.shutdown(1000);
    }
  });

  it('sleeps while idle and wakes on a new request', async () => {
    const t = await makeEngine('fake');
    try {
      await collect(await t.engine.addRequest('a', { promptTokenIds: [5, 6, 7] }, params()));
      const steps = t.engine.numSteps;
      await new Promise((r) => setTimeout(r, 50));
      expect(t.engine.numSteps).toBe(steps);
      const out = await collectOutput('b', await t.engine.addRequest('b', { promptTokenIds: [5, 6, 7] }, params()));
      expect(out.tokenIds).toHaveLength(8);
      expect(t.engine.numSteps).toBe(steps + 8);
    } finally {
      await t.engine.shutdown(1000);
    }
  });

  it('shutdown lets running requests finish, refuses new ones, and aborts what outlives the timeout', async () => {
    const t = await makeEngine('fake');
    const short = collectOutput('short', await t.engine.addRequest('short', { promptTokenIds: [5, 6] }, params({ maxTokens: 4 })));
    const done = t.engine.shutdown(5000);
    await expect(t.engine.addRequest('late', { promptTokenIds: [5] }, params())).rejects.toThrow(/shutting down/);
    expect((await short).finishReason).toBe('length');
    await done;
    expect(t.executor).toMatchObject({ isClosed: true });

    const t2 = await makeEngine('fake');
    const endless = collectOutput('endless', await t2.engine.addRequest('endless', { promptTokenIds: [5, 6] }, params({ maxTokens: 400 })));
    // A second shutdown (a second signal, two owners) waits for the first instead of closing twice.
    await Promise.all([t2.engine.shutdown(0), t2.engine.shutdown(0)]);
    await t2.engine.shutdown(0);
    expect((await endless).finishReason).toBe('abort');
    expect(t2.engine.stats().numFreeBlocks).toBe(t2.engine.stats().numBlocks);
  });
});
