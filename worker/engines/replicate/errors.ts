/**
 * Turns what the `replicate` client throws into JobErrors with stable codes.
 *
 * Codes: provider_unauthorized (401/403: bad token, permanent),
 * provider_not_found (404: unknown model or version, permanent),
 * provider_rejected (other 4xx, e.g. 422 invalid input, permanent),
 * provider_rate_limited / provider_unavailable (429, 5xx, network: retryable,
 * raised by retry-fetch.ts once its budget is spent),
 * provider_bad_response (a body that is not the JSON we expect: retryable),
 * provider_unavailable also for a request that ran past its own time limit.
 */
import { JobError } from '../../../lib/errors.ts';

interface ApiErrorLike {
  name: string;
  message: string;
  response: Response;
}

function isApiError(error: unknown): error is ApiErrorLike {
  return error instanceof Error && error.name === 'ApiError' && (error as Partial<ApiErrorLike>).response instanceof Response;
}

/** The `detail` of Replicate's problem+json bodies, else the text the client put in its message. */
function detailOf(message: string): string {
  const body = message.replace(/^Request to \S+ failed with status [^:]*:\s*/, '').replace(/\.$/, '');
  try {
    const parsed = JSON.parse(body) as { detail?: unknown; title?: unknown };
    if (typeof parsed.detail === 'string') return parsed.detail;
    if (typeof parsed.title === 'string') return parsed.title;
  } catch {
    // not JSON: keep the text
  }
  const text = body.replace(/\s+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

export function toProviderError(error: unknown, provider = 'Replicate'): unknown {
  if (error instanceof JobError) return error;
  if (isApiError(error)) {
    const status = error.response.status;
    const detail = detailOf(error.message);
    const suffix = detail ? `: ${detail}` : '';
    if (status === 401 || status === 403) {
      return new JobError('provider_unauthorized', `${provider} refused the API token (${status})${suffix}`, { status });
    }
    if (status === 404) {
      return new JobError('provider_not_found', `${provider} does not know this model or version (404)${suffix}`, { status });
    }
    if (status === 429 || status >= 500) {
      return new JobError('provider_unavailable', `${provider} answered ${status}${suffix}`, { status, retryable: true });
    }
    return new JobError('provider_rejected', `${provider} rejected the request (${status})${suffix}`, { status });
  }
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    // A request's own time limit (the job's signal is handled by the caller): Replicate did not answer.
    return new JobError('provider_unavailable', `${provider} did not answer in time (${error.message})`, { retryable: true, cause: error });
  }
  if (error instanceof SyntaxError) {
    return new JobError('provider_bad_response', `${provider} answered with a body that is not JSON: ${error.message}`, {
      retryable: true,
      cause: error,
    });
  }
  return error;
}
