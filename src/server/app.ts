/**
 * The Hono app of one served model: routes, the API-key guard, the draining gate, and the one
 * place where anything thrown becomes an OpenAI error body {"error":{message,type,param,code}}.
 */
import { timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { EngineInputError, type EngineClient } from '../engine/types.ts';
import type { AppContext } from './context.ts';
import { corsMiddleware, DEFAULT_CORS, type CorsOptions } from './cors.ts';
import { ApiError, type ApiErrorBody, serviceUnavailable } from './errors.ts';
import { Lifecycle } from './lifecycle.ts';
import { ServerMetrics } from './metrics.ts';
import { chatRoutes } from './routes/chat.ts';
import { completionsRoutes } from './routes/completions.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { modelRoutes } from './routes/models.ts';
import { tokenizeRoutes } from './routes/tokenize.ts';
import { TokenTextCache } from './token-text.ts';

export interface AppOptions {
  engine: EngineClient;
  /** Names the model answers to (--served-model-name); default: the engine's model name. */
  servedModelNames?: string[];
  /** /v1/models `root`; default: the first served name. */
  modelRoot?: string;
  apiKey?: string | null;
  /** Shared with whoever drains the server on SIGTERM; a fresh one by default. */
  lifecycle?: Lifecycle;
  /** Cross-origin requests (vLLM's --allowed-origins...); default: any origin, no credentials. */
  cors?: CorsOptions;
}

/** Any thrown value → the ApiError the client sees. Unexpected ones are logged: they are bugs. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineInputError) return new ApiError(400, err.message, 'invalid_request_error', err.param, 'invalid_value');
  if (err instanceof HTTPException) {
    const type = err.status === 401 ? 'authentication_error' : err.status >= 500 ? 'server_error' : 'invalid_request_error';
    return new ApiError(err.status as ContentfulStatusCode, err.message || 'request failed', type);
  }
  console.error('spindle: unexpected error while serving a request:', err);
  const detail = err instanceof Error ? err.message : String(err);
  return new ApiError(500, `internal server error: ${detail}`, 'server_error', null, 'internal_error');
}

function describeError(err: unknown): ApiErrorBody {
  return toApiError(err).toBody();
}

function isSameSecret(given: string, expected: string): boolean {
  const givenBytes = Buffer.from(given);
  const expectedBytes = Buffer.from(expected);
  return givenBytes.length === expectedBytes.length && timingSafeEqual(givenBytes, expectedBytes);
}

export function createApp(options: AppOptions): { app: Hono; ctx: AppContext } {
  const servedModelNames = options.servedModelNames && options.servedModelNames.length > 0 ? options.servedModelNames : [options.engine.modelName];
  const ctx: AppContext = {
    engine: options.engine,
    servedModelNames,
    modelRoot: options.modelRoot ?? servedModelNames[0],
    apiKey: options.apiKey ?? null,
    lifecycle: options.lifecycle ?? new Lifecycle(),
    metrics: new ServerMetrics(options.engine, servedModelNames[0]),
    tokenText: new TokenTextCache(options.engine),
    createdS: Math.floor(Date.now() / 1000),
    describeError,
  };

  const app = new Hono();
  app.onError((err, c) => {
    const apiError = toApiError(err);
    return c.json(apiError.toBody(), apiError.status);
  });
  app.notFound((c) => {
    const apiError = new ApiError(404, `no route for ${c.req.method} ${c.req.path}`, 'invalid_request_error', null, 'not_found');
    return c.json(apiError.toBody(), 404);
  });

  // First: a browser's preflight (OPTIONS) is answered here, before the API key or a drain
  // would refuse it, as vLLM's CORS middleware answers it before its own checks.
  app.use('*', corsMiddleware(options.cors ?? DEFAULT_CORS));
  // While draining (SIGTERM), everything new is refused; /metrics stays readable for the scraper.
  // A request counts as in flight from here, so a drain waits for one still reading its body or
  // tokenizing its prompt; a streamed response holds a second slot until its last byte (job-response.ts).
  app.use('*', async (c, next) => {
    if (ctx.lifecycle.isDraining && c.req.path !== '/metrics') throw serviceUnavailable('the server is shutting down');
    const release = ctx.lifecycle.begin();
    try {
      await next();
    } finally {
      release();
    }
  });
  if (ctx.apiKey !== null) {
    const apiKey = ctx.apiKey;
    app.use('/v1/*', async (c, next) => {
      const header = c.req.header('authorization') ?? '';
      const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
      if (!isSameSecret(given, apiKey)) {
        throw new ApiError(401, 'Incorrect or missing API key (send Authorization: Bearer <key>).', 'authentication_error', null, 'invalid_api_key');
      }
      await next();
    });
  }

  app.route('/', completionsRoutes(ctx));
  app.route('/', chatRoutes(ctx));
  app.route('/', modelRoutes(ctx));
  app.route('/', tokenizeRoutes(ctx));
  app.route('/', metricsRoutes(ctx));
  return { app, ctx };
}
