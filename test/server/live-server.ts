/** Starts an app on 127.0.0.1 with a free port, for tests that talk HTTP to it. */
import { createApp, type AppOptions } from '../../src/server/app.ts';
import type { AppContext } from '../../src/server/context.ts';
import { listen } from '../../src/server/serve.ts';

export interface LiveServer {
  url: string;
  ctx: AppContext;
  close(): Promise<void>;
}

export async function startLiveServer(options: AppOptions): Promise<LiveServer> {
  const { app, ctx } = createApp(options);
  const server = await listen(app, '127.0.0.1', 0);
  return {
    url: server.url,
    ctx,
    close: async () => {
      server.server.closeAllConnections();
      await server.close();
    },
  };
}
