/**
 * The paged KV cache's bookkeeping: which physical blocks are free, and how many block
 * tables refer to each one. The cache itself lives in the executor; this only hands out
 * block ids. Ref counts let a block be shared (prefix caching) and make a double free an
 * error instead of a silent corruption of the free list.
 *
 * Prefix caching (vLLM's automatic prefix caching): a full block can be registered under
 * a key naming its whole prefix (prefix-hash.ts). A freed block keeps its key and stays
 * findable until it is handed out again; the free list is kept in LRU order (freed last →
 * reused last, a sequence's tail blocks before its head), so popular prefixes survive.
 */
/** At most this many blocks are findable by prefix (about 40 MB of keys). */
export const MAX_CACHED_BLOCKS = 1 << 18;

export class BlockManager {
  /** Free list as a doubly linked list over block ids; index numBlocks is the sentinel. */
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private numFreeBlocks = 0;
  /** Number of block tables holding each block; 0 = free. */
  private readonly refCounts: Int32Array;
  /** Key each registered block is under (prefix caching); a Map: most blocks never have one. */
  private readonly keyOfBlock = new Map<number, string>();
  private readonly blockByKey = new Map<string, number>();
  /** Blocks looked up by admitted sequences and the ones found cached, for metrics (counted by the scheduler). */
  numQueriedBlocks = 0;
  /** Tokens of the sequences looked up in the prefix cache (vLLM v1's query count). */
  numQueriedTokens = 0;
  numHitBlocks = 0;

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly isPrefixCachingEnabled = false,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks <= 0) throw new Error(`numBlocks must be a positive integer, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize <= 0) throw new Error(`blockSize must be a positive integer, got ${blockSize}`);
    this.next = new Int32Array(numBlocks + 1);
    this.prev = new Int32Array(numBlocks + 1);
    this.refCounts = new Int32Array(numBlocks);
    const sentinel = numBlocks;
    this.next[sentinel] = sentinel;
    this.prev[sentinel] = sentinel;
    // Ids in order, so allocation order is 0, 1, 2... (easier to read in tests and dumps).
    for (let block = 0; block < numBlocks; block++) this.pushFree(block);
  }

  get numFree(): number {
    return this.numFreeBlocks;
  }

  /** Fraction of blocks in use, 0..1 (cached but unreferenced blocks count as free). */
  get usage(): number {
    return 1 - this.numFreeBlocks / this.numBlocks;
  }

  /** Blocks registered for prefix caching (in use or free). */
  get numCachedBlocks(): number {
    return this.blockByKey.size;
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
    for (let i = 0; i < numBlocks; i++) blocks[i] = this.takeFreshBlock();
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
    for (let i = 0; i < numNeeded; i++) blockTable.push(this.takeFreshBlock());
    return true;
  }

  /** Adds a reference to each block (a second table sharing them); a free cached block is revived. */
  share(blockTable: readonly number[]): void {
    for (const block of blockTable) this.checkExists(block);
    for (const block of blockTable) {
      if (this.refCounts[block] === 0) this.unlinkFree(block);
      this.refCounts[block] += 1;
    }
  }

  /** Drops one reference to each block of `blockTable` and empties it; blocks at 0 refs are free. */
  free(blockTable: number[]): void {
    const numFreeBefore = this.numFreeBlocks;
    // Reverse order: a sequence's tail blocks are evicted before its head (shared prefixes).
    for (let i = blockTable.length - 1; i >= 0; i--) {
      const block = blockTable[i];
      try {
        this.checkHeld(block);
      } catch (err) {
        // Undo this call so a bad table (or a block listed twice) changes nothing.
        for (let j = blockTable.length - 1; j > i; j--) {
          const undone = blockTable[j];
          if (this.refCounts[undone] === 0) this.unlinkFree(undone);
          this.refCounts[undone] += 1;
        }
        if (this.numFreeBlocks !== numFreeBefore) throw new Error('block manager: free list out of step while undoing');
        throw err;
      }
      this.refCounts[block] -= 1;
      if (this.refCounts[block] === 0) this.pushFree(block);
    }
    blockTable.length = 0;
  }

  refCount(block: number): number {
    return this.refCounts[block];
  }

  /**
   * The blocks registered under keys[0], keys[1]... as far as they all are (the longest
   * cached prefix). Takes nothing: pass them to share().
   */
  findCachedPrefix(keys: readonly string[]): number[] {
    const blocks: number[] = [];
    if (!this.isPrefixCachingEnabled) return blocks;
    for (const key of keys) {
      const block = this.blockByKey.get(key);
      if (block === undefined) break;
      blocks.push(block);
    }
    return blocks;
  }

  /** How many of `blocks` are free now (sharing them takes them off the free list). */
  numFreeAmong(blocks: readonly number[]): number {
    let n = 0;
    for (const block of blocks) if (this.refCounts[block] === 0) n++;
    return n;
  }

  /**
   * Registers a full, computed block under its prefix key, unless that key already has a
   * block. Past MAX_CACHED_BLOCKS keys nothing more is registered until blocks are reused:
   * a tiny model on a large GPU has millions of blocks, and each key is a JS string.
   */
  register(block: number, key: string): void {
    if (!this.isPrefixCachingEnabled || this.blockByKey.has(key) || this.keyOfBlock.has(block)) return;
    if (this.blockByKey.size >= MAX_CACHED_BLOCKS) return;
    this.checkHeld(block);
    this.blockByKey.set(key, block);
    this.keyOfBlock.set(block, key);
  }

  /** Pops the least recently freed block, dropping its cache registration. */
  private takeFreshBlock(): number {
    const block = this.next[this.numBlocks];
    this.unlinkFree(block);
    const key = this.keyOfBlock.get(block);
    if (key !== undefined) {
      this.blockByKey.delete(key);
      this.keyOfBlock.delete(block);
    }
    this.refCounts[block] = 1;
    return block;
  }

  private pushFree(block: number): void {
    const sentinel = this.numBlocks;
    const last = this.prev[sentinel];
    this.next[last] = block;
    this.prev[block] = last;
    this.next[block] = sentinel;
    this.prev[sentinel] = block;
    this.numFreeBlocks += 1;
  }

  private unlinkFree(block: number): void {
    const before = this.prev[block];
    const after = this.next[block];
    this.next[before] = after;
    this.prev[after] = before;
    this.numFreeBlocks -= 1;
  }

  private checkExists(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.numBlocks) throw new Error(`KV block ${block} does not exist`);
  }

  private checkHeld(block: number): void {
    this.checkExists(block);
    if (this.refCounts[block] <= 0) throw new Error(`KV block ${block} is already free (double free)`);
  }
}
