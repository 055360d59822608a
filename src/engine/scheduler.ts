/**
 * Continuous batching with vLLM v1's one rule: there are no prefill and decode phases.
 * Each step, every scheduled sequence's numComputedTokens catches up toward its numTokens,
 * within a token budget (maxNumBatchedTokens) and a sequence cap (maxNumSeqs). Running
 * sequences go first (oldest first), then waiting ones in arrival order. A prompt longer
 * than the budget is split over several steps (chunked prefill); only the chunk that
 * reaches the end samples a token. When KV blocks run out, the newest running sequence
 * is preempted by recompute: its blocks are freed and it goes back to the front of the
 * waiting queue, to be prefilled again (prompt + output so far) later.
 * With async scheduling the next step is scheduled while one is in flight: a sequence whose
 * token that step samples counts it already (Sequence.numPendingTokens), so it decodes that
 * token next, and is left out when the token is sure to be its last (max_tokens, max_model_len).
 * The rows of a schedule list one-token rows first (decodes), longest context first, then the
 * rest in schedule order: the CUDA backend runs its decode-attention kernel on that leading
 * run and its prefill kernel on the others, as vLLM v1 reorders its batch. The GPU starts the
 * decode kernel's blocks in row order, so longest first leaves the short ones for its last
 * wave and no SM idles behind a long context (H100, 256 contexts of 1k-4k: 85.6% of copy
 * bandwidth against 73.9% in arrival order; native/src/cuda/NOTES.md).
 */
import type { BlockManager } from './block-manager.ts';
import { extendBlockKeys } from './prefix-hash.ts';
import type { Sequence } from './sequence.ts';

export interface SchedulerLimits {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number;
}

/** One row of a step: a sequence and how many of its tokens this step computes. */
export interface ScheduledSeq {
  seq: Sequence;
  /** Tokens computed this step: [seq.numComputedTokens, + numNewTokens). */
  numNewTokens: number;
  /** The chunk reaches the sequence's last token, so a new token is sampled after it. */
  isSampled: boolean;
}

export interface SchedulerOutput {
  rows: ScheduledSeq[];
  /** Sum of numNewTokens. */
  numTokens: number;
  /** Tokens of rows that are not a plain one-token decode. */
  numPrefillTokens: number;
  /** Sequences preempted while making this schedule. */
  preempted: Sequence[];
}

export class Scheduler {
  /** Arrival order; preempted sequences are put back at the front. */
  readonly waiting: Sequence[] = [];
  /** Admission order: the last one is the newest, the first to be preempted. */
  readonly running: Sequence[] = [];
  /** Preemptions since start (for metrics and tests). */
  numPreemptions = 0;

  constructor(
    private readonly limits: SchedulerLimits,
    private readonly blockManager: BlockManager,
  ) {}

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  add(seq: Sequence): void {
    seq.status = 'waiting';
    this.waiting.push(seq);
  }

