/**
 * Server-side dry runs of single writes on the Kubernetes API server (`?dryRun=All`): the API server runs
 * its whole write path — defaulting, OpenAPI schema and CEL validation, mutating and validating admission
 * (webhooks, ValidatingAdmissionPolicies), the existence and resourceVersion checks — and stores nothing.
 *
 * This is what makes a non-atomic multi-object write (`egw apply` on the Kubernetes datastore) as close to
 * all-or-nothing as the API allows: dry-run every object first, write only when all pass.
 *
 * Kept apart from kubernetes-datastore.ts so that the backend's owner can adopt it as an optional
 * `dryRun(op)` method; it builds the same object form the backend writes (resource-map.ts).
 */
import { EgwError } from '../../platform/errors.js';
import type { JsonObject, WriteOp } from '../contract.js';
import { formatKey } from '../contract.js';
import type { KubeHttpOptions } from './kube-http.js';
import { KubeHttp, loadKubeConfig } from './kube-http.js';
import type { ObjectRef, ResourceInfo } from './resource-map.js';
import { apiVersionOf, defaultResourceMap, objectRef, resourcePath } from './resource-map.js';

/** Options of {@link KubernetesDryRun.open}. */
export interface KubernetesDryRunOptions extends KubeHttpOptions {
  /** A kubeconfig file; else `KUBECONFIG`, else the in-cluster service account. */
  kubeconfig?: string;
  /** Where KUBECONFIG / KUBERNETES_SERVICE_HOST are read (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/** Options of one {@link KubernetesDryRun.check}. */
export interface DryRunCheckOptions {
  /**
   * Send a namespaced create to this namespace instead of its own: for an object whose namespace is
   * created by the same apply and does not exist yet (the API server refuses anything in a missing
   * namespace). An `AlreadyExists` answer then counts as passed: the API server checks existence only after
   * defaulting, validation and admission have accepted the object.
   */
  substituteNamespace?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Fields the API server owns; the backend never sends them either. */
const SERVER_FIELDS = ['resourceVersion', 'managedFields', 'selfLink', 'uid', 'creationTimestamp', 'generation'];

/** Dry runs on one API server. Create with {@link KubernetesDryRun.open}; {@link close} when done. */
export class KubernetesDryRun {
  private readonly map = defaultResourceMap();

  private constructor(private readonly http: KubeHttp) {}

  /** Reads the kubeconfig (no request yet). Throws `DatastoreUnavailable`/terminal without one. */
  static open(options: KubernetesDryRunOptions = {}): KubernetesDryRun {
    const { kc } = loadKubeConfig(options.kubeconfig, options.env ?? process.env);
    return new KubernetesDryRun(new KubeHttp(kc, options));
  }

