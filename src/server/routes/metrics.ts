/** GET /metrics: this app's Prometheus registry in the text exposition format. */
import { Hono } from 'hono';
import type { AppContext } from '../context.ts';

export function metricsRoutes(ctx: AppContext): Hono {
  const routes = new Hono();
  routes.get('/metrics', async (c) => {
    const text = await ctx.metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': ctx.metrics.registry.contentType });
  });
  return routes;
}
