/**
 * A real (tiny) trained model end to end on the CPU: /work/shared/models/stories260K-hf through
 * loadModelSource and the native Executor. Greedy continuation of "Once upon a time" must be
 * the float64 reference's, step by step (each step's logits within rel. error 1e-5), and must
 * decode to English, which random or misloaded weights would not produce.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelSource } from '../../src/engine/model-loader.ts';
import { loadNative, type NativeBinding, type NativeExecutor } from '../../src/engine/native.ts';
import { ReferenceModel } from '../reference/llama-f64.ts';
import { relativeError, StepDriver } from './step-driver.ts';

const NUM_NEW_TOKENS = 48;
const TOLERANCE = 1e-5;
const BLOCK_SIZE = 16;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const modelDir = path.join(repoRoot, '../shared/models/stories260K-hf');

function skipReasonOf(): string {
  if (!existsSync(path.join(modelDir, 'config.json'))) return `${modelDir} is absent`;
  try {
    if (typeof loadNative().Executor !== 'function') return 'the native addon exports no Executor yet';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return '';
}
const skipReason = skipReasonOf();
if (skipReason) console.warn(`test/native/stories260k.test.ts skipped: ${skipReason}`);

describe.skipIf(skipReason !== '')('stories260K on the native CPU executor', () => {
  let executor: NativeExecutor | undefined;
  afterAll(() => executor?.close());

  it(`greedy continuation of "Once upon a time" equals the float64 reference for ${NUM_NEW_TOKENS} tokens`, async () => {
    const source = await loadModelSource(modelDir);
    const tokenizer = new Tokenizer(
      JSON.parse(readFileSync(path.join(source.tokenizerDir, 'tokenizer.json'), 'utf8')) as object,
      JSON.parse(readFileSync(path.join(source.tokenizerDir, 'tokenizer_config.json'), 'utf8')) as object,
    );
    const prompt = tokenizer.encode('Once upon a time').ids;
    // The tokenizer's post-processor prepends BOS, as the model was trained.
    expect(prompt[0]).toBe(source.bosTokenId);

    const binding: NativeBinding = loadNative();
    executor = new binding.Executor({
      device: 'cpu', dtype: 'float32', model: source.config, weights: source.weights, blockSize: BLOCK_SIZE,
      numBlocks: 8, gpuMemoryUtilization: 0.9, maxNumSeqs: 1, maxNumBatchedTokens: 128, numThreads: 1,
    });
    const driver = new StepDriver(executor, BLOCK_SIZE, source.config.vocabSize);
    const generated: number[] = [];
    const nativeRows: Float32Array[] = [];
    let feed = prompt;
    for (let i = 0; i < NUM_NEW_TOKENS; i++) {
      const out = await driver.step([{ seqId: 0, tokens: feed }], 1);
      const token = out.sampled.get(0) ?? -1;
      nativeRows.push(...(out.logits.get(0) ?? []));
      generated.push(token);
      feed = [token];
    }

    const reference = new ReferenceModel(modelDir);
    expect(generated).toEqual(reference.greedy(prompt, NUM_NEW_TOKENS));
    // Teacher-forced on the same tokens, every step's last-token logits agree.
    const allReference = reference.logits([...prompt, ...generated.slice(0, -1)]);
    const referenceRows = allReference.slice(prompt.length - 1);
    expect(relativeError(nativeRows, referenceRows)).toBeLessThanOrEqual(TOLERANCE);

    const text = tokenizer.decode(generated);
    console.log(`stories260K: "Once upon a time${text}"`);
    const words = text.split(/\s+/).map((w) => w.replace(/[.,!?"']/g, '')).filter((w) => w.length > 0);
    expect(words.length).toBeGreaterThanOrEqual(25);
    expect(words.every((w) => /^[A-Za-z]+$/.test(w))).toBe(true);
    expect(text).toContain('Lily');
    expect(words.filter((w) => ['the', 'a', 'was', 'she', 'to', 'and'].includes(w.toLowerCase())).length).toBeGreaterThanOrEqual(4);
  });
});
