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
import { WEBHOOK_EVENTS, type WebhookSettings } from '../lib/db/schema.ts';
import { INPUT_FIELDS, PARAMS_SCHEMAS, type JobKind } from '../lib/jobs/params.ts';
import { ApiError } from './http/errors.ts';
import type { ParsedBody } from './http/body.ts';

export type InputSource = { url: string } | { file: Buffer };

export interface JobRequest {
  kind: JobKind;
  inputs: Record<string, InputSource>;
  params: Record<string, unknown>;
  webhook?: WebhookSettings;
}

const WebhookFieldsSchema = z.strictObject({
  webhook: z.string().max(2048).optional(),
  webhook_events_filter: z.array(z.enum(WEBHOOK_EVENTS)).min(1).optional(),
});

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

export interface RequestChecks {
  /** The URL, parsed and normalised; throws JobError when it may not be fetched. */
  checkUrl(url: string): URL;
  /** Throws JobError for a webhook URL that may not be called; undefined when webhooks are not configured. */
  checkWebhookUrl: ((url: string) => void) | undefined;
}

export function parseJobRequest(kind: JobKind, body: ParsedBody, checks: RequestChecks): JobRequest {
  const fields = { ...body.fields };
  const issues: Array<{ field: string; message: string }> = [];
  const webhookFields = { webhook: fields.webhook, webhook_events_filter: fields.webhook_events_filter };
  delete fields.webhook;
  delete fields.webhook_events_filter;
  const inputs: Record<string, InputSource> = {};
  for (const [name, value] of Object.entries(fields)) {
    // Postgres cannot store NUL in text or jsonb; refuse it here as the input error it is.
    if (typeof value === 'string' && value.includes('\u0000')) issues.push({ field: name, message: 'must not contain NUL characters' });
  }
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
        inputs[role] = { url: checks.checkUrl(url.trim()).href };
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
  const webhook = parseWebhook(webhookFields, body.multipart, checks, issues);
  if (issues.length > 0) throw validationError(issues);
  return { kind, inputs, params: parsed.data as Record<string, unknown>, ...(webhook ? { webhook } : {}) };
}

function parseWebhook(
  raw: { webhook: unknown; webhook_events_filter: unknown },
  multipart: boolean,
  checks: RequestChecks,
  issues: Array<{ field: string; message: string }>,
): WebhookSettings | undefined {
  const candidate = {
    ...(raw.webhook !== undefined ? { webhook: raw.webhook } : {}),
    ...(raw.webhook_events_filter !== undefined
      ? { webhook_events_filter: multipart && typeof raw.webhook_events_filter === 'string' ? raw.webhook_events_filter.split(',').map((s) => s.trim()) : raw.webhook_events_filter }
      : {}),
  };
  const parsed = WebhookFieldsSchema.safeParse(candidate);
  if (!parsed.success) {
    issues.push(...fieldIssues(parsed.error));
    return undefined;
  }
  const { webhook, webhook_events_filter } = parsed.data;
  if (webhook === undefined) {
    if (webhook_events_filter) issues.push({ field: 'webhook_events_filter', message: 'needs a webhook URL' });
    return undefined;
  }
  if (!checks.checkWebhookUrl) {
    issues.push({ field: 'webhook', message: 'webhooks are not enabled on this server (set WEBHOOK_SECRET)' });
    return undefined;
  }
  try {
    checks.checkWebhookUrl(webhook);
  } catch (error) {
    if (!(error instanceof JobError)) throw error;
    issues.push({ field: 'webhook', message: error.message });
    return undefined;
  }
  return { url: webhook, events: webhook_events_filter ?? ['completed'] };
}
