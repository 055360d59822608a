/** What every route of one app shares: the engine, the names it answers to, state and metrics. */
import type { EngineClient } from '../engine/types.ts';
import { type ApiErrorBody, modelNotFound } from './errors.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { ServerMetrics } from './metrics.ts';
import type { TokenTextCache } from './token-text.ts';

export interface AppContext {
  engine: EngineClient;
  /** Names accepted in the `model` field; the first is reported back in responses. */
  servedModelNames: string[];
  /** /v1/models `root`: the model directory, or the model's own name for a dummy model. */
  modelRoot: string;
  /** When set, /v1/* requires `Authorization: Bearer <apiKey>`. */
  apiKey: string | null;
  lifecycle: Lifecycle;
  metrics: ServerMetrics;
  tokenText: TokenTextCache;
  /** Unix seconds the server started (the `created` of /v1/models). */
  createdS: number;
  /** Error → OpenAI error body, for errors that happen after a stream's first byte (app.ts). */
  describeError: (err: unknown) => ApiErrorBody;
}

/** The model name to report: the request's own when it names a served model, else 404. */
export function resolveModelName(ctx: AppContext, requested: string | null | undefined): string {
  if (requested === null || requested === undefined || requested === '') return ctx.servedModelNames[0];
  if (!ctx.servedModelNames.includes(requested)) throw modelNotFound(requested);
  return requested;
}
