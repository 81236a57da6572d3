/**
 * A corpus of hostile image URLs: every forbidden range, every numeric
 * spelling, IPv6 forms, odd schemes, DNS names that resolve into private
 * space, and redirect chains that end there. Each must be refused with the
 * right code, and a trap listening on every local address must see no
 * connection at all.
 */
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkImageUrl, createImageFetcher, type ImageFetcher } from '../../lib/intake/index.ts';
import { expectJobError, expectJobErrorSync, startHttpServer, startTrap, tableLookup, type TestServer } from './helpers.ts';

type Code = 'url_invalid' | 'url_forbidden';
interface Case {
  url: string;
  code: Code;
  /** Refused already by the synchronous request-time check (no DNS needed). */
  sync: boolean;
}

let trap: Awaited<ReturnType<typeof startTrap>>;
let redirector: TestServer;
let P: number;
let fetcher: ImageFetcher;

const PUBLIC_BUT_UNREACHABLE = '93.184.215.14';

const lookup = tableLookup({
  'loopback.test': '127.0.0.1',
  'loopback-alt.test': '127.0.0.53',
  'loopback6.test': '::1',
  'mapped.test': '::ffff:127.0.0.1',
  'compat.test': '::7f00:1',
  'nat64.test': '64:ff9b::7f00:1',
  'unspecified.test': '0.0.0.0',
  'unspecified6.test': '::',
  'mixed.test': [PUBLIC_BUT_UNREACHABLE, '127.0.0.1'],
  'metadata.test': '169.254.169.254',
  'metadata.google.internal': '169.254.169.254',
  'alibaba-metadata.test': '100.100.100.200',
  'private10.test': '10.1.2.3',
  'private172.test': '172.20.0.5',
  'private192.test': '192.168.0.10',
  'ula.test': 'fd00:ec2::254',
  'linklocal6.test': 'fe80::1',
  'multicast.test': '224.0.0.251',
  'broadcast.test': '255.255.255.255',
  'self.test': '192.0.2.2',
  'rebind.test': (call) => (call === 1 ? [PUBLIC_BUT_UNREACHABLE] : ['127.0.0.1']),
});

/** Everything refused from the URL text alone. Built once the trap's port is known. */
function literalCases(): Case[] {
  const forbidden = (url: string): Case => ({ url, code: 'url_forbidden', sync: true });
  const invalid = (url: string): Case => ({ url, code: 'url_invalid', sync: true });
  const loopbackSpellings = [
    '127.0.0.1',
    '127.0.0.2',
    '127.255.255.254',
    '127.1',
    '127.0.1',
    '2130706433',
    '0x7f000001',
    '0x7F.0.0.1',
    '0x7f.1',
    '0177.0.0.1',
    '0177.1',
    '017700000001',
    '127.0.0.1.',
    '%31%32%37.0.0.1',
    '\uff11\uff12\uff17.\uff10.\uff10.\uff11', // fullwidth digits
    '0',
    '0.0.0.0',
    '0x0',
    '000.000.000.000',
    '[::1]',
    '[0:0:0:0:0:0:0:1]',
    '[::ffff:127.0.0.1]',
    '[::ffff:7f00:1]',
    '[0:0:0:0:0:ffff:127.0.0.1]',
    '[::ffff:0.0.0.0]',
    '[::127.0.0.1]',
    '[::]',
    '[64:ff9b::127.0.0.1]',
    '[2002:7f00:1::1]',
    'localhost',
    'LOCALHOST.',
    'foo.localhost',
  ];
  const otherRanges = [
    '10.0.0.1',
    '10.255.255.255',
    '10.1', // short form of 10.0.0.1
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '192.168.257', // = 192.168.1.1
    '100.64.0.1',
    '100.127.255.254',
    '169.254.169.254',
    '169.254.0.1',
    '2852039166', // 169.254.169.254
    '0xa9fea9fe', // 169.254.169.254
    '0251.0376.0251.0376', // 169.254.169.254
    '224.0.0.1',
    '239.255.255.250',
    '255.255.255.255',
    '240.0.0.1',
    '192.0.0.170',
    '192.0.2.1',
    '198.18.0.1',
    '198.51.100.7',
    '203.0.113.9',
    '[fc00::1]',
    '[fd00:ec2::254]',
    '[fe80::1]',
    '[fec0::1]',
    '[ff02::1]',
    '[ff05::1:3]',
    '[100::1]',
    '[2001:db8::1]',
    '[2001::1]', // Teredo
    '[::ffff:10.0.0.1]',
    '[::ffff:169.254.169.254]',
    '[::ffff:192.168.1.1]',
    '[::ffff:100.64.0.1]',
    '[::169.254.169.254]',
    '[::8.8.8.8]', // IPv4-compatible: deprecated, never a destination
    '[64:ff9b::10.0.0.1]',
    '[4000::1]', // outside 2000::/3
  ];
  // The machine's own interface addresses (private in any sane setup).
  const own = Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((a) => !a.internal) // loopback ones are spelled out above
    .map((a) => (a.family === 'IPv6' ? `[${a.address}]` : a.address));
  const schemes = [
    'file:///etc/passwd',
    'file://localhost/etc/passwd',
    `ftp://127.0.0.1:${P}/x.jpg`,
    'ftp://example.com/x.jpg',
    `gopher://127.0.0.1:${P}/_SLAVEOF%20x`,
    `dict://127.0.0.1:${P}/info`,
    'data:image/png;base64,iVBORw0KGgo=',
    'javascript:alert(1)',
    'ws://example.com/x.jpg',
    'wss://example.com/x.jpg',
    'blob:https://example.com/1b2c',
    'ldap://example.com/',
    'sftp://example.com/x.jpg',
    'tftp://example.com/x.jpg',
    'jar:http://example.com/a.jar!/x.jpg',
    'netdoc:/etc/passwd',
    'mailto:a@example.com',
  ];
  const malformed = [
    '',
    '   ',
    'not a url',
    '/relative/path.jpg',
    '//example.com/x.jpg',
    'http://',
    'http://[fe80::1%25eth0]/',
    'http://1.2.3.999/',
    'http://exa mple.com/',
    'http://example.com:99999/',
    `http://user:pw@example.com/x.jpg`,
    `http://127.0.0.1:${P}@example.com/`, // credentials, not a host
    `http://example.com/${'a'.repeat(9000)}`,
  ];
  return [
    ...loopbackSpellings.map((h) => forbidden(`http://${h}:${P}/x.jpg`)),
    ...otherRanges.map((h) => forbidden(`http://${h}/x.jpg`)),
    ...own.map((h) => forbidden(`http://${h}:${P}/x.jpg`)),
    forbidden(`https://127.0.0.1:${P}/x.jpg`),
    forbidden(`http://127.0.0.1:${P}\\@example.com/`), // backslash ends the authority: host 127.0.0.1
    forbidden(`HTTP://[::1]:${P}/`),
    ...schemes.map(forbidden),
    ...malformed.map(invalid),
  ];
}

