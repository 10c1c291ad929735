import { EgwError } from '../../platform/errors.js';

/**
 * IPv4 address and prefix helpers for the kernel drivers. Pure. The kernel prints a /32 route as a bare
 * address and the default route as `default`; everything here speaks one canonical form, `a.b.c.d/len`
 * with the host bits cleared, so that desired and observed state compare as strings.
 */

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses a dotted-quad IPv4 address into an unsigned 32-bit number, or returns undefined. */
export function tryParseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    value = value * 256 + Number(p);
  }
  return value;
}

/** Parses a dotted-quad IPv4 address. Throws `InvalidInput` when it is not one. */
export function parseIPv4(text: string): number {
  const v = tryParseIPv4(text);
  if (v === undefined) throw new EgwError('InvalidInput', `"${text}" is not an IPv4 address`, { hint: 'write it as a.b.c.d' });
  return v;
}

/** Formats an unsigned 32-bit number as a dotted quad. */
export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** True when `text` is a dotted-quad IPv4 address. */
export function isIPv4(text: string): boolean {
  return tryParseIPv4(text) !== undefined;
}

/** An IPv4 prefix as numbers. */
export interface Ipv4Prefix {
  /** Network address with the host bits cleared. */
  base: number;
  len: number;
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/**
 * Parses `a.b.c.d/len`, a bare address (a /32) or `default` (0.0.0.0/0); clears host bits.
 * Returns undefined when the text is none of these.
 */
export function tryParseCidr(text: string): Ipv4Prefix | undefined {
  if (text === 'default') return { base: 0, len: 0 };
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? '32' : text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  const ip = tryParseIPv4(addr);
  if (ip === undefined) return undefined;
  return { base: (ip & maskOf(len)) >>> 0, len };
}

/** Parses a prefix like {@link tryParseCidr}; throws `InvalidInput` when it is not one. */
export function parseCidr(text: string): Ipv4Prefix {
  const p = tryParseCidr(text);
  if (p === undefined) throw new EgwError('InvalidInput', `"${text}" is not an IPv4 prefix`, { hint: 'write it as a.b.c.d/len' });
  return p;
}

/** Formats a prefix as `a.b.c.d/len`. */
export function formatCidr(p: Ipv4Prefix): string {
  return `${formatIPv4(p.base)}/${p.len}`;
}

/**
 * The canonical form of a prefix: `a.b.c.d/len`, host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`,
 * `default` → `0.0.0.0/0`, `10.1.2.3` → `10.1.2.3/32`). Throws `InvalidInput` on anything else.
 */
export function canonicalCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

/** True when prefix `inner` lies inside prefix `outer` (equal counts). */
export function cidrContains(outer: Ipv4Prefix, inner: Ipv4Prefix): boolean {
  return inner.len >= outer.len && ((inner.base & maskOf(outer.len)) >>> 0) === outer.base;
}

/** True when the address lies inside the prefix. */
export function cidrContainsIp(prefix: Ipv4Prefix, ip: number): boolean {
  return ((ip & maskOf(prefix.len)) >>> 0) === prefix.base;
}

/**
 * The first usable host address of a subnet: the network address + 1. On AWS this is the VPC router
 * of the subnet.
 */
export function firstHost(cidr: string): string {
  const p = parseCidr(cidr);
  if (p.len > 30) throw new EgwError('InvalidInput', `subnet ${cidr} has no router address`, { hint: 'use a subnet of /30 or larger' });
  return formatIPv4(p.base + 1);
}

/**
 * A set of prefixes in canonical, sorted form with every prefix that lies inside another removed, so
 * that it can be loaded into an nftables interval set (which rejects overlapping elements).
 */
export function normalizeCidrSet(cidrs: readonly string[]): string[] {
  const parsed = [...new Map(cidrs.map((c) => {
    const p = parseCidr(c);
    return [formatCidr(p), p] as const;
  })).values()];
  parsed.sort((a, b) => a.len - b.len || a.base - b.base);
  const kept: Ipv4Prefix[] = [];
  for (const p of parsed) {
    if (!kept.some((k) => cidrContains(k, p))) kept.push(p);
  }
  kept.sort((a, b) => a.base - b.base || a.len - b.len);
  return kept.map(formatCidr);
}

/** Sorts dotted-quad addresses numerically and removes duplicates. Throws on an invalid address. */
export function sortIps(ips: Iterable<string>): string[] {
  return [...new Set([...ips].map((ip) => formatIPv4(parseIPv4(ip))))].sort((a, b) => parseIPv4(a) - parseIPv4(b));
}
