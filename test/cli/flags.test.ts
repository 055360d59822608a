// The `spindle` command's usage handling: bad flags say what is wrong and exit 2, --help lists
// every flag, and a missing benchmark says so.
import { describe, expect, it } from 'vitest';
import { booleanPairOf, GENERATE_FLAGS, parseCommandLine, SERVE_FLAGS, CliUsageError } from '../../src/server/cli-flags.ts';
import { runCli } from './cli-process.ts';

describe('flag parsing (in process)', () => {
  const cases: [string, string[], string][] = [
    ['unknown flag', ['--bogus'], "Unknown option '--bogus'"],
    ['not a number', ['--port', 'abc'], "--port: 'abc' is not a number"],
    ['not an integer', ['--max-num-seqs', '2.5'], 'is not an integer'],
    ['under the minimum', ['--max-model-len', '0'], 'must be at least 1'],
    ['over the maximum', ['--gpu-memory-utilization', '1.5'], 'must be at most 1'],
    ['exclusive minimum', ['--gpu-memory-utilization', '0'], 'must be greater than 0'],
    ['not a choice', ['--load-format', 'pt'], "'pt' is not one of auto, dummy"],
    ['missing value', ['--port'], "argument missing"],
    ['two model dirs', ['a', 'b'], 'unexpected argument(s): b'],
  ];
  it.each(cases)('%s', (_name, args, message) => {
    expect(() => parseCommandLine(args, SERVE_FLAGS, 1)).toThrow(CliUsageError);
    expect(() => parseCommandLine(args, SERVE_FLAGS, 1)).toThrow(message);
  });

  it('--NAME / --no-NAME pairs give true, false or the default, and refuse both', () => {
    const pair = (args: string[]): boolean | undefined => booleanPairOf(parseCommandLine(args, SERVE_FLAGS, 1).values, 'async-scheduling');
    expect(pair([])).toBeUndefined();
    expect(pair(['--async-scheduling'])).toBe(true);
    expect(pair(['--no-async-scheduling'])).toBe(false);
    expect(() => pair(['--async-scheduling', '--no-async-scheduling'])).toThrow('--async-scheduling and --no-async-scheduling contradict each other');
    expect(booleanPairOf(parseCommandLine(['--no-enable-prefix-caching'], SERVE_FLAGS, 1).values, 'enable-prefix-caching')).toBe(false);
  });

  it('converts values and keeps repeated flags in order', () => {
    const { values, positionals } = parseCommandLine(
      ['/models/x', '--port', '0', '--gpu-memory-utilization', '0.5', '--served-model-name', 'a', '--served-model-name', 'b', '--device', 'cpu'],
      SERVE_FLAGS,
      1,
    );
    expect(positionals).toEqual(['/models/x']);
    expect(values).toMatchObject({ port: 0, 'gpu-memory-utilization': 0.5, 'served-model-name': ['a', 'b'], device: 'cpu' });
    expect(parseCommandLine(['--prompt', 'x', '--ignore-eos'], GENERATE_FLAGS, 1).values).toMatchObject({ prompt: ['x'], 'ignore-eos': true });
  });
});

describe('the spindle command', () => {
  it('exits 2 with a clear message on bad usage', async () => {
    const runs = await Promise.all([
      runCli(['serve', '--bogus']),
      runCli(['serve', '--dtype', 'float16']),
      runCli(['serve', 'some-dir', '--dummy-preset', 'tiny']),
      runCli(['serve', '/no/such/model/dir']),
      runCli(['launch']),
      runCli(['bench', 'everything']),
      runCli(['generate', '--load-format', 'dummy', '--max-model-len', '99999999999', '--prompt', 'x']),
    ]);
    const messages = ["Unknown option '--bogus'", '--dtype float16 is not supported', '--dummy-preset chooses the shapes', "MODEL_DIR '/no/such/model/dir' does not exist", "unknown command 'launch'", 'bench takes one of', '--max-model-len: 99999999999 is greater than'];
    runs.forEach((run, i) => {
      expect(run.exitCode).toBe(2);
      expect(run.stderr).toContain(messages[i]);
    });
    expect(runs[0].stderr).toContain("Run 'spindle serve --help'");
  });

  it('--help lists every flag; --version prints the version', async () => {
    const [serveHelp, generateHelp, version] = await Promise.all([runCli(['serve', '--help']), runCli(['generate', '--help']), runCli(['--version'])]);
    expect(serveHelp.exitCode).toBe(0);
    for (const name of Object.keys(SERVE_FLAGS)) expect(serveHelp.stdout).toContain(`--${name}`);
    for (const name of Object.keys(GENERATE_FLAGS)) expect(generateHelp.stdout).toContain(`--${name}`);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
