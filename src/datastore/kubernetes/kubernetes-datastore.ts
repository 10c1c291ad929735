/**
 * The Kubernetes datastore backend: egw's datastore contract on a kube-apiserver, as Calico's "Kubernetes
 * datastore" mode does on EKS. docs/datastore.md, "The Kubernetes backend", explains every decision:
 *
 * - resources: {@link defaultResourceMap} (API kinds are the objects themselves; internal records are egw.io
 *   custom resources whose `spec` is the value);
 * - revisions: the API server's resourceVersion, read as an integer (etcd's revision);
 * - commits: at most one writing op and no `check` (the API has only per-object optimistic concurrency);
 *   anything else is refused with `Unsupported` — `capabilities.atomicMultiKey` is false;
 * - status: on kinds with a status subresource a change of `status` is written to `…/status`, a change
 *   elsewhere to the main endpoint first (docs/datastore.md, "Status");
 * - watch: one watch per kind, merged, bounded (64); order is per kind; broken streams resume from the last
 *   resourceVersion delivered, a silent stream is restarted by a watchdog; 410 Gone on the first stream
 *   yields `resync`, on a resumed one (a new watch cache) the gap is bridged from an exact list.
 */
import { isDeepStrictEqual } from 'node:util';
import { EgwError, isEgwError } from '../../platform/errors.js';
import type {
  CommitResult,
  Datastore,
  DatastoreCapabilities,
  JsonObject,
  ListResult,
  ResourceKey,
  StoredResource,
  WatchEvent,
  WatchOptions,
  WriteOp,
} from '../contract.js';
import { formatKey } from '../contract.js';
import { checkKey, checkOps, opFailure, sortResources } from '../keys.js';
import type { AggregationOptions, EventRecorder, EventSource } from '../../platform/events.js';
import type { KubeEventRecorderDeps } from './kube-events.js';
import { KubeEventRecorder } from './kube-events.js';
import type { KubeHttpOptions, KubeResponse } from './kube-http.js';
import { KubeHttp, loadKubeConfig, WATCH_HIGH_WATER } from './kube-http.js';
import type { ObjectRef, RecordKind, ResourceInfo } from './resource-map.js';
import { apiVersionOf, crdName, defaultResourceMap, keyOfObject, objectRef, resourcePath, statusPath } from './resource-map.js';

/** The annotation that carries a resource's create revision (Kubernetes does not expose it). */
export const CREATE_REVISION_ANNOTATION = 'egw.io/create-revision';

/** What to tell a user whose cluster lacks egw's CRDs. */
export const INSTALL_CRDS_HINT = "install egw's CRDs: egw render install | kubectl apply -f -";

/** Options of {@link KubernetesDatastore.open}. */
export interface KubernetesDatastoreOptions extends KubeHttpOptions {
  /** A kubeconfig file; else `KUBECONFIG`, else the in-cluster service account. */
  kubeconfig?: string;
  /** Where KUBECONFIG / KUBERNETES_SERVICE_HOST are read (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Extra internal record kinds (tests). */
  extraRecordKinds?: readonly RecordKind[];
  /**
   * The kinds `open` checks are served and a watch without `kinds` follows (default: every kind of the
   * map). A process that uses a few kinds names them, so that it needs only their CRDs.
   */
  kinds?: readonly string[];
  /** A watch stream that delivered nothing (no event, no bookmark) for this long is restarted. Default 60 s. */
  watchdogMs?: number;
  /** Reconnect backoff of a broken watch stream: first and largest delay, ms (jittered). Default 100 ms / 5 s. */
  watchRetryInitialMs?: number;
  watchRetryMaxMs?: number;
  /** Page size of `list` (default 500). */
  listPageSize?: number;
  /**
   * Field selectors of `list` and `watch` per kind, e.g. `{Pod: 'spec.nodeName=node-a1'}`: the view of an
   * identity that may see only part of a kind (a kubelet's node identity lists only its node's pods).
   */
  fieldSelectors?: Readonly<Record<string, string>>;
}

/** What {@link KubernetesDatastore.currentRevision} lists by default. */
const NAMESPACES_PROBE = '/api/v1/namespaces?limit=1';

type KubeObject = { [key: string]: unknown } & { metadata?: { [key: string]: unknown } };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function metaOf(obj: unknown): Record<string, unknown> {
  return isObject(obj) && isObject(obj['metadata']) ? obj['metadata'] : {};
}

function revisionOf(obj: unknown): number {
  const rv = metaOf(obj)['resourceVersion'];
  const n = typeof rv === 'string' ? Number(rv) : NaN;
  return Number.isSafeInteger(n) ? n : 0;
}

/** Server-owned fields that must not leak into values (they change without the value changing). */
const SERVER_FIELDS = ['resourceVersion', 'managedFields', 'selfLink'];

