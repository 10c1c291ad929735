/**
 * Addresses IPAM never hands out automatically: every IPReservation entry and, for AWS-backed pools, the
 * first four and the last address of the VPC subnet (AWS keeps them). Kept as sorted, merged intervals so
 * a lookup is a binary search however many entries there are. Pure.
 */
import { ipv4NetLast, parseIpv4Net, type Ipv4Net } from '../platform/ipv4.js';

/** A set of excluded IPv4 addresses. Immutable. */
export class Exclusions {
  /** Sorted, non-overlapping, non-adjacent inclusive intervals. */
  private constructor(private readonly lo: readonly number[], private readonly hi: readonly number[]) {}

  /** The empty set. */
  static readonly NONE = new Exclusions([], []);

  /** The union of the given inclusive intervals. */
  static of(intervals: readonly (readonly [number, number])[]): Exclusions {
    const sorted = [...intervals].filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
    const lo: number[] = [];
    const hi: number[] = [];
    for (const [a, b] of sorted) {
      const last = hi.length - 1;
      if (last >= 0 && a <= hi[last]! + 1) hi[last] = Math.max(hi[last]!, b);
      else {
        lo.push(a);
        hi.push(b);
      }
    }
    return new Exclusions(lo, hi);
  }

  /** The union of this set and another. */
  union(other: Exclusions): Exclusions {
    if (other.lo.length === 0) return this;
    if (this.lo.length === 0) return other;
    return Exclusions.of([...this.intervals(), ...other.intervals()]);
  }

  /** The intervals, in order. */
  intervals(): [number, number][] {
    return this.lo.map((a, i) => [a, this.hi[i]!]);
  }

  /** True when `address` is excluded. */
  has(address: number): boolean {
    const i = this.firstEndingAtOrAfter(address);
    return i < this.lo.length && this.lo[i]! <= address;
  }

  /** How many addresses of `[first, first + size)` are excluded. */
  countIn(first: number, size: number): number {
    const last = first + size - 1;
    let n = 0;
    for (let i = this.firstEndingAtOrAfter(first); i < this.lo.length && this.lo[i]! <= last; i++) {
      n += Math.min(this.hi[i]!, last) - Math.max(this.lo[i]!, first) + 1;
    }
    return n;
  }

  /** True when every address of the network is excluded (such a block is skipped without being read). */
  coversAll(net: Ipv4Net): boolean {
    return this.countIn(net.first, net.size) === net.size;
  }

  get empty(): boolean {
    return this.lo.length === 0;
  }

  private firstEndingAtOrAfter(address: number): number {
    let a = 0;
    let b = this.hi.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.hi[m]! < address) a = m + 1;
      else b = m;
    }
    return a;
  }
}

/**
 * The IPv4 part of IPReservation entries (CIDRs or bare IPs; entries that do not parse or are IPv6 are
 * ignored here: validation reports them).
 */
export function reservationExclusions(entries: readonly string[]): Exclusions {
  const intervals: [number, number][] = [];
  for (const entry of entries) {
    const net = parseIpv4Net(entry.trim(), { hostBits: 'clear', bareAddress: true });
    if (net !== undefined) intervals.push([net.first, ipv4NetLast(net)]);
  }
  return Exclusions.of(intervals);
}

/** AWS keeps the first four and the last address of every VPC subnet. */
export function awsSubnetExclusions(subnet: Ipv4Net): Exclusions {
  const last = ipv4NetLast(subnet);
  return Exclusions.of([
    [subnet.first, Math.min(subnet.first + 3, last)],
    [last, last],
  ]);
}
