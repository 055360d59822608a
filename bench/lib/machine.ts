/** Where and how a benchmark ran: recorded in every results file. */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, platform, totalmem } from 'node:os';

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

export function machineInfo(command: string = process.argv.slice(1).join(' ')): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    numCores: availableParallelism(),
    totalMemoryBytes: totalmem(),
    platform: `${platform()} ${process.arch}`,
    nodeVersion: process.version,
    gitCommit: gitCommit(),
    command,
    dateUtc: new Date().toISOString(),
  };
}
