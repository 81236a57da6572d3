/**
 * The fetcher's limits against real misbehaving servers on loopback (allowed
 * through allowHosts): endless bodies, lying Content-Length, trickling
 * servers, silent servers, a resolver that never answers, upstream errors,
 * redirect caps, cancellation and TLS.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImageFetcher, type FetchPolicy } from '../../lib/intake/index.ts';
import { expectJobError, FIXTURES, startHttpServer, tableLookup, type TestServer } from './helpers.ts';

const MiB = 1024 * 1024;
const photo = fs.readFileSync(new URL('noface_rocket.jpg', FIXTURES)); // 112525 bytes

let server: TestServer;
/** Per-path state the handlers report back. */
const seen = { trickleClosedAt: 0, hugeSent: 0 };

function policy(overrides: Partial<FetchPolicy> = {}): FetchPolicy {
  return {
    allowHosts: [`127.0.0.1:${server.port}`],
    connectTimeoutMs: 500,
    totalTimeoutMs: 3000,
    maxBytes: 1 * MiB,
    maxRedirects: 5,
    ...overrides,
  };
}

beforeAll(async () => {
  server = await startHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    switch (url.pathname) {
      case '/photo.jpg':
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length }).end(photo);
        return;
      case '/photo-chunked.jpg': {
        res.writeHead(200, { 'content-type': 'text/html' }); // the type is decided from bytes, later
        for (let i = 0; i < photo.length; i += 10_000) res.write(photo.subarray(i, i + 10_000));
        res.end();
        return;
      }
      case '/padded': {
        // A valid JPEG followed by padding past the limit, with an honest Content-Length.
        const padded = Buffer.concat([photo, Buffer.alloc(2 * MiB)]);
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': padded.length }).end(padded);
        return;
      }
      case '/padded-chunked': {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.write(photo);
        for (let i = 0; i < 32; i++) res.write(Buffer.alloc(64 * 1024));
        res.end();
        return;
      }
      case '/claims-huge': {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(1024 * MiB) });
        res.write(photo, () => (seen.hugeSent += photo.length));
        return; // and then nothing
      }
      case '/trickle': {
        // One byte per second, forever.
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        let i = 0;
        const timer = setInterval(() => res.write(photo.subarray(i, ++i)), 1000);
        res.write(photo.subarray(0, 1));
        res.on('close', () => {
          clearInterval(timer);
          seen.trickleClosedAt = Date.now();
        });
        return;
      }
      case '/silent':
        return; // accept, read the request, never answer
      case '/cut': {
        res.writeHead(200, { 'content-length': '100000' });
        res.write(photo.subarray(0, 1000), () => res.socket?.destroy());
        return;
      }
      case '/status': {
        const status = Number(url.searchParams.get('code'));
        const headers: Record<string, string> = {};
        if (url.searchParams.has('retry-after')) headers['retry-after'] = url.searchParams.get('retry-after')!;
        res.writeHead(status, headers).end('nope');
        return;
      }
      case '/no-location':
        res.writeHead(302).end();
        return;
      default: {
        const chain = /^\/chain\/(\d+)$/.exec(url.pathname);
        if (chain) {
          const n = Number(chain[1]);
          res.writeHead(302, { location: n <= 1 ? '/photo.jpg' : `/chain/${n - 1}` }).end();
          return;
        }
        res.writeHead(404).end();
      }
    }
  });
});

afterAll(async () => {
  await server?.close();
});

describe('fetching within limits', () => {
  it('returns the exact bytes, with Content-Length or chunked, whatever the Content-Type says', async () => {
    const fetcher = createImageFetcher(policy());
    expect((await fetcher.fetch(`${server.origin}/photo.jpg`)).equals(photo)).toBe(true);
    expect((await fetcher.fetch(`${server.origin}/photo-chunked.jpg`)).equals(photo)).toBe(true);
  });

  it('follows redirects up to maxRedirects, and refuses one more', async () => {
    const fetcher = createImageFetcher(policy({ maxRedirects: 2 }));
    expect((await fetcher.fetch(`${server.origin}/chain/2`)).equals(photo)).toBe(true);
    const e = await expectJobError(fetcher.fetch(`${server.origin}/chain/3`), 'fetch_failed');
    expect(e.message).toMatch(/more than 2 times/);
    const none = createImageFetcher(policy({ maxRedirects: 0 }));
    await expectJobError(none.fetch(`${server.origin}/chain/1`), 'fetch_failed');
    await expectJobError(none.fetch(`${server.origin}/no-location`), 'fetch_failed');
  });
});

