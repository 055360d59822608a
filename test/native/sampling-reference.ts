/**
 * Float64 reference of the sampler (semantics: native/src/sampling_math.h, vLLM's): the
 * processed logits, their log-softmax, the distribution a row draws from after top_k -> top_p
 * -> min_p, and Pearson's chi-square test of draws against it.
 */
import { type RowSampling } from './helpers.ts';

type Row = RowSampling;
/** Chi-square significance: the draws are deterministic (keyed hash), so this cannot flake. */
const CHI_SQUARE_Z = 4.265; // one-sided normal quantile of p = 1e-5
const f32 = Math.fround;

/** Penalized, temperature-scaled logits in float64 (greedy rows: T = 1). */
export function processedLogits(raw: Float32Array | Float64Array, r: Row): Float64Array {
  const x = Float64Array.from(raw);
  const rp = f32(r.repetitionPenalty);
  for (const id of new Set([...r.promptTokens, ...r.outputTokens])) {
    if (rp !== 1) x[id] = x[id] > 0 ? x[id] / rp : x[id] * rp;
  }
  const counts = new Map<number, number>();
  for (const id of r.outputTokens) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, count] of counts) x[id] -= f32(r.presencePenalty) + f32(r.frequencyPenalty) * count;
  if (f32(r.temperature) > 1e-5) for (let i = 0; i < x.length; i++) x[i] /= f32(r.temperature);
  return x;
}

export function logSoftmax(x: Float64Array): Float64Array {
  const max = Math.max(...x);
  const logSum = max + Math.log(x.reduce((s, v) => s + Math.exp(v - max), 0));
  return x.map((v) => v - logSum);
}

/** Token ids best first (value desc, id asc). */
export function rankOrder(x: Float64Array): number[] {
  return Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b);
}

/** The distribution a row draws from: one-hot for greedy, else softmax over the kept set. */
export function samplingDistribution(raw: Float32Array, r: Row): Float64Array {
  const x = processedLogits(raw, r);
  const order = rankOrder(x);
  const p = new Float64Array(x.length);
  if (f32(r.temperature) <= 1e-5) {
    p[order[0]] = 1;
    return p;
  }
  const kept = new Uint8Array(x.length).fill(1);
  if (r.topK > 0 && r.topK < x.length) {
    const kth = x[order[r.topK - 1]];
    x.forEach((v, i) => (kept[i] = v >= kth ? 1 : 0));
  }
  const max = x[order[0]];
  if (r.topP < 1) {
    const mass = order.reduce((s, id) => s + (kept[id] ? Math.exp(x[id] - max) : 0), 0);
    let above = 0;
    order.filter((id) => kept[id]).forEach((id, j) => {
      if (j > 0 && above >= f32(r.topP)) kept[id] = 0;
      above += Math.exp(x[id] - max) / mass;
    });
  }
  if (r.minP > 0) x.forEach((v, i) => Math.exp(v - max) < f32(r.minP) && (kept[i] = 0));
  let total = 0;
  x.forEach((v, i) => kept[i] && (total += (p[i] = Math.exp(v - max))));
  return p.map((v) => v / total);
}

/** Pearson's statistic over bins with expected count >= 5 (the rest pooled into one bin). */
export function chiSquare(observed: number[], expected: Float64Array): { statistic: number; critical: number; degrees: number } {
  let statistic = 0;
  let bins = 0;
  let restObserved = 0;
  let restExpected = 0;
  expected.forEach((e, i) => {
    if (e >= 5) {
      statistic += (observed[i] - e) ** 2 / e;
      bins++;
    } else {
      restObserved += observed[i];
      restExpected += e;
    }
  });
  if (restExpected > 0) {
    statistic += (restObserved - restExpected) ** 2 / restExpected;
    bins++;
  }
  const degrees = Math.max(1, bins - 1);
  // Wilson-Hilferty approximation of the chi-square quantile.
  const c = 2 / (9 * degrees);
  const critical = degrees * (1 - c + CHI_SQUARE_Z * Math.sqrt(c)) ** 3;
  return { statistic, critical, degrees };
}
