/**
 * The workload of the throughput benchmark: ShareGPT requests selected the way vLLM's
 * benchmark_throughput.py selects them (seeded shuffle, then the first numPrompts rows that
 * pass its length filter), or random prompts of fixed lengths.
 *
 * A request is prompt token ids + the number of tokens to generate; the same list is written
 * to JSON for bench/hf_baseline.py so that both engines run identical inputs.
 */
import type { ShareGptRow } from '../lib/sharegpt.ts';
import { seededRandom } from '../lib/seeded-random.ts';

export interface BenchRequest {
  /** ShareGPT id, or `random-<i>`. */
  id: string;
  promptTokenIds: number[];
  /** Tokens to generate (EOS ignored): the reference completion's token count. */
  outputLen: number;
}

/** What the selection needs of a tokenizer (the preset's or the model dir's). */
export interface TextEncoder {
  encode(text: string, addSpecialTokens: boolean): number[];
}

/** vLLM's sample_requests filter: drops pairs too short to mean anything or too long to batch. */
export const SHAREGPT_FILTER = Object.freeze({
  minPromptLen: 4,
  minOutputLen: 4,
  maxPromptLen: 1024,
  maxTotalLen: 2048,
});

export function isKeptByShareGptFilter(promptLen: number, outputLen: number): boolean {
  if (promptLen < SHAREGPT_FILTER.minPromptLen || outputLen < SHAREGPT_FILTER.minOutputLen) return false;
  return promptLen <= SHAREGPT_FILTER.maxPromptLen && promptLen + outputLen <= SHAREGPT_FILTER.maxTotalLen;
}

// Re-exported: the throughput CLI and its tests take the workload's whole toolset from here.
export { loadShareGpt, type ShareGptRow } from '../lib/sharegpt.ts';
export { seededRandom };

/** Fisher–Yates over 0..n-1 with the seeded generator. */
export function shuffledIndices(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export interface Selection {
  requests: BenchRequest[];
  /** Rows tokenized before numPrompts passed (the rest were never looked at). */
  numRowsExamined: number;
  numRowsDropped: number;
}

/**
 * Shuffles with `seed`, then tokenizes rows in that order and keeps those that pass the
 * filter until numPrompts are kept (as vLLM does: tokenizing lazily keeps it quick).
 * Throws when the dataset holds too few rows that pass.
 */
export function selectShareGptRequests(rows: ShareGptRow[], encoder: TextEncoder, numPrompts: number, seed: number): Selection {
  const requests: BenchRequest[] = [];
  let numRowsExamined = 0;
  for (const index of shuffledIndices(rows.length, seed)) {
    if (requests.length === numPrompts) break;
    const row = rows[index];
    numRowsExamined++;
    const promptTokenIds = encoder.encode(row.prompt, true);
    const outputLen = encoder.encode(row.completion, false).length;
    if (!isKeptByShareGptFilter(promptTokenIds.length, outputLen)) continue;
    requests.push({ id: row.id, promptTokenIds, outputLen });
  }
  if (requests.length < numPrompts) {
    throw new Error(`only ${requests.length} of ${rows.length} dataset rows pass the length filter; --num-prompts asked for ${numPrompts}`);
  }
  return { requests, numRowsExamined, numRowsDropped: numRowsExamined - requests.length };
}

/** vLLM's random mode: prompts of uniformly random token ids, all of one length. */
export function randomRequests(numPrompts: number, inputLen: number, outputLen: number, vocabSize: number, seed: number): BenchRequest[] {
  const random = seededRandom(seed);
  return Array.from({ length: numPrompts }, (_, i) => ({
    id: `random-${i}`,
    promptTokenIds: Array.from({ length: inputLen }, () => Math.floor(random() * vocabSize)),
    outputLen,
  }));
}

export interface WorkloadTotals {
  numRequests: number;
  numPromptTokens: number;
  numOutputTokens: number;
  maxPromptLen: number;
  maxOutputLen: number;
}

export function workloadTotals(requests: BenchRequest[]): WorkloadTotals {
  let numPromptTokens = 0;
  let numOutputTokens = 0;
  let maxPromptLen = 0;
  let maxOutputLen = 0;
  for (const r of requests) {
    numPromptTokens += r.promptTokenIds.length;
    numOutputTokens += r.outputLen;
    maxPromptLen = Math.max(maxPromptLen, r.promptTokenIds.length);
    maxOutputLen = Math.max(maxOutputLen, r.outputLen);
  }
  return { numRequests: requests.length, numPromptTokens, numOutputTokens, maxPromptLen, maxOutputLen };
}
