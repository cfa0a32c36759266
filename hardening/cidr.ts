/**
 * CIDR ranges for the audit: parsing and containment. Matching uses node's `net.BlockList`, so no
 * prefix arithmetic is hand-rolled here.
 */
import net from 'node:net';
import { CidrInvalidError, RangeInvalidError } from './errors.js';

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

/**
 * An address range `first-last` as nftables writes one (nft(8): `low-high`): every address from
 * `first` to `last`, both included, of one family.
 */
export interface AddressRange {
  /** The text as written. */
  readonly text: string;
  readonly first: string;
  readonly last: string;
  readonly family: 'ipv4' | 'ipv6';
}

/**
 * Parses `first-last` (spaces around the dash allowed): two literal addresses of one family with
 * `first` not after `last`. Ends that are CIDRs are refused: nft ranges join addresses.
 *
 * @throws RangeInvalidError naming the range and what is wrong with it.
 * @example parseRange('10.0.0.1-10.0.0.9') // { first: '10.0.0.1', last: '10.0.0.9', family: 'ipv4', … }
 */
export function parseRange(text: string): AddressRange {
  const ends = text.split('-').map((e) => e.trim());
  if (ends.length !== 2) throw new RangeInvalidError(text, 'expected two addresses joined by one "-"');
  const [first, last] = ends;
  const kinds = ends.map((e) => net.isIP(e));
  if (kinds.includes(0)) throw new RangeInvalidError(text, 'each end must be a literal IPv4 or IPv6 address');
  if (kinds[0] !== kinds[1]) throw new RangeInvalidError(text, 'its ends are of different address families');
  const family = kinds[0] === 4 ? 'ipv4' : 'ipv6';
  try {
    // BlockList orders the addresses for us: it refuses a range whose start comes after its end.
    new net.BlockList().addRange(first, last, family);
  } catch (err) {
    const reversed = (err as NodeJS.ErrnoException).code === 'ERR_INVALID_ARG_VALUE';
    throw new RangeInvalidError(text, reversed ? 'its start comes after its end' : 'its ends are not addresses a range can join', { cause: err });
  }
  return { text, first, last, family };
}

/** True when every address of `inner` lies in `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  const list = new net.BlockList();
  list.addSubnet(outer.address, outer.prefix, outer.family);
  return list.check(inner.address, inner.family);
}

/**
 * True when every address of `range` lies in `outer`: a CIDR has no holes, so both ends inside it
 * (and `first` ≤ `last`, which {@link parseRange} ensured) put the whole span inside it.
 */
export function rangeWithin(range: AddressRange, outer: Cidr): boolean {
  return cidrWithin(parseCidr(range.first), outer) && cidrWithin(parseCidr(range.last), outer);
}

/**
 * True when `inner` (a CIDR or an address range) lies within one of `outers`. Conservative: a span
 * covered only by the union of two ranges (10.0.0.0/8 by two /9s, or 10.255.255.0-11.0.0.255 by
 * 10.0.0.0/8 and 11.0.0.0/8) counts as not covered.
 */
export function coveredBy(inner: Cidr | AddressRange, outers: readonly Cidr[]): boolean {
  return outers.some((outer) => ('first' in inner ? rangeWithin(inner, outer) : cidrWithin(inner, outer)));
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
