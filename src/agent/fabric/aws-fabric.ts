/**
 * The AWS part of `egw agent`, as one component with injected ports and start/stop: it follows the
 * datastore (this node's Pods, the Node, IPPools, FelixConfiguration, AWSSubnet records), runs the fabric
 * reconciler (src/aws) whenever the desired state changes, an attachment completes, a retry or a timed
 * decision falls due, or the periodic resync comes round; programs the Linux side of the ENIs; and writes
 * the outcome back (Pod condition `EgwAwsReady`, Node capacity/allocatable of
 * `projectcalico.org/aws-secondary-ipv4` and condition `EgwAwsFabricReady`). docs/aws-fabric.md.
 *
 * Nothing is removed before the datastore is in sync (the reconciler gets `allowRemovals: false`).
 */
import type { AWSSubnet } from '../../api/kinds/aws-subnet.js';
import type { FelixConfiguration } from '../../api/kinds/felix-configuration.js';
import { effectiveFelixSettings, parseIfacePattern } from '../../api/kinds/felix-configuration.js';
import type { EffectiveFelixSettings } from '../../api/kinds/felix-configuration.js';
import type { IPPool } from '../../api/kinds/ip-pool.js';
import { isAwsBacked } from '../../api/kinds/ip-pool.js';
import type { Namespace, Pod } from '../../api/kinds/kubernetes.js';
import { parseDuration } from '../../api/checks.js';
import { awsSecondaryAllocatable, awsSecondaryCapacity } from '../../aws/capacity.js';
import type { Ec2 } from '../../aws/ec2-port.js';
import type { FabricReport, HostIpAllocator } from '../../aws/fabric-reconciler.js';
import { FabricReconciler } from '../../aws/fabric-reconciler.js';
import type { ImdsClient, InstanceFacts } from '../../aws/imds.js';
import { discoverInstance, SdkImds } from '../../aws/imds.js';
import { ResilientEc2 } from '../../aws/resilient-ec2.js';
import type { ResilientEc2Options } from '../../aws/resilient-ec2.js';
import type { Datastore, StoredResource } from '../../datastore/contract.js';
import { Informer } from '../../datastore/informer.js';
import { stableJson } from '../../datastore/resources.js';
import type { EniState } from '../../linux/eni/eni-routing.js';
import type { EventRecorder, EventRegarding } from '../../platform/events.js';
import { NoEventRecorder } from '../../platform/events.js';
import type { Clock } from '../../platform/clock.js';
import { SystemClock } from '../../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { silentLogger } from '../../platform/logger.js';
import { awsCodeOf } from '../../aws/aws-errors.js';
import { AWS_SECONDARY_IPV4_RESOURCE } from '../../api/annotations.js';
import type { AttachWatcher, EniRoutingPort } from './ports.js';
import { ImdsAttachWatcher, IpamHostIps } from './ports.js';
import { writeNodeFabricStatus, writePodCondition } from './status.js';
import type { Condition } from './status.js';
import { deriveFabricWorkloads, hostSecondarySubnets, listsElasticIps, subnetFacts } from './workloads.js';

/** The kinds the component follows. */
export const FABRIC_KINDS = ['Pod', 'Node', 'Namespace', 'IPPool', 'FelixConfiguration', 'AWSSubnet'] as const;

/** Side effects of {@link AwsFabric}. */
export interface AwsFabricDeps {
  store: Datastore;
  /**
   * The EC2 port (production: `(region) => new SdkEc2({ region })`), made once the region is known from
   * IMDS. The component wraps it in `ResilientEc2` (concurrency, backoff, `awsRequestTimeout`).
   */
  ec2: Ec2 | ((region: string) => Ec2);
  /** Instance metadata (default: `SdkImds`, honouring AWS_EC2_METADATA_SERVICE_ENDPOINT). */
  imds?: ImdsClient;
  /** The instance's facts, when known already (tests); IMDS is then not read for them. */
  instance?: InstanceFacts;
  /** Host-secondary addresses (default: IPAM on `store`). */
  hostIps?: HostIpAllocator;
  /** The Linux side (default: none — e.g. the emulator benchmarks). */
  linux?: EniRoutingPort;
  /** How attachments are seen to complete without EC2 calls (default: IMDS when `imds` or no `instance` is given). */
  attachWatcher?: AttachWatcher;
  clock?: Clock;
  logger?: Logger;
  /**
   * Events for what a user must see (default: none): a gateway's address that cannot be placed (no
   * capacity, no free Elastic IP, EC2's terminal errors) on its Pod; node-level failures and throttling
   * that persists on the Node. Production: `eventRecorderFor(store, …)` (src/datastore/events.ts).
   */
  events?: EventRecorder;
  /** Jitter source (default Math.random). */
  random?: () => number;
}