/** The Kubernetes API server as an egw datastore. Create with {@link KubernetesDatastore.open}. */
export class KubernetesDatastore implements Datastore {
  readonly location: string;
  readonly capabilities: DatastoreCapabilities = { atomicMultiKey: false };
  private readonly closing = new AbortController();
  private readonly watchdogMs: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly pageSize: number;
  private readonly fieldSelectors: Readonly<Record<string, string>>;

  private constructor(
    private readonly http: KubeHttp,
    private readonly map: ReadonlyMap<string, ResourceInfo>,
    private readonly kinds: readonly string[],
    options: KubernetesDatastoreOptions,
    source: string,
  ) {
    this.location = `kubernetes:${source} (${http.server})`;
    this.watchdogMs = options.watchdogMs ?? 60_000;
    this.retryInitialMs = options.watchRetryInitialMs ?? 100;
    this.retryMaxMs = options.watchRetryMaxMs ?? 5_000;
    this.pageSize = options.listPageSize ?? 500;
    this.fieldSelectors = options.fieldSelectors ?? {};
    this.highWater = Math.max(1, options.watchHighWater ?? WATCH_HIGH_WATER);
  }

  /** Events a watch holds for a slow consumer before its streams stop reading (see {@link merged}). */
  private readonly highWater: number;

  /**
   * Connects and checks the cluster: every resource of `options.kinds` must be served (else
   * `DatastoreUnavailable`/terminal naming the missing CRDs), and Calico's aggregated API server must not
   * serve projectcalico.org/v3 (else `DatastoreUnavailable`/terminal: egw would fight it for the group).
   * An unreachable API server is `DatastoreUnavailable`/retry.
   */
  static async open(options: KubernetesDatastoreOptions = {}): Promise<KubernetesDatastore> {
    const { kc, source } = loadKubeConfig(options.kubeconfig, options.env ?? process.env);
    const http = new KubeHttp(kc, options);
    const map = defaultResourceMap(options.extraRecordKinds ?? []);
    const kinds = options.kinds ?? [...map.keys()];
    for (const k of kinds) {
      if (!map.has(k)) {
        http.close();
        throw new EgwError('InvalidInput', `kind ${k} has no place on the Kubernetes datastore`, { hint: `known kinds: ${[...map.keys()].join(', ')}` });
      }
    }
    const store = new KubernetesDatastore(http, map, kinds, options, source);
    try {
      await store.checkCluster();
    } catch (err) {
      http.close();
      throw err;
    }
    return store;
  }

  private async checkCluster(): Promise<void> {
    const infos = this.kinds.map((k) => this.map.get(k)!);
    if (infos.some((i) => i.group === 'projectcalico.org')) {
      const res = await this.http.request('GET', '/apis/apiregistration.k8s.io/v1/apiservices/v3.projectcalico.org');
      // The API server registers a *local* APIService (no spec.service) for every CRD group on its own
      // (kube-aggregator's autoregistration): that is egw's CRDs. Only one backed by a Service is Calico's.
      const spec = isObject(res.body) && isObject(res.body['spec']) ? res.body['spec'] : {};
      if (res.status === 200 && isObject(spec['service'])) {
        throw new EgwError(
          'DatastoreUnavailable',
          "Calico's API server serves projectcalico.org/v3 on this cluster (APIService v3.projectcalico.org): egw would fight it for the group, and never writes into it",
          {
            retry: 'terminal',
            hint: "run egw on a cluster without Calico's API server, or remove it (kubectl delete apiservice v3.projectcalico.org) if Calico is not in use",
          },
        );
      }
      // 404: not there. 403: this identity may not look; discovery below still checks the resources.
      if (res.status !== 200 && res.status !== 404 && res.status !== 403) throw this.statusError(res, 'get', 'apiservices.apiregistration.k8s.io');
    }
    const byGroupVersion = new Map<string, ResourceInfo[]>();
    for (const i of infos) byGroupVersion.set(apiVersionOf(i), [...(byGroupVersion.get(apiVersionOf(i)) ?? []), i]);
    const missing: ResourceInfo[] = [];
    for (const [gv, list] of byGroupVersion) {
      const res = await this.http.request('GET', gv.includes('/') ? `/apis/${gv}` : `/api/${gv}`);
      if (res.status === 404) {
        missing.push(...list);
        continue;
      }
      if (res.status !== 200) throw this.statusError(res, 'get', `discovery ${gv}`);
      const served = new Set<string>();
      const resources = isObject(res.body) && Array.isArray(res.body['resources']) ? (res.body['resources'] as unknown[]) : [];
      for (const r of resources) if (isObject(r) && typeof r['name'] === 'string') served.add(r['name']);
      for (const i of list) if (!served.has(i.plural)) missing.push(i);
    }
    if (missing.length > 0) {
      const names = missing.map((i) => (i.group === '' ? `${i.plural} (core ${i.version})` : crdName(i)));
      throw new EgwError('DatastoreUnavailable', `the Kubernetes API server ${this.http.server} does not serve ${names.join(', ')}`, {
        retry: 'terminal',
        hint: INSTALL_CRDS_HINT,
        details: { missing: names },
      });
    }
  }

