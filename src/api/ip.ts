/**
 * IPv4/IPv6 addresses and CIDRs as plain values: parse, format, compare. Pure; no DNS, no zones.
 *
 * Parsing is strict in the way Go's `net.ParseIP` / `net.ParseCIDR` are (what Calico uses): dotted-quad
 * IPv4 without leading zeros, RFC 4291 IPv6 (with `::` and an optional dotted-quad tail), no zone suffix.
 *
 * This is the dual-stack form the API schemas need (IPv6 pools, pod IPs and destinations are validated
 * and reported in their own words); IPv4 itself is parsed by platform/ipv4.ts (the one IPv4 module),
 * which code that handles only IPv4 uses directly.
 */
import { parseIpv4 } from '../platform/ipv4.js';

/** An IP address. `value` is the address as an unsigned integer of 32 (v4) or 128 (v6) bits. */
export interface IpAddress {
  readonly version: 4 | 6;
  readonly value: bigint;
}

/** A network: `network` always has its host bits cleared. */
export interface Cidr {
  readonly version: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}

/** What {@link parseCidr} found: the network, the address as written, and whether host bits were set. */
export interface ParsedCidr {
  readonly cidr: Cidr;
  readonly address: IpAddress;
  /** True when the text had host bits set (e.g. `10.1.2.3/8`); `cidr` is then the masked network. */
  readonly hostBitsSet: boolean;
}

const V4_BITS = 32;
const V6_BITS = 128;

/** Number of bits of an address of this version. */
export function addressBits(version: 4 | 6): number {
  return version === 4 ? V4_BITS : V6_BITS;
}

function parseV4(text: string): bigint | undefined {
  // The one IPv4 parser of the codebase (strict dotted quad, no leading zeros, as Go since 1.17).
  const value = parseIpv4(text);
  return value === undefined ? undefined : BigInt(value);
}

function parseV6(text: string): bigint | undefined {
  if (text.length === 0 || text.includes('%')) return undefined;
  let groups: number[] = [];
  let tail = text;
  // A dotted-quad tail stands for the last two groups.
  const lastColon = tail.lastIndexOf(':');
  if (lastColon >= 0 && tail.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(tail.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    groups = [Number(v4 >> 16n), Number(v4 & 0xffffn)];
    tail = tail.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::", "a::1.2.3.4" leaves "a::", "a:b:1.2.3.4" leaves "a:b:" (drop the dangling colon).
    if (tail.endsWith(':') && !tail.endsWith('::')) tail = tail.slice(0, -1);
  }
  const doubleColon = tail.indexOf('::');
  if (doubleColon !== tail.lastIndexOf('::')) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let all: number[];
  if (doubleColon >= 0) {
    const head = parseGroups(tail.slice(0, doubleColon));
    const rest = parseGroups(tail.slice(doubleColon + 2));
    if (head === undefined || rest === undefined) return undefined;
    const missing = 8 - head.length - rest.length - groups.length;
    // "::" must stand for at least one group.
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...rest, ...groups];
  } else {
    const body = parseGroups(tail);
    if (body === undefined) return undefined;
    all = [...body, ...groups];
  }
  if (all.length !== 8) return undefined;
  return all.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Parses an IPv4 or IPv6 address; `undefined` when it is not one. */
export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(':')) {
    const value = parseV6(text);
    return value === undefined ? undefined : { version: 6, value };
  }
  const value = parseV4(text);
  return value === undefined ? undefined : { version: 4, value };
}

/** True when `text` is an IPv4 address. */
export function isIpv4(text: string): boolean {
  return parseIp(text)?.version === 4;
}

function mask(version: 4 | 6, prefix: number): bigint {
  const bits = BigInt(addressBits(version));
  const host = bits - BigInt(prefix);
  return ((1n << bits) - 1n) ^ ((1n << host) - 1n);
}

/** Parses `address/prefix`. `undefined` when it is not a CIDR (a bare address is not a CIDR here). */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > addressBits(address.version)) return undefined;
  const network = address.value & mask(address.version, prefix);
  return { cidr: { version: address.version, network, prefix }, address, hostBitsSet: network !== address.value };
}

/** Parses a CIDR or a bare address (taken as /32 or /128). */
export function parseCidrOrIp(text: string): (ParsedCidr & { bareIp: boolean }) | undefined {
  const parsed = parseCidr(text);
  if (parsed !== undefined) return { ...parsed, bareIp: false };
  const address = parseIp(text);
  if (address === undefined) return undefined;
  return {
    cidr: { version: address.version, network: address.value, prefix: addressBits(address.version) },
    address,
    hostBitsSet: false,
    bareIp: true,
  };
}

/** Canonical text of an address: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed). */
export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero groups (at least two), leftmost on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of a network, e.g. `10.0.0.0/8`, `fd00::/64`. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ version: cidr.version, value: cidr.network })}/${cidr.prefix}`;
}

/** The canonical text of a CIDR string with host bits cleared, or `undefined` when it does not parse. */
export function normalizeCidr(text: string): string | undefined {
  const parsed = parseCidr(text);
  return parsed === undefined ? undefined : formatCidr(parsed.cidr);
}

/** Last address of a network. */
export function cidrLast(cidr: Cidr): bigint {
  return cidr.network | ((1n << BigInt(addressBits(cidr.version) - cidr.prefix)) - 1n);
}

/** Number of addresses in a network. */
export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(addressBits(cidr.version) - cidr.prefix);
}

/** True when the two networks share at least one address (never across versions). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.version !== b.version) return false;
  return a.network <= cidrLast(b) && b.network <= cidrLast(a);
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.version === inner.version && outer.prefix <= inner.prefix && cidrsOverlap(outer, inner);
}

/** True when `ip` lies inside `cidr`. */
export function cidrContainsIp(cidr: Cidr, ip: IpAddress): boolean {
  return cidr.version === ip.version && ip.value >= cidr.network && ip.value <= cidrLast(cidr);
}