/** Tuning; defaults suit production. */
export interface AwsFabricOptions {
  /** The Node name of this agent. */
  nodeName: string;
  /** Cluster name in the ENI tags (default `egw`); distinct per cluster sharing an AWS account. */
  cluster?: string;
  /** Detached ENIs of ours nobody wants are deleted after this long (default 120 s). */
  gcCooldownMs?: number;
  /** A full pass at least this often (default 60 s). */
  resyncIntervalMs?: number;
  /** Polling of the attach watcher while an attachment is in progress (default 200 ms). */
  attachPollMs?: number;
  /** Give up waiting on the watcher and ask EC2 after this long (default 10 s). */
  attachWaitMaxMs?: number;
  /** A pass waits until the datastore has been quiet this long (default 20 ms), so a burst is one pass. */
  debounceMs?: number;
  /** Backoff after a failed pass: first (default 1 s) and ceiling (default 30 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Workload chains in parallel (default 4). */
  concurrency?: number;
  /** Policy of the EC2 calls (concurrency, attempts…); the timeout comes from FelixConfiguration. */
  ec2Policy?: Omit<ResilientEc2Options, 'requestTimeoutMs'>;
  /** Called after every pass (observability, benchmarks). */
  onPass?: (report: FabricReport) => void;
  /** Throttled (or otherwise failed-but-retryable) passes in a row before the Node gets an event (default 3). */
  throttleEventAfterPasses?: number;
  /**
   * `awsSrcDstCheck` (Enable/Disable) is checked on the primary ENI when the setting changes, after a
   * failure, and at least this often (default 30 min: one Describe per node, so a cluster of thousands of
   * nodes stays far below EC2's request budget while a hand-made change is still undone).
   */
  srcDstCheckIntervalMs?: number;
}

/** How long after our own write of the source/destination check a Describe may still show the old value. */
const SRC_DST_STALE_MS = 60_000;

/** Where FelixConfiguration `awsSrcDstCheck` stands on this node's primary ENI. */
export interface SrcDstCheckStatus {
  want: 'Enable' | 'Disable';
  networkInterfaceId: string | undefined;
  /** `Applied`: EC2 shows the wanted value (changed by us or already so); `Failed`: see `message`. */
  state: 'Applied' | 'Failed';
  message: string;
  checkedAt: string;
}

/** What the component knows, for `egw status` and the lab. */
export interface AwsFabricStatus {
  mode: EffectiveFelixSettings['awsSecondaryIPSupport'];
  instance: InstanceFacts | undefined;
  report: FabricReport | undefined;
  passes: number;
  lastError: string | undefined;
  /**
   * Set while AWS (EC2 or IMDS) cannot be read: since when (ISO time) and why. The ENI routing, the
   * Node's capacity and the Pods' conditions then stay as the last pass that could read left them.
   */
  stale: { since: string; reason: string } | undefined;
  /** Absent while `awsSrcDstCheck` is DoNothing (egw then never reads or changes the attribute). */
  srcDstCheck: SrcDstCheckStatus | undefined;
}

interface PassInputs {
  settings: EffectiveFelixSettings;
  fingerprint: string;
}

/**
 * The fabric component. `start()` begins following the store and reconciling in the background;
 * `stop()` ends it and waits for the pass in progress. Neither throws: failures are reported on the
 * Pods and the Node and logged.
 */
export class AwsFabric {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly informer: Informer;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private dirty = true;
  /** Datastore events seen; the loop re-reads its inputs when this moved. */
  private events = 0;
  private eventsSeen = -1;
  private lastEventAt = 0;
  private lastPassAt = 0;
  private awaitKey = '';
  private awaitGapMs = 0;
  private instance: InstanceFacts | undefined;
  private ec2: ResilientEc2 | undefined;
  private reconciler: FabricReconciler | undefined;
  private readonly statusValue: AwsFabricStatus = { mode: 'Disabled', instance: undefined, report: undefined, passes: 0, lastError: undefined, stale: undefined, srcDstCheck: undefined };
  /** When the primary ENI's source/destination check was last found as wanted (clock ms). */
  private srcDstCheckedAt = 0;
  private srcDstFailures = 0;
  /** Our last write of the attribute: EC2's Describe may show the value from before it for a while. */
  private srcDstWritten: { eniId: string; enabled: boolean; atMs: number } | undefined;
  /** The last report whose EC2 read succeeded: the known-good state kept through an outage. */
  private lastGood: FabricReport | undefined;
  private lastFingerprint = '';
  private failures = 0;
  private linuxDirty = true;
  private lastLinux = '';
  private readonly recorder: EventRecorder;
  /** Passes in a row that ended throttled (EC2's RequestLimitExceeded after the port's retries). */
  private throttledPasses = 0;

