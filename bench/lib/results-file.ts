/** Writes benchmark outputs (JSON, SVG, ...) creating their directory. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function writeTextFile(file: string, text: string): string {
  const resolved = path.resolve(file);
  mkdirSync(path.dirname(resolved), { recursive: true });
  writeFileSync(resolved, text);
  return resolved;
}

export function writeJsonFile(file: string, value: unknown): string {
  return writeTextFile(file, `${JSON.stringify(value, null, 2)}\n`);
}
