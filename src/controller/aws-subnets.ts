/**
 * The controller's AWS facts loop: for every AWS-backed IPPool (one with `awsSubnetID`), DescribeSubnets
 * and keep an `AWSSubnet` record (CIDR, zone, VPC) per subnet in the datastore — the facts IPAM uses to
 * pick pools in the node's zone and to skip the subnet's reserved addresses, and the agents use to
 * route ENIs. Each pool gets the condition `EgwAwsSubnetValid` in its status: `False` with reason
 * `InvalidSubnetID.NotFound` for a subnet EC2 does not know (its AWSSubnet record is removed once EC2 has
 * said so in two passes in a row: EC2 is eventually consistent, and one NotFound may be a lag), or
 * `CIDRNotInSubnet` when the pool's CIDR is not inside its subnet's; `True` otherwise. Problems are
 * logged too. The controller process composes it: `new AwsSubnetFactsLoop(deps, options).run(signal)`.
 */
import type { AWSSubnet } from '../api/kinds/aws-subnet.js';
import type { IPPool } from '../api/kinds/ip-pool.js';
import { isAwsBacked } from '../api/kinds/ip-pool.js';
import { ipv4NetCovers, parseIpv4Net } from '../platform/ipv4.js';
import { awsCodeOf } from '../aws/aws-errors.js';
import type { Ec2, Ec2Subnet } from '../aws/ec2-port.js';
import type { Datastore, JsonObject } from '../datastore/contract.js';
import { listResources, stableJson } from '../datastore/resources.js';
import type { Clock } from '../platform/clock.js';
import { runEvery } from '../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { updateStatus } from '../agent/fabric/status.js';
import { conditionsOf, withCondition } from '../platform/conditions.js';

/** The IPPool condition type this loop owns. */
export const POOL_SUBNET_CONDITION = 'EgwAwsSubnetValid';

export interface AwsSubnetFactsDeps {
  store: Datastore;
  /** The EC2 port (wrap it in ResilientEc2 for retries). */
  ec2: Ec2;
  clock: Clock;
  logger?: Logger;
}

export interface AwsSubnetFactsOptions {
  /** Time between passes (default 5 minutes); a pass also runs at start. */
  intervalMs?: number;
}

/** The outcome of one pass, per pool and per subnet. */
export interface AwsSubnetFactsReport {
  /** AWSSubnet records written (created or changed). */
  written: string[];
  /** AWSSubnet records removed (EC2 did not know the subnet in this pass and the one before). */
  removed: string[];
  /** Writes that lost a compare-and-swap to another writer (retried by the next pass). */
  conflicts?: string[];
  /** Subnet IDs EC2 does not know. */
  unknownSubnets: string[];
  /** Pools whose CIDR is not inside their subnet's. */
  outsideSubnet: string[];
  /** A failure that stopped the pass (e.g. UnauthorizedOperation), with EC2's code. */
  error?: { awsCode: string; message: string };
}

/** Keeps AWSSubnet records and pool conditions in line with EC2. */
export class AwsSubnetFactsLoop {
  /** Subnets EC2 said it does not know in the last pass (a second sighting removes the record). */
  private readonly notFoundBefore = new Set<string>();

  constructor(
    private readonly deps: AwsSubnetFactsDeps,
    private readonly options: AwsSubnetFactsOptions = {},
  ) {}

