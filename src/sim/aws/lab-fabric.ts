/**
 * The lab fabric driver: makes the emulator's EC2 state real in network namespaces (docs/lab.md, "The
 * fabric driver"; the contract is docs/aws-sim.md, "Fabric driver").
 *
 * - An attached ENI is a veth pair: `eth<device index>` with the ENI's MAC in the instance's namespace,
 *   `e-<id tail>` (alias = the ENI ID) in the VPC router's namespace. A point-to-point link per ENI, no
 *   learning bridge. The primary ENI (device 0) is configured as EC2's DHCP would (address, up, default
 *   route via the subnet's router); secondary ENIs stay down and unaddressed for the agent to configure.
 * - Each private IP of an attached ENI is routed in the router: a /32 route (protocol
 *   {@link FABRIC_ROUTE_PROTOCOL}) and a permanent neighbour entry to the ENI's MAC, and it is admitted by
 *   the router's source/destination check. An IP EC2 does not know has no route: the router's VPC-wide
 *   `unreachable` route (made by the lab) answers for it, exactly as a VPC does not route it.
 * - Each Elastic IP association is a 1:1 NAT in the internet gateway's namespace.
 *
 * Every method converges (idempotent); `sync` converges everything to the snapshot and removes what is not
 * in it. The driver works from any namespace: every command names its namespace (`ip netns exec`).
 */
import { EgwError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { silentLogger } from '../../platform/logger.js';
import type { Shell } from '../../platform/shell.js';
import { runBatch } from '../../linux/iproute/batch.js';
import type { BatchCommand } from '../../linux/iproute/batch.js';
import { NetnsShell } from '../../linux/netns.js';
import type { FabricAddress, FabricDriver, FabricEni, FabricInstance, FabricSnapshot } from './fabric.js';
import type { IgwInterfaces, RoutedAddress } from './lab-fabric-plan.js';
import {
  FABRIC_ROUTE_PROTOCOL,
  IGW_NFT_TABLE,
  instanceLinkName,
  natPairs,
  renderIgwNft,
  renderIgwUpdate,
  renderRouterNft,
  renderRouterSetUpdate,
  replaceTableScript,
  ROUTER_LINK_PREFIX,
  ROUTER_NFT_TABLE,
  routedAddresses,
  uncheckedLinks,
  routerLinkName,
} from './lab-fabric-plan.js';

/** Where the fabric lives. Namespace names are as `ip netns list` shows them. */
export interface LabFabricConfig {
  /** The VPC router's namespace. */
  routerNetns: string;
  /** The internet gateway's namespace and its interfaces. */
  igw: { netns: string } & IgwInterfaces;
  /** Each instance's namespace, by instance ID. */
  instances: Record<string, { netns: string }>;
  /** MTU of the ENI links (default 1500). */
  mtu?: number;
}

/** What the driver needs. */
export interface LabFabricDeps {
  /** Runs commands (in the namespace the process is in; the driver adds `ip netns exec`). */
  shell: Shell;
  logger?: Logger;
}

interface JsonLink {
  ifname?: string;
  address?: string;
  ifalias?: string;
  flags?: string[];
}

function parseJson<T>(text: string): T[] {
  const t = text.trim();
  if (t === '') return [];
  const v = JSON.parse(t) as unknown;
  return Array.isArray(v) ? (v as T[]) : [];
}

/** The prefix length of a CIDR. */
function prefixLen(cidr: string): number {
  return Number(cidr.split('/')[1] ?? '32');
}

/** The subnet's router (its first host address), as on AWS. */
function subnetRouter(cidr: string): string {
  const [addr] = cidr.split('/');
  const parts = (addr ?? '0.0.0.0').split('.').map(Number);
  const n = ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]! + 1;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * The lab's {@link FabricDriver}. Keeps a model of the attached ENIs and associations (set wholly by
 * `sync`, updated by each event) so that the router's set and the gateway's maps can be rewritten whole,
 * in one nft transaction, after every change.
 */
export class LabFabricDriver implements FabricDriver {
  private readonly log: Logger;
  private readonly router: Shell;
  private readonly igw: Shell;
  private readonly enis = new Map<string, FabricEni>();
  private readonly associations = new Map<string, FabricAddress>();
  private tablesReady = false;

