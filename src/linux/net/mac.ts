import { EgwError } from '../../platform/errors.js';
import { formatIpv4, requireIpv4 } from '../../platform/ipv4.js';

/**
 * The MAC address of a tunnel endpoint, derived from its IPv4 address so that no node ever needs to
 * learn or distribute MACs: `0e:67:` followed by the four octets of the address in hex.
 *
 * `0e` has the locally-administered bit set and the multicast bit clear, so these never collide with a
 * vendor MAC; `67` is ASCII `g`. Every egw VXLAN device (on a node: its tunnel IP; in a gateway pod: the
 * pod IP) carries the MAC of its own address, and every peer reaches it with a static neighbour entry
 * `ip → tunnelMac(ip)` plus an FDB entry `tunnelMac(ip) → ip`.
 */
export function tunnelMac(ip: string): string {
  const v = requireIpv4(ip);
  const octets = [0x0e, 0x67, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  return octets.map((o) => o.toString(16).padStart(2, '0')).join(':');
}

/** The IPv4 address a {@link tunnelMac} was derived from, or undefined for any other MAC. */
export function ipOfTunnelMac(mac: string): string | undefined {
  const m = /^0e:67:([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(mac);
  if (m === null) return undefined;
  const v = ((parseInt(m[1]!, 16) << 24) >>> 0) + (parseInt(m[2]!, 16) << 16) + (parseInt(m[3]!, 16) << 8) + parseInt(m[4]!, 16);
  return formatIpv4(v);
}

/** Lower-cases and validates a MAC address `aa:bb:cc:dd:ee:ff`. Throws `InvalidInput` otherwise. */
export function canonicalMac(mac: string): string {
  const lower = mac.toLowerCase();
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(lower)) {
    throw new EgwError('InvalidInput', `"${mac}" is not a MAC address`, { hint: 'write it as aa:bb:cc:dd:ee:ff' });
  }
  return lower;
}
