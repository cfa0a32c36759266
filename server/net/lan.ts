/**
 * The LAN-only rule: which addresses Sigil may listen on and accept connections from.
 *
 * Pure functions over literal IP addresses (no DNS, ever: resolving a name would be an outbound
 * connection). Matching is done by node's `net.BlockList`, so no prefix arithmetic is hand-rolled.
 */
import net from 'node:net';
import { CidrInvalidError, ListenInvalidError, ListenPublicError } from './errors.js';

/** Address class of a literal IP. `public` is everything the LAN rule refuses. */
export type AddressClass = 'loopback' | 'private' | 'link-local' | 'unspecified' | 'public';

/**
 * Ranges allowed by default for listening and for peers: loopback (RFC 1122 §3.2.1.3, RFC 4291
 * §2.5.3), private (RFC 1918 §3, RFC 4193 §8), link-local (RFC 3927, RFC 4291 §2.5.6).
 */
export const LAN_RANGES: Readonly<Record<Exclude<AddressClass, 'public' | 'unspecified'>, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  'link-local': ['169.254.0.0/16', 'fe80::/10'],
};

/** Default allowed peer ranges: every LAN range. */
export const DEFAULT_ALLOWED_PEERS: readonly string[] = Object.values(LAN_RANGES).flat();

/** A parsed `--listen` value. */
export interface ListenAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

/**
 * Strips an IPv4-mapped IPv6 prefix (`::ffff:10.1.2.3` → `10.1.2.3`, RFC 4291 §2.5.5.2) so that a
 * dual-stack socket's peer is judged by its IPv4 address. Returns other addresses unchanged.
 */
export function unmapIpv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

/** Parses `a.b.c.d/n` or `v6/n` into a BlockList subnet rule. */
export function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const slash = cidr.lastIndexOf('/');
  if (slash < 0) throw new CidrInvalidError(cidr);
  const address = cidr.slice(0, slash);
  const prefixText = cidr.slice(slash + 1);
  const kind = net.isIP(address);
  if (kind === 0 || !/^\d{1,3}$/.test(prefixText)) throw new CidrInvalidError(cidr);
  const prefix = Number(prefixText);
  if (prefix > (kind === 4 ? 32 : 128)) throw new CidrInvalidError(cidr);
  return { address, prefix, family: kind === 4 ? 'ipv4' : 'ipv6' };
}

/** Builds a matcher for a list of CIDRs. Throws `CidrInvalidError` on the first bad entry. */
export function cidrMatcher(cidrs: readonly string[]): (address: string) => boolean {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const { address, prefix, family } = parseCidr(cidr);
    list.addSubnet(address, prefix, family);
  }
  return (address: string): boolean => {
    const plain = unmapIpv4(address);
    const kind = net.isIP(plain);
    if (kind === 0) return false;
    return list.check(plain, kind === 4 ? 'ipv4' : 'ipv6');
  };
}

const classMatchers = Object.entries(LAN_RANGES).map(
  ([cls, cidrs]) => [cls as AddressClass, cidrMatcher(cidrs)] as const,
);

/** Classifies a literal IP address; anything not a literal IP is `public` (refused). */
export function classifyAddress(address: string): AddressClass {
  const plain = unmapIpv4(address);
  if (plain === '0.0.0.0' || plain === '::') return 'unspecified';
  for (const [cls, matches] of classMatchers) if (matches(plain)) return cls;
  return 'public';
}

/**
 * Parses `host:port` or `[ipv6]:port` (the `--listen` flag). The host must be a literal IP:
 * names would need DNS. Throws `ListenInvalidError`.
 */
export function parseListen(value: string): ListenAddress {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:[\]]+):(\d{1,5})$/.exec(value);
  if (!m) throw new ListenInvalidError(value, 'not of the form host:port or [ipv6]:port');
  const host = m[1];
  const port = Number(m[2]);
  const family = net.isIP(host);
  if (family === 0) throw new ListenInvalidError(value, `"${host}" is not a literal IP address`);
  if (port > 65535) throw new ListenInvalidError(value, `port ${port} is above 65535`);
  return { host, port, family: family as 4 | 6 };
}

/**
 * Refuses a listen address outside the LAN ranges. The unspecified addresses (0.0.0.0, ::) are
 * refused too: they would bind every interface, public ones included. Throws `ListenPublicError`.
 */
export function assertLanListen(address: ListenAddress): void {
  const cls = classifyAddress(address.host);
  if (cls === 'public' || cls === 'unspecified') throw new ListenPublicError(address.host);
}

/** Formats a listen address back to `host:port` / `[v6]:port`. */
export function formatListen(address: { host: string; port: number }): string {
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
