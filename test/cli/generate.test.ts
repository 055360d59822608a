// `spindle generate` end to end on the real stories260K model: greedy output must be a prefix of
// the reference continuation recorded (by transformers and a numpy forward) in its SOURCES.md.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { realEngineSkipReason } from '../server/real-model.ts';
import { repoRoot, runCli } from './cli-process.ts';

const modelDir = path.resolve(repoRoot, '../shared/models/stories260K-hf');
const skipReason = !existsSync(modelDir) ? `${modelDir} is absent` : realEngineSkipReason();
if (skipReason) console.warn(`skipping spindle generate on stories260K: ${skipReason}`);

/** The greedy continuations listed in SOURCES.md, keyed by prompt. */
function referenceContinuations(): Map<string, string> {
  const sources = readFileSync(path.join(modelDir, 'SOURCES.md'), 'utf8');
  const references = new Map<string, string>();
  for (const match of sources.matchAll(/^- "(.*)"$/gm)) {
    const text = JSON.parse(`"${match[1]}"`) as string;
    for (const prompt of ['Once upon a time', 'Tom and his dog']) if (text.startsWith(prompt)) references.set(prompt, text);
  }
  return references;
}

describe.skipIf(skipReason !== '')('spindle generate', () => {
  it('prints greedy continuations that match the reference', async () => {
    const references = referenceContinuations();
    expect(references.size).toBe(2);
    const prompts = [...references.keys()];
    const run = await runCli(['generate', modelDir, ...prompts.flatMap((p) => ['--prompt', p]), '--max-tokens', '40', '--json', '--detokenizer-workers', '1'], 120_000);
    expect(run.exitCode).toBe(0);
    const outputs = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { prompt: string; text: string; num_tokens: number; finish_reason: string });
    expect(outputs.map((o) => o.prompt)).toEqual(prompts);
    for (const output of outputs) {
      expect(output.num_tokens).toBe(40);
      expect(output.finish_reason).toBe('length');
      expect(output.text.length).toBeGreaterThan(20);
      expect(references.get(output.prompt)?.startsWith(output.prompt + output.text)).toBe(true);
    }
  });

  it('--seed seeds the engine, not each prompt: the same prompt twice gives two samples', async () => {
    // As vLLM's LLM(seed=...): one seeded stream for the run, so a rerun reproduces the outputs
    // while duplicate prompts in one run are sampled independently.
    const args = ['generate', modelDir, '--prompt', 'Once upon a time', '--prompt', 'Once upon a time',
      '--temperature', '1', '--seed', '7', '--max-tokens', '40', '--ignore-eos', '--json', '--detokenizer-workers', '1'];
    const runs = [await runCli(args, 120_000), await runCli(args, 120_000)];
    const texts = runs.map((run) => {
      expect(run.exitCode).toBe(0);
      return run.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { text: string }).text);
    });
    expect(texts[0][0]).not.toBe(texts[0][1]);
    expect(texts[1]).toEqual(texts[0]);
  });
});
