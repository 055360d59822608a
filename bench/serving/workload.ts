/**
 * The serving benchmark's requests: the throughput benchmark's selection (vLLM's ShareGPT
 * filter and seeded order, output length = the reference completion's token count), sent as
 * text as vLLM's serving benchmark sends it, so the server's tokenization is part of what is
 * measured; or random prompts, sent as token ids so that their length is exact (vLLM decodes
 * random ids to text, and re-tokenizing that text changes the length).
 */
import path from 'node:path';
import { loadShareGpt, randomRequests, selectShareGptRequests, workloadTotals, type TextEncoder, type WorkloadTotals } from '../throughput/dataset.ts';

export interface ServingRequest {
  /** ShareGPT id, or `random-<i>`. */
  id: string;
  prompt: string | number[];
  /** Prompt tokens as the client's tokenizer counts them (with the BOS the server adds). */
  promptLen: number;
  /** max_tokens: with EOS ignored, exactly the tokens to generate. */
  outputLen: number;
}

export interface ServingWorkload {
  requests: ServingRequest[];
  source: string;
  totals: WorkloadTotals;
  /** ShareGPT rows tokenized before --num-prompts passed the filter; null in random mode. */
  numRowsExamined: number | null;
  numRowsDropped: number | null;
}

export interface WorkloadSpec {
  dataset: string;
  numPrompts: number;
  seed: number;
  randomInputLen?: number;
  randomOutputLen?: number;
}

export function buildWorkload(spec: WorkloadSpec, tokenizer: TextEncoder & { vocabSize: number }): ServingWorkload {
  if (spec.randomInputLen !== undefined && spec.randomOutputLen !== undefined) {
    const requests = randomRequests(spec.numPrompts, spec.randomInputLen, spec.randomOutputLen, tokenizer.vocabSize, spec.seed);
    return {
      requests: requests.map((r) => ({ id: r.id, prompt: r.promptTokenIds, promptLen: r.promptTokenIds.length, outputLen: r.outputLen })),
      source: `random ${spec.randomInputLen} in / ${spec.randomOutputLen} out`,
      totals: workloadTotals(requests),
      numRowsExamined: null,
      numRowsDropped: null,
    };
  }
  const rows = loadShareGpt(spec.dataset);
  const selection = selectShareGptRequests(rows, tokenizer, spec.numPrompts, spec.seed);
  // The selection keeps ids, not rows: the text is found by id, which needs ids to be unique.
  const promptById = new Map(rows.map((row) => [row.id, row.prompt]));
  if (promptById.size !== rows.length) throw new Error(`${spec.dataset}: row ids are not unique, so prompts cannot be found by id`);
  return {
    requests: selection.requests.map((r) => ({
      id: r.id,
      prompt: promptById.get(r.id) ?? '',
      promptLen: r.promptTokenIds.length,
      outputLen: r.outputLen,
    })),
    source: `ShareGPT ${path.basename(spec.dataset)}, seed ${spec.seed}`,
    totals: workloadTotals(selection.requests),
    numRowsExamined: selection.numRowsExamined,
    numRowsDropped: selection.numRowsDropped,
  };
}
