/**
 * The physical floor of a throughput run: the time a perfect engine would need on the same
 * device, from two measured ceilings (bench/floor.py: device-to-device copy bandwidth and the
 * bf16 matrix-product rate) and what each step must move and compute:
 *   bytes: every weight once per step, every live sequence's KV once, the new tokens' KV once;
 *   FLOPs: 2 per matrix parameter per token, the LM head only for sampled rows, attention
 *          2·2·heads·headDim per (query, key) pair.
 * A step can do no better than max(bytes / bandwidth, FLOPs / rate).
 */
import type { NativeModelConfig } from '../../src/engine/native.ts';
import type { BenchRequest } from './dataset.ts';

/** The shape fields of the model config that the arithmetic needs. */
export type ModelShape = Pick<
  NativeModelConfig,
  'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize' | 'tieWordEmbeddings' | 'attentionBias' | 'qkNorm'
>;

export interface DeviceCeilings {
  deviceName: string;
  /** Device-to-device copy, bytes read + bytes written per second. */
  copyBytesPerS: number;
  /** Dense bf16 matrix product, FLOP/s. */
  gemmFlopsPerS: number;
}

export interface ParamCounts {
  /** Embedding table (a gather: read only the rows used). */
  embedding: number;
  /** Every matrix and norm of one decoder layer. */
  perLayer: number;
  /** Parameters of one layer that take part in a matrix product per token. */
  perLayerMatmul: number;
  /** The output projection (shares the embedding table when tied). */
  lmHead: number;
  finalNorm: number;
  /** All parameters, counting a tied table once. */
  total: number;
}

export function countParams(m: ModelShape): ParamCounts {
  const qSize = m.numHeads * m.headDim;
  const kvSize = m.numKvHeads * m.headDim;
  const attention = m.hiddenSize * qSize + 2 * m.hiddenSize * kvSize + qSize * m.hiddenSize;
  const mlp = 3 * m.hiddenSize * m.intermediateSize;
  const perLayerMatmul = attention + mlp;
  const bias = m.attentionBias ? qSize + 2 * kvSize : 0;
  const norms = 2 * m.hiddenSize + (m.qkNorm ? 2 * m.headDim : 0);
  const perLayer = perLayerMatmul + bias + norms;
  const embedding = m.vocabSize * m.hiddenSize;
  const lmHead = m.vocabSize * m.hiddenSize;
  const finalNorm = m.hiddenSize;
  const total = embedding + m.numLayers * perLayer + finalNorm + (m.tieWordEmbeddings ? 0 : lmHead);
  return { embedding, perLayer, perLayerMatmul, lmHead, finalNorm, total };
}

/** KV cache bytes of one token: K and V of every layer. */
export function kvBytesPerToken(m: ModelShape, dtypeBytes: number): number {
  return m.numLayers * 2 * m.numKvHeads * m.headDim * dtypeBytes;
}

/** Weight bytes a step must stream: every layer, the final norm and the LM head (not the embedding table). */
export function weightBytesPerStep(m: ModelShape, dtypeBytes: number): number {
  const p = countParams(m);
  return (m.numLayers * p.perLayer + p.finalNorm + p.lmHead) * dtypeBytes;
}

/** What one step does, as far as the floor is concerned. */
export interface StepWork {
  numTokens: number;
  /** Rows that go through the LM head (sequences sampled this step). */
  numSampled: number;
  /** KV tokens read: the sum over scheduled sequences of their context length after the step. */
  numContextTokens: number;
  /** Query–key pairs of attention: the sum over scheduled tokens of the context each one sees. */
  numAttentionPairs: number;
}

export interface StepCost {
  bytes: number;
  flops: number;
}

