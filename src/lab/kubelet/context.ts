import type { Datastore, StoredResource } from '../../datastore/contract.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { CniPort } from './cni.js';
import type { NetnsPort } from './netns.js';
import type { PodCredentialsPort } from './pod-tokens.js';
import type { ProberPort } from './prober.js';
import type { ProcessPort } from './processes.js';
import type { StateDir } from './state.js';

/** The settings every pod worker runs with (resolved, no defaults left open). */
export interface WorkerOptions {
  /** The datastore spec given to containers as `EGW_DATASTORE`. */
  datastore: string;
  netnsPrefix: string;
  /** argv prefix that runs `egw` (e.g. `[node, <repo>/dist/src/cli/main.js]`). */
  egwCommand: readonly string[];
  /** Kubernetes timings (probes, restart back-off) are divided by this. */
  speedup: number;
  /** Longest pause between two passes of a pod (process liveness, retries). */
  syncIntervalMs: number;
  /** The pod's interface (`CNI_IFNAME`). */
  ifname: string;
  /** The pod's default gateway when the CNI result names none. */
  defaultGateway: string;
  /** `PATH` of container processes. */
  path: string;
}

/** What a pod worker gets from its kubelet: the ports, the options, and the informer's view. */
export interface KubeletContext {
  readonly nodeName: string;
  readonly options: WorkerOptions;
  readonly store: Datastore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly cni: CniPort;
  readonly netns: NetnsPort;
  readonly processes: ProcessPort;
  readonly prober: ProberPort;
  readonly state: StateDir;
  /** Service-account credentials for pods (on a Kubernetes API server); absent: none. */
  readonly credentials?: PodCredentialsPort | undefined;
  /** Aborted when the kubelet stops. */
  readonly stopping: AbortSignal;
  /** True while the informer's cache is complete (never decide that a pod is gone otherwise). */
  inSync(): boolean;
  /** The stored Pod with that uid, from the informer's cache. */
  podByUid(uid: string): StoredResource | undefined;
  /** This node's InternalIP (the pods' hostIP). */
  hostIP(): string | undefined;
}
