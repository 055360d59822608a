import { describe, expect, it } from 'vitest';
import { readResult, resultByteLength, type BatchShape } from '../../src/engine/batch-layout.ts';
import { postprocessStep } from '../../src/engine/postprocess.ts';
import type { ScheduledSeq } from '../../src/engine/scheduler.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import { makeSeq } from './helpers.ts';

/** Runs one postprocess of a single decode row that sampled `tokenId`. */
function decodeOnce(params: Partial<SamplingParams>, numOutputSoFar: number, tokenId: number, maxModelLen = 4096) {
  const seq = makeSeq(4, params);
  for (let i = 0; i < numOutputSoFar; i++) seq.appendToken(7, null);
  seq.numComputedTokens = seq.numTokens; // advanced when the step was launched
  seq.pendingTokenStep = 1;
  seq.pendingTokenRow = 0;
  const shape: BatchShape = { numSeqs: 1, numTokens: 1, maxBlocksPerSeq: 1, maxTopLogprobs: 2, logitsMode: 0, numPenaltyTokens: 0 };
  const result = readResult(new ArrayBuffer(resultByteLength(shape, 10)), shape, 10);
  result.sampledTokenIds[0] = tokenId;
  result.sampledLogprobs[0] = -0.5;
  result.topTokenIds.set([tokenId, 3]);
  result.topLogprobs.set([-0.5, Number.NEGATIVE_INFINITY]);
  const rows: ScheduledSeq[] = [{ seq, numNewTokens: 1, isSampled: true }];
  const outcome = postprocessStep(rows, result, { step: 1, eosTokenIds: new Set([2]), maxModelLen, maxTopLogprobs: 2, nowMs: 1 });
  return { seq, outcome };
}

describe('postprocessStep', () => {
  it('appends the token, ends its pending state, keeps logprobs (−inf included) when asked', () => {
    const { seq, outcome } = decodeOnce({ logprobs: 2 }, 0, 5);
    expect(seq.outputTokenIds).toEqual([5]);
    expect(seq.numComputedTokens).toBe(4);
    expect(seq.numPendingTokens).toBe(0);
    expect(seq.logprobs).toEqual([{ tokenId: 5, logprob: -0.5, top: [{ tokenId: 5, logprob: -0.5 }, { tokenId: 3, logprob: Number.NEGATIVE_INFINITY }] }]);
    expect(outcome.sampled).toEqual([seq]);
    expect(outcome.finished).toEqual([]);
    expect(seq.firstTokenMs).toBe(1);
  });

  it('checks in vLLM order: length, then min_tokens, then EOS (unless ignore_eos), then stop ids', () => {
    expect(decodeOnce({ maxTokens: 3 }, 2, 2).seq).toMatchObject({ finishReason: 'length' });
    expect(decodeOnce({ maxTokens: 50 }, 0, 2, 5).seq).toMatchObject({ finishReason: 'length' });
    expect(decodeOnce({}, 0, 2).seq).toMatchObject({ finishReason: 'stop', stopReason: undefined });
    expect(decodeOnce({ ignoreEos: true }, 0, 2).seq.isFinished).toBe(false);
    expect(decodeOnce({ minTokens: 2 }, 0, 2).seq.isFinished).toBe(false);
    expect(decodeOnce({ minTokens: 2 }, 1, 2).seq).toMatchObject({ finishReason: 'stop' });
    expect(decodeOnce({ stopTokenIds: [5] }, 0, 5).seq).toMatchObject({ finishReason: 'stop', stopReason: 5 });
    expect(decodeOnce({ stopTokenIds: [5], ignoreEos: true }, 0, 5).seq).toMatchObject({ finishReason: 'stop', stopReason: 5 });
    expect(decodeOnce({ stopTokenIds: [5], minTokens: 3 }, 0, 5).seq.isFinished).toBe(false);
  });

  it('skips rows finished while the step ran and leaves unsampled chunks without a token', () => {
    const done = makeSeq(3);
    done.pendingTokenStep = 7;
    done.pendingTokenRow = 0;
    done.abort(0);
    const chunk = makeSeq(10);
    chunk.numComputedTokens = 5;
    const shape: BatchShape = { numSeqs: 2, numTokens: 8, maxBlocksPerSeq: 1, maxTopLogprobs: 0, logitsMode: 0, numPenaltyTokens: 0 };
    const result = readResult(new ArrayBuffer(resultByteLength(shape, 10)), shape, 10);
    result.sampledTokenIds.set([4, -1]);
    const outcome = postprocessStep(
      [
        { seq: done, numNewTokens: 3, isSampled: true },
        { seq: chunk, numNewTokens: 5, isSampled: false },
      ],
      result,
      { step: 7, eosTokenIds: new Set(), maxModelLen: 100, maxTopLogprobs: 0, nowMs: 0 },
    );
    expect(done.numOutputTokens).toBe(0);
    expect(done.numPendingTokens).toBe(0);
    expect(chunk.numComputedTokens).toBe(5);
    expect(chunk.numOutputTokens).toBe(0);
    expect(outcome.sampled).toEqual([]);
  });
});

describe('postprocessStep and a later step in flight', () => {
  it('leaves the pending state a later launch set (async scheduling launches N+1 before N is postprocessed)', () => {
    const seq = makeSeq(4);
    seq.numComputedTokens = 5; // step 1 computed the prompt, step 2 (in flight) computes token 4
    seq.pendingTokenStep = 2;
    seq.pendingTokenRow = 0;
    const shape: BatchShape = { numSeqs: 1, numTokens: 4, maxBlocksPerSeq: 1, maxTopLogprobs: 0, logitsMode: 0, numPenaltyTokens: 0 };
    const result = readResult(new ArrayBuffer(resultByteLength(shape, 10)), shape, 10);
    result.sampledTokenIds[0] = 9;
    postprocessStep([{ seq, numNewTokens: 4, isSampled: true }], result, { step: 1, eosTokenIds: new Set(), maxModelLen: 100, maxTopLogprobs: 0, nowMs: 0 });
    expect(seq.outputTokenIds).toEqual([9]);
    expect([seq.pendingTokenStep, seq.pendingTokenRow]).toEqual([2, 0]);
  });
});
