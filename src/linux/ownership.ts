import { EgwError } from '../platform/errors.js';

/**
 * What egw owns in a network namespace, and nothing else (docs/linux-dataplane.md, "Ownership").
 * After a restart with no memory, an object is ours exactly when it matches one of these marks:
 *
 * | object            | ours when                                                                  |
 * |-------------------|----------------------------------------------------------------------------|
 * | link              | named {@link EGW_VXLAN_DEVICE}; plus every neighbour/FDB entry on it       |
 * | route (egress)    | protocol {@link EGRESS_ROUTE_PROTOCOL} in a table of the route-table range |
 * | route (ENI)       | protocol {@link ENI_ROUTE_PROTOCOL} in a table of the route-table range    |
 * | rule (egress)     | priority = egressIPRoutingRulePriority and protocol EGRESS_ROUTE_PROTOCOL  |
 * | rule (ENI)        | priority = awsSecondaryIPRoutingRulePriority and protocol ENI_ROUTE_PROTOCOL |
 * | rule (drain)      | priority = egressIPRoutingRulePriority − 1, protocol EGRESS_ROUTE_PROTOCOL, fwmark only |
 * | marks             | conntrack/packet mark bits {@link DEFAULT_DRAIN_MARK_MASK}, on connections through egw.vxlan |
 * | nexthop           | id in the nexthop-id range and protocol EGRESS_ROUTE_PROTOCOL              |
 * | nftables          | the one table `ip` {@link EGW_NFT_TABLE}                                   |
 */

/** Name of egw's VXLAN device on nodes and in gateway pods (≤ 15 characters, as the kernel requires). */
export const EGW_VXLAN_DEVICE = 'egw.vxlan';

/** Name of egw's nftables table (family `ip`). */
export const EGW_NFT_TABLE = 'egw';

/** Route and rule protocol number of the egress (client and return) routes: 0xe9. Not in iproute2's registry. */
export const EGRESS_ROUTE_PROTOCOL = 233;

/** Route and rule protocol number of the secondary-ENI routes: 0xea. Not in iproute2's registry. */
export const ENI_ROUTE_PROTOCOL = 234;

/** FelixConfiguration `egressIPRoutingRulePriority` default. */
export const DEFAULT_EGRESS_RULE_PRIORITY = 100;

/** FelixConfiguration `awsSecondaryIPRoutingRulePriority` default. */
export const DEFAULT_ENI_RULE_PRIORITY = 101;

/**
 * The packet- and conntrack-mark bits egw's drain uses on client nodes (docs/linux-dataplane.md, "Draining a
 * terminating gateway"): 63 gateway slots in 0x3f00, clear of kube-proxy's 0x4000/0x8000 and of Calico's
 * default `iptablesMarkMask` 0xffff0000. A drain rule is ours when its priority is
 * egressIPRoutingRulePriority − 1, its protocol EGRESS_ROUTE_PROTOCOL and it selects on fwmark only.
 */
export const DEFAULT_DRAIN_MARK_MASK = 0x3f00;

/** FelixConfiguration `egressIPVXLANVNI` default. */
export const DEFAULT_VXLAN_VNI = 4097;

/** FelixConfiguration `egressIPVXLANPort` default. */
export const DEFAULT_VXLAN_PORT = 4790;

/** An inclusive range of numbers (route tables, nexthop ids). */
export interface IdRange {
  min: number;
  max: number;
}

/** FelixConfiguration `routeTableRanges` default. */
export const DEFAULT_ROUTE_TABLE_RANGES: readonly IdRange[] = [{ min: 1, max: 250 }];

/**
 * egw's nexthop ids: 0x65670000–0x6567ffff ("eg" in the high half). Nexthop ids are a single
 * namespace-wide space; nothing in a stock system uses this block.
 */
export const DEFAULT_NEXTHOP_ID_RANGE: IdRange = { min: 0x65670000, max: 0x6567ffff };

/** The kernel's reserved tables (default, main, local), never taken even when a range covers them. */
const RESERVED_TABLES = new Set([0, 253, 254, 255]);

/**
 * Validates `routeTableRanges` as Felix does (min ≥ 1, min ≤ max, total ≤ 65535).
 * Throws `InvalidInput` with the offending range.
 */
export function validateTableRanges(ranges: readonly IdRange[]): void {
  let total = 0;
  for (const r of ranges) {
    if (!Number.isInteger(r.min) || !Number.isInteger(r.max) || r.min < 1 || r.min > r.max || r.max > 0xffffffff) {
      throw new EgwError('InvalidInput', `route table range ${r.min}-${r.max} is invalid`, { hint: 'use 1 <= min <= max' });
    }
    total += r.max - r.min + 1;
  }
  if (total > 65535) {
    throw new EgwError('InvalidInput', `route table ranges hold ${total} tables, more than 65535`, { hint: 'shrink routeTableRanges' });
  }
}

/** True when the table lies in one of the ranges and is not one of the kernel's reserved tables. */
export function tableInRanges(table: number, ranges: readonly IdRange[]): boolean {
  return !RESERVED_TABLES.has(table) && ranges.some((r) => table >= r.min && table <= r.max);
}

/**
 * The lowest (or, with `fromTop`, the highest) table of the ranges not in `used`, or undefined when all
 * are taken. Egress tables are taken from the bottom, ENI tables from the top, so that the two drivers
 * sharing one `routeTableRanges` rarely even look at the same numbers.
 */
export function freeTable(ranges: readonly IdRange[], used: ReadonlySet<number>, fromTop = false): number | undefined {
  const sorted = [...ranges].sort((a, b) => (fromTop ? b.max - a.max : a.min - b.min));
  for (const r of sorted) {
    if (fromTop) {
      for (let t = r.max; t >= r.min; t--) if (!RESERVED_TABLES.has(t) && !used.has(t)) return t;
    } else {
      for (let t = r.min; t <= r.max; t++) if (!RESERVED_TABLES.has(t) && !used.has(t)) return t;
    }
  }
  return undefined;
}

/** Interface names the kernel accepts: 1–15 characters, no slash, no whitespace, no colon. */
export function validIfname(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(name) && name !== '.' && name !== '..';
}
