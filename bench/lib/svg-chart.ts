/**
 * Hand-made SVG line charts: one or more panels side by side, linear or log axes, a shared
 * legend, optional horizontal guide lines (targets). No chart library: axes, polylines, circles.
 */

export interface ChartPoint {
  x: number;
  y: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
  dashed?: boolean;
}

export interface ChartPanel {
  title: string;
  xLabel: string;
  yLabel: string;
  xScale: 'linear' | 'log';
  yScale: 'linear' | 'log';
  series: ChartSeries[];
  /** Tick positions on x (default: every x in the data). */
  xTicks?: number[];
  guides?: { y: number; label: string }[];
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
  panelWidth?: number;
  panelHeight?: number;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const MARGIN = { left: 64, right: 16, top: 36, bottom: 48 };
const LEGEND_WIDTH = 190;
const HEADER_HEIGHT = 52;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function tickLabel(value: number): string {
  if (value >= 1000 && value % 1000 === 0) return `${value / 1000}k`;
  if (Number.isInteger(value)) return String(value);
  if (value >= 1) return String(Number(value.toPrecision(3)));
  return String(Number(value.toPrecision(2)));
}

interface Axis {
  toPixel(value: number): number;
  ticks: number[];
}

function makeAxis(values: number[], scale: 'linear' | 'log', pixelFrom: number, pixelTo: number, fixedTicks?: number[]): Axis {
  const finite = values.filter((value) => Number.isFinite(value) && (scale === 'linear' || value > 0));
  if (scale === 'log') {
    const lo = Math.floor(Math.log10(Math.min(...finite, 1)));
    const hi = Math.ceil(Math.log10(Math.max(...finite, 10 ** (lo + 1))));
    const span = Math.max(1, hi - lo);
    const ticks = fixedTicks ?? Array.from({ length: span + 1 }, (_, i) => 10 ** (lo + i));
    const logLo = fixedTicks ? Math.log10(Math.min(...ticks)) : lo;
    const logHi = fixedTicks ? Math.log10(Math.max(...ticks)) : hi;
    const logSpan = Math.max(1e-9, logHi - logLo);
    return { ticks, toPixel: (value) => pixelFrom + ((Math.log10(value) - logLo) / logSpan) * (pixelTo - pixelFrom) };
  }
  const max = Math.max(...finite, 0);
  const min = Math.min(...finite, 0);
  const step = 10 ** Math.floor(Math.log10(Math.max(1e-9, max - min) / 4));
  const niceMax = Math.ceil(max / step) * step || 1;
  const ticks = fixedTicks ?? Array.from({ length: Math.round((niceMax - min) / step) + 1 }, (_, i) => min + i * step);
  return { ticks, toPixel: (value) => pixelFrom + ((value - min) / Math.max(1e-9, niceMax - min)) * (pixelTo - pixelFrom) };
}

function renderPanel(panel: ChartPanel, originX: number, originY: number, width: number, height: number, colorOf: (name: string) => string): string {
  const left = originX + MARGIN.left;
  const right = originX + width - MARGIN.right;
  const top = originY + MARGIN.top;
  const bottom = originY + height - MARGIN.bottom;
  const points = panel.series.flatMap((series) => series.points);
  const xTicksWanted = panel.xTicks ?? [...new Set(points.map((point) => point.x))].sort((a, b) => a - b);
  const xAxis = makeAxis(points.map((point) => point.x), panel.xScale, left, right, xTicksWanted);
  const yValues = [...points.map((point) => point.y), ...(panel.guides ?? []).map((guide) => guide.y)];
  const yAxis = makeAxis(yValues, panel.yScale, bottom, top);
  const out: string[] = [];
  out.push(`<text x="${(left + right) / 2}" y="${originY + 22}" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`);
  for (const tick of yAxis.ticks) {
    const y = yAxis.toPixel(tick);
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${tickLabel(tick)}</text>`);
  }
  for (const tick of xAxis.ticks) {
    const x = xAxis.toPixel(tick);
    out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${bottom}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${x}" y="${bottom + 16}" text-anchor="middle" font-size="11">${tickLabel(tick)}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle" font-size="12">${escapeXml(panel.xLabel)}</text>`);
  out.push(
    `<text transform="translate(${originX + 16} ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(panel.yLabel)}</text>`,
  );
  for (const guide of panel.guides ?? []) {
    const y = yAxis.toPixel(guide.y);
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#c00" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${right - 4}" y="${y - 4}" text-anchor="end" font-size="10" fill="#c00">${escapeXml(guide.label)}</text>`);
  }
  for (const series of panel.series) {
    const usable = series.points.filter((point) => Number.isFinite(point.y) && (panel.yScale === 'linear' || point.y > 0));
    if (usable.length === 0) continue;
    const color = colorOf(series.name);
    const coords = usable.map((point) => `${xAxis.toPixel(point.x).toFixed(1)},${yAxis.toPixel(point.y).toFixed(1)}`);
    const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${coords.join(' ')}"/>`);
    for (const coord of coords) {
      const [x, y] = coord.split(',');
      out.push(`<circle cx="${x}" cy="${y}" r="3" fill="${color}"/>`);
    }
  }
  return out.join('\n');
}

/** Panels left to right, one legend for all series names (same name = same color in every panel). */
export function lineChartSvg(panels: readonly ChartPanel[], options: ChartOptions): string {
  const panelWidth = options.panelWidth ?? 420;
  const panelHeight = options.panelHeight ?? 340;
  const names = [...new Set(panels.flatMap((panel) => panel.series.map((series) => series.name)))];
  const colorOf = (name: string) => PALETTE[names.indexOf(name) % PALETTE.length];
  const width = panels.length * panelWidth + LEGEND_WIDTH;
  const height = HEADER_HEIGHT + Math.max(panelHeight, names.length * 18 + 20);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  if (options.subtitle) out.push(`<text x="12" y="40" font-size="11" fill="#555">${escapeXml(options.subtitle)}</text>`);
  panels.forEach((panel, i) => out.push(renderPanel(panel, i * panelWidth, HEADER_HEIGHT, panelWidth, panelHeight, colorOf)));
  const legendX = panels.length * panelWidth + 10;
  names.forEach((name, i) => {
    const y = HEADER_HEIGHT + MARGIN.top + i * 18;
    out.push(`<line x1="${legendX}" x2="${legendX + 22}" y1="${y}" y2="${y}" stroke="${colorOf(name)}" stroke-width="3"/>`);
    out.push(`<text x="${legendX + 28}" y="${y + 4}">${escapeXml(name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