  constructor(
    private readonly deps: LabFabricDeps,
    private readonly config: LabFabricConfig,
  ) {
    this.log = (deps.logger ?? silentLogger()).child({ part: 'lab-fabric' });
    this.router = new NetnsShell(deps.shell, config.routerNetns);
    this.igw = new NetnsShell(deps.shell, config.igw.netns);
  }

  private instanceShell(instanceId: string | undefined): Shell {
    const inst = instanceId === undefined ? undefined : this.config.instances[instanceId];
    if (inst === undefined) {
      throw new EgwError('InvalidInput', `instance ${instanceId ?? '(none)'} has no namespace in the lab fabric`, { hint: 'every instance of the world needs a namespace' });
    }
    return new NetnsShell(this.deps.shell, inst.netns);
  }

  // ------------------------------------------------------------------------------------------ events

  async eniAttached(eni: FabricEni, instance: FabricInstance): Promise<void> {
    const e = { ...eni, instanceId: eni.instanceId ?? instance.id };
    this.enis.set(e.id, e);
    await this.ensureTables();
    await this.ensureLink(e);
    await this.routeAll(routedAddresses([e]));
    await this.updateRouterSet();
    this.log.info({ eni: e.id, instance: e.instanceId, device: e.deviceIndex, ips: e.privateIps }, 'eni link up');
  }

  async eniDetached(eni: FabricEni, _instance: FabricInstance): Promise<void> {
    this.enis.delete(eni.id);
    await this.ensureTables();
    // Deleting one end of a veth deletes the pair, and with it every route and neighbour through it.
    await runBatch(this.router, 'ip', [{ line: `link del ${routerLinkName(eni.id)}`, object: eni.id, okIfMissing: true }]).then(throwFailures);
    await this.updateRouterSet();
    this.log.info({ eni: eni.id }, 'eni link removed');
  }

  async privateIpAssigned(eni: FabricEni, ip: string): Promise<void> {
    const known = this.enis.get(eni.id);
    const e: FabricEni = { ...(known ?? eni), privateIps: eni.privateIps.includes(ip) ? eni.privateIps : [...eni.privateIps, ip] };
    this.enis.set(e.id, e);
    await this.ensureTables();
    if (known === undefined) await this.ensureLink(e);
    await this.routeAll(routedAddresses([e]).filter((a) => a.ip === ip));
    await this.updateRouterSet();
    this.log.info({ eni: e.id, ip }, 'address routed');
  }

  async privateIpUnassigned(eni: FabricEni, ip: string): Promise<void> {
    const known = this.enis.get(eni.id);
    if (known !== undefined) this.enis.set(eni.id, { ...known, privateIps: known.privateIps.filter((x) => x !== ip) });
    await this.ensureTables();
    const dev = routerLinkName(eni.id);
    await runBatch(this.router, 'ip', [
      { line: `route del ${ip}/32 dev ${dev} proto ${FABRIC_ROUTE_PROTOCOL}`, object: ip, okIfMissing: true },
      { line: `neigh del ${ip} dev ${dev}`, object: ip, okIfMissing: true },
    ]).then(throwFailures);
    await this.updateRouterSet();
    this.log.info({ eni: eni.id, ip }, 'address unrouted');
  }

  async sourceDestCheckChanged(eni: FabricEni): Promise<void> {
    const known = this.enis.get(eni.id);
    if (known === undefined) return; // not attached here: its attach event carries the value
    this.enis.set(eni.id, { ...known, sourceDestCheck: eni.sourceDestCheck });
    await this.ensureTables();
    await this.updateRouterSet();
    this.log.info({ eni: eni.id, sourceDestCheck: eni.sourceDestCheck }, 'source/destination check changed');
  }

  async addressAssociated(address: FabricAddress): Promise<void> {
    this.associations.set(address.allocationId, address);
    await this.ensureTables();
    await this.updateIgw();
    this.log.info({ publicIp: address.publicIp, privateIp: address.privateIp }, 'elastic ip mapped');
  }

  async addressDisassociated(address: FabricAddress): Promise<void> {
    const known = this.associations.get(address.allocationId);
    if (known !== undefined && known.associationId === address.associationId) this.associations.delete(address.allocationId);
    await this.ensureTables();
    await this.updateIgw();
    this.log.info({ publicIp: address.publicIp, privateIp: address.privateIp }, 'elastic ip unmapped');
  }

