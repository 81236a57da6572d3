/**
 * A `fetch` that retries 429 and 5xx answers and network failures with
 * backoff inside a bounded budget, honouring `Retry-After`, and then gives up
 * with a retryable JobError so that the queue tries the job again later.
 *
 * It is handed to the official `replicate` client as its `fetch`. That
 * client's own retry loop (replicate 1.4) neither waits between attempts nor
 * reads `Retry-After`, and it swallows thrown errors to call again; so this
 * fetch never returns a 429/5xx to it, and once it gave up on a request it
 * rethrows the same error at once for every repeat call with the same `init`
 * object (the client reuses it), which costs nothing and sends nothing.
 */
import type { Logger } from 'pino';
import { JobError } from '../../../lib/errors.ts';

export interface RetryPolicy {
  /** Retries per request after the first attempt. */
  maxRetries: number;
  /** First backoff delay; doubles each retry, with full jitter. */
  baseDelayMs: number;
  /** Cap on one computed backoff delay (a longer Retry-After is honoured if the budget allows it). */
  maxDelayMs: number;
  /** Cap on the total time one request may spend waiting between its retries. */
  budgetMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 4,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  budgetMs: 30_000,
};

export interface RetryingFetchOptions {
  fetch: typeof fetch;
  policy: RetryPolicy;
  /** Aborts the waits between retries (the job's signal). Each request itself uses its own init.signal. */
  signal?: AbortSignal;
  /** Epoch ms: never wait for a retry past this (the job's provider deadline). */
  deadline?: number;
  log: Logger;
  /** The provider's name in error messages ("Replicate"). */
  provider: string;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, (date - now) / 1000);
}

function backoffMs(policy: RetryPolicy, retry: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  // Full jitter, but never less than half the step, so retries do not bunch up at zero.
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason when it fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function bodySnippet(response: Response): Promise<string> {
  try {
    const text = (await response.text()).replace(/\s+/g, ' ').trim();
    return text.length > 300 ? `${text.slice(0, 300)}...` : text;
  } catch {
    return '';
  }
}

function describeUrl(input: string | URL | Request): string {
  const raw = input instanceof Request ? input.url : String(input);
  try {
    const url = new URL(raw);
    if (url.protocol === 'data:') return 'a data: URL';
    return `${url.origin}${url.pathname}`;
  } catch {
    return 'the provider';
  }
}

export function createRetryingFetch(options: RetryingFetchOptions): typeof fetch {
  const { policy, log, provider } = options;
  const gaveUp = new WeakMap<object, unknown>();

  const retryingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (init && gaveUp.has(init)) throw gaveUp.get(init);
    const giveUp = (error: unknown): never => {
      if (init) gaveUp.set(init, error);
      throw error;
    };
    const where = describeUrl(input);
    const method = init?.method ?? 'GET';
    let waited = 0;
    let lastError: JobError | undefined;

    for (let retry = 0; ; retry++) {
      if (options.signal?.aborted) giveUp(options.signal.reason);
      let delay: number;
      try {
        const response = await options.fetch(input, init);
        if (response.status !== 429 && response.status < 500) return response;
        const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
        const snippet = await bodySnippet(response);
        const rateLimited = response.status === 429;
        lastError = new JobError(
          rateLimited ? 'provider_rate_limited' : 'provider_unavailable',
          `${provider} answered ${response.status} to ${method} ${where}${snippet ? `: ${snippet}` : ''}`,
          { retryable: true, status: response.status, retryAfter: retryAfter === undefined ? undefined : Math.ceil(retryAfter) },
        );
        delay = retryAfter === undefined ? backoffMs(policy, retry) : Math.ceil(retryAfter * 1000);
      } catch (error) {
        if (init?.signal?.aborted || options.signal?.aborted) giveUp(error);
        const message = error instanceof Error ? (error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message) : String(error);
        lastError = new JobError('provider_unavailable', `Could not reach ${provider} (${method} ${where}): ${message}`, {
          retryable: true,
          cause: error,
        });
        delay = backoffMs(policy, retry);
      }

      const outOfRetries = retry >= policy.maxRetries;
      const overBudget = waited + delay > policy.budgetMs;
      const pastDeadline = options.deadline !== undefined && Date.now() + delay > options.deadline;
      if (outOfRetries || overBudget || pastDeadline) {
        log.warn({ err: lastError.message, retries: retry, waitedMs: waited }, `${provider}: giving up on ${method} ${where}`);
        giveUp(lastError);
      }
      log.info({ status: lastError.status, delayMs: delay, retry: retry + 1 }, `${provider}: retrying ${method} ${where}`);
      try {
        await sleep(delay, options.signal);
      } catch (reason) {
        giveUp(reason);
      }
      waited += delay;
    }
  };
  return retryingFetch as typeof fetch;
}
