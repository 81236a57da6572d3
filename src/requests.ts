/**
 * From a parsed request body to what a job needs: its input images (URLs,
 * or uploaded files) and its validated parameters.
 *
 * The original service's field names are kept: `base_image_url`,
 * `face_image_url`, `image_url`. Uploads use the same names without `_url`.
 * Unknown fields are refused, so a misspelt option never silently does nothing.
 */
import { z } from 'zod';
import { JobError } from '../lib/errors.ts';
import { INPUT_FIELDS, PARAMS_SCHEMAS, type JobKind } from '../lib/jobs/params.ts';
import { ApiError } from './http/errors.ts';
import type { ParsedBody } from './http/body.ts';

export type InputSource = { url: string } | { file: Buffer };

export interface JobRequest {
  kind: JobKind;
  inputs: Record<string, InputSource>;
  params: Record<string, unknown>;
}

function fieldIssues(error: z.ZodError): Array<{ field: string; message: string }> {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return { field: issue.keys.join(', '), message: 'unknown field' };
    }
    return { field: issue.path.join('.') || '(body)', message: issue.message };
  });
}

export function validationError(issues: Array<{ field: string; message: string }>): ApiError {
  const message = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  return new ApiError(400, 'invalid_request', message, { details: { fields: issues } });
}

/** Multipart fields are strings: turn them into the type the schema expects. */
function coerceMultipart(schema: z.ZodObject, fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    let field = schema.shape[key] as z.ZodType | undefined;
    while (field && (field instanceof z.ZodDefault || field instanceof z.ZodOptional)) {
      field = field.unwrap() as z.ZodType;
    }
    if (typeof value === 'string' && field instanceof z.ZodNumber && value.trim() !== '' && !Number.isNaN(Number(value))) {
      out[key] = Number(value);
    } else if (typeof value === 'string' && field instanceof z.ZodBoolean && /^(true|false)$/i.test(value)) {
      out[key] = value.toLowerCase() === 'true';
    } else {
      out[key] = value;
    }
  }
  return out;
}

export function parseJobRequest(kind: JobKind, body: ParsedBody, checkUrl: (url: string) => void): JobRequest {
  const fields = { ...body.fields };
  const inputs: Record<string, InputSource> = {};
  const issues: Array<{ field: string; message: string }> = [];
  for (const { role, urlField, fileField } of INPUT_FIELDS[kind]) {
    const url = fields[urlField];
    const file = body.files[fileField];
    delete fields[urlField];
    if (url !== undefined && file !== undefined) {
      issues.push({ field: urlField, message: `give either ${urlField} or an uploaded ${fileField}, not both` });
    } else if (file !== undefined) {
      inputs[role] = { file };
    } else if (typeof url === 'string' && url.trim() !== '') {
      try {
        checkUrl(url.trim());
        inputs[role] = { url: url.trim() };
      } catch (error) {
        if (error instanceof JobError) throw new ApiError(400, error.code, `${urlField}: ${error.message}`, { details: { fields: [{ field: urlField, message: error.message }] } });
        throw error;
      }
    } else if (url !== undefined) {
      issues.push({ field: urlField, message: 'must be a non-empty URL string' });
    } else {
      issues.push({ field: urlField, message: body.multipart ? `required (or upload a file as ${fileField})` : 'required' });
    }
  }
  for (const name of Object.keys(body.files)) {
    if (!INPUT_FIELDS[kind].some((f) => f.fileField === name)) issues.push({ field: name, message: 'unexpected file field' });
  }
  const schema = PARAMS_SCHEMAS[kind].strict();
  const parsed = schema.safeParse(body.multipart ? coerceMultipart(schema, fields) : fields);
  if (!parsed.success) issues.push(...fieldIssues(parsed.error));
  if (issues.length > 0) throw validationError(issues);
  return { kind, inputs, params: parsed.data as Record<string, unknown> };
}
