/**
 * IPv4 addresses and networks, the one module for the whole codebase. Pure: no I/O, no clock; open to
 * every room (like errors.ts), so the API schemas, calc, IPAM, the kernel drivers, the fabric and the
 * emulator all agree on what an address is.
 *
 * - An address is a plain number, unsigned 32 bits ({@link Ipv4}): cheap to sort, compare and count
 *   (calc parses 100,000 pod addresses; the allocator walks blocks), exact for every address.
 * - A network is {@link Ipv4Net}: its first address (host bits always clear), its prefix length and its
 *   size. Build one with {@link ipv4Net} or a parse, never by hand, so the host bits are clear.
 * - Parsing is strict in the way Go's `net.ParseIP` is (what Calico and Kubernetes use): four decimal
 *   octets 0–255, no leading zeros (`010` could mean octal 8 or decimal 10), no sign, no white space.
 *   A caller that accepts looser input (surrounding blanks in a flag) trims before it parses.
 */
import { EgwError } from './errors.js';

/** An IPv4 address as an unsigned 32-bit number (0 … 2³²−1). */
export type Ipv4 = number;

/** An IPv4 network. `first` has its host bits clear; `size` = 2^(32 − prefix) addresses. */
export interface Ipv4Net {
  /** The network address: the first address of the network. */
  readonly first: Ipv4;
  /** Prefix length, 0 … 32. */
  readonly prefix: number;
  /** Number of addresses (1 for a /32, 2³² for a /0). */
  readonly size: number;
}

/** How a CIDR parse treats host bits and bare addresses. */
export interface Ipv4NetOptions {
  /**
   * `refuse`: `10.0.0.1/24` is not a network (a VPC or subnet block is written by its network address).
   * `clear`: it stands for `10.0.0.0/24` (kernel output, stored records, policy destinations that the
   * API has already normalised).
   */
  readonly hostBits: 'refuse' | 'clear';
  /** True: a bare address `a.b.c.d` is taken as `a.b.c.d/32`. Default false: a CIDR needs its `/n`. */
  readonly bareAddress?: boolean;
  /** True: the word `default` is 0.0.0.0/0, as iproute2 writes and reads it. Default false. */
  readonly defaultWord?: boolean;
}

const DOT = 46;
const ZERO = 48;
const NINE = 57;

/**
 * The address of a dotted quad, or undefined when `text` is not exactly one: four decimal octets
 * 0–255 separated by dots, no leading zeros, nothing else (no blanks, no sign, no IPv6).
 */
export function parseIpv4(text: string): Ipv4 | undefined {
  // One pass over the characters, no regex and no split: this is calc's and the allocator's hot path.
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === DOT) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= ZERO && c <= NINE) {
      // A zero followed by more digits is a leading zero: ambiguous (octal or decimal), refused.
      if (digits === 1 && octet === 0) return undefined;
      octet = octet * 10 + (c - ZERO);
      digits++;
      if (octet > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + octet;
}

/** Like {@link parseIpv4}, but throws `InvalidInput` (with a hint) when `text` is not an address. */
export function requireIpv4(text: string): Ipv4 {
  const v = parseIpv4(text);
  if (v === undefined) throw new EgwError('InvalidInput', `"${text}" is not an IPv4 address`, { hint: 'write it as a.b.c.d (decimal, no leading zeros)' });
  return v;
}

/** True when `text` is a dotted-quad IPv4 address ({@link parseIpv4}). */
export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

/** The dotted quad of an address. */
export function formatIpv4(address: Ipv4): string {
  return `${(address >>> 24) & 255}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}`;
}

/**
 * The network of `prefix` bits (an integer 0 … 32) that contains `address`: host bits cleared.
 * `ipv4Net(a, 32)` is the network of the address alone.
 */
export function ipv4Net(address: Ipv4, prefix: number): Ipv4Net {
  const size = 2 ** (32 - prefix);
  // Arithmetic instead of a bit mask: `&` works on signed 32 bits and has no /0 mask.
  return { first: address - (address % size), prefix, size };
}

/**
 * Parses `a.b.c.d/n` (0 ≤ n ≤ 32, decimal without leading zeros) with the address as strict as
 * {@link parseIpv4}; host bits and bare addresses as `options` say. Undefined for anything else.
 */
export function parseIpv4Net(text: string, options: Ipv4NetOptions): Ipv4Net | undefined {
  if (text === 'default' && options.defaultWord === true) return ipv4Net(0, 0);
  const slash = text.indexOf('/');
  if (slash < 0) {
    if (options.bareAddress !== true) return undefined;
    const address = parseIpv4(text);
    return address === undefined ? undefined : { first: address, prefix: 32, size: 1 };
  }
  const address = parseIpv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined || !/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(prefixText)) return undefined;
  const net = ipv4Net(address, Number(prefixText));
  if (net.first !== address && options.hostBits === 'refuse') return undefined;
  return net;
}

