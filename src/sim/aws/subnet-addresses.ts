/**
 * The addresses of a VPC subnet that AWS keeps for itself, as the emulator enforces them. Pure.
 * (Address arithmetic itself is platform/ipv4.ts.)
 */
import { ipv4NetLast, type Ipv4, type Ipv4Net } from '../../platform/ipv4.js';

/**
 * True for the five addresses of a VPC subnet that AWS keeps for itself: the network address, the
 * VPC router (+1), the DNS server (+2), one reserved for future use (+3) and the broadcast address.
 */
export function isAwsReservedInSubnet(subnet: Ipv4Net, address: Ipv4): boolean {
  return address - subnet.first < 4 || address === ipv4NetLast(subnet);
}

/** Addresses of a subnet that instances and ENIs may use: its size minus the five AWS keeps. */
export function usableAddressCount(subnet: Ipv4Net): number {
  return Math.max(0, subnet.size - 5);
}
