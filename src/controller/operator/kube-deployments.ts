/**
 * Gateway workloads as real `apps/v1` Deployments on the Kubernetes API server, as Calico's operator
 * makes them (kube-controller-manager makes the ReplicaSets and pods, its garbage collector removes a
 * Deployment whose EgressGateway is deleted).
 *
 * Contract (docs/operator.md, "Where the workloads go"):
 * - Idempotent by construction: the Deployment is written with server-side apply, field manager
 *   `egw-operator`, and only when the rendered object is not already a subset of the live one
 *   ({@link isSubset}): an unchanged EgressGateway costs one GET and no write (resourceVersion unchanged).
 * - Ownership: a Deployment is ours when its controlling owner reference is the EgressGateway
 *   (`operator.tigera.io/v1`) of the same name; it also carries `app.kubernetes.io/managed-by: egw-operator`
 *   so that the watch lists only ours. A Deployment of that name that nothing controls is adopted (as
 *   Calico's operator does); one controlled by another object is never touched: the pass fails with a
 *   terminal `InvalidInput` (shown Degraded). One controlled by an earlier EgressGateway of the same name
 *   (other uid) is deleted and made again.
 * - Deletion: {@link remove} deletes the Deployments controlled by a gone EgressGateway with a uid
 *   precondition (the engine calls it only after the first full pass, i.e. after the watch is in sync).
 * - The ServiceAccount `egw-gateway` of the namespace and the ClusterRoleBinding `egw-gateway-<namespace>`
 *   to the ClusterRole `egw-gateway` (made by `egw render install`) are applied before the first
 *   Deployment of a namespace in this process; they are shared by the namespace's gateways and not deleted.
 * - The EgressGateway's status goes to its `/status` subresource (JSON merge patch); defaults written
 *   back go through the datastore (the API server ignores `status` there).
 */
import { ApiException, AppsV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, makeInformer, PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import type { EgressGateway } from '../../api/index.js';
import type { Datastore, StoredResource } from '../../datastore/contract.js';
import { writeOpFor } from '../../datastore/resources.js';
import { EgwError, errorMessage } from '../../platform/errors.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import type { Deployment } from './k8s-types.js';
import { DATASTORE_ENV, EGRESS_GATEWAY_API_VERSION, GATEWAY_SERVICE_ACCOUNT, KUBE_GATEWAY_POD_SETTINGS } from './render.js';
import { controllingEgressGateway, isSubset, observeDeployment, ownerKey, type GatewayWorkloads, type WorkloadOwner, type WorkloadResult } from './workloads.js';

/** The server-side-apply field manager of everything the operator writes. */
export const OPERATOR_FIELD_MANAGER = 'egw-operator';
/** The label on every object the operator makes on Kubernetes (the watch selects on it). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'egw-operator';
/** The ClusterRole gateway pods are bound to (src/install/rbac.ts makes it). */
export const GATEWAY_CLUSTER_ROLE = 'egw-gateway';

/** A JSON object as the API server returns it. */
export type KubeObject = Record<string, unknown>;

/** What {@link KubeDeployments} uses. */
export interface KubeDeploymentsDeps {
  /** The API server (a kubeconfig, or the in-cluster service account). */
  kubeConfig: KubeConfig;
  /** The datastore the EgressGateways are read from (the Kubernetes backend), for the default write-back. */
  store: Datastore;
  /** Default: silent. */
  logger?: Logger;
  /** Delay before a broken Deployment watch is started again, ms; default 1,000. */
  watchRestartMs?: number;
}

/**
 * The rendered Deployment as the operator applies it on Kubernetes: the render plus the managed-by label
 * on the Deployment (not on the pod template, whose labels are the selector's). Pure.
 */
export function deploymentToApply(desired: Deployment): Deployment {
  return { ...desired, metadata: { ...desired.metadata, labels: { ...desired.metadata.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } } };
}

/** The ServiceAccount and ClusterRoleBinding gateway pods of `namespace` need (see the module comment). Pure. */
export function gatewayIdentityObjects(namespace: string): KubeObject[] {
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: GATEWAY_SERVICE_ACCOUNT, namespace, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${GATEWAY_CLUSTER_ROLE}-${namespace}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: GATEWAY_CLUSTER_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: GATEWAY_SERVICE_ACCOUNT, namespace }],
    },
  ];
}

