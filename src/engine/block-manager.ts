/**
 * The paged KV cache's bookkeeping: which physical blocks are free, and how many block
 * tables refer to each one. The cache itself lives in the executor; this only hands out
 * block ids. Ref counts let a block be shared (forks, prefix caching) and make a double
 * free an error instead of a silent corruption of the free list.
 */
export class BlockManager {
  /** Stack of free block ids; the top is freeStack[numFreeBlocks - 1]. */
  private readonly freeStack: Int32Array;
  private numFreeBlocks: number;
  /** Number of block tables holding each block; 0 = free. */
  private readonly refCounts: Int32Array;

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks <= 0) throw new Error(`numBlocks must be a positive integer, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize <= 0) throw new Error(`blockSize must be a positive integer, got ${blockSize}`);
    this.freeStack = new Int32Array(numBlocks);
    this.refCounts = new Int32Array(numBlocks);
    // Lowest ids on top, so allocation order is 0, 1, 2... (easier to read in tests and dumps).
    for (let i = 0; i < numBlocks; i++) this.freeStack[i] = numBlocks - 1 - i;
    this.numFreeBlocks = numBlocks;
  }

  get numFree(): number {
    return this.numFreeBlocks;
  }

  /** Fraction of blocks in use, 0..1. */
  get usage(): number {
    return 1 - this.numFreeBlocks / this.numBlocks;
  }

  /** Blocks needed to hold numTokens tokens. */
  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  canAllocate(numBlocks: number): boolean {
    return numBlocks <= this.numFreeBlocks;
  }

  /** Takes numBlocks free blocks (ref count 1 each). Throws when there are not enough. */
  allocate(numBlocks: number): number[] {
    if (!this.canAllocate(numBlocks)) {
      throw new Error(`cannot allocate ${numBlocks} KV blocks: ${this.numFreeBlocks} free`);
    }
    const blocks = new Array<number>(numBlocks);
    for (let i = 0; i < numBlocks; i++) blocks[i] = this.pop();
    return blocks;
  }

  /**
   * Grows `blockTable` in place so it holds numTokens tokens. Returns false, changing
   * nothing, when there are not enough free blocks.
   */
  appendSlots(blockTable: number[], numTokens: number): boolean {
    const numNeeded = this.blocksFor(numTokens) - blockTable.length;
    if (numNeeded <= 0) return true;
    if (!this.canAllocate(numNeeded)) return false;
    for (let i = 0; i < numNeeded; i++) blockTable.push(this.pop());
    return true;
  }

  /** Adds a reference to each block (a second table sharing them). */
  share(blockTable: readonly number[]): void {
    for (const block of blockTable) {
      this.checkHeld(block);
      this.refCounts[block] += 1;
    }
  }

  /** Drops one reference to each block of `blockTable` and empties it; blocks at 0 refs are free. */
  free(blockTable: number[]): void {
    const numFreeBefore = this.numFreeBlocks;
    // Reverse order: the table's first block ends on top of the stack and is reused first.
    for (let i = blockTable.length - 1; i >= 0; i--) {
      const block = blockTable[i];
      try {
        this.checkHeld(block);
      } catch (err) {
        // Undo this call's decrements so a bad table (or a block listed twice) changes nothing.
        for (let j = blockTable.length - 1; j > i; j--) this.refCounts[blockTable[j]] += 1;
        this.numFreeBlocks = numFreeBefore;
        throw err;
      }
      this.refCounts[block] -= 1;
      if (this.refCounts[block] === 0) this.freeStack[this.numFreeBlocks++] = block;
    }
    blockTable.length = 0;
  }

  refCount(block: number): number {
    return this.refCounts[block];
  }

  private pop(): number {
    const block = this.freeStack[--this.numFreeBlocks];
    this.refCounts[block] = 1;
    return block;
  }

  private checkHeld(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.numBlocks) throw new Error(`KV block ${block} does not exist`);
    if (this.refCounts[block] <= 0) throw new Error(`KV block ${block} is already free (double free)`);
  }
}
