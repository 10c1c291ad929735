import type { Logger } from '../../platform/logger.js';

/** An ENI as the fabric sees it: enough to create its link and route its addresses. */
export interface FabricEni {
  id: string;
  macAddress: string;
  subnetId: string;
  /** The subnet's CIDR, e.g. `100.64.0.0/22`. */
  subnetCidr: string;
  vpcId: string;
  availabilityZone: string;
  /** Every private IPv4 address of the ENI, the primary first. */
  privateIps: string[];
  /** Set while the ENI is attached (or was, for `eniDetached`). */
  instanceId: string | undefined;
  deviceIndex: number | undefined;
  /** EC2's source/destination check of the ENI (true unless disabled with ModifyNetworkInterfaceAttribute). */
  sourceDestCheck: boolean;
}

/** An instance as the fabric sees it. */
export interface FabricInstance {
  id: string;
  instanceType: string;
  availabilityZone: string;
  subnetId: string;
  /** The primary private IPv4 address (the address of device index 0). */
  privateIp: string;
}

/** An Elastic IP association: the internet gateway maps `publicIp` 1:1 to `privateIp`. */
export interface FabricAddress {
  allocationId: string;
  publicIp: string;
  associationId: string;
  networkInterfaceId: string;
  privateIp: string;
}

/** The whole fabric-relevant state, for {@link FabricDriver.sync}. */
export interface FabricSnapshot {
  instances: FabricInstance[];
  /** ENIs whose attachment has completed (status `in-use`): the only ones whose addresses are routed. */
  attachedEnis: FabricEni[];
  associations: FabricAddress[];
}

/**
 * The lab's hook into the emulator: it makes the EC2 state real (links, routes, NAT). The emulator
 * calls it after each state change is committed (and persisted, when a state file is used), one
 * call at a time, in commit order. Contract (docs/aws-sim.md, "Fabric driver"):
 * - Every method is idempotent: it may be called again for a change it already applied (after a
 *   failure or a restart), and must converge rather than fail.
 * - An ENI's addresses are routed only while it is attached: `eniAttached` carries every address
 *   the ENI has at that moment, and `privateIpAssigned`/`privateIpUnassigned` are only called for
 *   attached ENIs. `eniDetached` means: remove the link and every route of that ENI.
 * - Elastic IP events do not depend on attachment (AWS keeps the mapping of an unattached ENI).
 * - A thrown error or rejected promise is retried with backoff; the EC2 state is never rolled back.
 *   After the retries the emulator records the failure and calls `sync` (when implemented) until
 *   it succeeds.
 */
export interface FabricDriver {
  /** Converge the fabric to the snapshot (called at start and after a failed event). Optional. */
  sync?(snapshot: FabricSnapshot): Promise<void>;
  eniAttached(eni: FabricEni, instance: FabricInstance): Promise<void>;
  eniDetached(eni: FabricEni, instance: FabricInstance): Promise<void>;
  privateIpAssigned(eni: FabricEni, ip: string): Promise<void>;
  privateIpUnassigned(eni: FabricEni, ip: string): Promise<void>;
  addressAssociated(address: FabricAddress): Promise<void>;
  addressDisassociated(address: FabricAddress): Promise<void>;
  /** The source/destination check of an attached ENI changed (`eni` carries the new value). Optional: a fabric without the check ignores it. */
  sourceDestCheckChanged?(eni: FabricEni): Promise<void>;
}

/** A fabric that does nothing: the default when the emulator runs without a lab. */
export class NoopFabricDriver implements FabricDriver {
  async sync(): Promise<void> {}
  async eniAttached(): Promise<void> {}
  async eniDetached(): Promise<void> {}
  async privateIpAssigned(): Promise<void> {}
  async privateIpUnassigned(): Promise<void> {}
  async addressAssociated(): Promise<void> {}
  async addressDisassociated(): Promise<void> {}
  async sourceDestCheckChanged(): Promise<void> {}
}

/** One committed change, as queued for the driver. */
export type FabricEvent =
  | { kind: 'eniAttached'; eni: FabricEni; instance: FabricInstance }
  | { kind: 'eniDetached'; eni: FabricEni; instance: FabricInstance }
  | { kind: 'privateIpAssigned'; eni: FabricEni; ip: string }
  | { kind: 'privateIpUnassigned'; eni: FabricEni; ip: string }
  | { kind: 'addressAssociated'; address: FabricAddress }
  | { kind: 'addressDisassociated'; address: FabricAddress }
  | { kind: 'sourceDestCheckChanged'; eni: FabricEni };

