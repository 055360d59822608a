/** GET /v1/models, /health and /version. */
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import type { AppContext } from '../context.ts';
import { serviceUnavailable } from '../errors.ts';

const packageJsonPath = new URL('../../../package.json', import.meta.url);
const SPINDLE_VERSION = (JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { version: string }).version;

export function modelRoutes(ctx: AppContext): Hono {
  const routes = new Hono();
  routes.get('/v1/models', (c) =>
    c.json({
      object: 'list',
      data: ctx.servedModelNames.map((id) => ({
        id,
        object: 'model',
        created: ctx.createdS,
        owned_by: 'spindle',
        root: ctx.modelRoot,
        parent: null,
        max_model_len: ctx.engine.maxModelLen,
      })),
    }),
  );
  // Draining answers 503 before this route is reached (app.ts); here only the engine's health.
  routes.get('/health', (c) => {
    if (!ctx.engine.stats().isAlive) throw serviceUnavailable('the engine has stopped');
    return c.body(null, 200);
  });
  routes.get('/version', (c) => c.json({ version: SPINDLE_VERSION }));
  return routes;
}