/**
 * The API server the operator writes Deployments to: the kubeconfig `path` (the `kubernetes:PATH`
 * datastore spec), else KUBECONFIG, else ~/.kube/config, else the in-cluster service account.
 * Throws `DatastoreUnavailable` (terminal) when none loads.
 */
export function loadOperatorKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (path !== undefined && path !== '') kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new EgwError('DatastoreUnavailable', `cannot load the kubeconfig ${path ?? ''}: ${errorMessage(err)}`, {
      retry: 'terminal',
      cause: err,
      hint: 'give --datastore kubernetes:/path/to/kubeconfig, set KUBECONFIG, or run in a pod with a service account',
    });
  }
  if (kc.getCurrentCluster() === null) {
    throw new EgwError('DatastoreUnavailable', 'no Kubernetes cluster in the kubeconfig', { retry: 'terminal', hint: 'set KUBECONFIG or run in a pod with a service account' });
  }
  return kc;
}

/** Gateway workloads as `apps/v1` Deployments. Start the watch with {@link start} (the operator does). */
export class KubeDeployments implements GatewayWorkloads {
  readonly mechanism = 'kubernetes-deployments' as const;
  readonly watchedKinds = [] as const;
  /** Gateways reach the datastore through the API server with their pod's service account. */
  readonly podSettings = KUBE_GATEWAY_POD_SETTINGS;

  private readonly objects: KubernetesObjectApi;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly kc: KubeConfig;
  private readonly store: Datastore;
  private readonly log: Logger;
  private readonly watchRestartMs: number;
  /** Namespaces whose ServiceAccount and binding this process has applied. */
  private readonly identities = new Set<string>();
  private informer: ReturnType<typeof makeInformer<V1Deployment>> | undefined;
  private synced: Promise<void> | undefined;
  private isSynced = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(deps: KubeDeploymentsDeps) {
    this.kc = deps.kubeConfig;
    this.objects = KubernetesObjectApi.makeApiClient(deps.kubeConfig);
    this.apps = deps.kubeConfig.makeApiClient(AppsV1Api);
    this.custom = deps.kubeConfig.makeApiClient(CustomObjectsApi);
    this.store = deps.store;
    this.log = deps.logger ?? silentLogger();
    this.watchRestartMs = deps.watchRestartMs ?? 1000;
  }

  /** Not in the datastore: the Deployments are watched by {@link start}. */
  ownersOf(): string[] {
    return [];
  }

