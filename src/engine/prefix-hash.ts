/**
 * Keys of a sequence's full KV blocks for prefix caching. Block i's key names its own
 * tokens exactly and everything before it by a 64-bit running hash, so two blocks share a
 * key only when their whole prefixes are equal (up to a 64-bit collision of the part
 * before the block). Keys are computed once per block and kept on the sequence.
 */
import type { Sequence } from './sequence.ts';

/** murmur3's 32-bit finalizer over (h ^ x): one step of the running hash. */
function step32(h: number, x: number): number {
  h = Math.imul(h ^ x, 0xcc9e2d51);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** Extends seq.blockKeys to every full block within its first numTokens tokens. */
export function extendBlockKeys(seq: Sequence, numTokens: number, blockSize: number): void {
  const keys = seq.blockKeys;
  const ids = seq.tokenIds;
  const limit = Math.min(numTokens, ids.length);
  while ((keys.length + 1) * blockSize <= limit) {
    const start = keys.length * blockSize;
    const parent = keys.length === 0 ? 'root' : `${seq.prefixHashHi.toString(36)}.${seq.prefixHashLo.toString(36)}`;
    let lo = seq.prefixHashLo;
    let hi = seq.prefixHashHi;
    let tokens = '';
    for (let i = start; i < start + blockSize; i++) {
      const t = ids[i];
      tokens += i === start ? `${t}` : `,${t}`;
      // Two independently seeded 32-bit chains make the 64-bit running hash.
      lo = step32(lo, t);
      hi = step32(hi ^ 0x9e3779b9, t);
    }
    seq.prefixHashLo = lo;
    seq.prefixHashHi = hi;
    keys.push(`${parent}|${tokens}`);
  }
}
