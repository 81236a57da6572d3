/**
 * Every error the API answers is `{"success": false, "error": {"code", "message"}}`
 * with an HTTP status that fits the code.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isJobError } from '../../lib/errors.ts';

export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly headers: Record<string, string>;
  /** Top-level fields next to `error` (e.g. `job_id`). */
  readonly extra: Record<string, unknown>;
  /** Fields inside `error` (e.g. `fields`, the per-field validation problems). */
  readonly details: Record<string, unknown>;

  constructor(
    status: ContentfulStatusCode,
    code: string,
    message: string,
    options: { headers?: Record<string, string>; extra?: Record<string, unknown>; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
    this.details = options.details ?? {};
  }
}

const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  invalid_request: 400,
  invalid_json: 400,
  invalid_job_id: 400,
  url_invalid: 400,
  url_forbidden: 400,
  not_found: 404,
  canceled: 409,
  fetch_too_large: 413,
  image_too_large: 413,
  payload_too_large: 413,
  image_unsupported: 415,
  unsupported_media_type: 415,
  idempotency_key_mismatch: 422,
  queue_full: 429,
  internal_error: 500,
  fetch_failed: 502,
  provider_failed: 502,
  provider_bad_response: 502,
  provider_unauthorized: 502,
  provider_not_found: 502,
  provider_rejected: 502,
  provider_rate_limited: 503,
  provider_unavailable: 503,
  worker_lost: 500,
  engine_no_output: 500,
  input_missing: 500,
  lease_lost: 503,
  daemon_shutdown: 503,
  storage_unavailable: 503,
  database_unavailable: 503,
  engine_unavailable: 503,
  fetch_timeout: 504,
  provider_timeout: 504,
};

/** The status for an error code; unknown codes of failed jobs are problems with the input (422). */
export function statusForCode(code: string): ContentfulStatusCode {
  return STATUS_BY_CODE[code] ?? 422;
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}, details: Record<string, unknown> = {}) {
  return { success: false as const, error: { code, message, ...details }, ...extra };
}

export function respondError(c: Context, error: unknown) {
  if (error instanceof ApiError) {
    for (const [k, v] of Object.entries(error.headers)) c.header(k, v);
    return c.json(errorBody(error.code, error.message, error.extra, error.details), error.status);
  }
  if (isJobError(error)) {
    if (error.retryAfter) c.header('Retry-After', String(error.retryAfter));
    return c.json(errorBody(error.code, error.message), statusForCode(error.code));
  }
  if (isDatabaseDown(error)) {
    c.header('Retry-After', '5');
    return c.json(errorBody('database_unavailable', 'The database is not reachable; try again shortly'), 503);
  }
  return c.json(errorBody('internal_error', 'Internal server error'), 500);
}

/** Connection-level failures (Postgres down or restarting), as opposed to query errors. */
export function isDatabaseDown(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (typeof e.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|57P0[1-3]|08\w{3})$/.test(e.code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|the database system is (starting up|shutting down)|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}