describe('byte limit', () => {
  const hostile = { port: 0, origin: '', sent: [] as number[], child: undefined as ChildProcess | undefined };

  beforeAll(async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('endless-server.ts', import.meta.url))], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    hostile.child = child;
    const lines = readline.createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as { port?: number; sent?: number };
        if (msg.port !== undefined) {
          hostile.port = msg.port;
          hostile.origin = `http://127.0.0.1:${msg.port}`;
          resolve();
        }
        if (msg.sent !== undefined) hostile.sent.push(msg.sent);
      });
    });
  });

  afterAll(() => {
    hostile.child?.stdin?.end();
    hostile.child?.kill();
  });

  /** Fetch from the child server and sample this process's memory meanwhile. */
  async function measure(pathname: string, maxBytes: number, collect = true): Promise<Record<string, number>> {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const fetcher = createImageFetcher(policy({ allowHosts: [`127.0.0.1:${hostile.port}`], maxBytes, totalTimeoutMs: 30_000 }));
    const hungUp = async (count: number): Promise<void> => {
      for (let i = 0; i < 100 && hostile.sent.length < count; i++) await new Promise((r) => setTimeout(r, 20));
      expect(hostile.sent.length, 'the server saw the client hang up').toBe(count);
    };
    // Warm the code path so the measurement is the transfer, not module loading.
    const warm = createImageFetcher(policy({ allowHosts: [`127.0.0.1:${hostile.port}`], maxBytes: 64 * 1024 }));
    await expectJobError(warm.fetch(`${hostile.origin}${pathname}`), 'fetch_too_large');
    await hungUp(hostile.sent.length + 1);
    gc();
    const base = process.memoryUsage();
    // Every 20 ms (every 2 ms without collecting): collect garbage, then read what is
    // still alive (and the RSS). Without collecting, the figures include garbage.
    const peak = { liveHeap: 0, liveArrayBuffers: 0, rss: 0, samples: 0 };
    const sample = (): void => {
      if (collect) {
        gc();
        gc(); // a second pass lets ArrayBuffer backing stores freed by the first be swept
      }
      const m = process.memoryUsage();
      peak.samples++;
      peak.liveHeap = Math.max(peak.liveHeap, m.heapUsed - base.heapUsed);
      peak.liveArrayBuffers = Math.max(peak.liveArrayBuffers, m.arrayBuffers - base.arrayBuffers);
      peak.rss = Math.max(peak.rss, m.rss - base.rss);
    };
    const sampler = setInterval(sample, collect ? 20 : 2);
    const started = Date.now();
    const sentBefore = hostile.sent.length;
    const e = await expectJobError(fetcher.fetch(`${hostile.origin}${pathname}`), 'fetch_too_large');
    clearInterval(sampler);
    expect(e.retryable).toBe(false);
    const ms = Date.now() - started;
    await hungUp(sentBefore + 1);
    return {
      maxBytes,
      serverSentBytes: hostile.sent.at(-1)!,
      // "live" when collecting; including garbage otherwise
      peakLiveArrayBuffersDelta: peak.liveArrayBuffers,
      peakLiveHeapDelta: peak.liveHeap,
      peakRssDelta: peak.rss,
      rssOverLimit: peak.rss - maxBytes,
      samples: peak.samples,
      ms,
    };
  }

  it('cuts off an endless body with no Content-Length, holding no more than the limit plus a small constant', async () => {
    const maxBytes = 10 * MiB; // the FETCH_MAX_BYTES default
    const report = await measure('/endless', maxBytes);
    console.log('endless body, memory sampled after GC:', JSON.stringify(report));
    expect(report.serverSentBytes).toBeGreaterThan(maxBytes);
    expect(report.samples).toBeGreaterThan(0);
    // What is alive: the body so far, never more than the limit plus a block.
    expect(report.peakLiveArrayBuffersDelta).toBeLessThan(maxBytes + 2 * MiB);
    expect(report.peakLiveHeapDelta).toBeLessThan(4 * MiB);
    // Resident memory also counts pages the allocator has not handed back yet, so it is noisy when the
    // other test files run beside this one: measured 10-18 MB over the limit alone, up to 16 MB over in the full suite.
    expect(report.peakRssDelta).toBeLessThan(maxBytes + 24 * MiB);
    // Without collecting during the transfer: node's per-read buffers wait for the next GC.
    const raw = await measure('/endless', maxBytes, false);
    console.log('endless body, memory without forced GC:', JSON.stringify(raw));
    expect(raw.peakRssDelta).toBeLessThan(maxBytes + 32 * MiB);
  });

  it('an endless stream of one-byte chunked frames costs no more than its bytes', async () => {
    // Six bytes on the wire per byte of body, in frames node's parser hands over one by one.
    const maxBytes = 1 * MiB;
    const report = await measure('/tiny-frames', maxBytes);
    console.log('one-byte frames, memory:', JSON.stringify(report));
    expect(report.serverSentBytes).toBeGreaterThan(maxBytes * 5); // 6 bytes on the wire per byte of body
    expect(report.samples).toBeGreaterThan(10);
    expect(report.peakLiveArrayBuffersDelta).toBeLessThan(maxBytes + 512 * 1024);
    expect(report.peakLiveHeapDelta).toBeLessThan(8 * MiB);
  });

  it('refuses a valid image padded past the limit, with and without Content-Length', async () => {
    const fetcher = createImageFetcher(policy({ maxBytes: 1 * MiB }));
    await expectJobError(fetcher.fetch(`${server.origin}/padded`), 'fetch_too_large');
    await expectJobError(fetcher.fetch(`${server.origin}/padded-chunked`), 'fetch_too_large');
  });

  it('refuses at once when Content-Length claims more than the limit', async () => {
    const fetcher = createImageFetcher(policy({ maxBytes: 1 * MiB, totalTimeoutMs: 5000 }));
    const started = Date.now();
    await expectJobError(fetcher.fetch(`${server.origin}/claims-huge`), 'fetch_too_large');
    expect(Date.now() - started).toBeLessThan(2000); // did not wait for the body
  });
});