  schedule(): SchedulerOutput {
    const rows: ScheduledSeq[] = [];
    const preempted: Sequence[] = [];
    let budget = this.limits.maxNumBatchedTokens;
    let numPrefillTokens = 0;

    const addRow = (seq: Sequence, numNewTokens: number): void => {
      const isSampled = seq.numComputedTokens + numNewTokens === seq.numTokens + seq.numPendingTokens;
      rows.push({ seq, numNewTokens, isSampled });
      budget -= numNewTokens;
      const isDecode = numNewTokens === 1 && seq.numComputedTokens >= seq.numPromptTokens;
      if (!isDecode) numPrefillTokens += numNewTokens;
    };

    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i];
      if (this.isLastTokenPending(seq)) continue;
      const numNewTokens = Math.min(seq.numTokens + seq.numPendingTokens - seq.numComputedTokens, budget);
      if (numNewTokens <= 0) continue;
      let isSchedulable = true;
      while (!this.blockManager.appendSlots(seq.blockTable, seq.numComputedTokens + numNewTokens)) {
        // Sequences after i are newer and not yet scheduled this step; the newest goes first.
        const victim = this.running.pop() as Sequence;
        this.preempt(victim);
        preempted.push(victim);
        if (victim === seq) {
          isSchedulable = false;
          break;
        }
      }
      if (!isSchedulable) break;
      addRow(seq, numNewTokens);
    }

    // Admitting new work while preempting would only thrash: wait for blocks to free up.
    if (preempted.length === 0) {
      while (this.waiting.length > 0 && this.running.length < this.limits.maxNumSeqs && budget > 0) {
        const seq = this.waiting[0];
        // Preempted while its token was in flight: it is admitted once that token is known.
        if (seq.numPendingTokens > 0 || !this.admit(seq, budget)) break;
        this.waiting.shift();
        seq.status = 'running';
        this.running.push(seq);
        addRow(seq, Math.min(seq.numTokens - seq.numComputedTokens, budget));
      }
    }

    const numTokens = this.limits.maxNumBatchedTokens - budget;
    return { rows: decodeRowsLongestFirst(rows), numTokens, numPrefillTokens, preempted };
  }

  /**
   * The token a step in flight samples for `seq` ends it by length (postprocess.ts checks the
   * same), so scheduling another would only waste a row and a KV slot.
   */
  private isLastTokenPending(seq: Sequence): boolean {
    return (
      seq.numPendingTokens > 0 &&
      (seq.numOutputTokens + 1 >= seq.params.maxTokens || seq.numTokens + 1 >= this.limits.maxModelLen)
    );
  }

  /**
   * Gives a waiting sequence its blocks: the longest cached prefix (never its last token,
   * which must be computed to sample), then fresh blocks for this step's tokens. Returns
   * false, changing nothing, when the blocks are not there.
   */
  private admit(seq: Sequence, budget: number): boolean {
    const bm = this.blockManager;
    let hits: number[] = [];
    if (bm.isPrefixCachingEnabled && seq.numComputedTokens === 0) {
      extendBlockKeys(seq, seq.numTokens - 1, bm.blockSize);
      const numCandidates = Math.floor((seq.numTokens - 1) / bm.blockSize);
      hits = bm.findCachedPrefix(numCandidates === seq.blockKeys.length ? seq.blockKeys : seq.blockKeys.slice(0, numCandidates));
      const numCachedTokens = hits.length * bm.blockSize;
      const numNewTokens = Math.min(seq.numTokens - numCachedTokens, budget);
      const numFreshBlocks = bm.blocksFor(numCachedTokens + numNewTokens) - hits.length;
      if (bm.numFree - bm.numFreeAmong(hits) < numFreshBlocks) return false;
      bm.numQueriedBlocks += numCandidates;
      bm.numQueriedTokens += seq.numTokens;
      bm.numHitBlocks += hits.length;
      bm.share(hits);
      seq.blockTable.push(...hits);
      seq.numRegisteredBlocks = hits.length;
      seq.numComputedTokens = numCachedTokens;
    }
    const numNewTokens = Math.min(seq.numTokens - seq.numComputedTokens, budget);
    return bm.appendSlots(seq.blockTable, seq.numComputedTokens + numNewTokens);
  }

  /**
   * Registers in the prefix cache the blocks that launched steps fill completely, so later
   * sequences with the same prefix skip computing them. Called when a step is launched, before
   * its KV is written: a step that reuses a block is launched later, and the executor runs
   * steps in launch order. Called again after the step, for blocks completed by the token it
   * sampled, whose id was not known at launch.
   */
  cacheComputedBlocks(rows: readonly ScheduledSeq[]): void {
    const bm = this.blockManager;
    if (!bm.isPrefixCachingEnabled) return;
    // Finished rows too: positions below numComputedTokens hold exactly the KV of their tokens
    // (a stop string only cuts the tail). A row's sequence may have been finished and freed (or
    // preempted) since the step was launched: it holds fewer blocks than its computed tokens then.
    for (const { seq } of rows) {
      // Only tokens whose ids are known can be keyed (an aborted row's pending token never is).
      const numFullBlocks = Math.floor(Math.min(seq.numComputedTokens, seq.numTokens) / bm.blockSize);
      if (numFullBlocks <= seq.numRegisteredBlocks || numFullBlocks > seq.blockTable.length) continue;
      extendBlockKeys(seq, numFullBlocks * bm.blockSize, bm.blockSize);
      for (let i = seq.numRegisteredBlocks; i < numFullBlocks; i++) bm.register(seq.blockTable[i], seq.blockKeys[i]);
      seq.numRegisteredBlocks = numFullBlocks;
    }
  }

  /**
   * Removes finished sequences from both queues and frees their blocks. A step in flight may
   * still read or write them, but a freed block only goes to steps launched later, and the
   * executor runs steps one at a time, in launch order.
   */
  removeFinished(): void {
    const keep = (seq: Sequence): boolean => {
      if (!seq.isFinished) return true;
      this.blockManager.free(seq.blockTable);
      return false;
    };
    filterInPlace(this.running, keep);
    filterInPlace(this.waiting, keep);
  }

  private preempt(seq: Sequence): void {
    this.blockManager.free(seq.blockTable);
    seq.numComputedTokens = 0;
    seq.numRegisteredBlocks = 0;
    seq.status = 'waiting';
    seq.numPreemptions += 1;
    this.numPreemptions += 1;
    this.waiting.unshift(seq);
  }
}

/** Rows computing one token, longest context first (ties in schedule order), then rows computing several, in schedule order. */
function decodeRowsLongestFirst(rows: ScheduledSeq[]): ScheduledSeq[] {
  const single = rows.filter((row) => row.numNewTokens === 1);
  single.sort((a, b) => b.seq.numComputedTokens - a.seq.numComputedTokens);  // stable
  if (single.length === rows.length) return single;
  return single.concat(rows.filter((row) => row.numNewTokens !== 1));
}

function filterInPlace<T>(items: T[], keep: (item: T) => boolean): void {
  let n = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (keep(item)) items[n++] = item;
  }
  items.length = n;
}
