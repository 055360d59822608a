/**
 * Errors the server answers with, in OpenAI's shape: {"error":{"message","type","param","code"}}.
 * Route code throws ApiError; app.ts is the one place that turns any thrown value into a response.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'service_unavailable_error'
  | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

export function modelNotFound(model: string): ApiError {
  return new ApiError(404, `The model \`${model}\` does not exist.`, 'invalid_request_error', 'model', 'model_not_found');
}

export function serviceUnavailable(message: string): ApiError {
  return new ApiError(503, message, 'service_unavailable_error', null, 'service_unavailable');
}

/** The first issue of a failed zod parse, named by its JSON path (e.g. `messages.0.role`). */
export function fromZodError(error: z.ZodError): ApiError {
  const issue = error.issues[0];
  if (!issue) return badRequest('invalid request body');
  const param = issue.path.map(String).join('.') || null;
  const message = param === null ? issue.message : `${param}: ${issue.message}`;
  return badRequest(message, param, 'invalid_value');
}