  constructor(
    private readonly deps: AwsFabricDeps,
    private readonly options: AwsFabricOptions,
  ) {
    this.clock = deps.clock ?? new SystemClock();
    this.log = (deps.logger ?? silentLogger()).child({ part: 'aws-fabric', node: options.nodeName });
    this.instance = deps.instance;
    this.recorder = deps.events ?? new NoEventRecorder();
    this.informer = new Informer({ store: deps.store, clock: this.clock, logger: this.log }, { kinds: FABRIC_KINDS }, { onEvent: (ev) => this.onEvent(ev.resource) });
  }

  /** Starts in the background. Idempotent. */
  start(): void {
    if (this.running !== undefined) return;
    this.informer.start();
    this.running = this.loop(this.stopping.signal).catch((err: unknown) => {
      this.log.error({ err: errorMessage(err) }, 'aws fabric loop stopped on an unexpected error');
    });
  }

  /** Stops and waits for the pass in progress. The ENIs stay as they are (a restart adopts them). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeUp?.();
    await this.running;
    await this.informer.stop();
  }

  /** The latest state, for status displays. */
  status(): AwsFabricStatus {
    return { ...this.statusValue };
  }

  /** Requests a pass now (e.g. after an external change the datastore does not show). */
  poke(): void {
    this.dirty = true;
    this.wakeUp?.();
  }

  /**
   * A change of a resource the fabric reads wakes the loop, which compares the desired state with the
   * last pass's (so its own status writes do not cause passes).
   */
  private onEvent(resource: StoredResource): void {
    const kind = resource.key.kind;
    if (kind === 'Pod') {
      const pod = resource.value as unknown as Pod;
      // Another node's gateway with Elastic IPs may be the holder an Elastic IP standby here waits on.
      if (pod.spec?.nodeName !== this.options.nodeName && !listsElasticIps(pod)) return;
    } else if (kind === 'Node' && resource.key.name !== this.options.nodeName) {
      return;
    }
    this.events++;
    this.lastEventAt = this.clock.now();
    this.wakeUp?.();
  }

  // ------------------------------------------------------------------------------------ loop

  private async loop(signal: AbortSignal): Promise<void> {
    try {
      await this.informer.waitForSync(signal);
    } catch {
      return;
    }
    let awaitingSince: number | undefined;
    let nextResync = 0;
    while (!signal.aborted) {
      this.eventsSeen = this.events;
      const inputs = this.inputs();
      const now = this.clock.now();
      const report = this.statusValue.report;
      // A pass when: the desired state changed, a resync or a retry is due, or a timed decision fell due.
      if (this.dirty || inputs.fingerprint !== this.lastFingerprint || now >= nextResync) {
        // A burst of changes (one commit of many pods arrives as many events) is taken as one.
        const quiet = this.lastEventAt + (this.options.debounceMs ?? 20) - now;
        if (quiet > 0 && inputs.fingerprint !== this.lastFingerprint) {
          await this.clock.sleep(quiet, signal).catch(() => undefined);
          continue;
        }
        this.dirty = false;
        const ok = await this.pass(inputs);
        this.lastFingerprint = inputs.fingerprint;
        nextResync = this.clock.now() + (ok ? (this.options.resyncIntervalMs ?? 60_000) : this.backoffMs());
        awaitingSince = undefined;
        const r = this.statusValue.report;
        if (r?.wakeInMs !== undefined) nextResync = Math.min(nextResync, this.clock.now() + r.wakeInMs + 1);
        // The same transitions still awaited after a pass: EC2 lags what IMDS shows (a detachment leaves
        // IMDS before EC2 reports the ENI available), so space further passes out.
        const awaitKey = stableJson(r?.awaiting ?? []);
        const poll = this.options.attachPollMs ?? 200;
        this.awaitGapMs = awaitKey === this.awaitKey && awaitKey !== '[]' ? Math.min(Math.max(this.awaitGapMs * 2, poll), 5_000) : 0;
        this.awaitKey = awaitKey;
        this.lastPassAt = this.clock.now();
        continue;
      }
      if (report !== undefined && report.awaiting.length > 0) {
        // An attachment (or detachment) is in progress: watch for it without EC2 calls, then pass.
        awaitingSince ??= now;
        if (now - this.lastPassAt >= this.awaitGapMs && (await this.awaitedDone(report))) {
          this.dirty = true;
          continue;
        }
        if (now - awaitingSince >= (this.options.attachWaitMaxMs ?? 10_000)) {
          this.dirty = true;
          continue;
        }
        await this.sleep(Math.min(this.options.attachPollMs ?? 200, Math.max(0, nextResync - now)), signal);
        continue;
      }
      if (this.linuxDirty) {
        await this.applyLinux(inputs.settings, report);
        // The last pass put the Linux side's problems (an interface not there yet) on the pods: now that
        // it converged, a pass rewrites their conditions instead of leaving them to the next resync.
        if (!this.linuxDirty) {
          this.dirty = true;
          continue;
        }
      }
      await this.sleep(Math.max(0, nextResync - now), signal, this.linuxDirty ? (this.options.attachPollMs ?? 200) * 5 : undefined);
    }
  }

