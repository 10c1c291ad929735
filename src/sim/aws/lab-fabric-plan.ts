/**
 * The pure half of the lab fabric driver (lab-fabric.ts): names, the desired routes of the VPC router,
 * and the nftables tables of the router (source/destination check) and of the internet gateway
 * (Elastic IP 1:1 NAT). No I/O. docs/lab.md, "The fabric driver".
 */
import type { FabricAddress, FabricEni } from './fabric.js';

/** Route protocol number of the router's ENI routes (ours after a restart with no memory). */
export const FABRIC_ROUTE_PROTOCOL = 240;
/** The router's nftables table (family ip): the source/destination check. */
export const ROUTER_NFT_TABLE = 'egw-fabric';
/** The internet gateway's nftables table (family ip): Elastic IP NAT and the private-source drop. */
export const IGW_NFT_TABLE = 'egw-igw';
/** Router-side ENI links are named `e-` + the last 12 characters of the ENI ID; their alias is the ID. */
export const ROUTER_LINK_PREFIX = 'e-';

/** The router end of an ENI's link (≤ 15 characters). */
export function routerLinkName(eniId: string): string {
  return `${ROUTER_LINK_PREFIX}${eniId.replace(/^eni-/, '').slice(-12)}`;
}

/** The instance end of an ENI's link: `eth<device index>`, as an EC2 Linux guest names them. */
export function instanceLinkName(deviceIndex: number): string {
  return `eth${deviceIndex}`;
}

/** One address the router delivers to an ENI: a /32 route and a permanent neighbour entry (no ARP, as in a VPC). */
export interface RoutedAddress {
  ip: string;
  dev: string;
  mac: string;
  eniId: string;
}

/** Every address of every attached ENI, sorted by IP. An address listed on two ENIs goes to the later (never happens: EC2 forbids it). */
export function routedAddresses(enis: Iterable<FabricEni>): RoutedAddress[] {
  const byIp = new Map<string, RoutedAddress>();
  for (const eni of enis) {
    for (const ip of eni.privateIps) byIp.set(ip, { ip, dev: routerLinkName(eni.id), mac: eni.macAddress.toLowerCase(), eniId: eni.id });
  }
  return [...byIp.values()].sort((a, b) => ipNumber(a.ip) - ipNumber(b.ip));
}