  private alive(): void {
    if (this.closing.signal.aborted) throw new EgwError('DatastoreClosed', `the datastore ${this.location} is closed`);
  }

  private info(kind: string): ResourceInfo {
    const info = this.map.get(kind);
    if (info === undefined) {
      throw new EgwError('InvalidInput', `kind ${kind} has no place on the Kubernetes datastore`, {
        hint: 'add it to src/datastore/kubernetes/resource-map.ts (and its CRD)',
        details: { kind },
      });
    }
    return info;
  }

  /** Maps a failed response to an EgwError. `verb` and `what` name the request for Forbidden messages. */
  private statusError(res: KubeResponse, verb: string, what: string, key?: ResourceKey): EgwError {
    const body = isObject(res.body) ? res.body : {};
    const message = typeof body['message'] === 'string' ? body['message'] : `HTTP ${res.status}`;
    const reason = typeof body['reason'] === 'string' ? body['reason'] : '';
    const id = key === undefined ? what : formatKey(key);
    const details = { status: res.status, reason, verb, resource: what };
    switch (res.status) {
      case 404:
        return new EgwError('NotFound', `${id} does not exist`, { hint: 'create it first', details });
      case 409:
        return reason === 'AlreadyExists'
          ? new EgwError('AlreadyExists', `${id} already exists`, { hint: 'update it instead, or delete it first', details })
          : new EgwError('Conflict', `${id} was changed concurrently: ${message}`, { hint: 'read it again and retry', details });
      case 400:
      case 422:
        return new EgwError('InvalidInput', `the API server refused ${id}: ${message}`, { hint: 'fix the fields it names', details });
      case 401:
        return new EgwError('DatastoreUnavailable', `the API server ${this.http.server} does not accept egw's credentials: ${message}`, {
          retry: 'terminal',
          hint: 'check the kubeconfig or the service account token',
          details,
        });
      case 403:
        return new EgwError('DatastoreUnavailable', `forbidden: egw's identity may not ${verb} ${what}: ${message}`, {
          retry: 'terminal',
          hint: `grant the verb "${verb}" on ${what} to egw's service account (egw's RBAC rules)`,
          details: { ...details, reason: 'Forbidden' },
        });
      case 429:
        return new EgwError('DatastoreUnavailable', `the API server throttles egw: ${message}`, { retry: 'throttle', details });
      default:
        return new EgwError('DatastoreUnavailable', `the API server ${this.http.server} failed ${verb} ${id}: ${message}`, { retry: 'retry', details });
    }
  }

  private resourceName(info: ResourceInfo): string {
    return info.group === '' ? info.plural : crdName(info);
  }

  /** The stored form of an API object, or undefined when its name is not one egw could have written. */
  private toStored(info: ResourceInfo, obj: unknown): StoredResource | undefined {
    if (!isObject(obj)) return undefined;
    const meta = metaOf(obj);
    const name = typeof meta['name'] === 'string' ? meta['name'] : '';
    const ns = typeof meta['namespace'] === 'string' ? meta['namespace'] : undefined;
    const key = keyOfObject(info, ns, name);
    if (key === undefined) return undefined;
    const modRevision = revisionOf(obj);
    const annotations = isObject(meta['annotations']) ? meta['annotations'] : {};
    const created = Number(annotations[CREATE_REVISION_ANNOTATION]);
    const createRevision = Number.isSafeInteger(created) && created > 0 ? created : modRevision;
    let value: JsonObject;
    if (info.mode === 'record') {
      value = isObject(obj['spec']) ? (obj['spec'] as JsonObject) : {};
    } else {
      const cleanMeta: Record<string, unknown> = { ...meta };
      for (const f of SERVER_FIELDS) delete cleanMeta[f];
      if (isObject(cleanMeta['annotations'])) {
        const a = { ...cleanMeta['annotations'] };
        delete a[CREATE_REVISION_ANNOTATION];
        if (Object.keys(a).length === 0) delete cleanMeta['annotations'];
        else cleanMeta['annotations'] = a;
      }
      value = { ...obj, metadata: cleanMeta } as JsonObject;
    }
    return { key: checkKey(key), value, createRevision, modRevision };
  }

