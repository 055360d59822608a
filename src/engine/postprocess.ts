/**
 * Applies one step's result to its sequences in ONE pass over the batch: append each sampled
 * token (with its logprobs when asked) and decide whether the sequence is done. (Computed
 * tokens were advanced when the step was launched, see step-launch.ts.) vLLM v1's order of checks: length first (max_tokens,
 * max_model_len), then nothing may stop it before min_tokens, then EOS (unless ignore_eos),
 * then stop_token_ids. Stop strings are the workers' job (detok-dispatcher.ts).
 */
import type { ResultViews } from './batch-layout.ts';
import type { ScheduledSeq } from './scheduler.ts';
import type { Sequence } from './sequence.ts';
import type { TokenLogprob } from './types.ts';

export interface PostprocessContext {
  /** The step whose result this is (Sequence.pendingTokenStep of its sampled rows). */
  step: number;
  eosTokenIds: ReadonlySet<number>;
  maxModelLen: number;
  /** Columns per row of the top-logprob columns (the batch's maxTopLogprobs). */
  maxTopLogprobs: number;
  nowMs: number;
}

export interface PostprocessOutcome {
  /** Sequences that got a new token this step (for the detokenizer). */
  sampled: Sequence[];
  /** Sequences that finished this step. */
  finished: Sequence[];
}

export function postprocessStep(rows: readonly ScheduledSeq[], result: ResultViews, ctx: PostprocessContext): PostprocessOutcome {
  const sampled: Sequence[] = [];
  const finished: Sequence[] = [];
  for (let s = 0; s < rows.length; s++) {
    const { seq, isSampled } = rows[s];
    if (!isSampled) continue;
    // Its token is no longer pending (unless a later step already waits on another one).
    if (seq.pendingTokenStep === ctx.step) {
      seq.pendingTokenStep = -1;
      seq.pendingTokenRow = -1;
    }
    // Aborted or stopped by a stop string while the step ran: its token is dropped.
    if (seq.isFinished) continue;
    const tokenId = result.sampledTokenIds[s];
    if (tokenId < 0) throw new Error(`executor returned no token for sampled row ${s} (seq ${seq.seqId})`);
    seq.appendToken(tokenId, seq.logprobs ? logprobOf(result, s, tokenId, seq.params.logprobs ?? 0, ctx.maxTopLogprobs) : null);
    if (seq.firstTokenMs === null) seq.firstTokenMs = ctx.nowMs;
    sampled.push(seq);
    if (checkStop(seq, tokenId, ctx)) finished.push(seq);
  }
  return { sampled, finished };
}

/** Finishes `seq` when its newest token `tokenId` ends it; returns whether it did. */
function checkStop(seq: Sequence, tokenId: number, ctx: PostprocessContext): boolean {
  const p = seq.params;
  const numOutputTokens = seq.numOutputTokens;
  if (numOutputTokens >= p.maxTokens || seq.numTokens >= ctx.maxModelLen) {
    seq.finish('length', undefined, ctx.nowMs);
    return true;
  }
  if (numOutputTokens < p.minTokens) return false;
  if (!p.ignoreEos && ctx.eosTokenIds.has(tokenId)) {
    seq.finish('stop', undefined, ctx.nowMs);
    return true;
  }
  if (p.stopTokenIds.length > 0 && p.stopTokenIds.includes(tokenId)) {
    seq.finish('stop', tokenId, ctx.nowMs);
    return true;
  }
  return false;
}

function logprobOf(result: ResultViews, row: number, tokenId: number, numTop: number, maxTopLogprobs: number): TokenLogprob {
  const top: { tokenId: number; logprob: number }[] = [];
  const base = row * maxTopLogprobs;
  for (let i = 0; i < numTop; i++) {
    const id = result.topTokenIds[base + i];
    if (id < 0) break;
    top.push({ tokenId: id, logprob: result.topLogprobs[base + i] });
  }
  return { tokenId, logprob: result.sampledLogprobs[row], top };
}

/** True when the sequence ended on a stop token (EOS or a stop_token_id), whose text is not shown. */
export function endsOnStopToken(seq: Sequence): boolean {
  return seq.finishReason === 'stop' && typeof seq.stopReason !== 'string' && seq.numOutputTokens > 0;
}