function ipNumber(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** Router links of attached ENIs whose source/destination check is disabled, sorted. */
export function uncheckedLinks(enis: Iterable<FabricEni>): string[] {
  return [...enis].filter((e) => !e.sourceDestCheck).map((e) => routerLinkName(e.id)).sort();
}

/**
 * The router's table: packets arriving on an ENI link whose source is not an address of that ENI are
 * dropped before anything else sees them — AWS's source/destination check — unless the ENI's check is
 * disabled (`eni_unchecked`, ModifyNetworkInterfaceAttribute SourceDestCheck=false, what FelixConfiguration
 * `awsSrcDstCheck: Disable` does to a node's primary ENI).
 */
export function renderRouterNft(addresses: readonly RoutedAddress[], unchecked: readonly string[] = []): string {
  const elements = addresses.map((a) => `"${a.dev}" . ${a.ip}`);
  return [
    `table ip ${ROUTER_NFT_TABLE} {`,
    '  set eni_src {',
    '    type ifname . ipv4_addr',
    ...(elements.length === 0 ? [] : [`    elements = { ${elements.join(', ')} }`]),
    '  }',
    '  set eni_unchecked {',
    '    type ifname',
    ...(unchecked.length === 0 ? [] : [`    elements = { ${unchecked.map((d) => `"${d}"`).join(', ')} }`]),
    '  }',
    '  chain srcdst {',
    '    type filter hook prerouting priority raw; policy accept;',
    `    iifname "${ROUTER_LINK_PREFIX}*" iifname != @eni_unchecked iifname . ip saddr != @eni_src counter drop`,
    '  }',
    '}',
  ].join('\n');
}

/** The nft script that replaces only the router's set elements (one transaction). */
export function renderRouterSetUpdate(addresses: readonly RoutedAddress[], unchecked: readonly string[] = []): string {
  const lines = [`flush set ip ${ROUTER_NFT_TABLE} eni_src`, `flush set ip ${ROUTER_NFT_TABLE} eni_unchecked`];
  if (addresses.length > 0) lines.push(`add element ip ${ROUTER_NFT_TABLE} eni_src { ${addresses.map((a) => `"${a.dev}" . ${a.ip}`).join(', ')} }`);
  if (unchecked.length > 0) lines.push(`add element ip ${ROUTER_NFT_TABLE} eni_unchecked { ${unchecked.map((d) => `"${d}"`).join(', ')} }`);
  return lines.join('\n');
}

/** The internet gateway's interfaces. */
export interface IgwInterfaces {
  /** Towards the VPC router. */
  vpc: string;
  /** Towards the internet. */
  internet: string;
}

/** Elastic IP associations, one per public IP and one per private IP (the later wins, as EC2 guarantees anyway). */
export function natPairs(associations: Iterable<FabricAddress>): { publicIp: string; privateIp: string }[] {
  const byPublic = new Map<string, string>();
  const byPrivate = new Map<string, string>();
  for (const a of associations) {
    const old = byPrivate.get(a.privateIp);
    if (old !== undefined) byPublic.delete(old);
    const oldPrivate = byPublic.get(a.publicIp);
    if (oldPrivate !== undefined) byPrivate.delete(oldPrivate);
    byPublic.set(a.publicIp, a.privateIp);
    byPrivate.set(a.privateIp, a.publicIp);
  }
  return [...byPublic].map(([publicIp, privateIp]) => ({ publicIp, privateIp })).sort((a, b) => ipNumber(a.publicIp) - ipNumber(b.publicIp));
}

function natElements(pairs: readonly { publicIp: string; privateIp: string }[]): { inbound: string; outbound: string; privates: string } {
  return {
    inbound: pairs.map((p) => `${p.publicIp} : ${p.privateIp}`).join(', '),
    outbound: pairs.map((p) => `${p.privateIp} : ${p.publicIp}`).join(', '),
    privates: pairs.map((p) => p.privateIp).join(', '),
  };
}

/**
 * The internet gateway's table: DNAT of each Elastic IP to its private IP (new inbound connections),
 * SNAT of each associated private IP to its Elastic IP (outbound), and a forward filter that passes only
 * packets from (outbound) or to (inbound, after DNAT) an associated private IP — traffic of a private
 * IP without an Elastic IP is dropped, as AWS's internet gateway does. The check runs on every packet,
 * so a flow dies when its association goes.
 */
export function renderIgwNft(pairs: readonly { publicIp: string; privateIp: string }[], ifs: IgwInterfaces): string {
  const e = natElements(pairs);
  return [
    `table ip ${IGW_NFT_TABLE} {`,
    '  map eip_in {',
    '    type ipv4_addr : ipv4_addr',
    ...(pairs.length === 0 ? [] : [`    elements = { ${e.inbound} }`]),
    '  }',
    '  map eip_out {',
    '    type ipv4_addr : ipv4_addr',
    ...(pairs.length === 0 ? [] : [`    elements = { ${e.outbound} }`]),
    '  }',
    '  set eip_private {',
    '    type ipv4_addr',
    ...(pairs.length === 0 ? [] : [`    elements = { ${e.privates} }`]),
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    iifname "${ifs.internet}" dnat to ip daddr map @eip_in`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${ifs.internet}" snat to ip saddr map @eip_out`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    `    iifname "${ifs.vpc}" oifname "${ifs.internet}" ip saddr @eip_private accept`,
    `    iifname "${ifs.internet}" oifname "${ifs.vpc}" ip daddr @eip_private accept`,
    '    counter',
    '  }',
    '}',
  ].join('\n');
}

/** The nft script that replaces only the gateway's maps and set (one transaction). */
export function renderIgwUpdate(pairs: readonly { publicIp: string; privateIp: string }[]): string {
  const e = natElements(pairs);
  const lines = [`flush map ip ${IGW_NFT_TABLE} eip_in`, `flush map ip ${IGW_NFT_TABLE} eip_out`, `flush set ip ${IGW_NFT_TABLE} eip_private`];
  if (pairs.length > 0) {
    lines.push(`add element ip ${IGW_NFT_TABLE} eip_in { ${e.inbound} }`);
    lines.push(`add element ip ${IGW_NFT_TABLE} eip_out { ${e.outbound} }`);
    lines.push(`add element ip ${IGW_NFT_TABLE} eip_private { ${e.privates} }`);
  }
  return lines.join('\n');
}

/** A whole-table replacement in one nft transaction (creating the table first so that the delete never fails). */
export function replaceTableScript(table: string, body: string): string {
  return `table ip ${table}\ndelete table ip ${table}\n${body}\n`;
}
