/**
 * The fabric component's ports beyond EC2: the Linux side of the ENIs, IPAM's host-secondary
 * addresses, and how it learns that an attachment finished. Each has the production adapter here; tests
 * inject stateful fakes.
 */
import type { HostIpAllocator } from '../../aws/fabric-reconciler.js';
import type { ImdsClient } from '../../aws/imds.js';
import { Ipam } from '../../ipam/allocator.js';
import type { Datastore } from '../../datastore/contract.js';
import type { EniConfig, EniState } from '../../linux/eni/eni-routing.js';
import { applyEni } from '../../linux/eni/eni-routing.js';
import type { Clock } from '../../platform/clock.js';
import type { Shell } from '../../platform/shell.js';

/** The Linux side of the ENIs (interface up by MAC, per-ENI table, `from <ip>` rules). */
export interface EniRoutingPort {
  /**
   * Converges the node's ENI routing to `state` (every ENI of ours; anything of ours not listed goes).
   * Returns what could not be done yet (`problems`: e.g. an interface not there yet, by MAC) and what
   * failed (`failures`). Idempotent.
   */
  apply(state: EniState, config: EniConfig): Promise<{ problems: { object: string; code: string; message: string }[]; failures: { message: string }[] }>;
}

/** The ENI routing driver of src/linux through a shell (the node's namespace, or one given by NetnsShell). */
export class ShellEniRouting implements EniRoutingPort {
  constructor(private readonly shell: Shell) {}

  async apply(state: EniState, config: EniConfig): Promise<{ problems: { object: string; code: string; message: string }[]; failures: { message: string }[] }> {
    const result = await applyEni(this.shell, state, config);
    return { problems: result.problems, failures: result.failures.map((f) => ({ message: `${f.command.line}: ${f.message}` })) };
  }
}

/**
 * IPAM's host-secondary addresses for the shared ENIs of Secondary-IP mode: allocated from the
 * HostSecondaryInterface pools backed by the subnet (named explicitly, so their nodeSelector — often
 * `!all()` for egress pools — does not hide them), owned by `{kind: ENI, node}`, which IPAM GC keeps
 * while the node exists.
 */
export class IpamHostIps implements HostIpAllocator {
  private readonly ipam: Ipam;

  constructor(
    store: Datastore,
    private readonly node: string,
    /** The names of the enabled HostSecondaryInterface pools of a subnet, in order. */
    private readonly poolsOf: (subnetId: string) => string[],
    clock?: Clock,
  ) {
    this.ipam = new Ipam({ store, ...(clock === undefined ? {} : { clock }) });
  }

  async allocate(handle: string, subnetId: string): Promise<{ ip: string; allocatedAt: string }> {
    const pools = this.poolsOf(subnetId);
    const a = await this.ipam.allocate({
      handle,
      node: this.node,
      use: 'HostSecondaryInterface',
      aws: true,
      awsSubnetID: subnetId,
      owner: { kind: 'ENI', node: this.node, description: `egw shared ENI (${handle})` },
      ...(pools.length === 0 ? {} : { pools }),
    });
    return { ip: a.ip, allocatedAt: a.allocatedAt };
  }

  async release(handle: string): Promise<void> {
    await this.ipam.releaseByHandle(handle);
  }

  async get(handle: string): Promise<{ ip: string; allocatedAt: string } | undefined> {
    const a = await this.ipam.getAllocation(handle);
    return a === undefined ? undefined : { ip: a.ip, allocatedAt: a.allocatedAt };
  }
}

/** Tells which ENIs (by MAC) are attached to this instance right now, without an EC2 call. */
export interface AttachWatcher {
  attachedMacs(): Promise<ReadonlySet<string>>;
}

/**
 * IMDS lists an instance's attached ENIs under `network/interfaces/macs/` once their attachment has
 * completed: polling it costs no EC2 request (no throttling), unlike DescribeNetworkInterfaces.
 */
export class ImdsAttachWatcher implements AttachWatcher {
  constructor(private readonly imds: ImdsClient) {}

  async attachedMacs(): Promise<ReadonlySet<string>> {
    const text = await this.imds.get('meta-data/network/interfaces/macs/');
    return new Set(
      text
        .split('\n')
        .map((l) => l.trim().replace(/\/$/, '').toLowerCase())
        .filter((l) => l !== ''),
    );
  }
}