/** Names that pass the text check and are refused after resolving. */
function dnsCases(): Case[] {
  const names = [
    'loopback.test',
    'loopback-alt.test',
    'LOOPBACK.test.',
    'loopback6.test',
    'mapped.test',
    'compat.test',
    'nat64.test',
    'unspecified.test',
    'unspecified6.test',
    'mixed.test',
    'metadata.test',
    'metadata.google.internal',
    'alibaba-metadata.test',
    'private10.test',
    'private172.test',
    'private192.test',
    'ula.test',
    'linklocal6.test',
    'multicast.test',
    'broadcast.test',
    'self.test',
  ];
  return names.map((n) => ({ url: `http://${n}:${P}/x.jpg`, code: 'url_forbidden', sync: false }));
}

/** Redirects from an allowed server into forbidden places. */
function redirectCases(): Case[] {
  const R = redirector.origin;
  const to = (target: string, status = 302): string => `${R}/r?status=${status}&to=${encodeURIComponent(target)}`;
  const chain = (hops: number, target: string): string => `${R}/chain/${hops}?to=${encodeURIComponent(target)}`;
  const forbidden = (url: string): Case => ({ url, code: 'url_forbidden', sync: false });
  return [
    forbidden(to(`http://127.0.0.1:${P}/`)),
    forbidden(to(`http://2130706433:${P}/`, 301)),
    forbidden(to(`http://[::1]:${P}/`, 307)),
    forbidden(to(`http://[::ffff:127.0.0.1]:${P}/`, 308)),
    forbidden(to(`http://loopback.test:${P}/`, 303)),
    forbidden(to(`//127.0.0.1:${P}/protocol-relative`)),
    forbidden(to(`http://127.0.0.1:${P + 0}/same-host-other-port`)),
    forbidden(to('http://169.254.169.254/latest/meta-data/iam/security-credentials/')),
    forbidden(to('http://metadata.google.internal/computeMetadata/v1/')),
    forbidden(to('file:///etc/passwd')),
    forbidden(to(`gopher://127.0.0.1:${P}/_x`)),
    forbidden(to('data:image/png;base64,iVBORw0KGgo=')),
    forbidden(chain(3, `http://127.0.0.1:${P}/`)),
    forbidden(chain(4, `http://0x7f.1:${P}/`)),
    forbidden(chain(2, `http://mapped.test:${P}/`)),
    { url: to(`http://user:pw@127.0.0.1:${P}/`), code: 'url_invalid', sync: false },
    { url: to('http://[fe80::1%25eth0]/'), code: 'url_invalid', sync: false },
  ];
}

let redirectorHits = 0;

