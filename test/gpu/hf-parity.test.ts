/**
 * The CUDA executor's whole model against Hugging Face transformers on the same GPU machine.
 * test/gpu/hf_reference.py writes the models and transformers' outputs into a directory;
 * point SPINDLE_HF_REF_DIR at it. Per case (model x dtype):
 *  - teacher-forced logits over 8 sequences: ‖spindle − hf‖₂ / ‖hf‖₂ ≤ 2e-2 in bfloat16,
 *    ≤ 1e-4 in float32 (different summation orders only);
 *  - greedy, 64 prompts x 32 tokens: float32 identical to transformers; bfloat16 identical up
 *    to the first divergence, where each side's token is among the other's top-5;
 *  - every step made exactly one device-to-host copy.
 * Skips with the reason when there is no CUDA device or no reference directory.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelConfig } from '../../src/engine/model-config.ts';
import { loadNative, type NativeExecutor } from '../../src/engine/native.ts';
import { locateTensors } from '../../src/engine/weights.ts';
import { cudaSkipReason } from './cuda-device.ts';
import { blocksPerSeq, relativeL2, runGreedy, teacherForcedLogits } from './greedy-driver.ts';

interface ReferenceCase {
  case: string;
  modelDir: string;
  dtype: 'float32' | 'bfloat16';
  vocabSize: number;
  prompts: number[][];
  greedy: number[][];
  topIds: number[][][];
  teacher: number[][];
  logitsFile: string;
}

const BLOCK_SIZE = 16;
const TOP_N = 5;
const refDir = process.env.SPINDLE_HF_REF_DIR ?? '';

function skipReason(): string {
  const deviceReason = cudaSkipReason();
  if (deviceReason) return deviceReason;
  if (!refDir || !existsSync(path.join(refDir, 'manifest.json'))) return 'SPINDLE_HF_REF_DIR has no manifest.json: run python3 test/gpu/hf_reference.py DIR first';
  return '';
}
const reason = skipReason();
if (reason) console.warn(`test/gpu/hf-parity.test.ts skipped: ${reason}`);

function loadCases(): ReferenceCase[] {
  if (reason) return [];
  const manifest = JSON.parse(readFileSync(path.join(refDir, 'manifest.json'), 'utf8')) as { cases: { file: string }[] };
  return manifest.cases.map((c) => JSON.parse(readFileSync(path.join(refDir, c.file), 'utf8')) as ReferenceCase);
}

async function openExecutor(ref: ReferenceCase): Promise<NativeExecutor> {
  const { config } = await readModelConfig(path.join(ref.modelDir, 'config.json'));
  const tensors = await locateTensors(ref.modelDir, config);
  const maxLen = Math.max(...ref.prompts.map((p) => p.length)) + ref.greedy[0].length;
  return new (loadNative().Executor)({
    device: 'cuda',
    dtype: ref.dtype,
    model: config,
    weights: { kind: 'safetensors', tensors },
    blockSize: BLOCK_SIZE,
    numBlocks: ref.prompts.length * blocksPerSeq(maxLen, BLOCK_SIZE),
    gpuMemoryUtilization: 0.5,
    maxNumSeqs: ref.prompts.length,
    maxNumBatchedTokens: 4096,
    numThreads: 0,
  });
}

if (reason) describe.skip('CUDA vs transformers', () => it(`skipped: ${reason}`, () => undefined));
describe.each(loadCases())('CUDA vs transformers: $case', (ref) => {
  it('teacher-forced logits', async () => {
    const exec = await openExecutor(ref);
    try {
      const { logits, copies } = await teacherForcedLogits(exec, ref.teacher, BLOCK_SIZE, ref.vocabSize);
      const buf = readFileSync(path.join(refDir, ref.logitsFile));
      const expected = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      expect(logits.length).toBe(expected.length);
      const err = relativeL2(logits, expected);
      console.log(`${ref.case}: teacher-forced logits rel. L2 error ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(ref.dtype === 'float32' ? 1e-4 : 2e-2);
      expect(copies).toBe(1);
    } finally {
      exec.close();
    }
  }, 300_000);

  it('greedy generations', async () => {
    const exec = await openExecutor(ref);
    try {
      const numNew = ref.greedy[0].length;
      const run = await runGreedy(exec, ref.prompts, numNew, BLOCK_SIZE, ref.vocabSize, TOP_N);
      expect(run.copiesPerStep).toEqual(run.copiesPerStep.map(() => 1));
      // The prompts' step runs eagerly; every decode step replays a CUDA graph where the
      // decode kernel takes the model's heads (head_dim 64/128/256: not stories260K's 8).
      const { config } = await readModelConfig(path.join(ref.modelDir, 'config.json'));
      const usesGraphs = [64, 128, 256].includes(config.headDim);
      expect(run.graphPerStep).toEqual(run.graphPerStep.map((_, step) => (usesGraphs && step > 0 ? 1 : 0)));
      let identical = 0;
      const problems: string[] = [];
      ref.prompts.forEach((_, p) => {
        const ours = run.tokens[p];
        const theirs = ref.greedy[p];
        const d = ours.findIndex((t, i) => t !== theirs[i]);
        if (d < 0) {
          identical++;
          return;
        }
        if (ref.dtype === 'float32') {
          problems.push(`prompt ${p}: diverges at ${d} (${ours[d]} vs ${theirs[d]}) in float32`);
        } else if (!run.topIds[p][d].includes(theirs[d]) || !ref.topIds[p][d].includes(ours[d])) {
          problems.push(`prompt ${p}: at ${d} spindle ${ours[d]} (top ${run.topIds[p][d]}) vs hf ${theirs[d]} (top ${ref.topIds[p][d]})`);
        }
      });
      console.log(`${ref.case}: ${identical}/${ref.prompts.length} greedy generations identical to transformers`);
      expect(problems).toEqual([]);
    } finally {
      exec.close();
    }
  }, 300_000);
});
