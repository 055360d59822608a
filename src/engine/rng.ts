/**
 * Per-draw random keys for the native sampler (rngKeyLo/rngKeyHi columns).
 *
 * A seeded request's key for output token n is the n-th output of SplitMix64 started at
 * its seed: a pure function of (seed, n), so the request draws the same tokens whatever
 * else is in the batch, and again after a preemption recomputes it. Unseeded requests
 * draw keys from the engine's own SplitMix64 stream (seeded by --seed).
 *
 * 64-bit arithmetic on two uint32 halves: BigInt would allocate on every draw, and this
 * runs once per sampled row per step.
 */

/** A 64-bit value as two unsigned 32-bit halves. */
export interface U64 {
  hi: number;
  lo: number;
}

// SplitMix64 constants (Steele, Lea, Flood 2014).
const GOLDEN_HI = 0x9e3779b9;
const GOLDEN_LO = 0x7f4a7c15;
const MIX1_HI = 0xbf58476d;
const MIX1_LO = 0x1ce4e5b9;
const MIX2_HI = 0x94d049bb;
const MIX2_LO = 0x133111eb;

/** High 32 bits of the 64-bit product of two uint32 values. */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + Math.floor(p01 / 0x10000) + Math.floor(p10 / 0x10000) + Math.floor(mid / 0x10000)) >>> 0;
}

/** (a * b) mod 2^64, written into out. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number, out: U64): void {
  const hi = mulHi32(aLo, bLo) + Math.imul(aLo, bHi) + Math.imul(aHi, bLo);
  out.hi = hi >>> 0;
  out.lo = Math.imul(aLo, bLo) >>> 0;
}

/** (a + b) mod 2^64. */
function add64(aHi: number, aLo: number, bHi: number, bLo: number, out: U64): void {
  const lo = aLo + bLo;
  out.lo = lo >>> 0;
  out.hi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** x ^= x >>> shift, for 0 < shift < 32. */
function xorShiftRight(x: U64, shift: number): void {
  const lo = (x.lo >>> shift) | (x.hi << (32 - shift));
  x.lo = (x.lo ^ lo) >>> 0;
  x.hi = (x.hi ^ (x.hi >>> shift)) >>> 0;
}

/** SplitMix64's output function applied to `z` in place. */
function mix64(z: U64): void {
  xorShiftRight(z, 30);
  mul64(z.hi, z.lo, MIX1_HI, MIX1_LO, z);
  xorShiftRight(z, 27);
  mul64(z.hi, z.lo, MIX2_HI, MIX2_LO, z);
  xorShiftRight(z, 31);
}

/** The n-th (0-based) output of SplitMix64 seeded with `seed`, written into out. */
export function splitMix64At(seed: U64, n: number, out: U64): void {
  // state after n+1 increments: seed + (n + 1) * golden
  const step = n + 1;
  const stepLo = step >>> 0;
  const stepHi = Math.floor(step / 0x100000000) >>> 0;
  mul64(stepHi, stepLo, GOLDEN_HI, GOLDEN_LO, out);
  add64(seed.hi, seed.lo, out.hi, out.lo, out);
  mix64(out);
}

/** A request's seed (any safe integer, negatives wrap as int64 does) as 64 bits. */
export function seedToU64(seed: number): U64 {
  const wrapped = BigInt.asUintN(64, BigInt(Math.trunc(seed)));
  return { hi: Number(wrapped >> 32n), lo: Number(wrapped & 0xffffffffn) };
}

/** The engine's stream for unseeded requests: one key per draw. */
export class RngStream {
  private readonly seed: U64;
  private count = 0;

  constructor(seed: number) {
    this.seed = seedToU64(seed);
  }

  next(out: U64): void {
    splitMix64At(this.seed, this.count, out);
    this.count += 1;
  }
}
