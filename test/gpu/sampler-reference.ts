/**
 * Float64 reference of one sampled row (semantics: native/src/sampling_math.h), used to check
 * the CUDA sampler: penalties, temperature, log-softmax, top-N, and the kept set of the masks.
 * Tokens whose membership could flip under float32 rounding are reported as `ambiguous`.
 */
import type { RowSamplingFields } from '../native/row-sampling.ts';

export interface RowParams extends RowSamplingFields {
  /** prompt + output token ids; the first promptLen are the prompt. */
  history: Int32Array;
  promptLen: number;
}

export interface RowReference {
  /** Penalized, temperature-scaled logits (greedy rows: T = 1). */
  processed: Float64Array;
  logprobs: Float64Array;
  isGreedy: boolean;
  /** Token ids best first (value desc, id asc). */
  order: Int32Array;
  /** 1 where the token survives top_k / top_p / min_p (all 1 for greedy rows). */
  kept: Uint8Array;
  /** 1 where float32 rounding could flip the token's membership of `kept`. */
  ambiguous: Uint8Array;
}

export const GREEDY_TEMPERATURE = 1e-5;
/** Relative slack for mask boundaries: float32 processed logits vs float64 here. */
const BOUNDARY_SLACK = 2e-5;

export function referenceRow(logits: Float32Array, params: RowParams): RowReference {
  const vocab = logits.length;
  const x = Float64Array.from(logits);
  applyPenalties(x, params);
  const isGreedy = params.temperature <= GREEDY_TEMPERATURE;
  if (!isGreedy) for (let i = 0; i < vocab; i++) x[i] /= Math.fround(params.temperature);
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) max = Math.max(max, x[i]);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(x[i] - max);
  const logNormalizer = max + Math.log(sum);
  const logprobs = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) logprobs[i] = x[i] - logNormalizer;
  const order = Int32Array.from({ length: vocab }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b);
  const kept = new Uint8Array(vocab).fill(1);
  const ambiguous = new Uint8Array(vocab);
  if (!isGreedy) applyMasks(x, max, order, params, kept, ambiguous);
  return { processed: x, logprobs, isGreedy, order, kept, ambiguous };
}

function applyPenalties(x: Float64Array, p: RowParams): void {
  if (p.repetitionPenalty === 1 && p.presencePenalty === 0 && p.frequencyPenalty === 0) return;
  const counts = new Map<number, number>();
  for (let i = p.promptLen; i < p.history.length; i++) counts.set(p.history[i], (counts.get(p.history[i]) ?? 0) + 1);
  const distinct = new Set(p.history);
  const r = Math.fround(p.repetitionPenalty);
  for (const id of distinct) {
    let v = x[id];
    if (r !== 1) v = v > 0 ? v / r : v * r;
    const count = counts.get(id) ?? 0;
    if (count > 0) v -= Math.fround(p.presencePenalty) + Math.fround(p.frequencyPenalty) * count;
    x[id] = v;
  }
}

/** top_k (ties at the k-th value kept), top_p over the top_k set (sorted prefix), min_p. */
function applyMasks(x: Float64Array, max: number, order: Int32Array, p: RowParams, kept: Uint8Array, ambiguous: Uint8Array): void {
  const vocab = x.length;
  const slack = (v: number): number => BOUNDARY_SLACK * Math.max(1, Math.abs(v));
  if (p.topK > 0 && p.topK < vocab) {
    const kth = x[order[p.topK - 1]];
    for (let i = 0; i < vocab; i++) {
      kept[i] = x[i] >= kth ? 1 : 0;
      // the k-th token and its exact ties are kept either way; near (not equal) values may flip
      if (x[i] !== kth && Math.abs(x[i] - kth) <= slack(kth)) ambiguous[i] = 1;
    }
  }
  if (p.topP < 1) {
    const topP = Math.fround(p.topP);
    let mass = 0;
    for (let i = 0; i < vocab; i++) if (kept[i]) mass += Math.exp(x[i] - max);
    let above = 0;
    let first = true;
    for (const id of order) {
      if (!kept[id]) continue;
      const share = Math.exp(x[id] - max) / mass;
      if (!first && above >= topP) kept[id] = 0;
      // float32 sums on the GPU: a cut within 1e-5 of the mass, or a near-tie, may move
      if (Math.abs(above - topP) <= 1e-5 || Math.abs(above + share - topP) <= 1e-5) ambiguous[id] = 1;
      above += share;
      first = false;
    }
    // every value tied (within slack) with an ambiguous token is ambiguous too; the ambiguous
    // tokens sit next to each other around the cut, so one value range covers them
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < vocab; i++) {
      if (!ambiguous[i]) continue;
      low = Math.min(low, x[i] - slack(x[i]));
      high = Math.max(high, x[i] + slack(x[i]));
    }
    for (let i = 0; i < vocab; i++) if (x[i] >= low && x[i] <= high) ambiguous[i] = 1;
  }
  if (p.minP > 0) {
    const minP = Math.fround(p.minP);
    for (let i = 0; i < vocab; i++) {
      const ratio = Math.exp(x[i] - max);
      if (ratio < minP) kept[i] = 0;
      if (Math.abs(ratio - minP) <= 1e-5 * minP + slack(x[i]) * ratio) ambiguous[i] = 1;
    }
  }
}

// ---- sampling_math.h's hash and Gumbel noise, in BigInt (for explaining near-ties) ----
const MASK64 = (1n << 64n) - 1n;

function mix64(value: bigint): bigint {
  let x = value & MASK64;
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & MASK64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & MASK64;
  x ^= x >> 31n;
  return x;
}

export function gumbelNoise(keyLo: number, keyHi: number, index: number): number {
  const key = (BigInt(keyHi >>> 0) << 32n) | BigInt(keyLo >>> 0);
  const hash = mix64(key ^ mix64((BigInt(index) * 0x9e3779b97f4a7c15n + 0xd1b54a32d192ed03n) & MASK64));
  const bits = Number(hash >> 32n);
  const v = (bits + 0.5) * 2.3283064365386963e-10;
  return -Math.log(-Math.log1p(-v));
}

/** Float64 Gumbel-max score of token `id` of the row (for comparing two draws). */
export function drawScore(ref: RowReference, params: RowParams, id: number): number {
  return ref.processed[id] + gumbelNoise(params.rngKeyLo, params.rngKeyHi, id);
}

/** Float64 probabilities of the masked, renormalised distribution (for the chi-square test). */
export function keptDistribution(ref: RowReference): Float64Array {
  const probs = new Float64Array(ref.processed.length);
  let total = 0;
  for (let i = 0; i < probs.length; i++) {
    if (ref.kept[i]) {
      probs[i] = Math.exp(ref.logprobs[i]);
      total += probs[i];
    }
  }
  for (let i = 0; i < probs.length; i++) probs[i] /= total;
  return probs;
}