  /**
   * Converges the whole fabric to the snapshot: ENI links (extra ones deleted, missing or wrong ones
   * made), routes and neighbours of ours, the router's set and the gateway's tables (replaced whole).
   */
  async sync(snapshot: FabricSnapshot): Promise<void> {
    this.enis.clear();
    for (const e of snapshot.attachedEnis) this.enis.set(e.id, e);
    this.associations.clear();
    for (const a of snapshot.associations) this.associations.set(a.allocationId, a);
    const desired = routedAddresses(this.enis.values());

    // Links: remove router links no attached ENI owns (their peers and routes go with them).
    const links = parseJson<JsonLink>((await this.router.run(['ip', '-json', 'link', 'show'])).stdout);
    const wanted = new Map([...this.enis.values()].map((e) => [routerLinkName(e.id), e.id]));
    const stale = links.filter((l) => l.ifname?.startsWith(ROUTER_LINK_PREFIX) === true && (!wanted.has(l.ifname) || wanted.get(l.ifname) !== l.ifalias));
    await runBatch(this.router, 'ip', stale.map((l) => ({ line: `link del ${l.ifname ?? ''}`, object: l.ifname ?? '', okIfMissing: true }))).then(throwFailures);
    for (const e of this.enis.values()) await this.ensureLink(e);

    // Routes and neighbours of ours that no attached address wants.
    const routes = parseJson<{ dst?: string; dev?: string }>((await this.router.run(['ip', '-json', 'route', 'show', 'proto', String(FABRIC_ROUTE_PROTOCOL)])).stdout);
    const want = new Set(desired.map((a) => `${a.ip}|${a.dev}`));
    const dels: BatchCommand[] = [];
    for (const r of routes) {
      const ip = (r.dst ?? '').replace(/\/32$/, '');
      if (!want.has(`${ip}|${r.dev ?? ''}`)) dels.push({ line: `route del ${ip}/32 dev ${r.dev ?? ''} proto ${FABRIC_ROUTE_PROTOCOL}`, object: ip, okIfMissing: true });
    }
    const neighs = parseJson<{ dst?: string; dev?: string; lladdr?: string; state?: string[] }>((await this.router.run(['ip', '-json', 'neigh', 'show', 'nud', 'permanent'])).stdout);
    for (const n of neighs) {
      if (n.dev?.startsWith(ROUTER_LINK_PREFIX) === true && !want.has(`${n.dst ?? ''}|${n.dev}`)) dels.push({ line: `neigh del ${n.dst ?? ''} dev ${n.dev}`, object: n.dst ?? '', okIfMissing: true });
    }
    await runBatch(this.router, 'ip', dels).then(throwFailures);
    await this.routeAll(desired);

    await this.router.run(['nft', '-f', '-'], { input: replaceTableScript(ROUTER_NFT_TABLE, renderRouterNft(desired, uncheckedLinks(this.enis.values()))) });
    await this.igw.run(['nft', '-f', '-'], { input: replaceTableScript(IGW_NFT_TABLE, renderIgwNft(natPairs(this.associations.values()), this.config.igw)) });
    this.tablesReady = true;
    this.log.info({ enis: this.enis.size, addresses: desired.length, elasticIps: this.associations.size }, 'fabric in sync');
  }

  // ------------------------------------------------------------------------------------------ parts

  /** Creates the nft tables on the first event when no `sync` ran (the emulator always syncs first). */
  private async ensureTables(): Promise<void> {
    if (this.tablesReady) return;
    const r = await this.router.run(['nft', 'list', 'table', 'ip', ROUTER_NFT_TABLE], { allowFailure: true });
    if (r.exitCode !== 0) await this.router.run(['nft', '-f', '-'], { input: replaceTableScript(ROUTER_NFT_TABLE, renderRouterNft(routedAddresses(this.enis.values()), uncheckedLinks(this.enis.values()))) });
    const g = await this.igw.run(['nft', 'list', 'table', 'ip', IGW_NFT_TABLE], { allowFailure: true });
    if (g.exitCode !== 0) await this.igw.run(['nft', '-f', '-'], { input: replaceTableScript(IGW_NFT_TABLE, renderIgwNft(natPairs(this.associations.values()), this.config.igw)) });
    this.tablesReady = true;
  }

