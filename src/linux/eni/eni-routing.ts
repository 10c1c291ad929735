import { EgwError } from '../../platform/errors.js';
import type { Shell } from '../../platform/shell.js';
import type { BatchCommand, BatchFailure } from '../iproute/batch.js';
import { runBatch } from '../iproute/batch.js';
import type { ObservedLink, ObservedRoute, ObservedRule } from '../iproute/parse.js';
import { MAIN_TABLE, parseLinks, parseRoutes, parseRules } from '../iproute/parse.js';
import { formatIpv4, formatIpv4Net, requireIpv4, requireIpv4Net } from '../../platform/ipv4.js';
import { canonicalMac } from '../net/mac.js';
import type { IdRange } from '../ownership.js';
import { DEFAULT_ENI_RULE_PRIORITY, DEFAULT_ROUTE_TABLE_RANGES, ENI_ROUTE_PROTOCOL, freeTable, tableInRanges } from '../ownership.js';
import type { Problem } from '../client-node/plan.js';
import type { SysctlSetting } from '../sysctl.js';
import { ifaceSysctlKey, readSysctl, writeSysctls } from '../sysctl.js';

/**
 * The Linux side of secondary ENIs on a gateway's node (issue 5, part 2): each ENI's interface, found by
 * its MAC, is brought up and gets its own routing table — the subnet on the link and a default route via
 * the subnet's router (its first host address, as on AWS) — and every workload IP on that ENI gets
 * `ip rule from <ip> lookup <table>` at `awsSecondaryIPRoutingRulePriority`. The main table never gets a
 * default route through an ENI (one found there is removed), so the primary interface stays the
 * node's main one.
 */
export interface EniInterfaceSpec {
  /** The ENI's MAC address, as EC2 reports it. */
  mac: string;
  /** The ENI's subnet, e.g. `100.64.0.0/22`; its first host address is the router. */
  subnetCidr: string;
  /** The workload (gateway pod) IPs on this ENI: its primary IP (ENI-per-workload) or its secondary IPs. */
  workloadIps: readonly string[];
  mtu?: number;
}

/** Every ENI of this node that egw manages. Interfaces not listed are left alone (their old routes/rules of ours go). */
export interface EniState {
  interfaces: readonly EniInterfaceSpec[];
}

/** Ownership parameters of the ENI driver. */
export interface EniConfig {
  /** FelixConfiguration `routeTableRanges` (shared with the client-node driver; ENI tables come from the top). */
  routeTableRanges: readonly IdRange[];
  /** FelixConfiguration `awsSecondaryIPRoutingRulePriority`. */
  rulePriority: number;
  /**
   * FelixConfiguration `egressIPHostIfacePattern`, parsed (api `parseIfacePattern`): the host interfaces
   * that carry gateways' traffic after SNAT get `src_valid_mark=1`, so reverse-path checks of their
   * return traffic use the packet's mark. Absent or empty: none.
   */
  hostIfaces?: { names: readonly string[]; regexes: readonly string[] };
}

/** Calico's defaults. */
export const DEFAULT_ENI_CONFIG: EniConfig = { routeTableRanges: DEFAULT_ROUTE_TABLE_RANGES, rulePriority: DEFAULT_ENI_RULE_PRIORITY };

/** What the ENI driver read. */
export interface EniObserved {
  links: ObservedLink[];
  routes: ObservedRoute[];
  rules: ObservedRule[];
}

/** The changes, in execution order, plus what could not be done. */
export interface EniPlan {
  ip: BatchCommand[];
  /** Interfaces that must have `src_valid_mark=1` (egressIPHostIfacePattern), sorted. */
  srcValidMark: string[];
  /** Table per interface MAC, as planned. */
  tables: { mac: string; ifname: string; table: number }[];
  problems: Problem[];
}

const PROTO = ENI_ROUTE_PROTOCOL;

/**
 * Plans the minimal change. Pure. Table per interface: the table already holding our routes through
 * that interface, else the one most of its workload rules point to, else the highest free table of the
 * range. Throws `InvalidInput` for a malformed state (a MAC or workload IP listed twice).
 */
