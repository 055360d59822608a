/**
 * Each CPU routine (native/src/cpu/) against a float64 reference on fresh random inputs
 * (Math.random: new values every run), through the test-only `cpuKernels` binding. Shapes are
 * chosen off the kernels' tile sizes (GEMM tiles 2x4 over k in steps of 4; 32x64 tasks) so
 * every edge path runs, with 1 and 2 threads.
 */
import { describe, expect, it } from 'vitest';
import { native } from './helpers.ts';

const kernels = native.cpuKernels;
const EPS32 = 2 ** -24; // unit roundoff of float32

const uniform = (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale);

/** Largest |actual - expected| / allowed over all elements; <= 1 passes. */
function worstRatio(actual: Float32Array, expected: Float64Array, allowed: (i: number) => number): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / allowed(i));
  return worst;
}

describe('cpu matMulTransB', () => {
  const shapes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [2, 130, 3], [33, 67, 130], [64, 64, 64], [5, 300, 257]];
  for (const [m, n, k] of shapes) {
    for (const numThreads of [1, 2]) {
      it(`y[${m}, ${n}] = x[${m}, ${k}] · w[${n}, ${k}]ᵀ + bias, ${numThreads} thread(s)`, () => {
        const x = uniform(m * k);
        const w = uniform(n * k);
        const bias = uniform(n);
        const y = kernels.matMulTransB(x, w, bias, m, n, k, numThreads);
        const ref = new Float64Array(m * n);
        const magnitude = new Float64Array(m * n); // sum |x w| + |bias|
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = bias[j];
            let a = Math.abs(bias[j]);
            for (let p = 0; p < k; p++) {
              s += x[i * k + p] * w[j * k + p];
              a += Math.abs(x[i * k + p] * w[j * k + p]);
            }
            ref[i * n + j] = s;
            magnitude[i * n + j] = a;
          }
        }
        // Bound: fp32 summation of k + 1 terms, (k + 2) u sum|terms|.
        expect(worstRatio(y, ref, (i) => (k + 2) * EPS32 * magnitude[i] + 1e-30)).toBeLessThanOrEqual(1);
        const noBias = kernels.matMulTransB(x, w, null, m, n, k, numThreads);
        expect(worstRatio(noBias, ref.map((v, i) => v - bias[i % n]), (i) => (k + 3) * EPS32 * magnitude[i] + 1e-30)).toBeLessThanOrEqual(1);
      });
    }
  }
});

describe('cpu rmsNorm', () => {
  for (const [rows, dim] of [[1, 1], [7, 33], [300, 8], [4, 4096]] as const) {
    it(`rows ${rows} x dim ${dim}`, () => {
      const x = uniform(rows * dim, 3);
      const weight = Float32Array.from({ length: dim }, () => 1 + (Math.random() - 0.5) * 0.2);
      const eps = 1e-6;
      const y = kernels.rmsNorm(x, weight, eps, rows, dim, 2);
      const ref = new Float64Array(rows * dim);
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
        const inv = 1 / Math.sqrt(ss / dim + eps);
        for (let i = 0; i < dim; i++) ref[r * dim + i] = x[r * dim + i] * inv * weight[i];
      }
      // Bound: relative 1e-5 (the fp32 mean of dim squares and rsqrt), plus 1e-7 absolute.
      expect(worstRatio(y, ref, (i) => 1e-5 * Math.abs(ref[i]) + 1e-7)).toBeLessThanOrEqual(1);
    });
  }
});

/** transformers' _compute_llama3_parameters, in float64. */
function inverseFrequencies(headDim: number, theta: number, llama3: number[] | null): number[] {
  const freqs = Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  if (!llama3) return freqs;
  const [factor, low, high, oldLen] = llama3;
  return freqs.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < oldLen / high) return f;
    if (wavelen > oldLen / low) return f / factor;
    const smooth = (oldLen / wavelen - low) / (high - low);
    return ((1 - smooth) * f) / factor + smooth * f;
  });
}

