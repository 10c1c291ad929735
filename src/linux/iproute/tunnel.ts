import { EGW_VXLAN_DEVICE } from '../ownership.js';
import type { BatchCommand } from './batch.js';
import type { ObservedAddress } from './parse.js';

const DEV = EGW_VXLAN_DEVICE;

/**
 * The tunnel device carries its own VTEP address as `/32 scope link noprefixroute`: it adds no route and
 * is never picked as a source for other traffic, but an interface without any IPv4 address fails
 * every reverse-path check (even loose mode, which most hosts use), and decapsulated packets would be
 * dropped. Shared by the gateway-pod driver.
 */
export function tunnelAddressLines(ip: string, observed: readonly ObservedAddress[]): BatchCommand[] {
  const want = `${ip}/32`;
  const lines: BatchCommand[] = [];
  const have = observed.find((a) => a.address === want);
  if (have === undefined || have.scope !== 'link' || !have.noprefixroute) {
    lines.push({ line: `addr replace ${want} dev ${DEV} scope link noprefixroute`, object: 'vxlan' });
  }
  for (const a of observed) {
    if (a.address !== want) lines.push({ line: `addr del ${a.address} dev ${DEV}`, object: 'vxlan', okIfMissing: true });
  }
  return lines;
}

