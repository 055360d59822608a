/**
 * One row's sampling settings as the step batch carries them (batch-layout.ts names), and their
 * packing into a batch: shared by the native executor tests and the CUDA sampler tests.
 */
import type { BatchViews } from '../../src/engine/batch-layout.ts';

export interface RowSamplingFields {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  rngKeyLo: number;
  rngKeyHi: number;
  /** Top logprobs wanted for this row (0 = none). */
  numLogprobs: number;
}

/** Writes row `s`'s sampling settings into the batch (penalty history is the caller's). */
export function writeRowSampling(b: BatchViews, s: number, r: RowSamplingFields): void {
  b.temperature[s] = r.temperature;
  b.topK[s] = r.topK;
  b.topP[s] = r.topP;
  b.minP[s] = r.minP;
  b.presencePenalty[s] = r.presencePenalty;
  b.frequencyPenalty[s] = r.frequencyPenalty;
  b.repetitionPenalty[s] = r.repetitionPenalty;
  b.rngKeyLo[s] = r.rngKeyLo;
  b.rngKeyHi[s] = r.rngKeyHi;
  b.numLogprobs[s] = r.numLogprobs;
}
