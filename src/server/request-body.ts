/** Reading a JSON request body and checking it against a schema; every failure is a 400. */
import { MIMEType } from 'node:util';
import type { Context } from 'hono';
import type { z } from 'zod';
import { badRequest, fromZodError } from './errors.ts';

/**
 * FastAPI's rule for a JSON body: no Content-Type (or an empty one) means JSON, so scripts that
 * post raw bytes without a type are served; otherwise the media type must be application/json or
 * application/*+json, whatever its parameters (charset=utf-8). Node's WHATWG MIME parser splits
 * the type, so `application/jsonl` or a parameter that merely mentions JSON does not pass.
 */
function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined || header.trim() === '') return true;
  let mime: MIMEType;
  try {
    mime = new MIMEType(header);
  } catch {
    return false; // not a media type at all
  }
  return mime.type === 'application' && (mime.subtype === 'json' || mime.subtype.endsWith('+json'));
}

export async function readJsonBody(c: Context): Promise<unknown> {
  const contentType = c.req.header('content-type');
  if (!isJsonContentType(contentType)) {
    throw badRequest(`Content-Type must be application/json (got '${contentType}')`, null, 'invalid_content_type');
  }
  let text: string;
  try {
    text = await c.req.text();
  } catch {
    throw badRequest('the request body could not be read', null, 'invalid_body');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, null, 'invalid_json');
  }
}

export async function parseJsonBody<Schema extends z.ZodType>(c: Context, schema: Schema): Promise<z.infer<Schema>> {
  const body = await readJsonBody(c);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('the request body must be a JSON object', null, 'invalid_body');
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw fromZodError(parsed.error);
  return parsed.data;
}
