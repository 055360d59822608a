/** Where and how a benchmark ran: recorded in every results file. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { availableParallelism, cpus, loadavg, platform, totalmem } from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  numCores: number;
  totalMemoryBytes: number;
  platform: string;
  nodeVersion: string;
  gitCommit: string;
  /** The command line that produced the results. */
  command: string;
  dateUtc: string;
  /** 1-minute load average when the run started: above numCores, other work shared the CPUs. */
  loadAverage1m: number;
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const isDirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
        .length > 0;
    return isDirty ? `${commit}-dirty` : commit;
  } catch {
    return 'unknown';
  }
}

/** The running script's command line, its path relative to the working directory. */
function currentCommand(): string {
  const [script, ...args] = process.argv.slice(1);
  return [script ? path.relative(process.cwd(), script) : '', ...args].join(' ');
}

export function machineInfo(command: string = currentCommand()): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    numCores: availableParallelism(),
    totalMemoryBytes: totalmem(),
    platform: `${platform()} ${process.arch}`,
    nodeVersion: process.version,
    gitCommit: gitCommit(),
    command,
    dateUtc: new Date().toISOString(),
    loadAverage1m: loadavg()[0],
  };
}
