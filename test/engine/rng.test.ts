import { describe, expect, it } from 'vitest';
import { RngStream, seedToU64, splitMix64At, type U64 } from '../../src/engine/rng.ts';

const MASK = (1n << 64n) - 1n;

/** SplitMix64 in BigInt, straight from its definition: the reference for the uint32-pair version. */
function referenceSplitMix64At(seed: bigint, n: number): bigint {
  let z = (seed + BigInt(n + 1) * 0x9e3779b97f4a7c15n) & MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

const toBig = (x: U64): bigint => (BigInt(x.hi) << 32n) | BigInt(x.lo);

describe('rng', () => {
  it('matches a BigInt SplitMix64 on random seeds and indexes', () => {
    const out: U64 = { hi: 0, lo: 0 };
    for (let i = 0; i < 2000; i++) {
      const seed = BigInt(Math.floor(Math.random() * 2 ** 32)) << 32n | BigInt(Math.floor(Math.random() * 2 ** 32));
      const n = i < 1000 ? Math.floor(Math.random() * 100_000) : Math.floor(Math.random() * 2 ** 40);
      splitMix64At({ hi: Number(seed >> 32n), lo: Number(seed & 0xffffffffn) }, n, out);
      expect(toBig(out)).toBe(referenceSplitMix64At(seed, n));
    }
  });

  it('matches the published first output of SplitMix64 seeded with 0', () => {
    const out: U64 = { hi: 0, lo: 0 };
    splitMix64At({ hi: 0, lo: 0 }, 0, out);
    expect(toBig(out)).toBe(0xe220a8397b1dcdafn);
  });

  it('wraps negative and large seeds like int64', () => {
    expect(toBig(seedToU64(-1))).toBe(MASK);
    expect(toBig(seedToU64(2 ** 40 + 5))).toBe(2n ** 40n + 5n);
  });

  it('streams are reproducible from the engine seed and differ between seeds', () => {
    const draw = (seed: number): bigint[] => {
      const s = new RngStream(seed);
      const out: U64 = { hi: 0, lo: 0 };
      return Array.from({ length: 5 }, () => (s.next(out), toBig(out)));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(new Set(draw(7)).size).toBe(5);
  });
});
