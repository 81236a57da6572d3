/**
 * The synchronous half of URL checking: everything that can be decided from
 * the URL text alone, without DNS. The API runs it when a request arrives, so
 * an obviously bad URL gets a 400 at once; the daemon's fetcher runs the same
 * checks again on every hop and then checks every resolved address.
 */
import { JobError } from '../errors.ts';
import { classifyAddress, isAllowedHost, isIpLiteral, parseAllowHosts, type AllowHostRule } from './address-policy.ts';

/** Longer URLs are refused with url_invalid (no image URL needs more). */
export const MAX_URL_LENGTH = 8192;

function describe(url: string): string {
  return JSON.stringify(url.length > 200 ? `${url.slice(0, 200)}...` : url);
}

/** Parse and check a URL against the static rules; `rules` are parsed FETCH_ALLOW_HOSTS. */
export function checkUrlWithRules(input: string, rules: readonly AllowHostRule[]): URL {
  if (typeof input !== 'string' || input.trim() === '') {
    throw new JobError('url_invalid', 'The image URL is empty');
  }
  if (input.length > MAX_URL_LENGTH) {
    throw new JobError('url_invalid', `The image URL is longer than ${MAX_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new JobError('url_invalid', `Not a valid absolute URL: ${describe(input)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new JobError('url_forbidden', `Only http and https image URLs are fetched, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new JobError('url_invalid', 'Image URLs must not carry a user name or password');
  }
  if (url.hostname === '') {
    throw new JobError('url_invalid', `The image URL has no host: ${describe(input)}`);
  }
  if (isAllowedHost(url, rules)) return url;

  if (isIpLiteral(url.hostname)) {
    const verdict = classifyAddress(url.hostname);
    if (!verdict.allowed) {
      throw new JobError('url_forbidden', `The image URL points at a forbidden address (${verdict.address}, ${verdict.range})`);
    }
    return url;
  }
  const name = url.hostname.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) {
    throw new JobError('url_forbidden', `The image URL points at this machine (${url.hostname})`);
  }
  return url;
}

/**
 * Synchronous pre-check for request time: parses the URL, allows only http and
 * https, refuses credentials, IP-literal hosts in forbidden ranges (in every
 * spelling the WHATWG parser accepts: 2130706433, 0177.0.0.1, 0x7f000001,
 * 127.1, [::ffff:127.0.0.1], ...) and "localhost". Host names are not
 * resolved here; the fetcher checks what they resolve to.
 *
 * Throws JobError `url_invalid` or `url_forbidden`; returns the parsed URL.
 * Throws a plain Error if `allowHosts` holds an unreadable entry.
 */
export function checkImageUrl(url: string, allowHosts: string[]): URL {
  return checkUrlWithRules(url, parseAllowHosts(allowHosts));
}