  /** The object to send for a value; `createRevision` is carried in an annotation when known. */
  private toObject(info: ResourceInfo, ref: ObjectRef, value: JsonObject, resourceVersion?: number, createRevision?: number): KubeObject {
    const annotations: Record<string, unknown> = {};
    const metadata: Record<string, unknown> = {};
    if (info.mode === 'object') {
      const m = isObject(value['metadata']) ? value['metadata'] : {};
      Object.assign(metadata, m);
      for (const f of SERVER_FIELDS) delete metadata[f];
      if (isObject(m['annotations'])) Object.assign(annotations, m['annotations']);
    }
    metadata['name'] = ref.name;
    if (ref.namespace !== undefined) metadata['namespace'] = ref.namespace;
    else delete metadata['namespace'];
    if (resourceVersion !== undefined) metadata['resourceVersion'] = String(resourceVersion);
    if (createRevision !== undefined) annotations[CREATE_REVISION_ANNOTATION] = String(createRevision);
    if (Object.keys(annotations).length > 0) metadata['annotations'] = annotations;
    if (info.mode === 'record') return { apiVersion: apiVersionOf(info), kind: info.kind, metadata, spec: value };
    return { ...value, apiVersion: apiVersionOf(info), kind: info.kind, metadata };
  }

  private async getObject(info: ResourceInfo, ref: ObjectRef, key: ResourceKey): Promise<KubeObject | undefined> {
    const res = await this.http.request('GET', resourcePath(info, ref.namespace, ref.name));
    if (res.status === 404) {
      // A 404 for the object, or for the whole resource (CRD gone): the Status tells them apart.
      const details = isObject(res.body) && isObject(res.body['details']) ? res.body['details'] : {};
      if (details['name'] === undefined && details['kind'] === undefined) throw this.notServed(info);
      return undefined;
    }
    if (res.status !== 200) throw this.statusError(res, 'get', this.resourceName(info), key);
    return res.body as KubeObject;
  }

  private notServed(info: ResourceInfo): EgwError {
    return new EgwError('DatastoreUnavailable', `the Kubernetes API server ${this.http.server} does not serve ${this.resourceName(info)}`, {
      retry: 'terminal',
      hint: INSTALL_CRDS_HINT,
    });
  }

  async get(keyIn: ResourceKey): Promise<StoredResource | undefined> {
    this.alive();
    const key = checkKey(keyIn);
    const info = this.info(key.kind);
    const obj = await this.getObject(info, objectRef(info, key), key);
    return obj === undefined ? undefined : this.toStored(info, obj);
  }

  /** Pages through the collection at one resourceVersion; a continue token that expired (410) restarts the list. */
  async list(kind: string, options: { namespace?: string } = {}): Promise<ListResult> {
    this.alive();
    const info = this.info(kind);
    const ns = options.namespace === '' ? undefined : options.namespace;
    if (ns !== undefined && !info.namespaced && !info.foldNamespace) return { items: [], revision: await this.currentRevision() };
    return (await this.listAt(info, ns))!;
  }

  /**
   * The collection now (`exact` undefined: a consistent list), or exactly at resourceVersion `exact` (served
   * from etcd when the watch cache does not have it), then undefined when that revision is compacted (410).
   */
  private async listAt(info: ResourceInfo, ns: string | undefined, exact?: number): Promise<ListResult | undefined> {
    for (;;) {
      const items: StoredResource[] = [];
      let revision = 0;
      let token: string | undefined;
      let expired = false;
      do {
        const q = new URLSearchParams({ limit: String(this.pageSize) });
        const fieldSelector = this.fieldSelectors[info.kind];
        if (fieldSelector !== undefined) q.set('fieldSelector', fieldSelector);
        if (token !== undefined) q.set('continue', token);
        else if (exact !== undefined) {
          q.set('resourceVersion', String(exact));
          q.set('resourceVersionMatch', 'Exact');
        }
        const res = await this.http.request('GET', `${resourcePath(info, info.namespaced ? ns : undefined)}?${q.toString()}`);
        if (res.status === 410) {
          if (token === undefined) return undefined;
          expired = true;
          break;
        }
        if (res.status === 404) throw this.notServed(info);
        if (res.status !== 200) throw this.statusError(res, 'list', this.resourceName(info));
        const body = isObject(res.body) ? res.body : {};
        if (revision === 0) revision = revisionOf(body);
        for (const obj of Array.isArray(body['items']) ? (body['items'] as unknown[]) : []) {
          // List items carry no apiVersion/kind; the object form of a value does.
          const full = isObject(obj) ? { apiVersion: apiVersionOf(info), kind: info.kind, ...obj } : obj;
          const r = this.toStored(info, full);
          if (r !== undefined && (ns === undefined || r.key.namespace === ns)) items.push(r);
        }
        const c = metaOf(body)['continue'];
        token = typeof c === 'string' && c !== '' ? c : undefined;
      } while (token !== undefined);
      if (!expired) return { items: sortResources(items), revision };
      if (exact !== undefined) return undefined;
    }
  }