  private backoffMs(): number {
    const base = this.options.retryBaseMs ?? 1_000;
    const max = this.options.retryMaxMs ?? 30_000;
    const raw = Math.min(max, base * 2 ** Math.min(this.failures - 1, 20));
    return Math.round(raw / 2 + (this.deps.random ?? Math.random)() * (raw / 2));
  }

  /** Sleeps until woken, the deadline, or the cap. */
  private async sleep(ms: number, signal: AbortSignal, cap?: number): Promise<void> {
    const wait = cap === undefined ? ms : Math.min(ms, cap);
    if (this.dirty || signal.aborted || this.events !== this.eventsSeen) return;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.wakeUp = () => controller.abort();
    try {
      await this.clock.sleep(wait, controller.signal);
    } catch {
      // woken
    } finally {
      this.wakeUp = undefined;
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async awaitedDone(report: FabricReport): Promise<boolean> {
    const watcher = this.watcher();
    if (watcher === undefined) return false;
    try {
      const macs = await watcher.attachedMacs();
      return report.awaiting.some((a) => macs.has(a.mac.toLowerCase()) === a.attached);
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'attach watcher failed');
      return false;
    }
  }

  private watcher(): AttachWatcher | undefined {
    if (this.deps.attachWatcher !== undefined) return this.deps.attachWatcher;
    if (this.deps.imds === undefined && this.deps.instance !== undefined) return undefined;
    return new ImdsAttachWatcher(this.imds());
  }

  private imdsClient: ImdsClient | undefined;
  private imds(): ImdsClient {
    this.imdsClient ??= this.deps.imds ?? new SdkImds();
    return this.imdsClient;
  }

  // ----------------------------------------------------------------------------------- inputs

  /** Each namespace's annotations (its Elastic-IP allow-list), by name. */
  private namespaceAnnotations(): Map<string, Readonly<Record<string, string>> | undefined> {
    return new Map(this.list<Namespace>('Namespace').map((n) => [n.metadata.name, n.metadata.annotations]));
  }

  private list<T>(kind: string): T[] {
    return this.informer.list(kind).map((s) => s.value as unknown as T);
  }

  private inputs(): PassInputs {
    const fcs = this.list<FelixConfiguration>('FelixConfiguration');
    const settings = effectiveFelixSettings(
      fcs.find((f) => f.metadata.name === 'default'),
      fcs.find((f) => f.metadata.name === `node.${this.options.nodeName}`),
    );
    const pods = this.list<Pod>('Pod');
    const pools = this.list<IPPool>('IPPool').filter((p) => p.spec !== undefined);
    const subnets = this.list<AWSSubnet>('AWSSubnet');
    const derived = deriveFabricWorkloads(this.options.nodeName, pods, pools, this.namespaceAnnotations());
    const fingerprint = stableJson({
      mode: settings.awsSecondaryIPSupport,
      srcDstCheck: settings.awsSrcDstCheck,
      hostIfaces: settings.egressIPHostIfacePattern,
      timeout: settings.awsRequestTimeout,
      priority: settings.awsSecondaryIPRoutingRulePriority,
      tables: settings.routeTableRanges,
      workloads: derived.workloads,
      problems: derived.problems,
      hosts: hostSecondarySubnets(pools),
      subnets: subnets.map((s) => s.spec),
      node: this.informer.get({ kind: 'Node', name: this.options.nodeName }) !== undefined,
    });
    return { settings, fingerprint };
  }

  // ------------------------------------------------------------------------------------ pass

  /** One pass; true when it ended without a retryable failure. */
  private async pass(inputs: PassInputs): Promise<boolean> {
    const srcDstOk = await this.reconcileSrcDstCheck(inputs.settings);
    const ok = await this.passFabric(inputs);
    return ok && srcDstOk;
  }

  /**
   * FelixConfiguration `awsSrcDstCheck` on the node's primary ENI (device index 0), as open-source Felix
   * does it: DoNothing makes no call at all; Enable/Disable read the attribute and change it when it
   * differs. Independent of `awsSecondaryIPSupport` (routing pod addresses that are not the ENI's own,
   * e.g. an overlay without encapsulation, needs the check off). True when nothing failed.
   */
  private async reconcileSrcDstCheck(settings: EffectiveFelixSettings): Promise<boolean> {
    const want = settings.awsSrcDstCheck;
    if (want === 'DoNothing') {
      this.statusValue.srcDstCheck = undefined;
      return true;
    }
    const prev = this.statusValue.srcDstCheck;
    const interval = this.options.srcDstCheckIntervalMs ?? 30 * 60_000;
    if (prev?.want === want && prev.state === 'Applied' && this.clock.now() - this.srcDstCheckedAt < interval) return true;
    const checkedAt = new Date(this.clock.now()).toISOString();
    const enabled = want === 'Enable';
    let eniId: string | undefined;
    try {
      const ec2 = await this.ensureEc2(settings);
      const instance = this.instance!;
      const enis = await ec2.describeNetworkInterfaces([
        { name: 'attachment.instance-id', values: [instance.instanceId] },
        { name: 'attachment.device-index', values: ['0'] },
      ]);
      const primary = enis.find((e) => e.macAddress.toLowerCase() === instance.primaryMac.toLowerCase()) ?? enis[0];
      if (primary === undefined) {
        throw new EgwError('AwsError', `EC2 shows no network interface at device index 0 of instance ${instance.instanceId}`, {
          retry: 'retry',
          hint: 'EC2 may not show a fresh instance yet; egw retries',
          details: { awsCode: 'PrimaryEniNotFound' },
        });
      }
      eniId = primary.id;
      // EC2 is eventually consistent: right after we wrote the opposite value, a Describe showing the
      // wanted one may be the value from before that write, so write again (the call is idempotent).
      const w = this.srcDstWritten;
      const mayBeStale = w !== undefined && w.eniId === primary.id && w.enabled !== enabled && this.clock.now() - w.atMs < SRC_DST_STALE_MS;
      let wrote = false;
      if (primary.sourceDestCheck !== enabled || mayBeStale) {
        await ec2.setSourceDestCheck({ networkInterfaceId: primary.id, enabled });
        this.srcDstWritten = { eniId: primary.id, enabled, atMs: this.clock.now() };
        wrote = true;
        this.log.info({ eni: primary.id, sourceDestCheck: enabled }, `awsSrcDstCheck ${want}: source/destination check of the primary ENI ${enabled ? 'enabled' : 'disabled'}`);
        this.recorder.record(this.nodeRef(), 'Normal', 'SrcDstCheckSet', 'ModifyNetworkInterfaceAttribute', `awsSrcDstCheck ${want}: source/destination check of ${primary.id} set to ${String(enabled)}`);
      }
      // After a write, look again soon (the next resync after a minute): a Describe may only then show it.
      this.srcDstCheckedAt = wrote ? this.clock.now() - interval + Math.min(interval, SRC_DST_STALE_MS) : this.clock.now();
      this.srcDstFailures = 0;
      this.statusValue.srcDstCheck = { want, networkInterfaceId: primary.id, state: 'Applied', message: `source/destination check ${enabled ? 'enabled' : 'disabled'}`, checkedAt };
      return true;
    } catch (err) {
      const e = isEgwError(err) ? err : new EgwError('Internal', errorMessage(err));
      this.srcDstFailures++;
      this.statusValue.srcDstCheck = { want, networkInterfaceId: eniId, state: 'Failed', message: e.describe(), checkedAt };
      this.log.warn({ err: e.message, awsCode: awsCodeOf(e), want }, 'awsSrcDstCheck could not be applied to the primary ENI; retrying');
      if (e.retry === 'terminal' || this.srcDstFailures >= (this.options.throttleEventAfterPasses ?? 3)) {
        this.recorder.record(this.nodeRef(), 'Warning', 'SrcDstCheckFailed', 'ModifyNetworkInterfaceAttribute', `awsSrcDstCheck ${want} cannot be applied to the primary ENI: ${e.describe()}`);
      }
      return false;
    }
  }

  /** The AWS secondary-IP part of a pass; true when it ended without a retryable failure. */
  private async passFabric(inputs: PassInputs): Promise<boolean> {
    const settings = inputs.settings;
    this.statusValue.mode = settings.awsSecondaryIPSupport;
    this.statusValue.passes++;
    const now = new Date(this.clock.now()).toISOString();
    if (settings.awsSecondaryIPSupport === 'Disabled') {
      // No EC2 calls at all: a cluster without the feature need not have AWS access. Capacity 0.
      await this.writeNode({ capacity: 0, allocatable: 0 }, { status: 'True', reason: 'Disabled', message: 'awsSecondaryIPSupport is Disabled' }, now);
      this.statusValue.report = undefined;
      this.linuxDirty = true;
      await this.applyLinux(settings, undefined);
      this.failures = 0;
      return true;
    }
    let reconciler: FabricReconciler;
    try {
      reconciler = await this.ensureReconciler(settings);
    } catch (err) {
      this.failures++;
      const e = isEgwError(err) ? err : new EgwError('Internal', errorMessage(err));
      this.statusValue.lastError = e.describe();
      this.log.warn({ err: e.message, awsCode: awsCodeOf(e) }, 'aws fabric cannot start');
      // A failed read is never an empty answer: the published capacity stays what it was.
      this.markStale(e.describe(), now);
      await this.writeNode(this.knownFigures(settings), { status: 'False', reason: awsCodeOf(e) ?? e.code, message: e.describe() }, now);
      // Terminal (no IAM permission, IMDS refused…) at once; a retryable failure only when it persists.
      if (e.retry === 'terminal' || this.failures >= (this.options.throttleEventAfterPasses ?? 3)) {
        this.recorder.record(this.nodeRef(), 'Warning', awsCodeOf(e) ?? e.code, 'DiscoverInstance', `the AWS fabric cannot start on this node: ${e.describe()}`);
      }
      return false;
    }
    const allPods = this.list<Pod>('Pod');
    const pods = allPods.filter((p) => p.spec?.nodeName === this.options.nodeName);
    const pools = this.list<IPPool>('IPPool').filter((p) => p.spec !== undefined);
    const derived = deriveFabricWorkloads(this.options.nodeName, allPods, pools, this.namespaceAnnotations());
    const report = await reconciler.reconcile({
      mode: settings.awsSecondaryIPSupport,
      workloads: derived.workloads,
      subnets: subnetFacts(this.list<AWSSubnet>('AWSSubnet')),
      allowRemovals: this.informer.inSync,
      hostSubnets: hostSecondarySubnets(pools),
    });
    this.options.onPass?.(report);
    if (report.stale) {
      // EC2 could not be read: its silence is not "no ENIs". Keep the last known-good ENI routing (or,
      // after a restart with no memory, leave the kernel as the previous agent left it), the published
      // capacity and the Pods' conditions; say so on the Node and in the status.
      const since = this.markStale(report.node.message, now);
      const good = this.lastGood;
      this.statusValue.report = good === undefined ? report : { ...report, interfaces: good.interfaces, limits: good.limits, foreignEnis: good.foreignEnis, awaiting: [] };
      this.statusValue.lastError = report.node.message;
      this.linuxDirty = true;
      await this.applyLinux(settings, this.statusValue.report);
      await this.writeNode(this.knownFigures(settings), { status: 'False', reason: 'AwsUnreachable', message: `running on the last known-good state since ${since}: ${report.node.message}` }, now);
      this.failures++;
      // A read that keeps failing (throttled, EC2 unreachable) is still something the user must see.
      this.recordEvents(report, [], pods, settings.awsSecondaryIPSupport);
      return false;
    }
    if (this.statusValue.stale !== undefined) this.log.info({ since: this.statusValue.stale.since }, 'aws reachable again: converging from a fresh read');
    this.statusValue.stale = undefined;
    this.lastGood = report;
    this.statusValue.report = report;
    this.statusValue.lastError = report.node.state === 'Ready' ? undefined : report.node.message;
    this.linuxDirty = true;
    const linuxProblems = await this.applyLinux(settings, report);
    // Status back to the datastore.
    await this.writeNode(
      this.knownFigures(settings),
      report.node.state === 'Ready' ? { status: 'True', reason: 'Ready', message: report.node.message } : { status: 'False', reason: report.node.reason, message: report.node.message },
      now,
    );
    const byPod = new Map<string, Condition>();
    for (const w of report.workloads) {
      const problem = w.state === 'Ready' ? linuxProblems.find((p) => w.networkInterfaceId !== undefined && p.eni === w.networkInterfaceId) : undefined;
      const c: Condition =
        w.state === 'Ready' && problem === undefined
          ? { type: '', status: 'True', reason: 'Ready', message: `${w.ip} ${w.message}` }
          : problem !== undefined
            ? { type: '', status: 'False', reason: problem.code, message: `${w.ip}: ${problem.message}` }
            : { type: '', status: 'False', reason: w.reason, message: `${w.ip}: ${w.message}` };
      const prev = byPod.get(w.pod);
      if (prev === undefined || (prev.status === 'True' && c.status === 'False')) byPod.set(w.pod, c);
    }
    for (const p of derived.problems) {
      const prev = byPod.get(p.pod);
      if (prev === undefined || prev.status === 'True') byPod.set(p.pod, { type: '', status: 'False', reason: p.reason, message: p.message });
    }
    for (const [pod, c] of byPod) {
      const [namespace, name] = pod.split('/') as [string, string];
      try {
        await writePodCondition(this.deps.store, namespace, name, { status: c.status, reason: c.reason, message: c.message }, now);
      } catch (err) {
        this.log.warn({ pod, err: errorMessage(err) }, 'cannot write the pod fabric condition');
      }
    }
    const failed = report.retry === 'retry' || report.retry === 'throttle' || report.node.state !== 'Ready';
    this.failures = failed ? this.failures + 1 : 0;
    this.recordEvents(report, derived.problems, pods, settings.awsSecondaryIPSupport);
    return !failed;
  }

  /**
   * Events for what a user must act on (docs/aws-fabric.md, "Reporting"): on the Pod, every address that
   * failed for good (`NoCapacity`, EC2's terminal codes such as `UnauthorizedOperation`, a wrong subnet)
   * or waits for a free Elastic IP, and the pod's annotation problems; on the Node, a terminal node-level
   * failure, and a retryable one or throttling that lasted {@link AwsFabricOptions.throttleEventAfterPasses}
   * passes. The recorder
   * aggregates the repeats of every pass into one Event's series.
   */
  private recordEvents(report: FabricReport, problems: { pod: string; reason: string; message: string }[], pods: Pod[], mode: EffectiveFelixSettings['awsSecondaryIPSupport']): void {
    const uidOf = new Map(pods.map((p) => [`${p.metadata.namespace ?? 'default'}/${p.metadata.name}`, p.metadata.uid]));
    const podRef = (pod: string): EventRegarding => {
      const [namespace, name] = pod.split('/') as [string, string];
      const uid = uidOf.get(pod);
      return { kind: 'Pod', namespace, name, ...(uid === undefined ? {} : { uid }) };
    };
    const place = mode === 'EnabledENIPerWorkload' ? 'CreateNetworkInterface' : 'AssignPrivateIpAddresses';
    for (const w of report.workloads) {
      if (w.state === 'Failed' || w.reason === 'NoFreeElasticIP') {
        this.recorder.record(podRef(w.pod), 'Warning', w.reason, w.reason === 'NoFreeElasticIP' ? 'AssociateAddress' : place, `${w.ip}: ${w.message}`);
      }
    }
    for (const p of problems) this.recorder.record(podRef(p.pod), 'Warning', p.reason, 'ReadAnnotations', p.message);
    const after = this.options.throttleEventAfterPasses ?? 3;
    // A node-level failure: terminal at once; a retryable one (EC2's 5xx, a timeout) once it persists.
    // Throttling has its own event below.
    const persistent = report.node.state === 'Pending' && this.failures >= after && report.node.reason !== 'RequestLimitExceeded';
    if (report.node.state === 'Failed' || persistent) this.recorder.record(this.nodeRef(), 'Warning', report.node.reason, 'ReconcileFabric', report.node.message);
    this.throttledPasses = report.retry === 'throttle' ? this.throttledPasses + 1 : 0;
    if (this.throttledPasses >= after) {
      const waiting = report.workloads.filter((w) => w.state !== 'Ready').length;
      this.recorder.record(
        this.nodeRef(),
        'Warning',
        'Throttled',
        'CallEC2',
        `EC2 throttled this node's calls (RequestLimitExceeded) in ${this.throttledPasses} passes in a row, after the EC2 port's own retries; ${waiting} gateway address(es) wait. Other clients of the account's EC2 request budget may be using it up.`,
      );
    }
  }

  private nodeRef(): EventRegarding {
    const node = this.informer.get({ kind: 'Node', name: this.options.nodeName });
    const uid = (node?.value as { metadata?: { uid?: string } } | undefined)?.metadata?.uid;
    return { kind: 'Node', name: this.options.nodeName, ...(uid === undefined ? {} : { uid }) };
  }

  /** Marks the state stale (once per outage: the first failure gives `since`); returns `since`. */
  private markStale(reason: string, now: string): string {
    if (this.statusValue.stale === undefined) this.log.warn({ reason }, 'aws unreachable: keeping the last known-good state');
    const since = this.statusValue.stale?.since ?? now;
    this.statusValue.stale = { since, reason };
    return since;
  }

  /**
   * The Node's aws-secondary-ipv4 figures to publish: from the last read of EC2 that succeeded, else
   * what the Node record says now (a restart during an outage publishes nothing new), else 0.
   */
  private knownFigures(settings: EffectiveFelixSettings): { capacity: number; allocatable: number } {
    const mode = settings.awsSecondaryIPSupport;
    const good = this.lastGood;
    if (good !== undefined) return { capacity: awsSecondaryCapacity(mode, good.limits), allocatable: awsSecondaryAllocatable(mode, good.limits, good.foreignEnis) };
    const status = (this.informer.get({ kind: 'Node', name: this.options.nodeName })?.value as { status?: { capacity?: Record<string, unknown>; allocatable?: Record<string, unknown> } } | undefined)?.status;
    const figure = (v: unknown): number => (typeof v === 'string' || typeof v === 'number') && /^[0-9]+$/.test(String(v)) ? Number(v) : 0;
    return { capacity: figure(status?.capacity?.[AWS_SECONDARY_IPV4_RESOURCE]), allocatable: figure(status?.allocatable?.[AWS_SECONDARY_IPV4_RESOURCE]) };
  }

  /** The instance's facts (IMDS, once) and the EC2 port for its region, with the current timeout. */
  private async ensureEc2(settings: EffectiveFelixSettings): Promise<ResilientEc2> {
    this.instance ??= await discoverInstance(this.imds());
    this.statusValue.instance = this.instance;
    if (this.ec2 === undefined) {
      const raw = typeof this.deps.ec2 === 'function' ? this.deps.ec2(this.instance.region) : this.deps.ec2;
      this.ec2 = new ResilientEc2(raw, { clock: this.clock, logger: this.log, ...(this.deps.random === undefined ? {} : { random: this.deps.random }) }, this.options.ec2Policy ?? {});
    }
    this.ec2.setRequestTimeoutMs(parseDuration(settings.awsRequestTimeout) ?? 30_000);
    return this.ec2;
  }

  private async ensureReconciler(settings: EffectiveFelixSettings): Promise<FabricReconciler> {
    const ec2 = await this.ensureEc2(settings);
    const instance = this.instance!;
    this.reconciler ??= new FabricReconciler(
      { ec2, clock: this.clock, logger: this.log, hostIps: this.deps.hostIps ?? new IpamHostIps(this.deps.store, this.options.nodeName, (s) => this.hostPools(s), this.clock) },
      {
        cluster: this.options.cluster ?? 'egw',
        node: this.options.nodeName,
        instance,
        ...(this.options.gcCooldownMs === undefined ? {} : { gcCooldownMs: this.options.gcCooldownMs }),
        ...(this.options.concurrency === undefined ? {} : { concurrency: this.options.concurrency }),
      },
    );
    return this.reconciler;
  }

  private hostPools(subnetId: string): string[] {
    return this.list<IPPool>('IPPool')
      .filter((p) => p.spec !== undefined && isAwsBacked(p) && p.spec.awsSubnetID === subnetId && p.spec.disabled !== true && (p.spec.allowedUses ?? []).includes('HostSecondaryInterface'))
      .map((p) => p.metadata.name)
      .sort();
  }

  private async writeNode(figures: { capacity: number; allocatable: number }, condition: Omit<Condition, 'type' | 'lastTransitionTime'>, now: string): Promise<void> {
    try {
      await writeNodeFabricStatus(this.deps.store, this.options.nodeName, figures, condition, now);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'cannot write the node fabric status');
    }
  }