describe('time limits', () => {
  it('cuts off a server that sends one byte per second (total timeout)', async () => {
    const fetcher = createImageFetcher(policy({ totalTimeoutMs: 1500 }));
    const started = Date.now();
    const e = await expectJobError(fetcher.fetch(`${server.origin}/trickle`), 'fetch_timeout');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(3000);
    expect(e.retryable).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.trickleClosedAt).toBeGreaterThanOrEqual(started); // we hung up, the server saw it
  });

  it('times out a server that accepts but never answers (total timeout, not the connect one)', async () => {
    const fetcher = createImageFetcher(policy({ connectTimeoutMs: 200, totalTimeoutMs: 1000 }));
    const started = Date.now();
    const e = await expectJobError(fetcher.fetch(`${server.origin}/silent`), 'fetch_timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(e.message).toMatch(/1000 ms/);
  });

  it('times out the connect phase when the resolver never answers', async () => {
    const lookup = tableLookup({ 'hang.test': () => new Promise<never>(() => {}) as never });
    // A lookup that never calls back at all:
    const never: typeof lookup = Object.assign(() => {}, { calls: lookup.calls });
    const fetcher = createImageFetcher(policy({ connectTimeoutMs: 300, totalTimeoutMs: 5000, lookup: never }));
    const started = Date.now();
    const e = await expectJobError(fetcher.fetch('http://hang.test/x.jpg'), 'fetch_timeout');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(e.message).toMatch(/Connecting .* 300 ms/);
  });

  it('stops at once when the caller aborts (cancel), also before starting', async () => {
    const fetcher = createImageFetcher(policy({ totalTimeoutMs: 10_000 }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    await expectJobError(fetcher.fetch(`${server.origin}/trickle`, controller.signal), 'canceled');
    expect(Date.now() - started).toBeLessThan(2000);
    const before = server.connections;
    await expectJobError(fetcher.fetch(`${server.origin}/photo.jpg`, AbortSignal.abort()), 'canceled');
    expect(server.connections).toBe(before);
  });
});

describe('upstream failures', () => {
  it('reports the upstream status; 5xx, 429 and 408 are retryable, other 4xx are not', async () => {
    const fetcher = createImageFetcher(policy());
    const cases: Array<[number, boolean]> = [
      [404, false],
      [403, false],
      [410, false],
      [408, true],
      [429, true],
      [500, true],
      [502, true],
      [503, true],
    ];
    for (const [status, retryable] of cases) {
      const e = await expectJobError(fetcher.fetch(`${server.origin}/status?code=${status}`), 'fetch_failed');
      expect(e.status).toBe(status);
      expect(e.retryable, `HTTP ${status}`).toBe(retryable);
      expect(e.message).toContain(String(status));
    }
    const e = await expectJobError(fetcher.fetch(`${server.origin}/status?code=503&retry-after=7`), 'fetch_failed');
    expect(e.retryAfter).toBe(7);
  });

  it('network failures are retryable fetch_failed: connection refused, connection cut mid-body', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const fetcher = createImageFetcher(policy({ allowHosts: [`127.0.0.1:${server.port}`, `127.0.0.1:${deadPort}`] }));
    const refused = await expectJobError(fetcher.fetch(`http://127.0.0.1:${deadPort}/x.jpg`), 'fetch_failed');
    expect(refused.retryable).toBe(true);
    expect(refused.message).toContain('ECONNREFUSED');
    const cut = await expectJobError(fetcher.fetch(`${server.origin}/cut`), 'fetch_failed');
    expect(cut.retryable).toBe(true);
  });

  it('a name that does not resolve is a permanent fetch_failed', async () => {
    const fetcher = createImageFetcher(policy({ lookup: tableLookup({}) }));
    const e = await expectJobError(fetcher.fetch('http://no-such-host.test/x.jpg'), 'fetch_failed');
    expect(e.retryable).toBe(false);
  });

  it('survives odd resolvers: one that throws, one that answers a bare string, one that answers garbage', async () => {
    const throwing = createImageFetcher(
      policy({
        lookup: () => {
          throw Object.assign(new Error('resolver exploded'), { code: 'EAI_FAIL' });
        },
      }),
    );
    await expectJobError(throwing.fetch('http://boom.test/x.jpg'), 'fetch_failed');
    const bare = createImageFetcher(
      policy({
        allowHosts: [`img.test:${server.port}`],
        lookup: ((_h: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => cb(null, '127.0.0.1', 4)) as never,
      }),
    );
    expect((await bare.fetch(`http://img.test:${server.port}/photo.jpg`)).equals(photo)).toBe(true);
    const bareForbidden = createImageFetcher(
      policy({ lookup: ((_h: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => cb(null, '10.0.0.1', 4)) as never }),
    );
    await expectJobError(bareForbidden.fetch('http://img.test/x.jpg'), 'url_forbidden');
    const garbage = createImageFetcher(policy({ allowHosts: ['img.test'], lookup: tableLookup({ 'img.test': 'not-an-address' }) }));
    await expectJobError(garbage.fetch('http://img.test/x.jpg'), 'fetch_failed');
  });

  it('rejects an unreadable policy at construction', () => {
    expect(() => createImageFetcher(policy({ allowHosts: ['http://x/'] }))).toThrow(/FETCH_ALLOW_HOSTS/);
    expect(() => createImageFetcher(policy({ maxBytes: 0 }))).toThrow(/maxBytes/);
  });
});

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasOpenssl)('https', () => {
  let tlsServer: https.Server;
  let port = 0;
  let cert = '';

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'intake-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=img.test', '-addext', 'subjectAltName=DNS:img.test',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    cert = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    const key = fs.readFileSync(path.join(dir, 'key.pem'), 'utf8');
    fs.rmSync(dir, { recursive: true, force: true });
    tlsServer = https.createServer({ cert, key }, (_req, res) => {
      res.writeHead(200, { 'content-length': photo.length }).end(photo);
    });
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    port = (tlsServer.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => (tlsServer ? tlsServer.close(() => r()) : r()));
  });

  it('fetches over TLS from an allowed name, verifying the certificate against that name', async () => {
    const lookup = tableLookup({ 'img.test': '127.0.0.1', 'other.test': '127.0.0.1' });
    const trusting = createImageFetcher(policy({ allowHosts: ['img.test', 'other.test'], lookup, ca: cert }));
    expect((await trusting.fetch(`https://img.test:${port}/x.jpg`)).equals(photo)).toBe(true);
    // Same server, a name the certificate does not cover: refused, permanently.
    const wrongName = await expectJobError(trusting.fetch(`https://other.test:${port}/x.jpg`), 'fetch_failed');
    expect(wrongName.retryable).toBe(false);
    // Not trusted at all without the CA.
    const strict = createImageFetcher(policy({ allowHosts: ['img.test'], lookup }));
    const untrusted = await expectJobError(strict.fetch(`https://img.test:${port}/x.jpg`), 'fetch_failed');
    expect(untrusted.retryable).toBe(false);
  });
});
