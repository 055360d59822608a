/** The detokenization benchmark's derived figures and its chart. */
import type { ModeMeasurement } from './detokenize-modes.ts';
import type { MachineInfo } from './machine.ts';
import { lineChartSvg, type ChartPanel, type ChartSeries } from './svg-chart.ts';
import { formatCell, formatTable, type Cell } from './table.ts';

export interface SustainedBatch {
  tokenizer: string;
  source: string;
  mode: string;
  /** Largest measured batch whose main-thread time and latency (p50) fit one step; null = none. */
  maxBatchSize: number | null;
  /** True when even the largest measured batch fits (the real limit is higher). */
  isLargestMeasured: boolean;
}

/**
 * At `stepsPerS`, a step lasts 1000 / stepsPerS ms: an inline mode fits if its main-thread time
 * does; the pool fits if its latency does too (one batch in flight, results before the next).
 */
export function sustainedBatchSizes(measurements: readonly ModeMeasurement[], stepsPerS: number): SustainedBatch[] {
  const budgetMs = 1000 / stepsPerS;
  const groups = new Map<string, ModeMeasurement[]>();
  for (const m of measurements) {
    const key = `${m.tokenizer}\u0000${m.source}\u0000${m.mode}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  return [...groups.values()].map((group) => {
    const sorted = [...group].sort((a, b) => a.batchSize - b.batchSize);
    const fitting = sorted.filter((m) => m.mainMs.p50 <= budgetMs && m.latencyMs.p50 <= budgetMs);
    const maxBatchSize = fitting.length > 0 ? fitting[fitting.length - 1].batchSize : null;
    return {
      tokenizer: sorted[0].tokenizer,
      source: sorted[0].source,
      mode: sorted[0].mode,
      maxBatchSize,
      isLargestMeasured: maxBatchSize === sorted[sorted.length - 1].batchSize,
    };
  });
}

/** One panel per tokenizer (ShareGPT tokens when measured): main-thread ms/step vs batch size per mode. */
export function renderDetokenizeChart(measurements: readonly ModeMeasurement[], machine: MachineInfo): string {
  const tokenizers = [...new Set(measurements.map((m) => m.tokenizer))];
  const panels: ChartPanel[] = tokenizers.map((tokenizer) => {
    const ofTokenizer = measurements.filter((m) => m.tokenizer === tokenizer);
    const source = ofTokenizer.some((m) => m.source === 'sharegpt') ? 'sharegpt' : 'random';
    const shown = ofTokenizer.filter((m) => m.source === source);
    const modes = [...new Set(shown.map((m) => m.mode))];
    const series: ChartSeries[] = modes.map((mode) => ({
      name: `${mode} main thread`,
      points: shown.filter((m) => m.mode === mode).map((m) => ({ x: m.batchSize, y: m.mainMs.p50 })),
    }));
    const largestPool = shown.filter((m) => m.numWorkers > 0).sort((a, b) => b.numWorkers - a.numWorkers)[0];
    if (largestPool) {
      series.push({
        name: `${largestPool.mode} latency`,
        dashed: true,
        points: shown.filter((m) => m.mode === largestPool.mode).map((m) => ({ x: m.batchSize, y: m.latencyMs.p50 })),
      });
    }
    return {
      title: `${tokenizer} (${source} tokens)`,
      xLabel: 'sequences per step',
      yLabel: 'ms per step (p50)',
      xScale: 'log',
      yScale: 'log',
      series,
      guides: [
        { y: 20, label: '20 ms = 50 steps/s' },
        { y: 0.2, label: 'goal: pool main ≤ 0.2 ms @512' },
      ],
    };
  });
  return lineChartSvg(panels, {
    title: 'Detokenization: main-thread time per step vs batch size',
    subtitle: `${machine.numCores} cores, ${machine.cpuModel}, Node ${machine.nodeVersion}, commit ${machine.gitCommit.slice(0, 12)}`,
  });
}

/** One row per tokenizer/source/mode, one column per batch size ("main / latency" p50 ms). */
export function summaryTable(measurements: readonly ModeMeasurement[], sustained: readonly SustainedBatch[]): string {
  const batchSizes = [...new Set(measurements.map((m) => m.batchSize))].sort((a, b) => a - b);
  const rows = new Map<string, Cell[]>();
  for (const m of measurements) {
    const key = `${m.tokenizer}\u0000${m.source}\u0000${m.mode}`;
    const row = rows.get(key) ?? [m.tokenizer, m.source, m.mode, ...batchSizes.map(() => '-'), '-'];
    row[3 + batchSizes.indexOf(m.batchSize)] = `${formatCell(m.mainMs.p50)} / ${formatCell(m.latencyMs.p50)}`;
    const fit = sustained.find((s) => s.tokenizer === m.tokenizer && s.source === m.source && s.mode === m.mode);
    row[3 + batchSizes.length] = fit?.maxBatchSize == null ? 'none' : `${fit.maxBatchSize}${fit.isLargestMeasured ? '+' : ''}`;
    rows.set(key, row);
  }
  return formatTable(['tokenizer', 'source', 'mode', ...batchSizes.map(String), 'max @50/s'], [...rows.values()]);
}