export function planEni(desired: EniState, observed: EniObserved, config: EniConfig = DEFAULT_ENI_CONFIG): EniPlan {
  const plan: EniPlan = { ip: [], srcValidMark: hostIfacesMatching(observed.links.map((l) => l.name), config.hostIfaces), tables: [], problems: [] };
  const ranges = config.routeTableRanges;
  const ourRoutes = observed.routes.filter((r) => r.protocol === PROTO && tableInRanges(r.table, ranges));
  const ourRules = observed.rules.filter((r) => r.priority === config.rulePriority && r.protocol === PROTO);
  const tablesInUse = new Set<number>([...observed.routes.map((r) => r.table), ...observed.rules.flatMap((r) => (r.table === undefined ? [] : [r.table]))]);
  const foreign = new Set<number>();
  for (const r of observed.routes) if (r.protocol !== PROTO && tableInRanges(r.table, ranges)) foreign.add(r.table);
  for (const r of observed.rules) if (!ourRules.includes(r) && r.table !== undefined) foreign.add(r.table);

  const macs = new Set<string>();
  const ips = new Set<string>();
  const taken = new Set<number>();
  const early: BatchCommand[] = [];
  const linkLines: BatchCommand[] = [];
  const routeSets: BatchCommand[] = [];
  const desiredRules = new Map<string, number>();
  const keepRoutes = new Set<ObservedRoute>();

  for (const spec of desired.interfaces) {
    const mac = canonicalMac(spec.mac);
    if (macs.has(mac)) throw new EgwError('InvalidInput', `ENI ${mac} is listed twice`);
    macs.add(mac);
    const subnetNet = requireIpv4Net(spec.subnetCidr, { hostBits: 'clear', bareAddress: true });
    const subnet = formatIpv4Net(subnetNet);
    // The first host of an AWS subnet is its VPC router; a /31 or /32 has none.
    if (subnetNet.prefix > 30) throw new EgwError('InvalidInput', `subnet ${subnet} has no router address`, { hint: 'use a subnet of /30 or larger' });
    const router = formatIpv4(subnetNet.first + 1);
    const workloads = spec.workloadIps.map((ip) => formatIpv4(requireIpv4(ip)));
    for (const ip of workloads) {
      if (ips.has(ip)) throw new EgwError('InvalidInput', `workload IP ${ip} is listed on two ENIs`);
      ips.add(ip);
    }
    const link = observed.links.find((l) => l.mac === mac);
    if (link === undefined) {
      plan.problems.push({ object: `eni ${mac}`, code: 'InterfaceNotFound', message: `no interface with MAC ${mac} (not attached yet?)` });
      continue;
    }
    const X = link.name;
    const object = `eni ${mac} (${X})`;
    // A default route through the ENI in main would steal the node's own traffic: it goes first.
    for (const r of observed.routes) {
      if (r.table === MAIN_TABLE && r.dst === '0.0.0.0/0' && r.dev === X) {
        early.push({ line: `route del 0.0.0.0/0${r.gateway === undefined ? '' : ` via ${r.gateway}`} dev ${X} table main proto ${r.protocol} metric ${r.metric}`, object, okIfMissing: true });
      }
    }
    if (!link.up || (spec.mtu !== undefined && link.mtu !== spec.mtu)) {
      linkLines.push({ line: `link set dev ${X}${spec.mtu === undefined ? '' : ` mtu ${spec.mtu}`} up`, object });
    }
    let table = ourRoutes.filter((r) => r.dev === X && !foreign.has(r.table) && !taken.has(r.table)).map((r) => r.table).sort((a, b) => a - b)[0];
    if (table === undefined) {
      const votes = new Map<number, number>();
      for (const r of ourRules) {
        if (r.table !== undefined && r.from !== undefined && workloads.includes(r.from.replace(/\/32$/, '')) && tableInRanges(r.table, ranges) && !foreign.has(r.table) && !taken.has(r.table)) {
          votes.set(r.table, (votes.get(r.table) ?? 0) + 1);
        }
      }
      table = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
    }
    table ??= freeTable(ranges, new Set([...tablesInUse, ...taken]), true);
    if (table === undefined) {
      plan.problems.push({ object, code: 'RouteTablesExhausted', message: 'no free route table in routeTableRanges for this ENI' });
      continue;
    }
    taken.add(table);
    plan.tables.push({ mac, ifname: X, table });
    const have = ourRoutes.filter((r) => r.table === table && r.metric === 0);
    const subnetRoute = have.find((r) => r.dst === subnet && r.type === 'unicast' && r.dev === X && r.gateway === undefined);
    const defaultRoute = have.find((r) => r.dst === '0.0.0.0/0' && r.type === 'unicast' && r.dev === X && r.gateway === router);
    // Subnet first: the default route's next hop must be reachable within the table.
    if (subnetRoute === undefined) routeSets.push({ line: `route replace ${subnet} dev ${X} scope link table ${table} proto ${PROTO}`, object });
    else keepRoutes.add(subnetRoute);
    if (defaultRoute === undefined) routeSets.push({ line: `route replace default via ${router} dev ${X} table ${table} proto ${PROTO}`, object });
    else keepRoutes.add(defaultRoute);
    for (const r of have) if (r.dst === subnet || r.dst === '0.0.0.0/0') keepRoutes.add(r);
    for (const ip of workloads) desiredRules.set(`${ip}/32`, table);
  }

  const ruleAdds: BatchCommand[] = [];
  const ruleDels: BatchCommand[] = [];
  const present = new Set<string>();
  for (const r of ourRules) {
    const key = `${r.from ?? ''}|${r.table ?? ''}`;
    const plain = r.to === undefined && r.iif === undefined && r.oif === undefined && r.fwmark === undefined;
    if (plain && r.from !== undefined && desiredRules.get(r.from) === r.table && !present.has(key)) {
      present.add(key);
      continue;
    }
    const sel = [r.from === undefined ? '' : ` from ${r.from}`, r.to === undefined ? '' : ` to ${r.to}`, r.iif === undefined ? '' : ` iif ${r.iif}`, r.oif === undefined ? '' : ` oif ${r.oif}`, r.fwmark === undefined ? '' : ` fwmark ${r.fwmark}`].join('');
    ruleDels.push({ line: `rule del priority ${r.priority}${sel}${r.table === undefined ? '' : ` table ${r.table}`} protocol ${PROTO}`, object: `rule ${r.from ?? ''}`, okIfMissing: true });
  }
  for (const [from, table] of [...desiredRules].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (!present.has(`${from}|${table}`)) {
      ruleAdds.push({ line: `rule add priority ${config.rulePriority} from ${from} table ${table} protocol ${PROTO}`, object: `workload ${from}` });
    }
  }
  const routeDels: BatchCommand[] = [];
  for (const r of ourRoutes) {
    if (keepRoutes.has(r)) continue;
    // A route of ours in a table still in use but not desired, or in a table nobody uses any more.
    const type = r.type === 'unicast' ? '' : `${r.type} `;
    routeDels.push({ line: `route del ${type}${r.dst} table ${r.table} proto ${PROTO} metric ${r.metric}`, object: `table ${r.table}`, okIfMissing: true });
  }
  plan.ip = [...early, ...linkLines, ...routeSets, ...ruleAdds, ...ruleDels, ...routeDels];
  return plan;
}

