/**
 * IPv4 arithmetic for the emulator: addresses as unsigned 32-bit numbers, CIDRs as base + prefix.
 * Pure; no I/O.
 */

/** An IPv4 CIDR block, normalised so that `base` has no host bits. */
export interface Cidr {
  /** The network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses a dotted-quad IPv4 address; `undefined` when it is not one (no leading zeros, each octet ≤ 255). */
export function parseIpv4(text: string): number | undefined {
  const m = DOTTED.exec(text);
  if (m === null) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i] ?? '';
    if (part.length > 1 && part.startsWith('0')) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** Formats an unsigned 32-bit number as a dotted quad. */
export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/**
 * Parses `a.b.c.d/n`. Returns `undefined` for anything else, including a CIDR with host bits set
 * (`10.0.0.1/24`), because a subnet or VPC block is always written by its network address.
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const base = parseIpv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (base === undefined || !/^\d{1,2}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  if ((base & hostMask(prefix)) !== 0) return undefined;
  return { base, prefix };
}

/** Formats a CIDR as `a.b.c.d/n`. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.base)}/${cidr.prefix}`;
}

function hostMask(prefix: number): number {
  return prefix === 0 ? 0xffffffff : (2 ** (32 - prefix) - 1) >>> 0;
}

/** Number of addresses in the block. */
export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

/** The last address of the block (the broadcast address). */
export function cidrLast(cidr: Cidr): number {
  return cidr.base + cidrSize(cidr) - 1;
}

/** True when `address` lies inside `cidr`. */
export function cidrContains(cidr: Cidr, address: number): boolean {
  return address >= cidr.base && address <= cidrLast(cidr);
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.base);
}

/** True when the two blocks share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= cidrLast(b) && b.base <= cidrLast(a);
}

/**
 * True for the five addresses of a VPC subnet that AWS keeps for itself: the network address, the
 * VPC router (+1), the DNS server (+2), one reserved for future use (+3) and the broadcast address.
 */
export function isAwsReservedInSubnet(subnet: Cidr, address: number): boolean {
  return address - subnet.base < 4 || address === cidrLast(subnet);
}

/** Addresses of a subnet that instances and ENIs may use: its size minus the five AWS keeps. */
export function usableAddressCount(subnet: Cidr): number {
  return Math.max(0, cidrSize(subnet) - 5);
}
