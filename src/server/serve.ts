/**
 * The HTTP server around an app: listen (port 0 picks a free port), and drain on SIGTERM/SIGINT —
 * new requests and /health get 503 at once, requests in flight finish (up to the shutdown
 * timeout), then the engine and the server close and the process exits 0.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { EngineClient } from '../engine/types.ts';
import type { Lifecycle } from './lifecycle.ts';

export interface RunningServer {
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  port: number;
  server: Server;
  /** Stops listening and drops idle keep-alive connections. */
  close(): Promise<void>;
}

/**
 * Starts serving; rejects if the address cannot be bound. Later server errors (accept failing
 * with EMFILE when descriptors run out) go to `log`: unhandled, an 'error' event kills the process.
 */
export function listen(app: Hono, host: string, port: number, log: (line: string) => void = console.error): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port }, (info: AddressInfo) => {
      server.off('error', reject);
      server.on('error', (err: Error) => log(`server error: ${err.message}`));
      const urlHost = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        url: `http://${urlHost}:${info.port}`,
        port: info.port,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
          }),
      });
    }) as Server;
    server.once('error', reject);
  });
}

export interface DrainOptions {
  server: RunningServer;
  engine: EngineClient;
  lifecycle: Lifecycle;
  shutdownTimeoutMs: number;
  log: (line: string) => void;
}

/** Drains and closes everything; resolves true when every request in flight finished in time. */
export async function drainAndClose(options: DrainOptions): Promise<boolean> {
  const { server, engine, lifecycle, shutdownTimeoutMs, log } = options;
  const startMs = performance.now();
  log(`draining: ${lifecycle.numInFlight} request(s) in flight, waiting up to ${shutdownTimeoutMs / 1000} s`);
  const isDrained = await lifecycle.drain(shutdownTimeoutMs);
  if (!isDrained) log(`shutdown timeout: aborting ${lifecycle.numInFlight} request(s) still in flight`);
  const leftMs = Math.max(0, shutdownTimeoutMs - (performance.now() - startMs));
  await engine.shutdown(leftMs);
  server.server.closeAllConnections();
  await server.close();
  log('shut down');
  return isDrained;
}

/** Installs SIGTERM/SIGINT handlers that drain, close and exit 0 (a second signal exits at once). */
export function exitOnSignals(options: DrainOptions): void {
  let isShuttingDown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (isShuttingDown) {
      options.log(`${signal} again: exiting now`);
      process.exit(1);
    }
    isShuttingDown = true;
    options.log(`${signal} received`);
    drainAndClose(options).then(
      () => process.exit(0),
      (err: unknown) => {
        options.log(`error while shutting down: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
