/** Shared helpers of the engine tests: sequences and a hand-driven step without a model. */
import { Sequence } from '../../src/engine/sequence.ts';
import type { SchedulerOutput } from '../../src/engine/scheduler.ts';
import { DEFAULT_SAMPLING_PARAMS, type SamplingParams } from '../../src/engine/types.ts';

let nextSeqId = 0;

export function makeSeq(numPromptTokens: number, params: Partial<SamplingParams> = {}): Sequence {
  const seqId = nextSeqId++;
  const prompt = Array.from({ length: numPromptTokens }, (_, i) => (seqId * 31 + i * 7) % 500);
  return new Sequence(seqId, `req-${seqId}`, prompt, { ...DEFAULT_SAMPLING_PARAMS, ...params }, 0);
}

/** What the engine's postprocess does to the scheduler's state, with a fixed sampled token. */
export function completeStep(out: SchedulerOutput, sampledTokenId = 1): void {
  for (const row of out.rows) {
    row.seq.numComputedTokens += row.numNewTokens;
    if (row.isSampled) row.seq.appendToken(sampledTokenId, null);
  }
}
