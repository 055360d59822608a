/**
 * When each request of the serving benchmark is sent, as vLLM's `get_request` decides it:
 * a Poisson process of the given rate (exponential gaps between arrivals), or everything at
 * t = 0 for an infinite rate. The gaps come from the seeded generator, so a seed fixes the
 * schedule on every machine.
 */
import { seededRandom } from '../lib/seeded-random.ts';

/**
 * The arrivals use their own stream: drawn from `seed` directly they would be the very numbers
 * that shuffled the dataset (bench/throughput/dataset.ts), correlating gaps with prompt order.
 */
const ARRIVAL_STREAM_SALT = 0x9e3779b9;

/** `n` exponential gaps of mean 1 / rate (seconds), by inversion: −ln(1 − u) / rate. */
export function exponentialGaps(n: number, rate: number, seed: number): number[] {
  const random = seededRandom((seed ^ ARRIVAL_STREAM_SALT) >>> 0);
  // random() is in [0, 1), so 1 − u is in (0, 1] and the log is finite.
  return Array.from({ length: n }, () => -Math.log(1 - random()) / rate);
}

/**
 * Send times in seconds from the start of the run, one per request, non-decreasing.
 *
 * As vLLM does, the first request also waits one gap, and the cumulative times are rescaled so
 * that the last arrival lands exactly at n / rate: the raw sum of n gaps misses n / rate by
 * about 1/√n (a few % at 1000 requests), which would make request throughput at a fixed rate
 * depend on the seed. Rescaling keeps the gaps' shape (exponential, relative spread) intact.
 */
export function arrivalTimesS(n: number, rate: number, seed: number): number[] {
  if (!(rate > 0)) throw new Error(`request rate must be > 0 (got ${rate})`);
  if (rate === Number.POSITIVE_INFINITY) return new Array<number>(n).fill(0);
  const times = exponentialGaps(n, rate, seed);
  for (let i = 1; i < n; i++) times[i] += times[i - 1];
  const last = times[n - 1];
  if (n === 0 || !(last > 0)) return times;
  const scale = n / rate / last;
  return times.map((t) => t * scale);
}
