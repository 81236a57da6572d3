/**
 * Reads a request body with a byte limit enforced while streaming, and
 * turns JSON or multipart/form-data into plain fields and files.
 * Errors: 415 for other content types, 413 over the limit, 400 for bodies
 * that do not parse.
 */
import type { Context } from 'hono';
import { ApiError } from './errors.ts';

export interface ParsedBody {
  fields: Record<string, unknown>;
  files: Record<string, Buffer>;
  multipart: boolean;
}

async function readLimited(c: Context, limit: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const body = c.req.raw.body;
  if (!body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

const tooLarge = (limit: number) => new ApiError(413, 'payload_too_large', `The request body is larger than ${limit} bytes`);

export async function parseBody(c: Context, limits: { json: number; multipart: number }): Promise<ParsedBody> {
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  if (type.startsWith('application/json') || type.includes('+json')) {
    const text = (await readLimited(c, limits.json)).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new ApiError(400, 'invalid_json', `The body is not valid JSON: ${(error as Error).message}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ApiError(400, 'invalid_json', 'The body must be a JSON object');
    }
    return { fields: value as Record<string, unknown>, files: {}, multipart: false };
  }
  if (type.startsWith('multipart/form-data')) {
    const bytes = await readLimited(c, limits.multipart);
    let form: FormData;
    try {
      form = await new Response(bytes, { headers: { 'content-type': c.req.header('content-type')! } }).formData();
    } catch {
      throw new ApiError(400, 'invalid_request', 'The multipart/form-data body could not be parsed');
    }
    const fields: Record<string, unknown> = {};
    const files: Record<string, Buffer> = {};
    for (const [name, value] of form.entries()) {
      if (name in fields || name in files) throw new ApiError(400, 'invalid_request', `${name}: given more than once`);
      if (typeof value === 'string') fields[name] = value;
      else files[name] = Buffer.from(await value.arrayBuffer());
    }
    return { fields, files, multipart: true };
  }
  throw new ApiError(415, 'unsupported_media_type', 'Send application/json, or multipart/form-data to upload images');
}
