/**
 * A minimal safetensors writer (F32, BF16, F16) for random test models, plus the float
 * rounding it needs. Format: u64 LE header length, JSON header padded with spaces to a
 * multiple of 8, then the tensors' bytes back to back in header order, with no gaps.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export type WritableDType = 'F32' | 'BF16' | 'F16';

export const WRITABLE_DTYPE_BYTES: Record<WritableDType, number> = { F32: 4, BF16: 2, F16: 2 };

export interface TensorToWrite {
  name: string;
  dtype: WritableDType;
  shape: number[];
  /** Produces the values (row-major) when the tensor is written, so only one is in memory. */
  values: () => Float32Array;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 → bfloat16 bits, round to nearest even (NaN kept quiet). */
export function f32ToBf16Bits(value: number): number {
  scratchF32[0] = value;
  const bits = scratchU32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → IEEE half bits, round to nearest even, with subnormals and overflow to ±inf. */
export function f32ToF16Bits(value: number): number {
  scratchF32[0] = value;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp32 = (bits >>> 23) & 0xff;
  const mant32 = bits & 0x7fffff;
  if (exp32 === 0xff) return sign | 0x7c00 | (mant32 !== 0 ? 0x200 : 0);
  const exp16 = exp32 - 127 + 15;
  if (exp16 >= 0x1f) return sign | 0x7c00;
  if (exp16 <= 0) {
    // Subnormal half: value = m * 2^-24 with m = mant24 * 2^(exp32 - 126).
    if (exp16 < -10) return sign;
    const mant24 = mant32 | 0x800000;
    const shift = 126 - exp32;
    const halfway = 1 << (shift - 1);
    const rest = mant24 & ((1 << shift) - 1);
    let m = mant24 >>> shift;
    if (rest > halfway || (rest === halfway && (m & 1) === 1)) m++;
    return sign | m;
  }
  let half = (exp16 << 10) | (mant32 >>> 13);
  const rest = mant32 & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to inf).
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** The bytes of `values` stored as `dtype` (little-endian). */
export function encodeTensor(values: Float32Array, dtype: WritableDType): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  const encode = dtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
  for (let i = 0; i < values.length; i++) out[i] = encode(values[i]);
  return new Uint8Array(out.buffer);
}

/** writeSync may write less than asked; loop until every byte is out. */
function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/** Writes `tensors` to `file` in the given order; returns the data size in bytes. */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): number {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * WRITABLE_DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(headerBytes.length));

  const fd = openSync(file, 'w');
  try {
    writeAll(fd, lengthBytes);
    writeAll(fd, headerBytes);
    for (const t of tensors) {
      const values = t.values();
      const expected = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== expected) throw new Error(`tensor '${t.name}': ${values.length} values for shape [${t.shape}]`);
      writeAll(fd, encodeTensor(values, t.dtype));
    }
  } finally {
    closeSync(fd);
  }
  return offset;
}
