/**
 * The narrow port to the API server for the two objects the webhook owns outside the datastore (its
 * ValidatingWebhookConfiguration and, on a cluster, the Secret holding its CA), and its one adapter over
 * `@kubernetes/client-node`'s generic object client.
 */
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { EgwError, errorMessage } from '../../platform/errors.js';

/** A Kubernetes object as plain JSON. */
export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };

/** Read, create and replace whole objects. Errors are `EgwError`s: `AlreadyExists`, `Conflict`, else `DatastoreUnavailable`. */
export interface KubeObjects {
  /** The object, or undefined when it does not exist. */
  read(apiVersion: string, kind: string, name: string, namespace?: string): Promise<KubeObject | undefined>;
  /** Creates; `AlreadyExists` when it exists. */
  create(obj: KubeObject): Promise<KubeObject>;
  /** Replaces; `Conflict` when `metadata.resourceVersion` is stale. */
  replace(obj: KubeObject): Promise<KubeObject>;
}

function classify(err: unknown, what: string): EgwError {
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number' ? err.code : undefined;
  if (code === 409) {
    const conflict = /AlreadyExists/i.test(errorMessage(err)) ? 'AlreadyExists' : 'Conflict';
    return new EgwError(conflict, `${what}: ${conflict === 'AlreadyExists' ? 'already exists' : 'changed meanwhile'}`, { cause: err });
  }
  return new EgwError('DatastoreUnavailable', `${what} failed${code === undefined ? '' : ` (HTTP ${code})`}: ${errorMessage(err)}`, {
    cause: err,
    hint: code === 403 ? 'the controller\'s ClusterRole needs get/create/update on validatingwebhookconfigurations (and on its Secret)' : 'check the API server',
  });
}

/** {@link KubeObjects} over `@kubernetes/client-node` (kubeconfig: KUBECONFIG, else ~/.kube/config, else in-cluster). */
export class ClientKubeObjects implements KubeObjects {
  private readonly api: KubernetesObjectApi;

  constructor(kc?: KubeConfig) {
    const config = kc ?? new KubeConfig();
    if (kc === undefined) config.loadFromDefault();
    this.api = KubernetesObjectApi.makeApiClient(config);
  }

  /** From a kubeconfig file, else the default (KUBECONFIG, ~/.kube/config, in-cluster service account). */
  static fromKubeconfig(path: string | undefined): ClientKubeObjects {
    if (path === undefined || path === '') return new ClientKubeObjects();
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return new ClientKubeObjects(kc);
  }

  async read(apiVersion: string, kind: string, name: string, namespace?: string): Promise<KubeObject | undefined> {
    try {
      const header = { apiVersion, kind, metadata: { name, ...(namespace === undefined ? {} : { namespace }) } };
      return (await this.api.read(header)) as unknown as KubeObject;
    } catch (err) {
      if (typeof err === 'object' && err !== null && 'code' in err && err.code === 404) return undefined;
      throw classify(err, `reading ${kind} ${namespace === undefined ? '' : `${namespace}/`}${name}`);
    }
  }

  async create(obj: KubeObject): Promise<KubeObject> {
    try {
      return await this.api.create(obj);
    } catch (err) {
      throw classify(err, `creating ${obj.kind} ${obj.metadata.name}`);
    }
  }

  async replace(obj: KubeObject): Promise<KubeObject> {
    try {
      return await this.api.replace(obj);
    } catch (err) {
      throw classify(err, `replacing ${obj.kind} ${obj.metadata.name}`);
    }
  }
}
