/**
 * Each CUDA kernel against a float64 CPU reference on fresh random inputs: builds
 * test/gpu/kernel_selftest.cu with the kernels of native/src/cuda (nvcc, sm_90, the addon's
 * flags), runs it with a new seed, and checks every line it prints: relError ≤ its bound
 * (float32 1e-5..2e-4, bfloat16 1e-2; each stated in kernel_selftest.cu), no output element
 * left poisoned, no cache slot outside slot_mapping touched. Skips with the reason without
 * a CUDA device or nvcc.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cudaSkipReason } from './cuda-device.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KERNEL_SOURCES = [
  'embedding.cu', 'rms_norm.cu', 'qkv_rope_kv_write.cu', 'silu_mul.cu', 'gather_rows.cu', 'paged_decode_attention.cu',
  'prefill_attention.cu', 'prefill_attention_wmma.cu', 'weight_init.cu', 'greedy_sampler_placeholder.cu', 'rope_frequencies.cc', 'logit_adjust.cu', 'decode_graph_inputs.cu',
].map((f) => path.join(repoRoot, 'native/src/cuda', f));
/** Every kernel family must report for each dtype it runs in. */
const EXPECTED = [
  'embedding', 'fused_add_rms_norm.out', 'fused_add_rms_norm.residual', 'rms_norm.out', 'qkv_rope_kv_write.hd128.llama3.q',
  'qkv_rope_kv_write.hd64.bias.k_cache', 'qkv_rope_kv_write.hd128.qknorm.q', 'qkv_rope_kv_write.hd8.v_cache', 'silu_mul',
  'gather_last_token_rows', 'convert_f16', 'paged_decode_attention.gqa4.hd128', 'paged_decode_attention.gqa4.hd128.split5', 'paged_decode_attention.gqa4.hd128.split7.per_seq',
  'paged_decode_attention.gqa8.hd64.split3', 'paged_decode_attention.mha.hd128', 'paged_decode_attention.gqa2.hd64.split2.per_seq', 'prefill_attention.gqa4.hd128', 'prefill_attention.gqa4.hd64.long', 'prefill_attention.gqa2.hd8', 'prefill_attention.mha.hd256',
];
/** Kernels with no dtype parameter, reported once. */
const EXPECTED_ONCE = ['greedy_sample_placeholder', 'apply_logit_adjusts', 'pad_decode_graph_inputs'];

interface Check {
  kernel: string;
  dtype: string;
  relError: number;
  bound: number;
  unwritten: number;
  untouchedViolations: number;
}

function skipReason(): string {
  const deviceReason = cudaSkipReason();
  if (deviceReason) return deviceReason;
  if (spawnSync('nvcc', ['--version']).status !== 0) return 'nvcc not found';
  return '';
}
const reason = skipReason();
if (reason) console.warn(`test/gpu/kernels.test.ts skipped: ${reason}`);

const workDir = mkdtempSync(path.join(tmpdir(), 'spindle-kernels-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}${out}`))));
  });
}

// SPINDLE_KERNEL_NVCC_FLAGS adds flags, e.g. -DSPINDLE_DECODE_STAGES=4 to check a kernel variant.
const EXTRA_FLAGS = (process.env.SPINDLE_KERNEL_NVCC_FLAGS ?? '').split(' ').filter((f) => f !== '');
const NVCC_FLAGS = ['-std=c++17', '-O3', '-arch=sm_90', '--use_fast_math', '-I', 'native/src', '-I', 'native/src/cuda', ...EXTRA_FLAGS];

async function buildSelfTest(): Promise<string> {
  const sources = [path.join(repoRoot, 'test/gpu/kernel_selftest.cu'), ...KERNEL_SOURCES];
  const objects = await Promise.all(
    sources.map(async (src, i) => {
      const obj = path.join(workDir, `${i}.o`);
      await run('nvcc', [...NVCC_FLAGS, '-x', 'cu', '-c', src, '-o', obj]);
      return obj;
    }),
  );
  const exe = path.join(workDir, 'kernel_selftest');
  await run('nvcc', ['-arch=sm_90', ...objects, '-o', exe]);
  return exe;
}

describe.skipIf(reason !== '')('CUDA kernels vs float64 references', () => {
  it('every kernel within its bound, every output written', async () => {
    const exe = await buildSelfTest();
    const seed = Date.now() % 1_000_000_007;
    const out = await run(exe, [String(seed)]);
    const checks = out.trim().split('\n').map((line) => JSON.parse(line) as Check);
    console.log(`kernel self-test, seed ${seed}, extra nvcc flags [${EXTRA_FLAGS.join(' ')}]:\n` + checks.map((c) => `  ${c.kernel} [${c.dtype}] rel ${c.relError.toExponential(2)} (bound ${c.bound})`).join('\n'));
    for (const dtype of ['float32', 'bfloat16']) {
      for (const name of EXPECTED) expect(checks.some((c) => c.kernel === name && c.dtype === dtype), `${name} [${dtype}] reported`).toBe(true);
    }
    for (const name of EXPECTED_ONCE) expect(checks.some((c) => c.kernel === name), `${name} reported`).toBe(true);
    for (const c of checks) {
      expect(c.unwritten, `${c.kernel} [${c.dtype}] unwritten`).toBe(0);
      expect(c.untouchedViolations, `${c.kernel} [${c.dtype}] touched unmapped cache slots`).toBe(0);
      expect(c.relError, `${c.kernel} [${c.dtype}]`).toBeLessThanOrEqual(c.bound);
    }
  }, 600_000);
});
