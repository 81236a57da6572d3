/**
 * Fetch an image from a URL a stranger chose, without letting the URL reach
 * into our network, exhaust memory or hang a worker.
 *
 * - Only http and https; the URL text is checked first (check-url.ts).
 * - Host names are resolved by our own lookup, every answer is checked
 *   (address-policy.ts), and the socket connects to exactly the checked
 *   address: the lookup is the one node:http itself calls, so there is no
 *   second resolution a rebinding DNS server could answer differently.
 * - Redirects: each hop is checked the same way; at most `maxRedirects`.
 * - Bytes are counted while streaming; the transfer stops before the chunk
 *   that would pass `maxBytes`, whatever Content-Length said.
 * - A connect timeout (DNS + TCP + TLS) and a total timeout over all hops and
 *   the body, so a server that trickles bytes is cut off.
 * - No connection reuse (agent: false), no proxies, no content decoding.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { JobAbortedError, JobError } from '../errors.ts';
import { classifyAddress, isAllowedHost, parseAllowHosts, type AllowHostRule } from './address-policy.ts';
import { checkUrlWithRules } from './check-url.ts';

/**
 * A dns.lookup-compatible resolver, always called with `{ all: true }`.
 * `dns.lookup` itself fits; tests inject one that answers what they need.
 */
export type LookupFunction = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

export interface FetchPolicy {
  /** FETCH_ALLOW_HOSTS entries ("host" or "host:port"): let through even if they resolve to private addresses. */
  allowHosts: string[];
  /** DNS lookup + TCP connect + TLS handshake, per hop. */
  connectTimeoutMs: number;
  /** Everything: all hops, headers and body. */
  totalTimeoutMs: number;
  /** Largest body accepted; counted while streaming. */
  maxBytes: number;
  /** Redirects followed at most (0: none). */
  maxRedirects: number;
  /** Resolver; default `dns.lookup`. */
  lookup?: LookupFunction;
  /** Extra CA certificates for https (tests with a self-signed loopback server); default: Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
}

export interface ImageFetcher {
  /**
   * The body of `url` (after redirects) as one Buffer of at most maxBytes.
   * Throws JobError: url_invalid, url_forbidden, fetch_timeout, fetch_too_large,
   * fetch_failed (with `status` when the server answered); JobAbortedError
   * ('canceled') when `signal` fires.
   */
  fetch(url: string, signal?: AbortSignal): Promise<Buffer>;
}

const USER_AGENT = 'faceswap-job-api-image-fetcher/1';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Network error codes worth retrying later; everything else fails the job at once. */
const PERMANENT_NETWORK_CODES = new Set([
  'ENOTFOUND',
  'ERR_INVALID_URL',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

const defaultLookup: LookupFunction = (hostname, options, callback) => dns.lookup(hostname, options, callback);

function positiveInt(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new Error(`FetchPolicy.${name} must be an integer >= ${min} (got ${value})`);
}

function bareHost(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

function retryAfterSeconds(header: string | undefined): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function statusError(status: number, host: string, retryAfter: string | undefined): JobError {
  const retryable = status >= 500 || status === 429 || status === 408;
  return new JobError('fetch_failed', `The image server ${host} answered HTTP ${status}`, {
    status,
    retryable,
    retryAfter: retryable ? retryAfterSeconds(retryAfter) : undefined,
  });
}

function networkError(error: unknown, host: string): JobError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ENOTFOUND') {
    return new JobError('fetch_failed', `The image host ${host} does not resolve`, { retryable: false, cause: error });
  }
  const permanent = (code !== undefined && PERMANENT_NETWORK_CODES.has(code)) || (code?.startsWith('HPE_') ?? false);
  return new JobError('fetch_failed', `Fetching the image from ${host} failed: ${code ?? message}`, {
    retryable: !permanent,
    cause: error,
  });
}

interface Hop {
  url: URL;
  rules: readonly AllowHostRule[];
  policy: FetchPolicy;
  lookup: LookupFunction;
  signal: AbortSignal;
  /** Abort the whole fetch with this error. */
  fail: (error: JobError) => void;
}

/**
 * The lookup node:http calls for this hop: resolve with the policy's resolver,
 * refuse if any answer is forbidden (unless the host is allow-listed), and
 * hand node the canonical form of exactly the addresses that were checked.
 */
function guardedLookup(hop: Hop, allowed: boolean): net.LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    const lookupOptions: dns.LookupAllOptions = { all: true, family };
    if (options.hints !== undefined) lookupOptions.hints = options.hints;
    const answered = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[] | string | undefined): void => {
      if (err) return callback(err, '', 0);
      // Tolerate a resolver that ignores `all: true` and answers (err, address, family).
      const list = typeof addresses === 'string' ? [{ address: addresses, family: net.isIP(addresses) }] : (addresses ?? []);
      const checked: dns.LookupAddress[] = [];
      for (const entry of list) {
        const verdict = classifyAddress(entry.address);
        if (!allowed && !verdict.allowed) {
          const refused = new JobError(
            'url_forbidden',
            `The image host ${hostname} resolves to a forbidden address (${verdict.address}, ${verdict.range})`,
          );
          hop.fail(refused);
          return callback(refused, '', 0);
        }
        if (!verdict.allowed && (verdict.range === 'invalid' || verdict.range === 'zoned')) {
          const refused = new JobError('fetch_failed', `The resolver returned an unusable address for ${hostname}`);
          hop.fail(refused);
          return callback(refused, '', 0);
        }
        checked.push({ address: verdict.address, family: net.isIP(verdict.address) });
      }
      if (checked.length === 0) {
        const notFound = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
        return callback(notFound, '', 0);
      }
      if (options.all) return callback(null, checked);
      return callback(null, checked[0]!.address, checked[0]!.family);
    };
    try {
      hop.lookup(hostname, lookupOptions, answered);
    } catch (error) {
      callback(error as NodeJS.ErrnoException, '', 0);
    }
  };
}