  /**
   * Bridges a gap the API server's watch cache cannot serve: a resumed stream got 410 because the cache
   * (new after an API-server restart, or overrun) starts after `from`, while etcd may still have it. The
   * state exactly at `from` and the state now are listed and their difference returned as events, in
   * revision order: a put for each object created or changed since (at its resourceVersion; an object
   * changed several times in the gap shows its last version only), a delete for each object gone (at the
   * second list's revision, the deletion's own is not known). Undefined when `from` is compacted in etcd
   * too: then only `resync` is honest.
   */
  private async bridge(info: ResourceInfo, from: number): Promise<{ events: WatchEvent[]; revision: number } | undefined> {
    const before = await this.listAt(info, undefined, from);
    if (before === undefined) return undefined;
    const now = (await this.listAt(info, undefined))!;
    const old = new Map(before.items.map((r) => [formatKey(r.key), r]));
    const events: WatchEvent[] = [];
    for (const r of now.items) {
      const o = old.get(formatKey(r.key));
      old.delete(formatKey(r.key));
      if (o?.modRevision === r.modRevision) continue;
      events.push({ type: 'put', key: r.key, value: r.value, revision: r.modRevision, createRevision: r.createRevision });
    }
    for (const o of old.values()) events.push({ type: 'delete', key: o.key, prevValue: o.value, revision: now.revision });
    events.sort((a, b) => a.revision - b.revision);
    return { events, revision: now.revision };
  }

  /**
   * The API server's current resourceVersion: a consistent list of one namespace, or — for an identity that
   * may not list namespaces (a kubelet's) — of one object of a kind it may list with its field selector.
   */
  async currentRevision(): Promise<number> {
    this.alive();
    let res = await this.http.request('GET', this.revisionProbe);
    if (res.status === 403 && this.revisionProbe === NAMESPACES_PROBE) {
      for (const [kind, selector] of Object.entries(this.fieldSelectors)) {
        const info = this.map.get(kind);
        if (info === undefined) continue;
        const probe = `${resourcePath(info)}?${new URLSearchParams({ limit: '1', fieldSelector: selector }).toString()}`;
        const alt = await this.http.request('GET', probe);
        if (alt.status !== 200) continue;
        this.revisionProbe = probe;
        res = alt;
        break;
      }
    }
    if (res.status !== 200) throw this.statusError(res, 'list', 'namespaces');
    return revisionOf(res.body);
  }

  private revisionProbe = NAMESPACES_PROBE;

  /**
   * One writing op, or none: see the class comment. The commit's revision is the resourceVersion of the
   * written object (for a delete, the one the API server returns with the deleted object: the deletion's);
   * a commit that writes nothing returns {@link currentRevision}.
   */
  async commit(opsIn: readonly WriteOp[]): Promise<CommitResult> {
    this.alive();
    const ops = checkOps(opsIn);
    const checks = ops.filter((o) => o.op === 'check');
    if (ops.length > 1 || checks.length > 0) {
      const keys = ops.map((o) => `${o.op} ${formatKey(o.key)}`);
      throw new EgwError('Unsupported', `the Kubernetes datastore cannot commit ${keys.join(', ')} atomically: it writes one object per request`, {
        hint: 'this path needs a single-object design on the Kubernetes datastore (see capabilities.atomicMultiKey)',
        details: { keys },
      });
    }
    const op = ops[0];
    if (op === undefined) return { revision: await this.currentRevision(), results: [] };
    const info = this.info(op.key.kind);
    const ref = objectRef(info, op.key);
    switch (op.op) {
      case 'create':
        return this.create(info, ref, op);
      case 'update':
      case 'put':
        return this.replace(info, ref, op);
      case 'delete':
        return this.delete(info, ref, op);
      case 'check':
        throw new EgwError('Internal', 'unreachable');
    }
  }

  private result(info: ResourceInfo, body: unknown): CommitResult {
    const r = this.toStored(info, body);
    if (r === undefined) throw new EgwError('Internal', `the API server answered a write with an object egw cannot read`);
    return { revision: r.modRevision, results: [r] };
  }

  private async create(info: ResourceInfo, ref: ObjectRef, op: Extract<WriteOp, { op: 'create' }>): Promise<CommitResult> {
    const res = await this.http.request('POST', resourcePath(info, ref.namespace), this.toObject(info, ref, op.value));
    if (res.status === 200 || res.status === 201) return this.writeStatus(info, ref, op, res.body, op.value);
    if (res.status === 409) throw opFailure(op, { modRevision: 0 });
    throw this.statusError(res, 'create', this.resourceName(info), op.key);
  }

