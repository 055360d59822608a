// launchEngine on a terminal: the weight files are read once, by the executor; nothing reads them
// beforehand just to show progress. The log says what is about to load and how big it is.
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EngineOptions } from '../../src/engine/config.ts';
import { launchEngine } from '../../src/server/engine-launch.ts';
import { writeTinyChatModel } from '../server/real-model.ts';

// Every file JS opens as a stream (the old progress bar read the weights this way).
const streamedFiles = vi.hoisted(() => [] as string[]);
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const createReadStream = (...args: Parameters<typeof fs.createReadStream>): ReturnType<typeof fs.createReadStream> => {
    streamedFiles.push(String(args[0]));
    return fs.createReadStream(...args);
  };
  return { ...fs, default: { ...fs, createReadStream }, createReadStream };
});
vi.mock('node:fs/promises', async (importOriginal) => {
  const fsp = await importOriginal<typeof import('node:fs/promises')>();
  const readFile = (...args: Parameters<typeof fsp.readFile>): ReturnType<typeof fsp.readFile> => {
    streamedFiles.push(String(args[0]));
    return fsp.readFile(...args);
  };
  return { ...fsp, default: { ...fsp, readFile }, readFile };
});

// The engine itself is not started: what it would be given is recorded instead.
const created = vi.hoisted(() => [] as unknown[]);
vi.mock('../../src/engine/engine.ts', () => ({
  Engine: {
    create: (options: unknown) => {
      created.push(options);
      return Promise.resolve({ options, samplingDefaults: {} });
    },
  },
}));

const model = writeTinyChatModel();
afterAll(() => model.remove());

const wasTTY = process.stderr.isTTY;
beforeEach(() => {
  process.stderr.isTTY = true;
  streamedFiles.length = 0;
  created.length = 0;
});
afterEach(() => {
  process.stderr.isTTY = wasTTY;
});

describe('launchEngine', () => {
  it('does not read the weight files before the executor does, and logs their size', async () => {
    const lines: string[] = [];
    await launchEngine(
      { modelDir: model.dir, loadFormat: 'auto', dummyPreset: 'tiny', device: 'cpu', dtype: 'auto', seed: 0 },
      (line) => lines.push(line),
    );
    expect(created).toHaveLength(1);
    const weights = (created[0] as EngineOptions).model.weights;
    if (weights.kind !== 'safetensors') throw new Error(`weights of kind ${weights.kind}`);
    expect(streamedFiles.filter((file) => file.endsWith('.safetensors'))).toEqual([]);
    const mib = (weights.tensors.reduce((sum, tensor) => sum + tensor.byteLength, 0) / 2 ** 20).toFixed(1);
    expect(lines.join('\n')).toMatch(new RegExp(`loading .* on cpu: 1 weight file, ${mib.replace('.', '\\.')} MiB`));
  });

  it('says so when the weights are random (--load-format dummy)', async () => {
    const lines: string[] = [];
    await launchEngine(
      { modelDir: model.dir, loadFormat: 'dummy', dummyPreset: 'tiny', device: 'cpu', dtype: 'auto', seed: 0 },
      (line) => lines.push(line),
    );
    expect(lines.join('\n')).toMatch(/loading .* on cpu: random weights/);
  });
});