/** One request; resolves with the response once headers arrived. */
function requestOnce(hop: Hop): Promise<http.IncomingMessage> {
  const { url, policy } = hop;
  const isHttps = url.protocol === 'https:';
  const host = bareHost(url.hostname);
  const allowed = isAllowedHost(url, hop.rules);
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = {
      protocol: url.protocol,
      hostname: host,
      port: url.port === '' ? (isHttps ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: {
        host: url.host,
        'user-agent': USER_AGENT,
        accept: 'image/jpeg, image/png, image/webp, image/avif;q=0.9, */*;q=0.1',
        'accept-encoding': 'identity',
      },
      agent: false,
      lookup: guardedLookup(hop, allowed),
      signal: hop.signal,
    };
    if (isHttps) {
      if (policy.ca !== undefined) options.ca = policy.ca;
      if (net.isIP(host) === 0) options.servername = host;
    }
    const req = (isHttps ? https : http).request(options);
    const connectTimer = setTimeout(() => {
      hop.fail(
        new JobError('fetch_timeout', `Connecting to ${url.host} took longer than ${policy.connectTimeoutMs} ms`, {
          retryable: true,
        }),
      );
    }, policy.connectTimeoutMs);
    const connected = (): void => clearTimeout(connectTimer);
    req.once('socket', (socket) => {
      if (socket instanceof tls.TLSSocket) socket.once('secureConnect', connected);
      else socket.once('connect', connected);
    });
    req.once('close', connected);
    // Keep a listener for the request's whole life: a late error must never go unhandled.
    req.on('error', (error) => {
      connected();
      reject(error);
    });
    req.once('response', (res) => {
      res.on('error', () => {}); // errors reach the reader through its iterator
      resolve(res);
    });
    req.end();
  });
}

/** Chunks smaller than this are copied together into blocks of BLOCK_BYTES. */
const SMALL_CHUNK_BYTES = 16 * 1024;
const BLOCK_BYTES = 64 * 1024;

/**
 * Collects body bytes so that what is held is the bytes themselves plus at
 * most one block, however the server frames them. Node hands out chunks that
 * can be slices of a larger socket buffer (keeping a slice pins all of it) or
 * many small pieces; large chunks are kept when they own their memory and
 * copied to an exact-size buffer otherwise, small ones are copied together
 * into blocks.
 */
class ByteCollector {
  private readonly pieces: Buffer[] = [];
  private block: Buffer | undefined;
  private used = 0;
  total = 0;

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.flush();
      const owned = chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length;
      this.pieces.push(owned ? chunk : Buffer.from(chunk));
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      if (this.block === undefined) {
        this.block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
        this.used = 0;
      }
      const copied = chunk.copy(this.block, this.used, offset);
      this.used += copied;
      offset += copied;
      if (this.used === this.block.length) {
        this.pieces.push(this.block);
        this.block = undefined;
      }
    }
  }

  /** Close the partly filled block: keep an exact-size copy of what it holds. */
  private flush(): void {
    if (this.block !== undefined && this.used > 0) this.pieces.push(Buffer.from(this.block.subarray(0, this.used)));
    this.block = undefined;
  }

  result(): Buffer {
    this.flush();
    if (this.pieces.length === 1) return this.pieces[0]!;
    return Buffer.concat(this.pieces, this.total);
  }
}

/**
 * Read the body, never holding more than maxBytes plus one block: the limit
 * is checked before each chunk is kept, whatever Content-Length said (a
 * declared length above the limit is refused before reading).
 */