/** What the dispatcher reports about the driver (in the state dump and stats). */
export interface FabricStatus {
  delivered: number;
  failures: number;
  lastError: string | undefined;
  /** True while a failed event is waiting for a successful `sync`. */
  degraded: boolean;
}

export interface FabricDispatcherOptions {
  driver: FabricDriver;
  logger: Logger;
  /** A fresh snapshot, for `sync` after a failure. */
  snapshot: () => FabricSnapshot;
  /** Attempts per event before falling back to `sync` (default 3). */
  attempts?: number;
  /** First retry delay in ms, doubled per attempt (default 50). */
  retryDelayMs?: number;
}

/**
 * Delivers fabric events to the driver one at a time, in order. `deliver` resolves when the given
 * events have been handled (applied, or given up on after retries), so an API call can wait for the
 * fabric before answering.
 */
export class FabricDispatcher {
  private tail: Promise<void> = Promise.resolve();
  private closed = false;
  private syncTimer: NodeJS.Timeout | undefined;
  readonly status: FabricStatus = { delivered: 0, failures: 0, lastError: undefined, degraded: false };

  constructor(private readonly options: FabricDispatcherOptions) {}

  /**
   * Queues the events behind everything queued before, to be delivered once `after` (the state
   * write of the change) has settled. The promise settles (never rejects) once they are handled.
   */
  deliver(events: readonly FabricEvent[], after: Promise<unknown> = Promise.resolve()): Promise<void> {
    if (events.length === 0) return this.tail;
    const run = async (): Promise<void> => {
      await after.catch(() => undefined);
      for (const event of events) await this.deliverOne(event);
    };
    this.tail = this.tail.then(run, run);
    return this.tail;
  }

  /** Runs `sync` with the current snapshot (queued behind pending events). */
  sync(): Promise<void> {
    const run = async (): Promise<void> => {
      await this.trySync();
    };
    this.tail = this.tail.then(run, run);
    return this.tail;
  }

  /** Resolves when every queued event has been handled. */
  idle(): Promise<void> {
    return this.tail;
  }

  /** Stops background `sync` retries. */
  close(): void {
    this.closed = true;
    if (this.syncTimer !== undefined) clearTimeout(this.syncTimer);
  }

  private async deliverOne(event: FabricEvent): Promise<void> {
    const attempts = this.options.attempts ?? 3;
    const base = this.options.retryDelayMs ?? 50;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await call(this.options.driver, event);
        this.status.delivered++;
        return;
      } catch (e) {
        this.status.lastError = `${event.kind}: ${(e as Error).message}`;
        this.options.logger.warn({ event: event.kind, attempt, err: (e as Error).message }, 'fabric driver failed');
        if (attempt < attempts) await sleep(base * 2 ** (attempt - 1));
      }
    }
    // The EC2 state stays as committed; the fabric is a projection of it, so the cure is a full sync.
    this.status.failures++;
    this.status.degraded = true;
    this.scheduleSync(base);
  }

  private scheduleSync(delayMs: number): void {
    if (this.closed || this.syncTimer !== undefined || this.options.driver.sync === undefined) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      void this.sync().then(() => {
        if (this.status.degraded) this.scheduleSync(Math.min(delayMs * 2, 5_000));
      });
    }, delayMs);
    this.syncTimer.unref();
  }

  private async trySync(): Promise<void> {
    const driver = this.options.driver;
    if (driver.sync === undefined) return;
    try {
      await driver.sync(this.options.snapshot());
      this.status.degraded = false;
    } catch (e) {
      this.status.failures++;
      this.status.degraded = true;
      this.status.lastError = `sync: ${(e as Error).message}`;
      this.options.logger.warn({ err: (e as Error).message }, 'fabric driver sync failed');
    }
  }
}

async function call(driver: FabricDriver, event: FabricEvent): Promise<void> {
  switch (event.kind) {
    case 'eniAttached':
      return driver.eniAttached(event.eni, event.instance);
    case 'eniDetached':
      return driver.eniDetached(event.eni, event.instance);
    case 'privateIpAssigned':
      return driver.privateIpAssigned(event.eni, event.ip);
    case 'privateIpUnassigned':
      return driver.privateIpUnassigned(event.eni, event.ip);
    case 'addressAssociated':
      return driver.addressAssociated(event.address);
    case 'addressDisassociated':
      return driver.addressDisassociated(event.address);
    case 'sourceDestCheckChanged':
      return driver.sourceDestCheckChanged?.(event.eni);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
