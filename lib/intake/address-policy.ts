/**
 * Which network addresses an image fetch may connect to, and which host names
 * the operator has allowed through anyway (FETCH_ALLOW_HOSTS).
 *
 * The range logic is ipaddr.js's (its IANA special-purpose tables), not bit
 * tests of our own. The rule is an allow-list of one kind of address: only
 * global unicast is allowed; every named special range (loopback, private,
 * link-local and cloud metadata, carrier-grade NAT, multicast, unspecified,
 * broadcast, reserved, documentation, benchmarking, 6to4, Teredo, ...) is
 * refused, and so is anything that embeds an IPv4 address which would be
 * refused on its own.
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export type AddressVerdict =
  | { allowed: true; address: string }
  | {
      allowed: false;
      /** Canonical form of the address that was judged ("127.0.0.1", "::ffff:7f00:1"). */
      address: string;
      /** ipaddr.js range name(s) that decided it, e.g. "loopback" or "ipv4Mapped/private". */
      range: string;
    };

/** 2000::/3: the only IPv6 space IANA allocates for global unicast. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
/** ::/96, the deprecated "IPv4-compatible" IPv6 form (::a.b.c.d). */
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR('::/96');
/** 64:ff9b::/96, the well-known NAT64 prefix (RFC 6052): judged by the IPv4 address inside. */
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

function bare(address: string): string {
  return address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}

/** The IPv4 address in the low 32 bits of an IPv6 address. */
function low32AsIPv4(v6: ipaddr.IPv6): ipaddr.IPv4 {
  const bytes = v6.toByteArray();
  return ipaddr.fromByteArray(bytes.slice(12)) as ipaddr.IPv4;
}

function judge(addr: Address): { allowed: boolean; range: string } {
  if (addr.kind() === 'ipv4') {
    const range = (addr as ipaddr.IPv4).range();
    return { allowed: range === 'unicast', range };
  }
  const v6 = addr as ipaddr.IPv6;
  const range = v6.range();
  if (range === 'ipv4Mapped') {
    const inner = judge(v6.toIPv4Address());
    return { allowed: inner.allowed, range: `ipv4Mapped/${inner.range}` };
  }
  if (range === 'rfc6052' && v6.match(NAT64_WELL_KNOWN)) {
    // An IPv6-only host behind DNS64 reaches public IPv4 sites this way; the
    // IPv4 address inside decides, so 64:ff9b::7f00:1 is still loopback.
    const inner = judge(low32AsIPv4(v6));
    return { allowed: inner.allowed, range: `nat64/${inner.range}` };
  }
  if (range !== 'unicast') return { allowed: false, range };
  if (v6.match(IPV4_COMPATIBLE)) {
    const inner = judge(low32AsIPv4(v6));
    return { allowed: false, range: `ipv4Compatible/${inner.range}` };
  }
  if (!v6.match(GLOBAL_UNICAST_V6)) return { allowed: false, range: 'unallocated' };
  return { allowed: true, range };
}

/**
 * Judge one IP address (IPv4 in any spelling ipaddr.js parses, IPv6 with or
 * without brackets and zone id). Anything that is not an IP address is refused
 * (range "invalid"): callers resolve names first.
 */
export function classifyAddress(address: string): AddressVerdict {
  let text = bare(address.trim());
  if (text.includes(':')) {
    // A zone id only means something for link-local addresses; never follow one.
    if (text.includes('%')) return { allowed: false, address: text, range: 'zoned' };
    // ipaddr.js reads "::a.b.c.d" as IPv4-mapped; the WHATWG parser reads it
    // as what it is (IPv4-compatible, ::7f00:1), so canonicalise with that first.
    try {
      text = bare(new URL(`http://[${text}]/`).hostname);
    } catch {
      return { allowed: false, address: text, range: 'invalid' };
    }
  }
  let addr: Address;
  try {
    addr = ipaddr.parse(text);
  } catch {
    return { allowed: false, address: text, range: 'invalid' };
  }
  const canonical = addr.toString();
  const verdict = judge(addr);
  return verdict.allowed
    ? { allowed: true, address: canonical }
    : { allowed: false, address: canonical, range: verdict.range };
}