/** Like {@link parseIpv4Net}, but throws `InvalidInput` (with a hint) when `text` is not a network. */
export function requireIpv4Net(text: string, options: Ipv4NetOptions): Ipv4Net {
  const net = parseIpv4Net(text, options);
  if (net === undefined) {
    const hostBits = options.hostBits === 'refuse' && parseIpv4Net(text, { ...options, hostBits: 'clear' }) !== undefined;
    throw new EgwError('InvalidInput', hostBits ? `"${text}" has host bits set` : `"${text}" is not an IPv4 CIDR`, {
      hint: hostBits ? `write its network address, ${formatIpv4Net(parseIpv4Net(text, { ...options, hostBits: 'clear' })!)}` : 'write it as a.b.c.d/n',
    });
  }
  return net;
}

/** `a.b.c.d/n` of a network. */
export function formatIpv4Net(net: Ipv4Net): string {
  return `${formatIpv4(net.first)}/${net.prefix}`;
}

/**
 * The canonical text of a network, bare address or `default`: `a.b.c.d/n` with host bits cleared
 * (`10.1.2.3/8` → `10.0.0.0/8`, `10.1.2.3` → `10.1.2.3/32`, `default` → `0.0.0.0/0`), so that desired
 * state and what the kernel prints compare as strings. Throws `InvalidInput` on anything else.
 */
export function canonicalIpv4Net(text: string): string {
  return formatIpv4Net(requireIpv4Net(text, { hostBits: 'clear', bareAddress: true, defaultWord: true }));
}

/** The last address of a network (its broadcast address). */
export function ipv4NetLast(net: Ipv4Net): Ipv4 {
  return net.first + net.size - 1;
}

/** True when `address` lies in `net`. */
export function ipv4NetContains(net: Ipv4Net, address: Ipv4): boolean {
  return address >= net.first && address - net.first < net.size;
}

/** True when `inner` lies entirely inside `outer` (equal networks included). */
export function ipv4NetCovers(outer: Ipv4Net, inner: Ipv4Net): boolean {
  return outer.prefix <= inner.prefix && ipv4NetContains(outer, inner.first);
}

/** True when the two networks share at least one address (for prefixes: one covers the other). */
export function ipv4NetsOverlap(a: Ipv4Net, b: Ipv4Net): boolean {
  return a.first <= ipv4NetLast(b) && b.first <= ipv4NetLast(a);
}

/** Orders networks by first address, then by prefix length (shorter, i.e. larger, first). */
export function compareIpv4Nets(a: Ipv4Net, b: Ipv4Net): number {
  return a.first - b.first || a.prefix - b.prefix;
}

/** Address texts sorted numerically, canonical, without repeats. Throws `InvalidInput` on an invalid one. */
export function sortIpv4Texts(texts: Iterable<string>): string[] {
  return [...new Set([...texts].map(requireIpv4))].sort((a, b) => a - b).map(formatIpv4);
}

/**
 * The outermost networks of a set, sorted by address: every network that lies inside another (a repeat
 * included) is dropped. What an nftables interval set needs (it refuses overlapping elements), and what
 * a list of `throw` routes needs (an inner one adds nothing).
 */
export function outermostIpv4Nets(nets: Iterable<Ipv4Net>): Ipv4Net[] {
  const sorted = [...nets].sort(compareIpv4Nets);
  const kept: Ipv4Net[] = [];
  for (const n of sorted) {
    // Prefixes nest or are disjoint; sorted by start, larger first, only the last kept one can cover n.
    const last = kept[kept.length - 1];
    if (last === undefined || !ipv4NetCovers(last, n)) kept.push(n);
  }
  return kept;
}