export function stepCost(m: ModelShape, dtypeBytes: number, work: StepWork): StepCost {
  const p = countParams(m);
  const kvToken = kvBytesPerToken(m, dtypeBytes);
  const bytes =
    weightBytesPerStep(m, dtypeBytes) +
    work.numTokens * m.hiddenSize * dtypeBytes + // embedding rows gathered
    work.numContextTokens * kvToken + // KV read
    work.numTokens * kvToken; // KV written
  const flops =
    2 * m.numLayers * p.perLayerMatmul * work.numTokens +
    2 * p.lmHead * work.numSampled +
    4 * m.numLayers * m.numHeads * m.headDim * work.numAttentionPairs;
  return { bytes, flops };
}

export interface FloorTime {
  /** max(bytes / bandwidth, FLOPs / rate), seconds. */
  seconds: number;
  memorySeconds: number;
  computeSeconds: number;
  bytes: number;
  flops: number;
}

function floorOf(cost: StepCost, c: DeviceCeilings): FloorTime {
  const memorySeconds = cost.bytes / c.copyBytesPerS;
  const computeSeconds = cost.flops / c.gemmFlopsPerS;
  return { seconds: Math.max(memorySeconds, computeSeconds), memorySeconds, computeSeconds, bytes: cost.bytes, flops: cost.flops };
}

/**
 * Floor of an exact schedule: each step at its own bound, summed (a perfect engine could not
 * overlap one step's memory traffic with the next step's compute, since decode is sequential).
 */
export function scheduleFloor(m: ModelShape, dtypeBytes: number, steps: StepWork[], c: DeviceCeilings): FloorTime {
  const total: FloorTime = { seconds: 0, memorySeconds: 0, computeSeconds: 0, bytes: 0, flops: 0 };
  for (const work of steps) {
    const f = floorOf(stepCost(m, dtypeBytes, work), c);
    total.seconds += f.seconds;
    total.memorySeconds += f.memorySeconds;
    total.computeSeconds += f.computeSeconds;
    total.bytes += f.bytes;
    total.flops += f.flops;
  }
  return total;
}

export interface BatchLimits {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
}

/**
 * A lower bound for the whole workload whatever the schedule: every token is computed once,
 * every decode step of a sequence reads its whole context, and the weights are streamed at
 * least once per step, where no schedule has fewer steps than the longest output, than the
 * tokens over the token budget, or than the outputs over the sequence limit.
 */
export function workloadFloor(m: ModelShape, dtypeBytes: number, requests: BenchRequest[], limits: BatchLimits, c: DeviceCeilings): FloorTime & { minSteps: number } {
  let numTokens = 0;
  let numSampled = 0;
  let numDecodeContextTokens = 0;
  let numAttentionPairs = 0;
  let maxOutputLen = 0;
  for (const r of requests) {
    const promptLen = r.promptTokenIds.length;
    const seqLen = promptLen + r.outputLen - 1; // the last sampled token is never fed back
    numTokens += seqLen;
    numSampled += r.outputLen;
    maxOutputLen = Math.max(maxOutputLen, r.outputLen);
    // decode steps see contexts promptLen + 1 .. seqLen
    numDecodeContextTokens += sumRange(promptLen + 1, seqLen);
    // token at position p (0-based) attends to p + 1 keys
    numAttentionPairs += sumRange(1, seqLen);
  }
  const minSteps = Math.max(maxOutputLen, Math.ceil(numTokens / limits.maxNumBatchedTokens), Math.ceil(numSampled / limits.maxNumSeqs));
  const p = countParams(m);
  const kvToken = kvBytesPerToken(m, dtypeBytes);
  const bytes =
    minSteps * weightBytesPerStep(m, dtypeBytes) + numTokens * (m.hiddenSize * dtypeBytes + kvToken) + numDecodeContextTokens * kvToken;
  const flops = 2 * m.numLayers * p.perLayerMatmul * numTokens + 2 * p.lmHead * numSampled + 4 * m.numLayers * m.numHeads * m.headDim * numAttentionPairs;
  return { ...floorOf({ bytes, flops }, c), minSteps };
}

/** first + (first+1) + ... + last; 0 when last < first. */
function sumRange(first: number, last: number): number {
  if (last < first) return 0;
  return ((first + last) * (last - first + 1)) / 2;
}
