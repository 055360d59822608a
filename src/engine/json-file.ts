/**
 * Reads a model directory's JSON file and validates it with a zod schema. Errors name the file
 * and the field at fault, so a user can fix a broken download without reading our code.
 */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';

export async function readJsonFile<Schema extends z.ZodType>(file: string, schema: Schema): Promise<z.output<Schema>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: field '${issue?.path.join('.') ?? ''}': ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
