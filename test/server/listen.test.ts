// listen(): a port in use is a rejected promise; a server error after listening (accept failing
// with EMFILE when file descriptors run out) is logged, not thrown out of the process.
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import { listen } from '../../src/server/serve.ts';
import { FakeEngine } from './fake-engine.ts';

describe('listen', () => {
  it('rejects when the port is taken', async () => {
    const { app } = createApp({ engine: new FakeEngine() });
    const first = await listen(app, '127.0.0.1', 0, () => {});
    try {
      await expect(listen(app, '127.0.0.1', first.port, () => {})).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });

  it('logs a server error after listening instead of crashing', async () => {
    const { app } = createApp({ engine: new FakeEngine() });
    const lines: string[] = [];
    const running = await listen(app, '127.0.0.1', 0, (line) => lines.push(line));
    try {
      // An 'error' event with no listener would be thrown (and take the process down).
      expect(() => running.server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }))).not.toThrow();
      expect(lines).toEqual([expect.stringContaining('accept EMFILE')]);
      expect((await fetch(`${running.url}/health`)).status).toBe(200);
    } finally {
      await running.close();
    }
  });
});
