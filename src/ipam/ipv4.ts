/**
 * IPv4 arithmetic on plain numbers (0 … 2³²−1), for the allocator's hot path: the bigint forms of
 * src/api/ip.ts are exact but allocate on every operation. Pure.
 */
import { parseCidr, parseIp } from '../api/ip.js';

/** An IPv4 network as numbers: `first` has its host bits cleared; `size` = 2^(32 − prefix). */
export interface V4Net {
  readonly first: number;
  readonly prefix: number;
  readonly size: number;
}

/** The dotted quad of an address number. */
export function formatV4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** `a.b.c.d/p` of a network. */
export function formatV4Net(net: V4Net): string {
  return `${formatV4(net.first)}/${net.prefix}`;
}

/** The address number of an IPv4 text, or undefined when it is not IPv4. */
export function parseV4(text: string): number | undefined {
  const ip = parseIp(text);
  return ip?.version === 4 ? Number(ip.value) : undefined;
}

/**
 * An IPv4 CIDR (host bits cleared) or a bare IPv4 address (/32); undefined for anything else,
 * IPv6 included.
 */
export function parseV4Net(text: string): V4Net | undefined {
  const parsed = parseCidr(text);
  if (parsed !== undefined) {
    if (parsed.cidr.version !== 4) return undefined;
    return v4Net(Number(parsed.cidr.network), parsed.cidr.prefix);
  }
  const ip = parseV4(text);
  return ip === undefined ? undefined : v4Net(ip, 32);
}

/** The network of `prefix` bits that contains `address`. */
export function v4Net(address: number, prefix: number): V4Net {
  const size = 2 ** (32 - prefix);
  return { first: address - (address % size), prefix, size };
}

/** Last address of a network. */
export function lastOf(net: V4Net): number {
  return net.first + net.size - 1;
}

/** True when `address` lies in `net`. */
export function contains(net: V4Net, address: number): boolean {
  return address >= net.first && address < net.first + net.size;
}

/**
 * The text form of a CIDR usable as a datastore key part (no `/`): `10.0.0.0/26` → `10.0.0.0-26`.
 */
export function netKey(net: V4Net): string {
  return `${formatV4(net.first)}-${net.prefix}`;
}