/**
 * The interfaces among `names` that an `egressIPHostIfacePattern` names: equal to a listed name, or a
 * regex found anywhere in the name (Felix's `iface-list-regexp`; anchor with ^…$). Pure.
 */
export function hostIfacesMatching(names: readonly string[], pattern: EniConfig['hostIfaces']): string[] {
  if (pattern === undefined || (pattern.names.length === 0 && pattern.regexes.length === 0)) return [];
  const regexes = pattern.regexes.map((r) => new RegExp(r));
  return [...new Set(names.filter((n) => pattern.names.includes(n) || regexes.some((r) => r.test(n))))].sort();
}

/** Reads links, routes and rules of the namespace `shell` runs in. Read-only. */
export async function readEni(shell: Shell): Promise<EniObserved> {
  const [links, routes, rules] = await Promise.all([
    shell.run(['ip', '-json', 'link', 'show']),
    shell.run(['ip', '-json', '-N', '-4', 'route', 'show', 'table', 'all']),
    shell.run(['ip', '-json', '-N', '-4', 'rule', 'show']),
  ]);
  return { links: parseLinks(links.stdout), routes: parseRoutes(routes.stdout), rules: parseRules(rules.stdout) };
}

/** The outcome of {@link applyEni}. */
export interface EniApplyResult {
  changed: boolean;
  failures: BatchFailure[];
  problems: Problem[];
  tables: EniPlan['tables'];
}

/**
 * Converges ENI routing to `desired` through one `ip -batch`: idempotent, no memory, touches only
 * routes and rules with protocol {@link ENI_ROUTE_PROTOCOL} at the configured priority (plus the
 * link state of the listed interfaces and main-table default routes through them). An interface that
 * is not there yet is reported in `problems`; the next apply picks it up.
 */
export async function applyEni(shell: Shell, desired: EniState, config: EniConfig = DEFAULT_ENI_CONFIG): Promise<EniApplyResult> {
  const plan = planEni(desired, await readEni(shell), config);
  const failures = await runBatch(shell, 'ip', plan.ip);
  // src_valid_mark is never reverted when an interface stops matching: its previous value is unknowable.
  const marks: SysctlSetting[] = [];
  for (const dev of plan.srcValidMark) {
    if ((await readSysctl(shell, ifaceSysctlKey(dev, 'src_valid_mark'))) !== 1) marks.push({ key: ifaceSysctlKey(dev, 'src_valid_mark'), value: 1 });
  }
  try {
    await writeSysctls(shell, marks);
  } catch (err) {
    failures.push({ command: { line: `sysctl ${marks.map((m) => m.key).join(' ')}`, object: 'egressIPHostIfacePattern' }, message: err instanceof Error ? err.message : String(err) });
  }
  return { changed: plan.ip.length > 0 || marks.length > 0, failures, problems: plan.problems, tables: plan.tables };
}
