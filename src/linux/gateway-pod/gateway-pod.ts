import { EgwError } from '../../platform/errors.js';
import type { Shell } from '../../platform/shell.js';
import type { BatchCommand, BatchFailure } from '../iproute/batch.js';
import { runBatch } from '../iproute/batch.js';
import type { ObservedAddress, ObservedLink } from '../iproute/parse.js';
import { parseAddresses, parseLinks } from '../iproute/parse.js';
import { tunnelAddressLines } from '../iproute/tunnel.js';
import { formatIpv4, requireIpv4, sortIpv4Texts } from '../../platform/ipv4.js';
import { tunnelMac } from '../net/mac.js';
import type { NftPlan, NftTableSpec, ObservedNftTable } from '../nft/nft-table.js';
import { applyNftPlan, planNftTable, readNftTable } from '../nft/nft-table.js';
import { EGW_NFT_TABLE, EGW_VXLAN_DEVICE, validIfname } from '../ownership.js';
import type { SysctlSetting } from '../sysctl.js';
import { ifaceSysctlKey, readSysctl, writeSysctls } from '../sysctl.js';

/**
 * The kernel side of `egw gateway`, inside the gateway pod's own namespace: terminate the tunnel
 * (a VXLAN device with the pod IP as its VTEP address and MAC), forward, SNAT what came out of the
 * tunnel to the pod IP, and accept nothing inbound but the tunnel from cluster nodes and the health port.
 */
export interface GatewayPodState {
  /** The pod's own IP: VTEP address, MAC source ({@link tunnelMac}) and SNAT target. */
  podIp: string;
  vxlan: {
    vni: number;
    port: number;
    /** Default 1450; TCP MSS of forwarded connections is clamped to mtu − 40 so replies fit the tunnel back. */
    mtu?: number;
    parentDev?: string;
  };
  /** Node addresses allowed to send tunnel traffic (an nft set, updated without touching rules). */
  nodeIps: readonly string[];
  /** The readiness port (Calico: 8080, container port `health`); undefined or 0: none. */
  healthPort?: number;
}

/** What the gateway-pod driver read. */
export interface GatewayPodObserved {
  link: ObservedLink | undefined;
  /** IPv4 addresses on egw.vxlan. */
  addresses: ObservedAddress[];
  ipForward: number | undefined;
  rpFilter: number | undefined;
  nft: ObservedNftTable | undefined;
  /** The `ip6 egw` table (the IPv6 drop). */
  nft6: ObservedNftTable | undefined;
}

/** The changes, in execution order. */
export interface GatewayPodPlan {
  /** nft first: the filter is in place before the tunnel and forwarding open a path. */
  nft: NftPlan;
  /** The IPv6 drop, applied with the IPv4 filter. */
  nft6: NftPlan;
  link: BatchCommand[];
  sysctls: SysctlSetting[];
}

const DEV = EGW_VXLAN_DEVICE;

/** The nftables table of a gateway pod. Pure. */
export function gatewayNftSpec(state: GatewayPodState): NftTableSpec {
  const podIp = formatIpv4(requireIpv4(state.podIp));
  const mss = (state.vxlan.mtu ?? 1450) - 40;
  const input = [
    'iif "lo" accept',
    'ct state established,related accept',
    `udp dport ${state.vxlan.port} ip saddr @nodes accept`,
  ];
  if (state.healthPort !== undefined && state.healthPort !== 0) input.push(`tcp dport ${state.healthPort} accept`);
  return {
    name: EGW_NFT_TABLE,
    sets: [{ name: 'nodes', interval: false, elements: sortIpv4Texts(state.nodeIps) }],
    chains: [
      { name: 'input', type: 'filter', hook: 'input', priority: 0, policy: 'drop', rules: input },
      {
        name: 'forward',
        type: 'filter',
        hook: 'forward',
        priority: 0,
        policy: 'drop',
        rules: [
          // The server's replies come back through a tunnel 50 bytes narrower than its path; it never
          // sees our ICMP "too big" (sent about the un-NATed packet), so lower the MSS both ways instead.
          `tcp flags syn tcp option maxseg size > ${mss} tcp option maxseg size set ${mss}`,
          'ct state established,related accept',
          `iifname "${DEV}" oifname != "${DEV}" accept`,
        ],
      },
      {
        name: 'postrouting',
        type: 'nat',
        hook: 'postrouting',
        priority: 100,
        policy: 'accept',
        rules: [`iifname "${DEV}" oifname != "${DEV}" snat to ${podIp}`],
      },
    ],
  };
}

/**
 * The `ip6 egw` table of a gateway pod: the pod carries IPv4 egress only, and its `ip` table filters
 * IPv4 only, so every IPv6 packet to the pod or through it is dropped and counted (loopback aside).
 * Pure. Read the counts with `nft list table ip6 egw`.
 */
export function gatewayNft6Spec(): NftTableSpec {
  return {
    name: EGW_NFT_TABLE,
    family: 'ip6',
    sets: [],
    chains: [
      { name: 'input', type: 'filter', hook: 'input', priority: 0, policy: 'drop', rules: ['iif "lo" accept', 'counter drop'] },
      { name: 'forward', type: 'filter', hook: 'forward', priority: 0, policy: 'drop', rules: ['counter drop'] },
    ],
  };
}

