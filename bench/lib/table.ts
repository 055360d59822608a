/** Plain-text tables for benchmark summaries on the terminal. */

export type Cell = string | number;

/** Numbers get a sensible number of digits; columns are padded, numbers right-aligned. */
export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => row.map(formatCell));
  const widths = headers.map((header, column) => Math.max(header.length, ...text.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[], isNumeric: (column: number) => boolean) =>
    cells.map((cell, column) => (isNumeric(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ');
  const out = [line([...headers], () => false), widths.map((width) => '-'.repeat(width)).join('  ')];
  rows.forEach((row, r) => out.push(line(text[r], (column) => typeof row[column] === 'number')));
  return out.join('\n');
}

export function formatCell(value: Cell): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  // Whole numbers (counts) print as such, 0 included.
  if (Number.isInteger(value) && (magnitude >= 1 || value === 0)) return String(value);
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toFixed(3);
}