  /**
   * Lists and watches our Deployments (by the managed-by label); every change enqueues its controlling
   * EgressGateway. A broken watch is started again after `watchRestartMs` (re-listing). Idempotent.
   */
  start(onChange: (namespace: string, name: string) => void): void {
    if (this.informer !== undefined) return;
    this.stopped = false;
    const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
    const informer = makeInformer<V1Deployment>(this.kc, '/apis/apps/v1/deployments', () => this.apps.listDeploymentForAllNamespaces({ labelSelector: selector }), selector);
    const changed = (d: V1Deployment): void => {
      const owner = controllingEgressGateway(d);
      if (owner !== undefined) onChange(d.metadata?.namespace ?? 'default', owner.name);
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.log.warn({ err: errorMessage(err) }, 'gateway Deployment watch failed; starting it again');
      this.restartTimer = setTimeout(() => {
        if (!this.stopped) informer.start().catch((e: unknown) => this.log.warn({ err: errorMessage(e) }, 'gateway Deployment watch did not start'));
      }, this.watchRestartMs);
    });
    this.informer = informer;
    // start() resolves once the first list is in the cache: that is the in-sync point.
    this.synced = this.startUntilListed(informer);
  }

  private async startUntilListed(informer: NonNullable<typeof this.informer>): Promise<void> {
    for (;;) {
      try {
        await informer.start();
        this.isSynced = true;
        return;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: errorMessage(err) }, 'listing gateway Deployments failed; retrying');
        await new Promise((r) => setTimeout(r, this.watchRestartMs));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    const informer = this.informer;
    this.informer = undefined;
    this.isSynced = false;
    if (informer !== undefined) await informer.stop();
  }

  async waitForSync(signal: AbortSignal): Promise<void> {
    if (this.synced === undefined) return;
    await Promise.race([
      this.synced,
      new Promise<void>((_, reject) => {
        if (signal.aborted) reject(new EgwError('Timeout', 'stopped while waiting for the gateway Deployment watch'));
        signal.addEventListener('abort', () => reject(new EgwError('Timeout', 'stopped while waiting for the gateway Deployment watch')), { once: true });
      }),
    ]);
  }

  /** Owners named by our Deployments: from the watch's cache once in sync, else listed now. */
  async ownerKeys(): Promise<string[]> {
    const items: readonly KubernetesObject[] = this.informer !== undefined && this.isSynced ? this.informer.list() : await this.listOurs(undefined);
    const keys = new Set<string>();
    for (const d of items) {
      const owner = controllingEgressGateway(d);
      if (owner !== undefined) keys.add(ownerKey(d.metadata?.namespace ?? 'default', owner.name));
    }
    return [...keys];
  }

  async apply(owner: WorkloadOwner, desired: Deployment): Promise<WorkloadResult> {
    const want = deploymentToApply(desired);
    const result: WorkloadResult = { counts: observeDeployment(undefined).counts, complete: false, created: [], deleted: [], wrote: false };
    let live = await this.getDeployment(owner.namespace, owner.name);
    if (live !== undefined && !hasController(live)) {
      // A Deployment of the EgressGateway's name that nothing controls (made by hand, or left by an operator
      // that was uninstalled with --cascade=orphan) is adopted, as Calico's operator (controller-runtime)
      // adopts it: the apply below sets our owner reference and takes over the fields we render.
      // (It lacks our owner reference, so it is not a subset of what we render: the apply happens.)
      this.log.info({ namespace: owner.namespace, name: owner.name }, 'adopting the existing gateway Deployment, which had no controller');
    } else if (live !== undefined) {
      const controller = controllingEgressGateway(live);
      if (controller === undefined || controller.name !== owner.name) {
        // InvalidInput, not AlreadyExists: the pass must not be retried as a race; a change of name is needed.
        throw new EgwError('InvalidInput', `Deployment ${owner.namespace}/${owner.name} exists and is controlled by another object, not EgressGateway ${owner.name}`, {
          retry: 'terminal',
          hint: 'rename or delete that Deployment; egw never changes a Deployment it does not own',
          details: { namespace: owner.namespace, name: owner.name },
        });
      }
      if (controller.uid !== owner.uid) {
        // Left by an earlier EgressGateway of the same name: garbage, as Kubernetes' GC would find it.
        await this.deleteDeployment(live);
        result.deleted.push(owner.name);
        result.wrote = true;
        live = undefined;
      }
    }
    if (live === undefined || !isSubset(want, live)) {
      if (!this.identities.has(owner.namespace)) {
        for (const obj of gatewayIdentityObjects(owner.namespace)) await this.serverSideApply(obj);
        this.identities.add(owner.namespace);
      }
      const existed = live !== undefined;
      live = await this.serverSideApply(want as unknown as KubeObject);
      if (!existed) result.created.push(owner.name);
      result.wrote = true;
      this.log.info({ namespace: owner.namespace, name: owner.name }, 'gateway Deployment applied');
    }
    const seen = observeDeployment(live);
    return { ...result, counts: seen.counts, complete: seen.complete };
  }

  async observe(owner: WorkloadOwner): Promise<WorkloadResult> {
    const live = await this.getDeployment(owner.namespace, owner.name);
    const ours = live !== undefined && controllingEgressGateway(live)?.uid === owner.uid;
    const seen = observeDeployment(ours ? live : undefined);
    return { counts: seen.counts, complete: false, created: [], deleted: [], wrote: false };
  }

  async remove(owner: WorkloadOwner): Promise<WorkloadResult> {
    const result: WorkloadResult = { counts: observeDeployment(undefined).counts, complete: true, created: [], deleted: [], wrote: false };
    for (const d of await this.listOurs(owner.namespace)) {
      if (controllingEgressGateway(d)?.name !== owner.name) continue;
      await this.deleteDeployment(d as unknown as KubeObject);
      result.deleted.push(d.metadata?.name ?? '');
      result.wrote = true;
    }
    return result;
  }

  async writeEgressGateway(stored: StoredResource, next: EgressGateway, change: { specChanged: boolean; statusChanged: boolean }): Promise<void> {
    if (change.specChanged) await this.store.commit([writeOpFor(next, stored)]);
    if (!change.statusChanged) return;
    const [group, version] = EGRESS_GATEWAY_API_VERSION.split('/') as [string, string];
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        { group, version, namespace: next.metadata.namespace ?? 'default', plural: 'egressgateways', name: next.metadata.name, body: { status: next.status ?? null }, fieldManager: OPERATOR_FIELD_MANAGER },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      throw kubeError(err, `patch the status of EgressGateway ${next.metadata.namespace ?? 'default'}/${next.metadata.name}`);
    }
  }

  private async getDeployment(namespace: string, name: string): Promise<KubeObject | undefined> {
    try {
      return (await this.objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace } })) as unknown as KubeObject;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw kubeError(err, `read Deployment ${namespace}/${name}`);
    }
  }

  private async listOurs(namespace: string | undefined): Promise<KubernetesObject[]> {
    try {
      const list = await this.objects.list('apps/v1', 'Deployment', namespace, undefined, undefined, undefined, undefined, `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`);
      return list.items;
    } catch (err) {
      throw kubeError(err, 'list gateway Deployments');
    }
  }

  /** Server-side apply, field manager `egw-operator`, forced (the fields are ours to set). */
  private async serverSideApply(obj: KubeObject): Promise<KubeObject> {
    try {
      return await this.objects.patch(obj, undefined, undefined, OPERATOR_FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      const meta = metaOf(obj);
      throw kubeError(err, `apply ${String(obj['kind'])} ${typeof meta['namespace'] === 'string' ? `${meta['namespace']}/` : ''}${String(meta['name'])}`);
    }
  }

  /** Deletes a Deployment we read, only if it is still that one (uid precondition); gone already = done. */
  private async deleteDeployment(live: KubeObject): Promise<void> {
    const meta = metaOf(live);
    const name = String(meta['name']);
    const namespace = String(meta['namespace']);
    try {
      await this.objects.delete(
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace } },
        undefined,
        undefined,
        undefined,
        undefined,
        'Background',
        { preconditions: { uid: String(meta['uid']) } },
      );
      this.log.info({ namespace, name }, 'gateway Deployment deleted');
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return;
      throw kubeError(err, `delete Deployment ${namespace}/${name}`);
    }
  }
}

