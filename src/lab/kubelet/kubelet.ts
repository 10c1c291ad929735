/**
 * The lab's kubelet for one node: follows Pods and Nodes with an informer, keeps one {@link PodWorker}
 * per pod bound to the node (and per pod it still has local state for), and posts the node's `Ready`
 * condition with a heartbeat so the scheduler skips dead nodes.
 *
 * Start-up is level-triggered: the state files of the node are read first and every pod they name gets
 * a worker that *adopts* what exists (a namespace that exists is not re-created, a process that still
 * runs is kept); once the informer is in sync, pods that no longer exist are torn down (CNI DEL, namespace
 * deleted). Stopping the kubelet leaves the pods running, as stopping a real kubelet does.
 */
import type { Datastore, JsonObject, StoredResource } from '../../datastore/contract.js';
import { Informer } from '../../datastore/informer.js';
import { SystemClock, type Clock } from '../../platform/clock.js';
import { errorMessage, isEgwError } from '../../platform/errors.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { heartbeatStatus, microTime, NODE_LEASE_NAMESPACE, registeredNode, renewedLease } from './node-registration.js';
import type { CniPort } from './cni.js';
import type { KubeletContext, WorkerOptions } from './context.js';
import type { NetnsPort } from './netns.js';
import { nodeInternalIp } from './pod-spec.js';
import { PodWorker } from './pod-worker.js';
import type { ProberPort } from './prober.js';
import type { ProcessPort } from './processes.js';
import type { PodRecord, StateDir } from './state.js';
import type { PodCredentialsPort } from './pod-tokens.js';
import { LAB_POD_GATEWAY } from './cni.js';

/** The kinds the kubelet follows. */
export const KUBELET_WATCHED_KINDS = ['Pod', 'Node'] as const;

/** The ports the kubelet works through. */
export interface LabKubeletDeps {
  store: Datastore;
  cni: CniPort;
  netns: NetnsPort;
  processes: ProcessPort;
  prober: ProberPort;
  state: StateDir;
  /** Service-account credentials for the pods (on a Kubernetes API server). */
  credentials?: PodCredentialsPort;
  clock?: Clock;
  logger?: Logger;
}

/** What the kubelet is told. */
export interface LabKubeletOptions extends Partial<Omit<WorkerOptions, 'datastore' | 'netnsPrefix' | 'egwCommand'>> {
  nodeName: string;
  datastore: string;
  netnsPrefix: string;
  egwCommand: readonly string[];
  /** How often the node's Ready heartbeat is written (default 10 s, Kubernetes' node status period). */
  heartbeatIntervalMs?: number;
  /**
   * The Node this kubelet registers when none exists (as a kubelet does on a cluster); its status's
   * capacity, allocatable and addresses are kept on every heartbeat. Absent: the Node is someone else's
   * to create (the lab's own datastore), and the kubelet only posts `Ready`.
   */
  registerNode?: JsonObject;
  /** Also renew the node's Lease in `kube-node-lease` on every heartbeat (on a Kubernetes API server). */
  nodeLease?: boolean;
}

export { NODE_READY } from './node-registration.js';

/** The lab kubelet (see the module comment). */
export class LabKubelet {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly informer: Informer;
  private readonly workers = new Map<string, PodWorker>();
  private readonly uidToKey = new Map<string, string>();
  private readonly stopController = new AbortController();
  private readonly ctx: KubeletContext;
  private readonly heartbeatMs: number;
  private heartbeatLoop: Promise<void> | undefined;
  private nodeMissingLogged = false;
  private started = false;

  constructor(
    private readonly deps: LabKubeletDeps,
    private readonly options: LabKubeletOptions,
  ) {
    this.log = (deps.logger ?? silentLogger()).child({ node: options.nodeName });
    this.clock = deps.clock ?? new SystemClock();
    this.heartbeatMs = options.heartbeatIntervalMs ?? 10_000;
    this.informer = new Informer(
      { store: deps.store, clock: this.clock, logger: this.log },
      { kinds: KUBELET_WATCHED_KINDS },
      {
        onEvent: (ev) => this.onEvent(ev.type, ev.resource),
        onSync: () => this.onSync(),
      },
    );
    const workerOptions: WorkerOptions = {
      datastore: options.datastore,
      netnsPrefix: options.netnsPrefix,
      egwCommand: options.egwCommand,
      speedup: Math.max(1, options.speedup ?? 1),
      syncIntervalMs: options.syncIntervalMs ?? 1_000,
      ifname: options.ifname ?? 'eth0',
      defaultGateway: options.defaultGateway ?? LAB_POD_GATEWAY,
      path: options.path ?? process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    };
    this.ctx = {
      nodeName: options.nodeName,
      options: workerOptions,
      store: deps.store,
      clock: this.clock,
      log: this.log,
      cni: deps.cni,
      netns: deps.netns,
      processes: deps.processes,
      prober: deps.prober,
      state: deps.state,
      credentials: deps.credentials,
      stopping: this.stopController.signal,
      inSync: () => this.informer.inSync,
      podByUid: (uid) => this.podByUid(uid),
      hostIP: () => nodeInternalIp(this.informer.get({ kind: 'Node', name: options.nodeName })?.value),
    };
    deps.processes.onExit(() => {
      for (const w of this.workers.values()) w.notify();
    });
  }

  /** True while the informer's cache is complete. */
  get inSync(): boolean {
    return this.informer.inSync;
  }

