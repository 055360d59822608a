/** What every CUDA test asks first: can the addon load here, and does it see a CUDA device? */
import { loadNative } from '../../src/engine/native.ts';

/** '' when the addon loads and sees a CUDA device; else why not (printed by skipped tests). */
export function cudaSkipReason(): string {
  try {
    const native = loadNative();
    if (native.cudaDeviceCount() === 0) return `no CUDA device (${native.cudaUnavailableReason()})`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return '';
}
