/** The address judgement and FETCH_ALLOW_HOSTS parsing, on their own. */
import { describe, expect, it } from 'vitest';
import { classifyAddress, isAllowedHost, isForbiddenAddress, normalizeHost, parseAllowHosts } from '../../lib/intake/index.ts';

describe('classifyAddress', () => {
  it('allows global unicast, IPv4 and IPv6, including public IPv4 inside NAT64 and IPv4-mapped forms', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '93.184.215.14', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8']) {
      expect(classifyAddress(a), a).toMatchObject({ allowed: true });
    }
  });

  it('refuses every special range with its name', () => {
    const cases: Array<[string, string]> = [
      ['127.0.0.1', 'loopback'],
      ['127.255.255.255', 'loopback'],
      ['0.0.0.0', 'unspecified'],
      ['0.1.2.3', 'unspecified'],
      ['10.0.0.1', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['100.64.0.1', 'carrierGradeNat'],
      ['169.254.169.254', 'linkLocal'],
      ['224.0.0.1', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['240.0.0.1', 'reserved'],
      ['192.0.2.1', 'reserved'],
      ['198.18.0.1', 'reserved'],
      ['::1', 'loopback'],
      ['::', 'unspecified'],
      ['fe80::1', 'linkLocal'],
      ['fc00::1', 'uniqueLocal'],
      ['fd12:3456::1', 'uniqueLocal'],
      ['ff02::1', 'multicast'],
      ['2001:db8::1', 'reserved'],
      ['::ffff:127.0.0.1', 'ipv4Mapped/loopback'],
      ['::ffff:10.0.0.1', 'ipv4Mapped/private'],
      ['::ffff:169.254.169.254', 'ipv4Mapped/linkLocal'],
      ['::127.0.0.1', 'ipv4Compatible/loopback'],
      ['::8.8.8.8', 'ipv4Compatible/unicast'],
      ['64:ff9b::127.0.0.1', 'nat64/loopback'],
      ['64:ff9b::10.0.0.1', 'nat64/private'],
      ['2002:7f00:1::1', '6to4'],
      ['2001::1', 'teredo'],
      ['4000::1', 'unallocated'],
      ['fe80::1%eth0', 'zoned'],
      ['not-an-ip', 'invalid'],
      ['', 'invalid'],
    ];
    for (const [address, range] of cases) {
      expect(classifyAddress(address), address).toMatchObject({ allowed: false, range });
      expect(isForbiddenAddress(address)).toBe(true);
    }
  });

  it('reads every IPv4 spelling as the address it means', () => {
    for (const spelling of ['0177.0.0.1', '0x7f.0.0.1', '2130706433', '0x7f000001']) {
      expect(classifyAddress(spelling)).toEqual({ allowed: false, address: '127.0.0.1', range: 'loopback' });
    }
    expect(classifyAddress('[::1]')).toMatchObject({ allowed: false, address: '::1' });
  });
});

describe('FETCH_ALLOW_HOSTS', () => {
  it('parses host, host:port, [v6], [v6]:port and bare v6; normalises case, trailing dots and numeric spellings', () => {
    expect(parseAllowHosts(['MinIO', 'minio.local.:9000', '127.0.0.1:8080', '[::1]:8080', '::1', '2130706433'])).toEqual([
      { host: 'minio', port: undefined },
      { host: 'minio.local', port: 9000 },
      { host: '127.0.0.1', port: 8080 },
      { host: '::1', port: 8080 },
      { host: '::1', port: undefined },
      { host: '127.0.0.1', port: undefined },
    ]);
    expect(normalizeHost('[::FFFF:127.0.0.1]')).toBe('::ffff:7f00:1');
  });

  it('refuses unreadable entries', () => {
    for (const bad of ['http://minio/', 'a b', 'host:99999', 'host:0', '::1:8080:zz', 'user@host', '']) {
      expect(() => parseAllowHosts([bad]), bad).toThrow(/FETCH_ALLOW_HOSTS/);
    }
  });

  it('matches on the host as written and the port when one is given', () => {
    const rules = parseAllowHosts(['minio:9000', 'assets', '[::1]:8080']);
    expect(isAllowedHost(new URL('http://minio:9000/x'), rules)).toBe(true);
    expect(isAllowedHost(new URL('http://MINIO.:9000/x'), rules)).toBe(true);
    expect(isAllowedHost(new URL('http://minio:9001/x'), rules)).toBe(false);
    expect(isAllowedHost(new URL('http://minio/x'), rules)).toBe(false); // port 80
    expect(isAllowedHost(new URL('http://assets/x'), rules)).toBe(true);
    expect(isAllowedHost(new URL('https://assets:8443/x'), rules)).toBe(true);
    expect(isAllowedHost(new URL('http://evil-assets/x'), rules)).toBe(false);
    expect(isAllowedHost(new URL('http://assets.evil.com/x'), rules)).toBe(false);
    expect(isAllowedHost(new URL('http://[::1]:8080/x'), rules)).toBe(true);
    expect(isAllowedHost(new URL('http://[0:0::1]:8080/x'), rules)).toBe(true);
    expect(isAllowedHost(new URL('http://127.0.0.1:8080/x'), rules)).toBe(false);
    const defaults = parseAllowHosts(['img:80', 'secure:443']);
    expect(isAllowedHost(new URL('http://img/x'), defaults)).toBe(true);
    expect(isAllowedHost(new URL('https://secure/x'), defaults)).toBe(true);
    expect(isAllowedHost(new URL('http://secure/x'), defaults)).toBe(false);
  });
});