beforeAll(async () => {
  trap = await startTrap();
  P = trap.port;
  redirector = await startHttpServer((req, res) => {
    redirectorHits++;
    const url = new URL(req.url ?? '/', 'http://x');
    const target = url.searchParams.get('to') ?? '/';
    const chainMatch = /^\/chain\/(\d+)$/.exec(url.pathname);
    if (chainMatch) {
      const n = Number(chainMatch[1]);
      const next = n <= 1 ? target : `/chain/${n - 1}?to=${encodeURIComponent(target)}`;
      res.writeHead(302, { location: next }).end();
      return;
    }
    if (url.pathname === '/loop') {
      res.writeHead(302, { location: '/loop' }).end();
      return;
    }
    res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: target }).end();
  });
  fetcher = createImageFetcher({
    allowHosts: [`127.0.0.1:${redirector.port}`],
    connectTimeoutMs: 500,
    totalTimeoutMs: 3000,
    maxBytes: 1024 * 1024,
    maxRedirects: 5,
    lookup,
  });
});

afterAll(async () => {
  await trap?.close();
  await redirector?.close();
});

describe('hostile URL corpus', () => {
  it('has at least 60 distinct hostile URLs', () => {
    const all = [...literalCases(), ...dnsCases(), ...redirectCases()].map((c) => c.url);
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBeGreaterThanOrEqual(60);
    console.log(`hostile URL corpus: ${all.length} URLs`);
  });

  it('the request-time check refuses every literal case with its code and lets resolvable names through to DNS', () => {
    for (const c of literalCases()) expectJobErrorSync(() => checkImageUrl(c.url, [`127.0.0.1:${redirector.port}`]), c.code);
    for (const c of dnsCases()) expect(checkImageUrl(c.url, []).hostname).toBe(new URL(c.url).hostname);
  });

  it('the fetcher refuses every literal, DNS and redirect case with its code', async () => {
    const cases = [...literalCases(), ...dnsCases(), ...redirectCases()];
    const results = await Promise.allSettled(cases.map((c) => fetcher.fetch(c.url)));
    const wrong: string[] = [];
    results.forEach((r, i) => {
      const c = cases[i]!;
      const got = r.status === 'fulfilled' ? 'success' : ((r.reason as { code?: string }).code ?? String(r.reason));
      if (got !== c.code) wrong.push(`${c.url.slice(0, 120)}: expected ${c.code}, got ${got} (${r.status === 'rejected' ? (r.reason as Error).message : ''})`);
    });
    expect(wrong).toEqual([]);
  });

  it('names a reason: the forbidden address and its range', async () => {
    const e = await expectJobError(fetcher.fetch(`http://metadata.test/latest/`), 'url_forbidden');
    expect(e.message).toContain('169.254.169.254');
    expect(e.message).toContain('linkLocal');
    expect(e.retryable).toBe(false);
    const m = expectJobErrorSync(() => checkImageUrl(`http://[::ffff:10.0.0.1]/`, []), 'url_forbidden');
    expect(m.message).toContain('ipv4Mapped/private');
  });

  it('stops redirect loops after maxRedirects hops', async () => {
    const before = redirectorHits;
    const e = await expectJobError(fetcher.fetch(`${redirector.origin}/loop`), 'fetch_failed');
    expect(e.message).toMatch(/redirected more than 5 times/);
    expect(redirectorHits - before).toBe(6); // the first request + 5 redirects followed
  });

  it('resolves each name once and connects to the address it checked (no second lookup a rebinding DNS could answer)', async () => {
    const pinned = createImageFetcher({
      allowHosts: [],
      connectTimeoutMs: 300,
      totalTimeoutMs: 1500,
      maxBytes: 1024,
      maxRedirects: 0,
      lookup,
    });
    const before = trap.connections;
    const error = await pinned.fetch(`http://rebind.test:${P}/x.jpg`).catch((e: unknown) => e);
    // The first answer is public but unreachable from here: a timeout or a network failure, never success.
    expect(['fetch_timeout', 'fetch_failed']).toContain((error as { code?: string }).code);
    expect(lookup.calls.get('rebind.test')).toBe(1);
    expect(trap.connections).toBe(before);
  });

  it('the trap on every local address received no connection at all', () => {
    expect(trap.peers).toEqual([]);
    expect(trap.connections).toBe(0);
  });

  // Runs last: proves the trap does see connections when the policy lets one through.
  it('control: the same trap is reached when its host is explicitly allowed', async () => {
    const open = createImageFetcher({
      allowHosts: [`127.0.0.1:${P}`, `[::1]:${P}`, `loopback.test:${P}`],
      connectTimeoutMs: 500,
      totalTimeoutMs: 2000,
      maxBytes: 1024,
      maxRedirects: 0,
      lookup,
    });
    for (const url of [`http://127.0.0.1:${P}/`, `http://[::1]:${P}/`, `http://loopback.test:${P}/`]) {
      await expectJobError(open.fetch(url), 'fetch_failed'); // the trap hangs up
    }
    expect(trap.connections).toBe(3);
  });
});
