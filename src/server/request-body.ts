/** Reading a JSON request body and checking it against a schema; every failure is a 400. */
import type { Context } from 'hono';
import type { z } from 'zod';
import { badRequest, fromZodError } from './errors.ts';

export async function readJsonBody(c: Context): Promise<unknown> {
  const contentType = c.req.header('content-type') ?? '';
  if (!contentType.toLowerCase().includes('application/json')) {
    throw badRequest(`Content-Type must be application/json (got '${contentType || 'none'}')`, null, 'invalid_content_type');
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