  /** Resolves when the informer is in sync. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    return this.informer.waitForSync(signal);
  }

  /** The pods the kubelet manages now: uid → its local record's namespace/name (for inspection and tests). */
  managedPods(): Map<string, string | undefined> {
    return new Map([...this.workers].map(([uid, w]) => [uid, w.record === undefined ? undefined : `${w.record.namespace}/${w.record.name}`]));
  }

  /**
   * Adopts the node's state files, then follows the store and heartbeats in the background. Idempotent.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const rec of this.deps.state.list()) {
      this.log.info({ pod: `${rec.namespace}/${rec.name}`, netns: rec.netns }, 'adopting pod from local state');
      this.worker(rec.uid, rec);
    }
    this.informer.start();
    this.heartbeatLoop = this.heartbeats();
  }

  /** Stops following the store; pod processes and namespaces are left as they are. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await Promise.all([...this.workers.values()].map((w) => w.stopped()));
    await this.heartbeatLoop;
    await this.informer.stop();
  }

  private podByUid(uid: string): StoredResource | undefined {
    const key = this.uidToKey.get(uid);
    if (key === undefined) return undefined;
    const [namespace, name] = key.split('/') as [string, string];
    const s = this.informer.get({ kind: 'Pod', namespace, name });
    return (s?.value['metadata'] as { uid?: unknown } | undefined)?.uid === uid ? s : undefined;
  }

  private worker(uid: string, adopted?: PodRecord): PodWorker {
    let w = this.workers.get(uid);
    if (w === undefined || w.done) {
      w = new PodWorker(this.ctx, uid, adopted);
      this.workers.set(uid, w);
      const created = w;
      w.start();
      void created.stopped().then(() => {
        if (this.workers.get(uid) === created && created.done) this.workers.delete(uid);
      });
    }
    return w;
  }

  private onEvent(type: 'added' | 'updated' | 'deleted', r: StoredResource): void {
    if (this.stopController.signal.aborted) return;
    if (r.key.kind === 'Node') {
      if (r.key.name === this.options.nodeName) for (const w of this.workers.values()) w.notify();
      return;
    }
    const meta = r.value['metadata'] as { uid?: unknown } | undefined;
    const uid = typeof meta?.uid === 'string' ? meta.uid : undefined;
    if (uid === undefined) return;
    const key = `${r.key.namespace ?? ''}/${r.key.name}`;
    if (type === 'deleted') {
      if (this.uidToKey.get(uid) === key) this.uidToKey.delete(uid);
      this.workers.get(uid)?.notify();
      return;
    }
    this.uidToKey.set(uid, key);
    const nodeName = (r.value['spec'] as { nodeName?: unknown } | undefined)?.nodeName;
    if (nodeName === this.options.nodeName) this.worker(uid).notify();
    else this.workers.get(uid)?.notify();
  }

  private onSync(): void {
    // After a (re-)list every worker re-checks: pods that vanished meanwhile are torn down now.
    for (const w of this.workers.values()) w.notify();
  }

  private async heartbeats(): Promise<void> {
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      try {
        await this.heartbeat();
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'node heartbeat failed');
      }
      await new Promise<void>((resolve) => {
        const done = (): void => resolve();
        signal.addEventListener('abort', done, { once: true });
        this.clock.sleep(this.heartbeatMs).then(done, done);
      });
    }
  }

  /**
   * Posts the node's Ready condition with a fresh `lastHeartbeatTime` (CAS, other fields kept), registering
   * the Node first when {@link LabKubeletOptions.registerNode} is given and it does not exist, then renews
   * the node's Lease when {@link LabKubeletOptions.nodeLease} is set.
   */
  async heartbeat(): Promise<boolean> {
    const posted = await this.postNodeStatus();
    if (posted && this.options.nodeLease === true) await this.renewLease();
    return posted;
  }

  private async postNodeStatus(): Promise<boolean> {
    const key = { kind: 'Node', name: this.options.nodeName };
    const registration = this.options.registerNode;
    for (let attempt = 0; attempt < 8; attempt++) {
      const now = new Date(this.clock.now()).toISOString();
      const cur = await this.deps.store.get(key);
      if (cur === undefined) {
        if (registration === undefined) {
          if (!this.nodeMissingLogged) this.log.warn({}, 'node record missing; the kubelet posts readiness once it exists');
          this.nodeMissingLogged = true;
          return false;
        }
        try {
          await this.deps.store.commit([{ op: 'create', key, value: registeredNode(registration, now) }]);
          this.log.info({}, 'node registered');
          return true;
        } catch (err) {
          if (!isEgwError(err, 'AlreadyExists', 'Conflict')) throw err;
          continue;
        }
      }
      this.nodeMissingLogged = false;
      const status = heartbeatStatus(cur.value['status'], registration, now);
      try {
        await this.deps.store.commit([{ op: 'update', key, value: { ...cur.value, status } as unknown as JsonObject, expectedRevision: cur.modRevision }]);
        return true;
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'NotFound')) throw err;
      }
    }
    return false;
  }

  private async renewLease(): Promise<void> {
    const key = { kind: 'Lease', namespace: NODE_LEASE_NAMESPACE, name: this.options.nodeName };
    for (let attempt = 0; attempt < 4; attempt++) {
      const cur = await this.deps.store.get(key);
      const value = renewedLease(this.options.nodeName, cur?.value, microTime(this.clock.now()));
      try {
        await this.deps.store.commit([cur === undefined ? { op: 'create', key, value } : { op: 'update', key, value, expectedRevision: cur.modRevision }]);
        return;
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) throw err;
      }
    }
  }
}
