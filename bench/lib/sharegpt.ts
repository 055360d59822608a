/**
 * The one reader of /work/shared/data/sharegpt.jsonl (one {id, prompt, completion} per line),
 * used by the throughput and detokenization benchmarks and by the worker tests.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const ShareGptRowSchema = z.object({ id: z.string(), prompt: z.string(), completion: z.string() });
export type ShareGptRow = z.infer<typeof ShareGptRowSchema>;

/** Every row of the file, in file order; a malformed row throws naming its line. */
export function loadShareGpt(file: string): ShareGptRow[] {
  const rows: ShareGptRow[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const parsed = ShareGptRowSchema.safeParse(JSON.parse(line));
    if (!parsed.success) throw new Error(`${file}:${index + 1}: not a {id, prompt, completion} row: ${parsed.error.message}`);
    rows.push(parsed.data);
  });
  return rows;
}
