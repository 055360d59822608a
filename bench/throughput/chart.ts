/**
 * A hand-made SVG of a throughput run: top, tokens/s over time; bottom, the mean step's wall
 * time over time (stacked bars): the device's parts and the host time it did not hide. No chart library: the picture is two
 * axes, polylines and rectangles.
 */
import type { TimeBucket } from './step-stats.ts';

const WIDTH = 900;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 70, right: 190, top: 40, bottom: 40 };

const PHASE_COLORS: Record<keyof TimeBucket['meanPhaseMs'], string> = {
  forwardMs: '#4e79a7',
  sampleMs: '#59a14f',
  copyMs: '#76b7b2',
  hostNotHiddenMs: '#e15759',
};

const PHASE_LABELS: Record<keyof TimeBucket['meanPhaseMs'], string> = {
  forwardMs: 'forward (native)',
  sampleMs: 'sample (native)',
  copyMs: 'copy (native)',
  hostNotHiddenMs: 'host, device idle',
};

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round axis maximum at or above `value` (1, 2 or 5 times a power of ten). */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

interface Frame {
  top: number;
  plotWidth: number;
  plotHeight: number;
  xMax: number;
  yMax: number;
}

function axes(f: Frame, title: string, yLabel: string): string[] {
  const parts: string[] = [];
  const x0 = MARGIN.left;
  const y0 = f.top + f.plotHeight;
  parts.push(`<text x="${x0}" y="${f.top - 12}" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  parts.push(`<line x1="${x0}" y1="${y0}" x2="${x0 + f.plotWidth}" y2="${y0}" stroke="#333"/>`);
  parts.push(`<line x1="${x0}" y1="${f.top}" x2="${x0}" y2="${y0}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const y = y0 - (i / 4) * f.plotHeight;
    const value = (i / 4) * f.yMax;
    parts.push(`<line x1="${x0}" y1="${y}" x2="${x0 + f.plotWidth}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${x0 - 6}" y="${y + 4}" font-size="11" text-anchor="end">${formatTick(value)}</text>`);
    const x = x0 + (i / 4) * f.plotWidth;
    parts.push(`<text x="${x}" y="${y0 + 16}" font-size="11" text-anchor="middle">${formatTick((i / 4) * f.xMax)} s</text>`);
  }
  parts.push(`<text x="16" y="${f.top + f.plotHeight / 2}" font-size="11" transform="rotate(-90 16 ${f.top + f.plotHeight / 2})" text-anchor="middle">${escapeXml(yLabel)}</text>`);
  return parts;
}

function formatTick(value: number): string {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  if (value >= 10 || value === 0) return value.toFixed(0);
  return value.toFixed(value >= 1 ? 1 : 2);
}

function legend(x: number, y: number, entries: [string, string][]): string[] {
  return entries.flatMap(([label, color], i) => [
    `<rect x="${x}" y="${y + i * 18}" width="12" height="12" fill="${color}"/>`,
    `<text x="${x + 18}" y="${y + i * 18 + 10}" font-size="11">${escapeXml(label)}</text>`,
  ]);
}

export function renderThroughputSvg(buckets: TimeBucket[], title: string): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const last = buckets[buckets.length - 1];
  const xMax = last ? last.startS + last.durationS : 1;
  const xOf = (s: number): number => MARGIN.left + (s / xMax) * plotWidth;
  const parts: string[] = [];

  // Panel 1: tokens/s over time.
  const rateMax = niceCeiling(Math.max(1, ...buckets.map((b) => Math.max(b.tokensPerS, b.seqsPerS))));
  const top1 = MARGIN.top + 10;
  parts.push(...axes({ top: top1, plotWidth, plotHeight, xMax, yMax: rateMax }, title, 'per second'));
  const line = (value: (b: TimeBucket) => number, color: string): string => {
    const points = buckets.map((b) => `${xOf(b.startS + b.durationS / 2).toFixed(1)},${(top1 + plotHeight - (value(b) / rateMax) * plotHeight).toFixed(1)}`);
    return `<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`;
  };
  parts.push(line((b) => b.tokensPerS, '#4e79a7'), line((b) => b.seqsPerS, '#e15759'));
  parts.push(...legend(MARGIN.left + plotWidth + 16, top1, [['tokens through the model', '#4e79a7'], ['generated tokens (seqs stepped)', '#e15759']]));

  // Panel 2: the mean step, stacked by where its wall time went.
  const phases = Object.keys(PHASE_COLORS) as (keyof TimeBucket['meanPhaseMs'])[];
  const stepMs = (b: TimeBucket): number => phases.reduce((sum, p) => sum + b.meanPhaseMs[p], 0);
  const msMax = niceCeiling(Math.max(0.001, ...buckets.map(stepMs)));
  const top2 = PANEL_HEIGHT + MARGIN.top;
  parts.push(...axes({ top: top2, plotWidth, plotHeight, xMax, yMax: msMax }, 'Mean step: device work and host time not hidden', 'ms per step'));
  for (const b of buckets) {
    let y = top2 + plotHeight;
    const x = xOf(b.startS);
    const width = Math.max(1, xOf(b.startS + b.durationS) - x - 1);
    for (const p of phases) {
      const height = (b.meanPhaseMs[p] / msMax) * plotHeight;
      if (height <= 0) continue;
      y -= height;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${width.toFixed(1)}" height="${height.toFixed(2)}" fill="${PHASE_COLORS[p]}"/>`);
    }
  }
  parts.push(...legend(MARGIN.left + plotWidth + 16, top2, phases.map((p) => [PHASE_LABELS[p], PHASE_COLORS[p]] as [string, string])));

  const height = 2 * PANEL_HEIGHT + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