  /**
   * The second half of a write to a kind with a status subresource: the main endpoint (POST/PUT) ignored
   * `status`, so when the object it answered with does not carry the value's status, PUT the status
   * subresource at the resourceVersion the main write produced. Kinds without the subresource, and values
   * whose status the main write already shows, are done.
   */
  private async writeStatus(info: ResourceInfo, ref: ObjectRef, op: WriteOp, written: unknown, value: JsonObject): Promise<CommitResult> {
    if (!info.statusSubresource || !isObject(written) || isDeepStrictEqual(written['status'], value['status'])) return this.result(info, written);
    let current: unknown = written;
    // A create, a put and an update without an expected revision do not care what others wrote in between
    // (a Node's controllers do so at once): their status write is retried on a fresh read, a few times.
    const strict = op.op === 'update' && op.expectedRevision !== undefined;
    for (let attempt = 1; ; attempt++) {
      const rv = revisionOf(current);
      const created = this.toStored(info, current)?.createRevision;
      const res = await this.http.request('PUT', statusPath(info, ref.namespace, ref.name), this.toObject(info, ref, value, rv, created));
      if (res.status === 200 || res.status === 201) return this.result(info, res.body);
      if (res.status === 404) throw this.goneWhileWritingStatus(op);
      if (res.status !== 409) throw this.statusError(res, 'update', `${this.resourceName(info)}/status`, op.key);
      // Someone wrote between the two requests: the main part is written, the status is not. A strict
      // update fails with Conflict: the caller re-reads (its read is stale anyway) and retries, and the
      // retry writes the status alone.
      if (strict || attempt >= 5) {
        throw new EgwError('Conflict', `${formatKey(op.key)} changed while its status was written (the main part is written, the status is not)`, {
          hint: 'read it again and retry',
          details: { key: formatKey(op.key), op: op.op },
        });
      }
      const fresh = await this.getObject(info, ref, op.key);
      if (fresh === undefined) throw this.goneWhileWritingStatus(op);
      current = fresh;
    }
  }

  private goneWhileWritingStatus(op: WriteOp): EgwError {
    return new EgwError('NotFound', `${formatKey(op.key)} was deleted while its status was written`, { hint: 'create it again if it is still wanted', details: { key: formatKey(op.key), op: op.op } });
  }

  /**
   * update and put: read, then PUT with the read resourceVersion (so that nothing written in between is
   * overwritten unseen) and the create revision carried forward; a 409 without an expected revision is
   * retried with a fresh read. On a kind with a status subresource the value is split: a change outside
   * `status` goes to the main endpoint, a change of `status` to `…/status`, and a change of both does both,
   * main first (each PUT at the resourceVersion the previous one produced; docs/datastore.md, "Status").
   */
  private async replace(info: ResourceInfo, ref: ObjectRef, op: Extract<WriteOp, { op: 'update' | 'put' }>): Promise<CommitResult> {
    for (;;) {
      const cur = await this.getObject(info, ref, op.key);
      if (cur === undefined) {
        if (op.op === 'update') throw opFailure(op, undefined);
        const res = await this.http.request('POST', resourcePath(info, ref.namespace), this.toObject(info, ref, op.value));
        if (res.status === 200 || res.status === 201) return this.writeStatus(info, ref, op, res.body, op.value);
        if (res.status === 409) continue; // created meanwhile: replace it
        throw this.statusError(res, 'create', this.resourceName(info), op.key);
      }
      const rv = revisionOf(cur);
      const strict = op.op === 'update' && op.expectedRevision !== undefined;
      if (strict && op.expectedRevision !== rv) throw opFailure(op, { modRevision: rv });
      const created = this.toStored(info, cur)?.createRevision ?? rv;
      if (info.statusSubresource && this.onlyStatusDiffers(info, cur, op.value)) {
        // Nothing for the main endpoint: the status write alone, at the read resourceVersion.
        try {
          return await this.writeStatus(info, ref, op, cur, op.value);
        } catch (err) {
          if (!strict && isEgwError(err, 'Conflict')) continue;
          throw err;
        }
      }
      const res = await this.http.request('PUT', resourcePath(info, ref.namespace, ref.name), this.toObject(info, ref, op.value, rv, created));
      if (res.status === 200 || res.status === 201) {
        try {
          return await this.writeStatus(info, ref, op, res.body, op.value);
        } catch (err) {
          if (!strict && isEgwError(err, 'Conflict')) continue;
          throw err;
        }
      }
      if (res.status === 409 || res.status === 404) {
        if (strict) throw opFailure(op, res.status === 404 ? undefined : { modRevision: rv + 1 });
        continue;
      }
      throw this.statusError(res, 'update', this.resourceName(info), op.key);
    }
  }

  /** True when `value` differs from the stored object `cur` in `status` only (metadata compared as egw stores it). */
  private onlyStatusDiffers(info: ResourceInfo, cur: KubeObject, value: JsonObject): boolean {
    const stored = this.toStored(info, cur);
    if (stored === undefined) return false;
    const { status: _a, ...restStored } = stored.value;
    const { status: _b, ...restValue } = value;
    return isDeepStrictEqual({ ...restStored, apiVersion: undefined, kind: undefined }, { ...restValue, apiVersion: undefined, kind: undefined });
  }