  /**
   * The ENI's veth pair, made when missing or wrong (router end without the ENI's alias, or the instance
   * end missing or with another MAC). The primary ENI is then configured as DHCP would.
   */
  private async ensureLink(eni: FabricEni): Promise<void> {
    if (eni.deviceIndex === undefined || eni.instanceId === undefined) {
      throw new EgwError('InvalidInput', `ENI ${eni.id} is not attached (no instance or device index)`);
    }
    const inst = this.instanceShell(eni.instanceId);
    const netns = this.config.instances[eni.instanceId]!.netns;
    const dev = routerLinkName(eni.id);
    const ifname = instanceLinkName(eni.deviceIndex);
    const mac = eni.macAddress.toLowerCase();
    const [routerSide, instanceSide] = await Promise.all([
      this.router.run(['ip', '-json', 'link', 'show', 'dev', dev], { allowFailure: true }),
      inst.run(['ip', '-json', 'link', 'show'], { allowFailure: true }),
    ]);
    if (instanceSide.exitCode !== 0) throw new EgwError('CommandFailed', `namespace ${netns} of instance ${eni.instanceId} cannot be read: ${instanceSide.stderr.trim()}`);
    const r = routerSide.exitCode === 0 ? parseJson<JsonLink>(routerSide.stdout)[0] : undefined;
    const peers = parseJson<JsonLink>(instanceSide.stdout);
    const peer = peers.find((l) => l.address?.toLowerCase() === mac);
    const good = r !== undefined && r.ifalias === eni.id && peer !== undefined && peer.ifname === ifname;
    if (!good) {
      const lines: BatchCommand[] = [];
      if (r !== undefined) lines.push({ line: `link del ${dev}`, object: dev, okIfMissing: true });
      await runBatch(this.router, 'ip', lines).then(throwFailures);
      // A stale interface under the name (or the MAC) in the instance: the ENI's name is taken over.
      const stale = peers.filter((l) => l.ifname === ifname || l.address?.toLowerCase() === mac);
      await runBatch(inst, 'ip', stale.map((l) => ({ line: `link del ${l.ifname ?? ''}`, object: l.ifname ?? '', okIfMissing: true }))).then(throwFailures);
      const mtu = this.config.mtu === undefined ? '' : ` mtu ${this.config.mtu}`;
      await runBatch(this.router, 'ip', [
        { line: `link add ${dev}${mtu} type veth peer name ${ifname} address ${mac}${mtu} netns ${netns}`, object: dev },
        { line: `link set dev ${dev} alias ${eni.id}`, object: dev },
        { line: `link set dev ${dev} up`, object: dev },
      ]).then(throwFailures);
    } else if (r.flags?.includes('UP') !== true) {
      await this.router.run(['ip', 'link', 'set', 'dev', dev, 'up']);
    }
    if (eni.deviceIndex === 0) {
      // EC2's DHCP: the primary address with its subnet, up, default route via the subnet's router.
      const primary = eni.privateIps[0];
      if (primary !== undefined) {
        await runBatch(inst, 'ip', [
          { line: `addr replace ${primary}/${prefixLen(eni.subnetCidr)} dev ${ifname}`, object: ifname },
          { line: `link set dev ${ifname} up`, object: ifname },
          { line: `route replace default via ${subnetRouter(eni.subnetCidr)} dev ${ifname}`, object: ifname },
        ]).then(throwFailures);
      }
    }
  }

  private async routeAll(addresses: readonly RoutedAddress[]): Promise<void> {
    const lines: BatchCommand[] = [];
    for (const a of addresses) {
      lines.push({ line: `neigh replace ${a.ip} lladdr ${a.mac} dev ${a.dev} nud permanent`, object: a.ip });
      lines.push({ line: `route replace ${a.ip}/32 dev ${a.dev} proto ${FABRIC_ROUTE_PROTOCOL}`, object: a.ip });
    }
    await runBatch(this.router, 'ip', lines).then(throwFailures);
  }

  private async updateRouterSet(): Promise<void> {
    await this.router.run(['nft', '-f', '-'], { input: `${renderRouterSetUpdate(routedAddresses(this.enis.values()), uncheckedLinks(this.enis.values()))}\n` });
  }

  private async updateIgw(): Promise<void> {
    await this.igw.run(['nft', '-f', '-'], { input: `${renderIgwUpdate(natPairs(this.associations.values()))}\n` });
  }
}

function throwFailures(failures: readonly { command: { line: string }; message: string }[]): void {
  if (failures.length > 0) throw new EgwError('CommandFailed', failures.map((f) => `${f.command.line}: ${f.message}`).join('; '));
}