async function readCapped(res: http.IncomingMessage, maxBytes: number, host: string): Promise<Buffer> {
  const tooLarge = (): JobError =>
    new JobError('fetch_too_large', `The image from ${host} is larger than ${maxBytes} bytes`, { retryable: false });
  const declaredText = res.headers['content-length'];
  const declared = declaredText !== undefined && /^\d+$/.test(declaredText) ? Number(declaredText) : undefined;
  if (declared !== undefined && declared > maxBytes) {
    res.destroy();
    throw tooLarge();
  }
  if (declared === 0) {
    res.resume();
    return Buffer.alloc(0);
  }
  // Known length: copy into one exact buffer (no final concatenation).
  const exact = declared !== undefined ? Buffer.allocUnsafeSlow(declared) : undefined;
  const collector = new ByteCollector();
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (total + chunk.length > maxBytes || (exact !== undefined && total + chunk.length > exact.length)) {
      res.destroy();
      throw tooLarge();
    }
    if (exact !== undefined) chunk.copy(exact, total);
    else collector.push(chunk);
    total += chunk.length;
  }
  if (exact !== undefined) {
    if (total !== exact.length) {
      throw new JobError('fetch_failed', `The image from ${host} ended after ${total} of ${exact.length} bytes`, {
        retryable: true,
      });
    }
    return exact;
  }
  return collector.result();
}

async function fetchWithPolicy(
  input: string,
  policy: FetchPolicy,
  rules: readonly AllowHostRule[],
  lookup: LookupFunction,
  outer: AbortSignal | undefined,
): Promise<Buffer> {
  if (outer?.aborted) throw new JobAbortedError();
  let url = checkUrlWithRules(input, rules);

  const controller = new AbortController();
  let failure: JobError | undefined;
  const fail = (error: JobError): void => {
    if (failure !== undefined) return;
    failure = error;
    controller.abort(error);
  };
  const totalTimer = setTimeout(() => {
    fail(new JobError('fetch_timeout', `Fetching the image took longer than ${policy.totalTimeoutMs} ms`, { retryable: true }));
  }, policy.totalTimeoutMs);
  const onOuterAbort = (): void => fail(new JobAbortedError());
  outer?.addEventListener('abort', onOuterAbort, { once: true });

  try {
    for (let redirects = 0; ; redirects++) {
      const hop: Hop = { url, rules, policy, lookup, signal: controller.signal, fail };
      let res: http.IncomingMessage;
      try {
        res = await requestOnce(hop);
      } catch (error) {
        if (failure !== undefined) throw failure;
        if (error instanceof JobError) throw error;
        throw networkError(error, url.host);
      }
      const status = res.statusCode ?? 0;
      if (REDIRECT_STATUSES.has(status)) {
        res.destroy();
        const location = res.headers.location;
        if (location === undefined || location === '') {
          throw new JobError('fetch_failed', `The image server ${url.host} answered HTTP ${status} without a Location`, {
            status,
          });
        }
        if (redirects >= policy.maxRedirects) {
          throw new JobError('fetch_failed', `The image URL redirected more than ${policy.maxRedirects} times`, { status });
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new JobError('url_invalid', `The image server ${url.host} redirected to an invalid URL`);
        }
        url = checkUrlWithRules(next.href, rules);
        continue;
      }
      if (status < 200 || status > 299) {
        res.destroy();
        const retryAfter = res.headers['retry-after'];
        throw statusError(status, url.host, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      }
      try {
        return await readCapped(res, policy.maxBytes, url.host);
      } catch (error) {
        if (failure !== undefined) throw failure;
        if (error instanceof JobError) throw error;
        throw networkError(error, url.host);
      }
    }
  } finally {
    clearTimeout(totalTimer);
    outer?.removeEventListener('abort', onOuterAbort);
    if (failure === undefined) controller.abort(); // release anything still open
  }
}

/**
 * Build the fetcher the daemon uses for image URLs. Throws (plain Error) on an
 * unusable policy: bad numbers or an unreadable allowHosts entry.
 */
export function createImageFetcher(policy: FetchPolicy): ImageFetcher {
  positiveInt('connectTimeoutMs', policy.connectTimeoutMs, 1);
  positiveInt('totalTimeoutMs', policy.totalTimeoutMs, 1);
  positiveInt('maxBytes', policy.maxBytes, 1);
  positiveInt('maxRedirects', policy.maxRedirects, 0);
  const rules = parseAllowHosts(policy.allowHosts);
  const frozen: FetchPolicy = { ...policy, allowHosts: [...policy.allowHosts] };
  const lookup = policy.lookup ?? defaultLookup;
  return {
    fetch: (url, signal) => fetchWithPolicy(url, frozen, rules, lookup, signal),
  };
}