  /** One pass. Errors of EC2 are in the report (and on the pools); datastore errors are thrown. */
  async runOnce(): Promise<AwsSubnetFactsReport> {
    const report: AwsSubnetFactsReport = { written: [], removed: [], unknownSubnets: [], outsideSubnet: [] };
    const pools = (await listResources(this.deps.store, 'IPPool')).filter((p) => isAwsBacked(p));
    const ids = [...new Set(pools.map((p) => p.spec.awsSubnetID ?? ''))].sort();
    if (ids.length === 0) return report;
    const found = new Map<string, Ec2Subnet>();
    try {
      for (const s of await this.describe(ids, report)) found.set(s.id, s);
    } catch (err) {
      const e = isEgwError(err) ? err : new EgwError('AwsError', errorMessage(err));
      const awsCode = awsCodeOf(e) ?? e.code;
      report.error = { awsCode, message: e.describe() };
      this.deps.logger?.error({ awsCode, err: e.message }, 'cannot describe the subnets of AWS-backed pools');
      for (const pool of pools) {
        await this.setPoolCondition(pool, { status: 'Unknown', reason: awsCode, message: `DescribeSubnets failed: ${e.describe()}` });
      }
      return report;
    }
    const listed = await this.deps.store.list('AWSSubnet');
    const existing = new Map(listed.items.map((s) => [s.key.name, { resource: s.value as unknown as AWSSubnet, revision: s.modRevision }]));
    const conflict = (id: string, err: unknown): boolean => {
      if (!isEgwError(err) || (err.code !== 'Conflict' && err.code !== 'AlreadyExists' && err.code !== 'NotFound')) return false;
      (report.conflicts ??= []).push(id);
      this.deps.logger?.info({ subnet: id }, 'aws subnet record changed meanwhile: the next pass converges it');
      return true;
    };
    for (const s of [...found.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      try {
        if (await this.writeRecord(s, existing.get(s.id))) report.written.push(s.id);
      } catch (err) {
        if (!conflict(s.id, err)) throw err;
      }
    }
    const seenNow = new Set(report.unknownSubnets);
    for (const id of report.unknownSubnets) {
      const current = existing.get(id);
      if (current === undefined) continue;
      // EC2 is eventually consistent: one NotFound may be a lag (a subnet just made, a region hiccup).
      if (!this.notFoundBefore.has(id)) {
        this.deps.logger?.warn({ subnet: id }, 'ec2 does not know the subnet; its record goes if the next pass agrees');
        continue;
      }
      try {
        await this.deps.store.commit([{ op: 'delete', key: { kind: 'AWSSubnet', name: id }, expectedRevision: current.revision }]);
        report.removed.push(id);
      } catch (err) {
        if (!conflict(id, err)) throw err;
      }
    }
    this.notFoundBefore.clear();
    for (const id of seenNow) this.notFoundBefore.add(id);
    for (const pool of pools) {
      const id = pool.spec.awsSubnetID ?? '';
      const subnet = found.get(id);
      if (subnet === undefined) {
        this.deps.logger?.warn({ pool: pool.metadata.name, subnet: id }, 'ippool names a subnet EC2 does not know');
        await this.setPoolCondition(pool, { status: 'False', reason: 'InvalidSubnetID.NotFound', message: `subnet ${id} does not exist in this account and region` });
        continue;
      }
      const poolCidr = parseIpv4Net(pool.spec.cidr, { hostBits: 'clear' });
      const subnetCidr = parseIpv4Net(subnet.cidr, { hostBits: 'clear' });
      if (poolCidr === undefined || subnetCidr === undefined || !ipv4NetCovers(subnetCidr, poolCidr)) {
        report.outsideSubnet.push(pool.metadata.name);
        this.deps.logger?.warn({ pool: pool.metadata.name, cidr: pool.spec.cidr, subnet: id, subnetCidr: subnet.cidr }, 'ippool cidr is not inside its subnet');
        await this.setPoolCondition(pool, {
          status: 'False',
          reason: 'CIDRNotInSubnet',
          message: `the pool's CIDR ${pool.spec.cidr} is not inside subnet ${id} (${subnet.cidr}): AWS would refuse its addresses`,
        });
        continue;
      }
      await this.setPoolCondition(pool, { status: 'True', reason: 'Valid', message: `inside subnet ${id} (${subnet.cidr}, ${subnet.availabilityZone})` });
    }
    return report;
  }

  /** Passes every interval until `signal` aborts. A failed pass is logged; the loop goes on. */
  async run(signal: AbortSignal): Promise<void> {
    await runEvery(this.deps.clock, this.options.intervalMs ?? 300_000, signal, () => this.runOnce(), (err) =>
      this.deps.logger?.error({ err: errorMessage(err) }, 'aws subnet facts pass failed'),
    );
  }

  /** DescribeSubnets of all; when one is unknown (which fails the whole call), one by one. */
  private async describe(ids: string[], report: AwsSubnetFactsReport): Promise<Ec2Subnet[]> {
    try {
      return await this.deps.ec2.describeSubnets(ids);
    } catch (err) {
      if (awsCodeOf(err) !== 'InvalidSubnetID.NotFound') throw err;
    }
    const out: Ec2Subnet[] = [];
    for (const id of ids) {
      try {
        out.push(...(await this.deps.ec2.describeSubnets([id])));
      } catch (err) {
        if (awsCodeOf(err) !== 'InvalidSubnetID.NotFound') throw err;
        report.unknownSubnets.push(id);
      }
    }
    return out;
  }

  /** Creates or updates (compare-and-swap on the revision read) one record; throws Conflict when it moved. */
  private async writeRecord(s: Ec2Subnet, stored: { resource: AWSSubnet; revision: number } | undefined): Promise<boolean> {
    const current = stored?.resource;
    const spec = { subnetID: s.id, cidr: s.cidr, availabilityZone: s.availabilityZone, ...(s.vpcId === '' ? {} : { vpcID: s.vpcId }) };
    if (current !== undefined && stableJson(current.spec) === stableJson(spec)) return false;
    const now = new Date(this.deps.clock.now()).toISOString();
    const value = {
      apiVersion: 'egw.io/v1',
      kind: 'AWSSubnet',
      metadata: { name: s.id, ...(current === undefined ? { creationTimestamp: now } : { ...stripVersion(current.metadata) }) },
      spec,
      ...(current?.status === undefined ? {} : { status: current.status }),
    } as unknown as JsonObject;
    const key = { kind: 'AWSSubnet', name: s.id };
    await this.deps.store.commit([stored === undefined ? { op: 'create', key, value } : { op: 'update', key, value, expectedRevision: stored.revision }]);
    this.deps.logger?.info({ subnet: s.id, cidr: s.cidr, zone: s.availabilityZone }, 'aws subnet facts recorded');
    return true;
  }

  private async setPoolCondition(pool: IPPool, c: { status: 'True' | 'False' | 'Unknown'; reason: string; message: string }): Promise<void> {
    const now = new Date(this.deps.clock.now()).toISOString();
    await updateStatus(this.deps.store, { kind: 'IPPool', name: pool.metadata.name }, (status) => {
      const conditions = withCondition(conditionsOf(status), { type: POOL_SUBNET_CONDITION, ...c }, now);
      return conditions === undefined ? undefined : { ...status, conditions };
    });
  }
}

function stripVersion<T extends { resourceVersion?: string | undefined }>(meta: T): Omit<T, 'resourceVersion'> {
  const { resourceVersion: _rv, ...rest } = meta;
  return rest;
}