/** True when an image fetch must not connect to this address. */
export function isForbiddenAddress(address: string): boolean {
  return !classifyAddress(address).allowed;
}

/** True when `host` (a URL hostname, brackets allowed) is an IP address literal rather than a name. */
export function isIpLiteral(host: string): boolean {
  return ipaddr.isValid(bare(host));
}

// ---------------------------------------------------------------------------
// FETCH_ALLOW_HOSTS

export interface AllowHostRule {
  /** Lower-case host name without trailing dot, or canonical IP address (IPv6 without brackets). */
  host: string;
  /** Only this port when set; any port when undefined. */
  port: number | undefined;
}

/**
 * Lower-case, no trailing dot, IPv6 without brackets and in canonical form;
 * IPv4 in dotted decimal. Same normalisation as the WHATWG URL parser (which
 * we use for it), so "2130706433" and "127.0.0.1" are one host.
 */
export function normalizeHost(host: string): string {
  const h = bare(host.trim().toLowerCase()).replace(/\.$/, '');
  if (ipaddr.IPv6.isValid(h)) return ipaddr.IPv6.parse(h).toString();
  let parsed: string;
  try {
    parsed = new URL(`http://${h}/`).hostname;
  } catch {
    return h;
  }
  const out = bare(parsed).replace(/\.$/, '');
  return ipaddr.IPv6.isValid(out) ? ipaddr.IPv6.parse(out).toString() : out;
}

/**
 * Parse FETCH_ALLOW_HOSTS entries: "host", "host:port", "[v6]", "[v6]:port",
 * or a bare IPv6 address. Throws on an entry that is none of these (a
 * configuration mistake should stop the service, not silently allow less).
 */
export function parseAllowHosts(entries: readonly string[]): AllowHostRule[] {
  return entries.map((raw) => {
    const entry = raw.trim();
    let host: string;
    let portText: string | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      host = bracketed[1]!;
      portText = bracketed[2];
    } else if (entry.split(':').length > 2) {
      host = entry; // bare IPv6, no port
    } else {
      const m = /^([^:/?#@\s]+)(?::(\d+))?$/.exec(entry);
      if (!m) throw new Error(`FETCH_ALLOW_HOSTS: cannot read entry ${JSON.stringify(raw)} (want "host" or "host:port")`);
      host = m[1]!;
      portText = m[2];
    }
    if (entry.split(':').length > 2 && !bracketed && !ipaddr.IPv6.isValid(host)) {
      throw new Error(`FETCH_ALLOW_HOSTS: cannot read entry ${JSON.stringify(raw)} (IPv6 with a port goes in brackets: "[::1]:8080")`);
    }
    const port = portText === undefined ? undefined : Number(portText);
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
      throw new Error(`FETCH_ALLOW_HOSTS: bad port in ${JSON.stringify(raw)}`);
    }
    const normalized = normalizeHost(host);
    if (!normalized) throw new Error(`FETCH_ALLOW_HOSTS: empty host in ${JSON.stringify(raw)}`);
    return { host: normalized, port };
  });
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/**
 * Whether the operator allowed this URL's host through (FETCH_ALLOW_HOSTS).
 * Matching is on the host as written in the URL (after WHATWG normalisation),
 * never on what it resolves to: allowing "minio" does not allow every name
 * that happens to resolve to the same private address.
 */
export function isAllowedHost(url: URL, rules: readonly AllowHostRule[]): boolean {
  if (rules.length === 0) return false;
  const host = normalizeHost(url.hostname);
  const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
  return rules.some((r) => r.host === host && (r.port === undefined || r.port === port));
}
