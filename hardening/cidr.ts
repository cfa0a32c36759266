/**
 * CIDR ranges for the audit: parsing and containment. Matching uses node's `net.BlockList`, so no
 * prefix arithmetic is hand-rolled here.
 */
import net from 'node:net';
import { CidrInvalidError } from './errors.js';

/** One address range: `address/prefix` of one family. */
export interface Cidr {
  /** The text as written. */
  readonly text: string;
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/**
 * Parses `a.b.c.d/n`, `v6/n`, or a literal address (taken as /32 or /128).
 *
 * @throws CidrInvalidError when the text is none of these.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.lastIndexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const kind = net.isIP(address);
  if (kind === 0) throw new CidrInvalidError(text);
  const max = kind === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) throw new CidrInvalidError(text);
    prefix = Number(prefixText);
  }
  return { text, address, prefix, family: kind === 4 ? 'ipv4' : 'ipv6' };
}

/** True when every address of `inner` lies in `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  const list = new net.BlockList();
  list.addSubnet(outer.address, outer.prefix, outer.family);
  return list.check(inner.address, inner.family);
}

/**
 * True when `inner` lies within one of `outers`. Conservative: a range covered only by the union of
 * two ranges (10.0.0.0/8 by two /9s) counts as not covered.
 */
export function coveredBy(inner: Cidr, outers: readonly Cidr[]): boolean {
  return outers.some((outer) => cidrWithin(inner, outer));
}

/** Loopback (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3). */
export const LOOPBACK: readonly Cidr[] = ['127.0.0.0/8', '::1/128'].map(parseCidr);

/** Ranges that are a LAN: private (RFC 1918 §3, RFC 4193 §8) and link-local (RFC 3927, RFC 4291 §2.5.6). */
export const LAN_ONLY: readonly Cidr[] = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  'fc00::/7',
  '169.254.0.0/16',
  'fe80::/10',
].map(parseCidr);