  private async delete(info: ResourceInfo, ref: ObjectRef, op: Extract<WriteOp, { op: 'delete' }>): Promise<CommitResult> {
    if (op.expectedRevision === 0) {
      // Expecting absence: holds exactly when it is absent (and then writes nothing).
      const cur = await this.getObject(info, ref, op.key);
      if (cur !== undefined || op.mustExist === true) throw opFailure(op, cur === undefined ? undefined : { modRevision: revisionOf(cur) });
      return { revision: await this.currentRevision(), results: [undefined] };
    }
    // The contract's delete removes now. A Pod bound to a node would only be marked terminating by a plain
    // DELETE (graceful deletion, finished by its kubelet); a grace period of zero removes it, as the kubelet's
    // own final delete does. Graceful deletion stays `kubectl delete`'s, which the lab kubelet honours.
    const options = {
      ...(op.expectedRevision === undefined ? {} : { preconditions: { resourceVersion: String(op.expectedRevision) } }),
      ...(info.group === '' && info.kind === 'Pod' ? { gracePeriodSeconds: 0 } : {}),
    };
    const body = Object.keys(options).length === 0 ? undefined : { kind: 'DeleteOptions', apiVersion: 'v1', ...options };
    const res = await this.http.request('DELETE', resourcePath(info, ref.namespace, ref.name), body);
    if (res.status === 200 || res.status === 202) {
      // Core resources answer with the deleted object at the deletion's resourceVersion; custom resources
      // answer with a Status: then a fresh read of the current revision (not older than the deletion).
      const rv = revisionOf(res.body);
      return { revision: rv > 0 ? rv : await this.currentRevision(), results: [undefined] };
    }
    if (res.status === 404) {
      const details = isObject(res.body) && isObject(res.body['details']) ? res.body['details'] : {};
      if (details['name'] === undefined && details['kind'] === undefined) throw this.notServed(info);
      if (op.expectedRevision !== undefined || op.mustExist === true) throw opFailure(op, undefined);
      return { revision: await this.currentRevision(), results: [undefined] };
    }
    if (res.status === 409) {
      const cur = await this.getObject(info, ref, op.key);
      throw opFailure(op, cur === undefined ? undefined : { modRevision: revisionOf(cur) });
    }
    throw this.statusError(res, 'delete', this.resourceName(info), op.key);
  }

  /**
   * One watch stream per kind from `afterRevision`, merged in arrival order: order holds per kind, not across
   * kinds. Streams that break resume from their last resourceVersion (jittered exponential backoff, forever:
   * the iterator never throws for an unreachable server); a stream silent for `watchdogMs` is restarted;
   * 410 Gone on a first stream (or a revision ahead of the server) yields `resync` and ends the watch, on a
   * resumed stream it is bridged (see `bridge`). At most `watchHighWater` events wait for the consumer.
   */
  watch(options: WatchOptions): AsyncIterable<WatchEvent> {
    this.alive();
    const kinds = options.kinds ?? this.kinds;
    const infos = kinds.map((k) => this.info(k));
    return { [Symbol.asyncIterator]: () => this.merged(infos, options.afterRevision, options.signal) };
  }

