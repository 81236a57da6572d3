/**
 * Machine-readable errors shared by the API and the daemon.
 *
 * A JobError carries a stable `code` that clients can switch on, a human
 * message, and whether retrying the same job could succeed (`retryable`).
 * Permanent errors (bad input, no face) fail a job at once; retryable ones
 * (network, a provider's 5xx/429) go back to the queue with backoff.
 */
export interface JobErrorOptions {
  retryable?: boolean;
  /** Seconds the caller (or the queue) should wait before retrying. */
  retryAfter?: number;
  /** Upstream HTTP status, where one was involved. */
  status?: number;
  cause?: unknown;
}

export class JobError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfter: number | undefined;
  readonly status: number | undefined;

  constructor(code: string, message: string, options: JobErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JobError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfter = options.retryAfter;
    this.status = options.status;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isJobError(error: unknown): error is JobError {
  return error instanceof JobError;
}

/** Thrown by engines when the job's abort signal fired (cancel or shutdown). */
export class JobAbortedError extends JobError {
  constructor(message = 'The job was canceled') {
    super('canceled', message);
    this.name = 'JobAbortedError';
  }
}

/** Throws JobAbortedError if the signal has fired; call between expensive steps. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new JobAbortedError();
}

/** Any error, as the `{code, message}` stored on a failed job. */
export function toErrorBody(error: unknown): { code: string; message: string } {
  if (isJobError(error)) return error.toJSON();
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal_error', message };
}
