/** Small pure pieces of the Replicate engines: Retry-After parsing and error mapping. */
import { describe, expect, it } from 'vitest';
import { JobError } from '../../lib/errors.ts';
import { toProviderError } from '../../worker/engines/replicate/errors.ts';
import { pickOutputUrl, sniffImageFormat } from '../../worker/engines/replicate/output.ts';
import { parseRetryAfter } from '../../worker/engines/replicate/retry-fetch.ts';

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, and nothing else', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7);
    expect(parseRetryAfter(' 1.5 ', now)).toBe(1.5);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('toProviderError', () => {
  const apiError = (status: number, body: string) =>
    Object.assign(new Error(`Request to http://x/v1/predictions failed with status ${status} Whatever: ${body}.`), {
      name: 'ApiError',
      response: new Response(null, { status }),
    });

  it.each([
    [401, 'provider_unauthorized', false],
    [403, 'provider_unauthorized', false],
    [404, 'provider_not_found', false],
    [422, 'provider_rejected', false],
    [409, 'provider_rejected', false],
    [503, 'provider_unavailable', true],
  ])('maps HTTP %i to %s', (status, code, retryable) => {
    const mapped = toProviderError(apiError(status, JSON.stringify({ detail: 'the detail' }))) as JobError;
    expect(mapped).toBeInstanceOf(JobError);
    expect([mapped.code, mapped.retryable, mapped.status]).toEqual([code, retryable, status]);
    expect(mapped.message).toContain('the detail');
  });

  it('a request past its own time limit is provider_unavailable; bad JSON is provider_bad_response; others pass through', () => {
    expect((toProviderError(new DOMException('The operation timed out.', 'TimeoutError')) as JobError).code).toBe('provider_unavailable');
    expect((toProviderError(new SyntaxError('Unexpected token <')) as JobError).code).toBe('provider_bad_response');
    const bug = new TypeError('x is undefined');
    expect(toProviderError(bug)).toBe(bug);
  });
});

describe('outputs', () => {
  it('finds the first file URL in the shapes models return', () => {
    expect(pickOutputUrl('https://r.delivery/a.png')).toBe('https://r.delivery/a.png');
    expect(pickOutputUrl(['https://r.delivery/a.png', 'https://r.delivery/b.png'])).toBe('https://r.delivery/a.png');
    expect(pickOutputUrl({ image: 'data:image/png;base64,AAAA' })).toBe('data:image/png;base64,AAAA');
    expect(() => pickOutputUrl(null)).toThrow(/no file URL/);
    expect(() => pickOutputUrl(['not a url'])).toThrow(/no file URL/);
  });

  it('sniffs image types by their first bytes', () => {
    expect(sniffImageFormat(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]))).toBe('png');
    expect(sniffImageFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffImageFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBe('webp');
    expect(sniffImageFormat(Buffer.from('<html>'))).toBeUndefined();
  });
});