  private async *merged(infos: ResourceInfo[], after: number, outer: AbortSignal | undefined): AsyncGenerator<WatchEvent> {
    const stop = new AbortController();
    const onStop = (): void => stop.abort();
    outer?.addEventListener('abort', onStop, { once: true });
    this.closing.signal.addEventListener('abort', onStop, { once: true });
    if (outer?.aborted === true || this.closing.signal.aborted) stop.abort();
    const queue: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    // Bounded: a stream whose push finds the queue at the high-water mark waits until the consumer has
    // taken it below; meanwhile it reads no more of its response, which then pauses (kube-http.ts).
    const room: (() => void)[] = [];
    const push = async (ev: WatchEvent): Promise<void> => {
      queue.push(ev);
      const w = wake;
      wake = undefined;
      w?.();
      if (queue.length >= this.highWater && !stop.signal.aborted) await new Promise<void>((r) => room.push(r));
    };
    const freeRoom = (): void => {
      for (const r of room.splice(0)) r();
    };
    stop.signal.addEventListener('abort', freeRoom, { once: true });
    const streams = infos.map((info) => this.follow(info, after, stop.signal, push));
    stop.signal.addEventListener('abort', () => wake?.(), { once: true });
    try {
      for (;;) {
        const ev = queue.shift();
        if (ev !== undefined) {
          if (queue.length < this.highWater) freeRoom();
          yield ev;
          if (ev.type === 'resync') return;
          continue;
        }
        if (stop.signal.aborted) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      stop.abort();
      outer?.removeEventListener('abort', onStop);
      this.closing.signal.removeEventListener('abort', onStop);
      await Promise.allSettled(streams);
    }
  }

  /** Follows one kind until `signal` aborts or it meets 410 (then pushes `resync`). */
  private async follow(info: ResourceInfo, after: number, signal: AbortSignal, push: (ev: WatchEvent) => Promise<void>): Promise<void> {
    let rv = after;
    let delay = this.retryInitialMs;
    // After the first stream: a 410 then means the API server's watch cache lost our place (a restart),
    // not that the caller asked for compacted history; see bridge().
    let resumed = false;
    /** 410: bridge a resumed stream's gap, else (or when etcd has compacted it too) yield resync. Returns true to stop. */
    const gone = async (detail: string): Promise<boolean> => {
      const b = resumed ? await this.bridge(info, rv) : undefined;
      if (b === undefined) {
        await push({ type: 'resync', revision: rv, reason: `the history after ${rv} is compacted (410 Gone${detail})` });
        return true;
      }
      for (const ev of b.events) await push(ev);
      rv = Math.max(rv, b.revision);
      return false;
    };
    for (; !signal.aborted; resumed = true) {
      const conn = new AbortController();
      const onAbort = (): void => conn.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      let last = Date.now();
      let waiting = false;
      // The watchdog: a stream that says nothing for watchdogMs (no event, no bookmark) may be dead
      // without an error (a half-open connection); restart it from the last resourceVersion. Time spent
      // waiting for a slow consumer is not silence.
      const dog = setInterval(() => {
        if (!waiting && Date.now() - last > this.watchdogMs) conn.abort();
      }, Math.max(50, Math.min(1_000, this.watchdogMs / 4)));
      try {
        const q = new URLSearchParams({ watch: '1', allowWatchBookmarks: 'true', resourceVersion: String(rv) });
        const fieldSelector = this.fieldSelectors[info.kind];
        if (fieldSelector !== undefined) q.set('fieldSelector', fieldSelector);
        for await (const item of this.http.stream(`${resourcePath(info)}?${q.toString()}`, conn.signal)) {
          last = Date.now();
          if (!isObject(item)) continue;
          if (typeof item['httpStatus'] === 'number') {
            const status = item['httpStatus'];
            const body = isObject(item['body']) ? item['body'] : {};
            if (status === 410) {
              if (await gone('')) return;
              break;
            }
            if (tooLarge(body)) return await push({ type: 'resync', revision: rv, reason: `revision ${rv} is ahead of the API server` });
            throw this.statusError({ status, body }, 'watch', this.resourceName(info));
          }
          const type = item['type'];
          const obj = item['object'];
          if (type === 'ERROR') {
            const code = isObject(obj) ? obj['code'] : undefined;
            if (code === 410) {
              if (await gone(`: ${String(isObject(obj) ? obj['message'] : '')}`)) return;
              break;
            }
            if (isObject(obj) && tooLarge(obj)) return await push({ type: 'resync', revision: rv, reason: `revision ${rv} is ahead of the API server` });
            throw this.statusError({ status: typeof code === 'number' ? code : 500, body: obj }, 'watch', this.resourceName(info));
          }
          const evRv = revisionOf(obj);
          if (type === 'BOOKMARK') {
            rv = Math.max(rv, evRv);
            continue;
          }
          delay = this.retryInitialMs;
          if (evRv <= rv) continue; // already delivered (a resumed stream's overlap)
          rv = evRv;
          const stored = this.toStored(info, isObject(obj) ? { apiVersion: apiVersionOf(info), kind: info.kind, ...obj } : obj);
          if (stored === undefined) continue;
          waiting = true;
          if (type === 'DELETED') await push({ type: 'delete', key: stored.key, prevValue: stored.value, revision: evRv });
          else await push({ type: 'put', key: stored.key, value: stored.value, revision: evRv, createRevision: stored.createRevision });
          waiting = false;
          last = Date.now();
        }
        // The server ended the stream (its timeout) or the watchdog did: reconnect at once.
      } catch (err) {
        if (signal.aborted) return;
        if (isEgwError(err, 'DatastoreClosed')) return;
        // Unreachable, a 5xx, a CRD removed: keep trying; a level-triggered consumer waits for us.
        const wait = delay / 2 + Math.random() * (delay / 2);
        delay = Math.min(delay * 2, this.retryMaxMs);
        await sleep(wait, signal);
      } finally {
        clearInterval(dog);
        signal.removeEventListener('abort', onAbort);
        conn.abort();
      }
    }
  }

  /** Ends every watch and closes connections. */
  /**
   * An `events.k8s.io/v1` recorder on this datastore's connection (./kube-events.ts). Close it before
   * the datastore: its writes use the datastore's connection.
   */
  eventRecorder(source: EventSource, deps: KubeEventRecorderDeps = {}, options: AggregationOptions = {}): EventRecorder {
    return new KubeEventRecorder(this.http, this.map, source, deps, options);
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    this.http.close();
    await Promise.resolve();
  }
}

function tooLarge(status: Record<string, unknown>): boolean {
  const details = isObject(status['details']) ? status['details'] : {};
  const causes = Array.isArray(details['causes']) ? (details['causes'] as unknown[]) : [];
  return causes.some((c) => isObject(c) && c['reason'] === 'ResourceVersionTooLarge');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