  /** Programs the Linux side; returns problems by ENI. Applied again while problems remain. */
  private async applyLinux(settings: EffectiveFelixSettings, report: FabricReport | undefined): Promise<{ eni: string; code: string; message: string }[]> {
    const linux = this.deps.linux;
    if (linux === undefined || (report?.stale === true && this.lastGood === undefined)) {
      // No Linux side, or nothing known to be good yet (a restart during an outage): leave the kernel.
      this.linuxDirty = false;
      return [];
    }
    const state: EniState = { interfaces: (report?.interfaces ?? []).map((i) => ({ mac: i.mac, subnetCidr: i.subnetCidr, workloadIps: i.workloadIps })) };
    // A pattern that does not parse was refused at validation; one stored anyway marks nothing.
    const hostIfaces = parseIfacePattern(settings.egressIPHostIfacePattern);
    const config = { routeTableRanges: settings.routeTableRanges, rulePriority: settings.awsSecondaryIPRoutingRulePriority, ...(hostIfaces.errors.length === 0 && settings.egressIPHostIfacePattern.trim() !== '' ? { hostIfaces: hostIfaces.pattern } : {}) };
    const key = stableJson({ state, config });
    try {
      const result = await linux.apply(state, config);
      for (const f of result.failures) this.log.warn({ failure: f.message }, 'eni routing command failed');
      const problems = result.problems.flatMap((p) => {
        const eni = report?.interfaces.find((i) => p.object.toLowerCase().includes(i.mac.toLowerCase()));
        return eni === undefined ? [] : [{ eni: eni.networkInterfaceId, code: p.code, message: p.message }];
      });
      this.linuxDirty = problems.length > 0 || result.failures.length > 0;
      if (key !== this.lastLinux && !this.linuxDirty) this.log.info({ interfaces: state.interfaces.length }, 'eni routing converged');
      this.lastLinux = key;
      return problems;
    } catch (err) {
      this.linuxDirty = true;
      this.log.warn({ err: errorMessage(err) }, 'eni routing failed');
      return (report?.interfaces ?? []).map((i) => ({ eni: i.networkInterfaceId, code: 'CommandFailed', message: errorMessage(err) }));
    }
  }
}