  /**
   * Dry-runs one write op (`create`, `put`, `update`; `delete` and `check` pass without a request: they
   * carry no object to validate). Resolves when the API server would accept it; otherwise throws an
   * EgwError with the API server's own message: `InvalidInput` (400/422: schema, CEL, admission policy),
   * `Forbidden` answers as `InvalidInput` too when an admission plugin or webhook denied it, `NotFound`
   * (404: e.g. its namespace is missing), `AlreadyExists`/`Conflict` (409), `DatastoreUnavailable` for the rest.
   * Writes nothing, ever.
   */
  async check(op: WriteOp, options: DryRunCheckOptions = {}): Promise<void> {
    if (op.op === 'delete' || op.op === 'check') return;
    const info = this.map.get(op.key.kind);
    if (info === undefined) {
      throw new EgwError('InvalidInput', `kind ${op.key.kind} has no place on the Kubernetes datastore`, { details: { kind: op.key.kind } });
    }
    const own = objectRef(info, op.key);
    const substitute = op.op !== 'update' && own.namespace !== undefined && options.substituteNamespace !== undefined;
    const ref: ObjectRef = substitute ? { namespace: options.substituteNamespace, name: own.name } : own;
    const id = formatKey(op.key);
    const body = objectFor(info, ref, op.value, op.op === 'update' ? op.expectedRevision : undefined);
    const res =
      op.op === 'create' || substitute
        ? await this.http.request('POST', `${resourcePath(info, ref.namespace)}?dryRun=All`, body)
        : op.op === 'update'
          ? await this.http.request('PUT', `${resourcePath(info, ref.namespace, ref.name)}?dryRun=All`, body)
          : // put: create when absent, else replace (its resourceVersion unknown here: no precondition).
            await this.putDryRun(info, ref, body);
    if (res.status === 200 || res.status === 201) return;
    const st = isObject(res.body) ? res.body : {};
    const message = typeof st['message'] === 'string' ? st['message'] : `HTTP ${res.status}`;
    const reason = typeof st['reason'] === 'string' ? st['reason'] : '';
    const details = { status: res.status, reason, dryRun: true, ...(substitute ? { substituteNamespace: ref.namespace } : {}) };
    if (res.status === 409 && reason === 'AlreadyExists' && substitute) return;
    switch (res.status) {
      case 400:
      case 422:
        throw new EgwError('InvalidInput', `the API server refused ${id}: ${message}`, { hint: 'fix the fields it names', details });
      case 403:
        throw new EgwError('InvalidInput', `the API server refused ${id}: ${message}`, {
          hint: 'an admission plugin, policy or webhook denied it, or egw may not write it: see the message',
          details,
        });
      case 404:
        throw new EgwError('NotFound', `the API server cannot write ${id}: ${message}`, { hint: 'create what it names first', details });
      case 409:
        throw reason === 'AlreadyExists'
          ? new EgwError('AlreadyExists', `${id} already exists`, { hint: 'apply again: it will be updated', details })
          : new EgwError('Conflict', `${id} was changed concurrently: ${message}`, { hint: 'apply again', details });
      default:
        throw new EgwError('DatastoreUnavailable', `the API server ${this.http.server} failed a dry run of ${id}: ${message}`, { retry: 'retry', details });
    }
  }

  /** `put`: a create when absent, else a replace at the current resourceVersion (custom resources need one). */
  private async putDryRun(info: ResourceInfo, ref: ObjectRef, body: JsonObject): Promise<{ status: number; body: unknown }> {
    const cur = await this.http.request('GET', resourcePath(info, ref.namespace, ref.name));
    const meta = isObject(cur.body) && isObject(cur.body['metadata']) ? cur.body['metadata'] : {};
    const rv = typeof meta['resourceVersion'] === 'string' ? meta['resourceVersion'] : undefined;
    if (cur.status !== 200 || rv === undefined) return this.http.request('POST', `${resourcePath(info, ref.namespace)}?dryRun=All`, body);
    const replace = { ...body, metadata: { ...(isObject(body['metadata']) ? body['metadata'] : {}), resourceVersion: rv } };
    return this.http.request('PUT', `${resourcePath(info, ref.namespace, ref.name)}?dryRun=All`, replace);
  }

  /** Closes pooled connections. */
  close(): void {
    this.http.close();
  }
}

/** The API object for `value` at `ref`, as the backend writes it (server-owned metadata dropped). Pure. */
export function objectFor(info: ResourceInfo, ref: ObjectRef, value: JsonObject, resourceVersion?: number): JsonObject {
  const metadata: Record<string, unknown> = {};
  if (info.mode === 'object' && isObject(value['metadata'])) Object.assign(metadata, value['metadata']);
  for (const f of SERVER_FIELDS) delete metadata[f];
  metadata['name'] = ref.name;
  if (ref.namespace !== undefined) metadata['namespace'] = ref.namespace;
  else delete metadata['namespace'];
  if (resourceVersion !== undefined) metadata['resourceVersion'] = String(resourceVersion);
  const obj = info.mode === 'record' ? { apiVersion: apiVersionOf(info), kind: info.kind, metadata, spec: value } : { ...value, apiVersion: apiVersionOf(info), kind: info.kind, metadata };
  return obj as JsonObject;
}