describe('cpu rope', () => {
  const cases: { name: string; headDim: number; theta: number; llama3: number[] | null }[] = [
    { name: 'plain, head_dim 64', headDim: 64, theta: 10000, llama3: null },
    { name: 'llama3 scaling, head_dim 128', headDim: 128, theta: 500000, llama3: [8, 1, 4, 8192] },
    { name: 'head_dim 2', headDim: 2, theta: 10000, llama3: null },
  ];
  for (const { name, headDim, theta, llama3 } of cases) {
    it(name, () => {
      const heads = 3;
      const positions = Int32Array.from([0, 1, 2, 17, 1000, 8191, 8192, 100_000, 131_071]);
      const x = uniform(positions.length * heads * headDim);
      const y = kernels.rope(x, positions, heads, headDim, theta, llama3 ? Float32Array.from(llama3) : null, 2);
      const freqs = inverseFrequencies(headDim, theta, llama3);
      const half = headDim / 2;
      const ref = new Float64Array(x.length);
      positions.forEach((pos, t) => {
        for (let h = 0; h < heads; h++) {
          const base = (t * heads + h) * headDim;
          for (let i = 0; i < half; i++) {
            const angle = pos * freqs[i];
            const a = x[base + i];
            const b = x[base + i + half];
            ref[base + i] = a * Math.cos(angle) - b * Math.sin(angle);
            ref[base + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
          }
        }
      });
      // Bound: 1e-6 absolute for |x| <= 1 (float cos/sin tables, two products and a sum).
      expect(worstRatio(y, ref, () => 1e-6)).toBeLessThanOrEqual(1);
    });
  }
});

describe('cpu siluMul', () => {
  it('silu(gate) * up over 100k values, including large |gate|', () => {
    const gate = uniform(100_000, 12);
    gate[0] = -100;
    gate[1] = 100;
    const up = uniform(100_000, 2);
    const y = kernels.siluMul(gate, up, 2);
    const ref = Float64Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    // Bound: relative 1e-6 (fp32 exp, one division, one product) plus 1e-30 absolute.
    expect(worstRatio(y, ref, (i) => 1e-6 * Math.abs(ref[i]) + 1e-30)).toBeLessThanOrEqual(1);
  });
});

describe('cpu pagedAttention', () => {
  it('causal GQA attention of a varlen batch over shuffled blocks', () => {
    const [numHeads, numKvHeads, headDim, blockSize, numBlocks] = [8, 2, 32, 16, 64];
    // Three sequences: a long context with a decode token, a prefill chunk of 40 after 23
    // cached tokens, and a fresh 5-token prefill.
    const seqs = [
      { cached: 300, fresh: 1 },
      { cached: 23, fresh: 40 },
      { cached: 0, fresh: 5 },
    ];
    const maxBlocksPerSeq = Math.max(...seqs.map((s) => Math.ceil((s.cached + s.fresh) / blockSize)));
    const shuffled = Array.from({ length: numBlocks }, (_, i) => i).sort(() => Math.random() - 0.5);
    const blockTables = new Int32Array(seqs.length * maxBlocksPerSeq);
    let nextBlock = 0;
    seqs.forEach((s, i) => {
      for (let b = 0; b < Math.ceil((s.cached + s.fresh) / blockSize); b++) blockTables[i * maxBlocksPerSeq + b] = shuffled[nextBlock++];
    });
    const tokenSeq: number[] = [];
    const contextLens: number[] = [];
    seqs.forEach((s, i) => {
      for (let t = 0; t < s.fresh; t++) {
        tokenSeq.push(i);
        contextLens.push(s.cached + t + 1);
      }
    });
    const numTokens = tokenSeq.length;
    const q = uniform(numTokens * numHeads * headDim, 2);
    const cacheLength = numBlocks * blockSize * numKvHeads * headDim;
    const kCache = uniform(cacheLength, 2);
    const vCache = uniform(cacheLength);
    const dims = Int32Array.from([numHeads, numKvHeads, headDim, blockSize, maxBlocksPerSeq, numBlocks]);
    const out = kernels.pagedAttention(q, kCache, vCache, Int32Array.from(tokenSeq), Int32Array.from(contextLens), blockTables, dims, 2);

    const ref = new Float64Array(out.length);
    const slotOf = (s: number, j: number) => blockTables[s * maxBlocksPerSeq + Math.floor(j / blockSize)] * blockSize + (j % blockSize);
    for (let t = 0; t < numTokens; t++) {
      for (let h = 0; h < numHeads; h++) {
        const g = Math.floor(h / (numHeads / numKvHeads));
        const scores = Array.from({ length: contextLens[t] }, (_, j) => {
          const k = (slotOf(tokenSeq[t], j) * numKvHeads + g) * headDim;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[(t * numHeads + h) * headDim + d] * kCache[k + d];
          return dot / Math.sqrt(headDim);
        });
        const max = Math.max(...scores);
        const weights = scores.map((s) => Math.exp(s - max));
        const total = weights.reduce((a, b) => a + b, 0);
        weights.forEach((w, j) => {
          const v = (slotOf(tokenSeq[t], j) * numKvHeads + g) * headDim;
          for (let d = 0; d < headDim; d++) ref[(t * numHeads + h) * headDim + d] += (w / total) * vCache[v + d];
        });
      }
    }
    // Bound: 1e-5 absolute for |v| <= 1 (fp32 scores, softmax and a weighted sum of <= 301 rows).
    expect(worstRatio(out, ref, () => 1e-5)).toBeLessThanOrEqual(1);
  });
});