/** An API error as an EgwError: 409 Conflict (read again), 404 NotFound, 422/400 InvalidInput, 429 throttle, else unavailable. */
export function kubeError(err: unknown, what: string): EgwError {
  if (!(err instanceof ApiException)) {
    return new EgwError('DatastoreUnavailable', `cannot ${what}: ${errorMessage(err)}`, { retry: 'retry', cause: err, hint: 'is the API server reachable?' });
  }
  const body = err.body as unknown;
  const message = typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>)['message'] === 'string' ? String((body as Record<string, unknown>)['message']) : `HTTP ${err.code}`;
  const text = `cannot ${what}: ${message}`;
  switch (err.code) {
    case 409:
      return new EgwError('Conflict', text, { retry: 'retry', cause: err });
    case 404:
      return new EgwError('NotFound', text, { cause: err, hint: "are egw's CRDs installed? egw render install | kubectl apply -f -" });
    case 400:
    case 422:
      return new EgwError('InvalidInput', text, { retry: 'terminal', cause: err, hint: 'fix the EgressGateway fields the API server names' });
    case 401:
    case 403:
      return new EgwError('DatastoreUnavailable', text, { retry: 'retry', cause: err, hint: "the controller's ClusterRole (egw render install) must allow it" });
    case 429:
      return new EgwError('DatastoreUnavailable', text, { retry: 'throttle', cause: err });
    default:
      return new EgwError('DatastoreUnavailable', text, { retry: 'retry', cause: err });
  }
}

/** The `EGW_DATASTORE` value gateway pods get on Kubernetes (exported for docs and tests). */
export const GATEWAY_DATASTORE_ENV = { name: DATASTORE_ENV, value: 'kubernetes' } as const;

/** True when some owner reference of the object is its controller. */
function hasController(obj: unknown): boolean {
  const refs = metaOf(obj)['ownerReferences'];
  return Array.isArray(refs) && refs.some((r) => typeof r === 'object' && r !== null && (r as { controller?: unknown }).controller === true);
}

function metaOf(obj: unknown): Record<string, unknown> {
  if (typeof obj !== 'object' || obj === null) return {};
  const m = (obj as Record<string, unknown>)['metadata'];
  return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : {};
}
