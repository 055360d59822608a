/**
 * Cross-origin requests, as vLLM's server allows them (FastAPI's CORSMiddleware with
 * --allowed-origins, --allowed-methods, --allowed-headers, --allow-credentials; by default any
 * origin, method and header, no credentials), so a web page can call the API. Hono's cors
 * middleware does the work; this only maps vLLM's options onto it.
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';

export interface CorsOptions {
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders: string[];
  allowCredentials: boolean;
}

export const DEFAULT_CORS: Readonly<CorsOptions> = Object.freeze({ allowedOrigins: ['*'], allowedMethods: ['*'], allowedHeaders: ['*'], allowCredentials: false });

/** Methods a '*' stands for (what the API's routes and preflights use). */
const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export function corsMiddleware(options: CorsOptions): MiddlewareHandler {
  return cors({
    origin: options.allowedOrigins.includes('*') ? '*' : options.allowedOrigins,
    allowMethods: options.allowedMethods.includes('*') ? ALL_METHODS : options.allowedMethods,
    // An empty list makes Hono echo the headers a preflight asks for, as '*' does in Starlette.
    allowHeaders: options.allowedHeaders.includes('*') ? [] : options.allowedHeaders,
    credentials: options.allowCredentials,
  });
}
