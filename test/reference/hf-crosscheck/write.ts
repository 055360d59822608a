/**
 * Checks the float64 reference itself against Hugging Face transformers (not run in CI: it
 * needs Python with torch + transformers). Step 1, here: write five tiny random models
 * (Llama-3 with llama3 RoPE scaling, Qwen2, Qwen3 tied with head_dim != hidden/heads,
 * Mistral BF16 sharded, Llama F16) and this reference's logits for fixed tokens:
 *   npx tsx test/reference/hf-crosscheck/write.ts OUT_DIR
 * Step 2, where transformers is installed: python3 test/reference/hf-crosscheck/check.py OUT_DIR
 * Seen 2026-11-23 with transformers 5.17.0 / torch 2.11 (float64, eager attention): rel. error
 * 1.4e-7 for all five (HF keeps RoPE tables and RMSNorm in float32 even in float64 mode).
 */
import { mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeRandomModel, type RandomModelOptions } from '../../../src/tools/write-random-model.ts';
import { ReferenceModel } from '../llama-f64.ts';

const VOCAB = 512;
const MODELS: Record<string, RandomModelOptions> = {
  llama3: { arch: 'llama', seed: 11, vocabSize: VOCAB, ropeTheta: 10000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } },
  qwen2: { arch: 'qwen2', seed: 12, vocabSize: VOCAB },
  qwen3: { arch: 'qwen3', seed: 13, vocabSize: VOCAB, headDim: 32, tieWordEmbeddings: true },
  mistral_bf16: { arch: 'mistral', seed: 14, vocabSize: VOCAB, numKvHeads: 1, dtype: 'BF16', numShards: 2 },
  llama_f16: { arch: 'llama', seed: 15, vocabSize: VOCAB, dtype: 'F16', ropeScaling: null },
};

const outDir = process.argv[2];
if (!outDir) throw new Error('usage: write.ts OUT_DIR');
mkdirSync(outDir, { recursive: true });
const tokens = Array.from({ length: 20 }, (_, i) => (i * 97 + 13) % VOCAB);
for (const [name, options] of Object.entries(MODELS)) {
  const dir = path.join(outDir, name);
  rmSync(dir, { recursive: true, force: true });
  writeRandomModel(dir, options);
  // transformers needs no tokenizer for logits; leaving it out keeps the folder small.
  unlinkSync(path.join(dir, 'tokenizer.json'));
  unlinkSync(path.join(dir, 'tokenizer_config.json'));
  const logits = new ReferenceModel(dir).logits(tokens);
  const flat = new Float64Array(logits.length * VOCAB);
  logits.forEach((row, i) => flat.set(row, i * VOCAB));
  writeFileSync(path.join(dir, 'ref_logits.f64'), Buffer.from(flat.buffer));
}
writeFileSync(path.join(outDir, 'tokens.json'), JSON.stringify(tokens));
console.log(`wrote ${Object.keys(MODELS).length} models and reference logits to ${outDir}`);
