/**
 * IPv4 addresses and networks as plain 32-bit numbers, for calc's hot paths (100,000 pod addresses are
 * parsed and sorted; the bigint helpers of `api/ip.ts` are exact but about ten times slower). Pure.
 */
import { formatCidr, parseCidr } from '../api/ip.js';

/** An IPv4 network; `network` has its host bits cleared; both numbers are unsigned. */
export interface Net4 {
  readonly network: number;
  readonly prefix: number;
}

/**
 * Parses a dotted-quad IPv4 address (no leading zeros, as Go and `api/ip.ts` require) to an unsigned
 * 32-bit number; undefined when the text is not one (IPv6 included).
 */
export function parseIPv4(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      if (dots > 3) return undefined;
    } else if (c >= 48 && c <= 57) {
      // A leading zero followed by more digits is ambiguous (octal or decimal): rejected.
      if (digits === 1 && part === 0) return undefined;
      part = part * 10 + (c - 48);
      digits++;
      if (part > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + part;
}

/** Dotted-quad text of an unsigned 32-bit address. */
export function formatIPv4(value: number): string {
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** The text itself when it is an IPv4 address, else undefined. */
export function ipv4OrUndefined(text: string | undefined): string | undefined {
  return text !== undefined && parseIPv4(text) !== undefined ? text : undefined;
}

/** Parses an IPv4 CIDR (host bits are cleared); undefined for anything else, IPv6 included. */
export function parseNet4(text: string): Net4 | undefined {
  const parsed = parseCidr(text.trim());
  if (parsed === undefined || parsed.cidr.version !== 4) return undefined;
  return { network: Number(parsed.cidr.network), prefix: parsed.cidr.prefix };
}

/** Canonical text of a network, e.g. `10.0.0.0/8`. */
export function formatNet4(net: Net4): string {
  return formatCidr({ version: 4, network: BigInt(net.network), prefix: net.prefix });
}

/** The last address of a network. */
export function lastOf(net: Net4): number {
  return net.prefix === 0 ? 0xffffffff : net.network + 2 ** (32 - net.prefix) - 1;
}

/** True when `inner` lies entirely inside `outer` (equal networks included). */
export function net4Contains(outer: Net4, inner: Net4): boolean {
  return outer.prefix <= inner.prefix && inner.network >= outer.network && lastOf(inner) <= lastOf(outer);
}

/** True when the address lies inside the network. */
export function net4ContainsIp(net: Net4, ip: number): boolean {
  return ip >= net.network && ip <= lastOf(net);
}

/** Orders networks by address, then by prefix length (shorter first): the order calc prints tables in. */
export function compareNet4(a: Net4, b: Net4): number {
  return a.network - b.network || a.prefix - b.prefix;
}

/** Orders IPv4 address texts numerically (texts that do not parse sort last, by text). */
export function compareIPv4Text(a: string, b: string): number {
  const x = parseIPv4(a);
  const y = parseIPv4(b);
  if (x !== undefined && y !== undefined) return x - y;
  if (x !== undefined) return -1;
  if (y !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
