/**
 * POSTs one webhook. The target is a URL a client chose, so it gets the
 * image fetcher's protection: http(s) only, the host resolved by our lookup
 * and refused if private (unless WEBHOOK_ALLOW_PRIVATE or FETCH_ALLOW_HOSTS
 * says otherwise), the socket connected to the checked address, no
 * redirects followed, a timeout.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { JobError } from '../errors.ts';
import { checkImageUrl, classifyAddress, isAllowedHost, parseAllowHosts, type LookupFunction } from '../intake/index.ts';

export interface WebhookTargetPolicy {
  allowHosts: string[];
  /** Deliver to private/loopback addresses too (internal receivers). */
  allowPrivate: boolean;
  timeoutMs: number;
  /** Resolver; default `dns.lookup` (tests inject one, as for the image fetcher). */
  lookup?: LookupFunction;
}

const defaultLookup: LookupFunction = (hostname, options, callback) => dns.lookup(hostname, options, callback);

/** Request-time check of a webhook URL; throws JobError url_invalid / url_forbidden. */
export function checkWebhookUrl(url: string, policy: WebhookTargetPolicy): URL {
  if (policy.allowPrivate) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new JobError('url_invalid', 'is not a valid URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new JobError('url_forbidden', 'only http and https URLs are allowed');
    return parsed;
  }
  return checkImageUrl(url, policy.allowHosts);
}

function safeLookup(allowed: boolean, lookup: LookupFunction): net.LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { all: true, family: options.family === 'IPv6' ? 6 : options.family === 'IPv4' ? 4 : 0 }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      for (const { address } of addresses) {
        if (!allowed && !classifyAddress(address).allowed) {
          return callback(new JobError('url_forbidden', `webhook host ${hostname} resolves to a forbidden address`), '', 0);
        }
      }
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) return callback(null, addresses);
      callback(null, first.address, first.family);
    });
  };
}

/** Resolves on a 2xx answer; otherwise throws (the queue retries with backoff). */
export function postWebhook(urlText: string, headers: Record<string, string>, body: string, policy: WebhookTargetPolicy): Promise<number> {
  const url = checkWebhookUrl(urlText, policy);
  const allowed = policy.allowPrivate || isAllowedHost(url, parseAllowHosts(policy.allowHosts));
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'faceswap-job-api-webhooks/1' },
        lookup: safeLookup(allowed, policy.lookup ?? defaultLookup),
        agent: false,
        timeout: policy.timeoutMs,
      },
      (res) => {
        // The status is all we need; never read (or wait for) the body.
        res.destroy();
        clearTimeout(deadline);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(status);
        else reject(new JobError('webhook_failed', `webhook receiver answered ${status}`, { retryable: true, status }));
      },
    );
    const tooSlow = () => req.destroy(new JobError('webhook_failed', `webhook receiver did not answer within ${policy.timeoutMs} ms`, { retryable: true }));
    // `timeout` only covers idle sockets; the deadline covers a receiver that trickles.
    const deadline = setTimeout(tooSlow, policy.timeoutMs);
    req.on('timeout', tooSlow);
    req.on('error', (e) => {
      clearTimeout(deadline);
      reject(e instanceof JobError ? e : new JobError('webhook_failed', `webhook delivery failed: ${e.message}`, { retryable: true }));
    });
    req.end(body);
  });
}