/** Plans the change from `observed` to `desired` (undefined: remove everything of ours). Pure. */
export function planGatewayPod(desired: GatewayPodState | undefined, observed: GatewayPodObserved): GatewayPodPlan {
  const plan: GatewayPodPlan = {
    nft: planNftTable(desired === undefined ? undefined : gatewayNftSpec(desired), observed.nft, EGW_NFT_TABLE),
    nft6: planNftTable(desired === undefined ? undefined : gatewayNft6Spec(), observed.nft6, EGW_NFT_TABLE, 'ip6'),
    link: [],
    sysctls: [],
  };
  if (desired === undefined) {
    if (observed.link !== undefined) plan.link.push({ line: `link del ${DEV}`, object: 'vxlan', okIfMissing: true });
    return plan;
  }
  const podIp = formatIpv4(requireIpv4(desired.podIp));
  const vx = desired.vxlan;
  if (vx.parentDev !== undefined && !validIfname(vx.parentDev)) throw new EgwError('InvalidInput', `vxlan.parentDev "${vx.parentDev}" is not an interface name`);
  const mac = tunnelMac(podIp);
  const mtu = vx.mtu ?? 1450;
  const add: BatchCommand[] = [
    { line: `link add ${DEV} address ${mac} mtu ${mtu} type vxlan id ${vx.vni} dstport ${vx.port} local ${podIp} nolearning${vx.parentDev === undefined ? '' : ` dev ${vx.parentDev}`}`, object: 'vxlan' },
    { line: `link set dev ${DEV} up`, object: 'vxlan' },
  ];
  const l = observed.link;
  if (l === undefined) {
    plan.link.push(...add);
  } else if (l.vxlan === undefined || l.vxlan.vni !== vx.vni || l.vxlan.port !== vx.port || l.vxlan.local !== podIp || l.vxlan.learning || l.vxlan.parent !== vx.parentDev) {
    // Nothing routes through this device, so delete-and-recreate has no fail-open window.
    plan.link.push({ line: `link del ${DEV}`, object: 'vxlan', okIfMissing: true }, ...add);
  } else if (l.mac !== mac || l.mtu !== mtu || !l.up) {
    plan.link.push({ line: `link set dev ${DEV} address ${mac} mtu ${mtu} up`, object: 'vxlan' });
  }
  const fresh = l === undefined || plan.link.length > 1;
  plan.link.push(...tunnelAddressLines(podIp, fresh ? [] : observed.addresses));
  if (observed.ipForward !== 1) plan.sysctls.push({ key: 'net.ipv4.ip_forward', value: 1 });
  // Decapsulated packets carry client pod sources that this namespace routes via eth0: loose mode.
  if (fresh || observed.rpFilter !== 2) plan.sysctls.push({ key: ifaceSysctlKey(DEV, 'rp_filter'), value: 2 });
  return plan;
}

/** True when the plan changes nothing. */
export function isEmptyGatewayPlan(plan: GatewayPodPlan): boolean {
  return plan.nft.kind === 'none' && plan.nft6.kind === 'none' && plan.link.length === 0 && plan.sysctls.length === 0;
}

/** Reads the gateway pod's namespace (the one `shell` runs in). Read-only. */
export async function readGatewayPod(shell: Shell): Promise<GatewayPodObserved> {
  const linkRun = await shell.run(['ip', '-json', '-details', 'link', 'show', 'dev', DEV], { allowFailure: true });
  const link = linkRun.exitCode === 0 ? parseLinks(linkRun.stdout).find((x) => x.name === DEV) : undefined;
  const [addrText, ipForward, rpFilter, nft, nft6] = await Promise.all([
    link === undefined ? Promise.resolve('[]') : shell.run(['ip', '-json', '-4', 'addr', 'show', 'dev', DEV]).then((r) => r.stdout),
    readSysctl(shell, 'net.ipv4.ip_forward'),
    link === undefined ? Promise.resolve(undefined) : readSysctl(shell, ifaceSysctlKey(DEV, 'rp_filter')),
    readNftTable(shell, EGW_NFT_TABLE),
    readNftTable(shell, EGW_NFT_TABLE, 'ip6'),
  ]);
  return { link, addresses: parseAddresses(addrText), ipForward, rpFilter, nft, nft6 };
}

/** The outcome of {@link applyGatewayPod}. */
export interface GatewayPodApplyResult {
  changed: boolean;
  failures: BatchFailure[];
}

/**
 * Converges the gateway pod's namespace to `desired` (undefined: remove egw.vxlan and egw's nft table;
 * `ip_forward` is left as is). Idempotent, no memory, one `nft -f` transaction for the table; a change
 * of only the node set adds/deletes set elements. Order: filter and NAT first, then the tunnel, then
 * forwarding, so the path never opens before the filter holds.
 */
export async function applyGatewayPod(shell: Shell, desired: GatewayPodState | undefined): Promise<GatewayPodApplyResult> {
  const plan = planGatewayPod(desired, await readGatewayPod(shell));
  if (isEmptyGatewayPlan(plan)) return { changed: false, failures: [] };
  const failures: BatchFailure[] = [];
  if (desired === undefined) {
    // Removal in reverse: the tunnel closes before the filter goes.
    failures.push(...(await runBatch(shell, 'ip', plan.link)));
    await applyNftPlan(shell, plan.nft);
    await applyNftPlan(shell, plan.nft6);
    return { changed: true, failures };
  }
  await applyNftPlan(shell, plan.nft);
  await applyNftPlan(shell, plan.nft6);
  failures.push(...(await runBatch(shell, 'ip', plan.link)));
  await writeSysctls(shell, plan.sysctls);
  return { changed: true, failures };
}
