/**
 * Service-account credentials for the lab's pods on a Kubernetes API server: what a kubelet gives a pod
 * through its projected service-account token volume. The lab's containers are processes on the host's
 * file system, so instead of `/var/run/secrets/kubernetes.io/serviceaccount/` each pod gets a kubeconfig
 * of its own (`KUBECONFIG`), holding a token the kubelet requested with TokenRequest, bound to the pod (the
 * API server invalidates it when the pod goes) and limited to what the pod's ServiceAccount may do.
 * docs/lab-kubelet.md, "On a Kubernetes API server".
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeHttp } from '../../datastore/kubernetes/kube-http.js';
import { EgwError } from '../../platform/errors.js';

/** What a pod worker asks for before it starts a pod's containers. */
export interface PodCredentialsPort {
  /**
   * The environment that gives the pod its service account's identity (`KUBECONFIG=…`), made once per pod
   * and renewed when half of its lifetime is gone. Throws when the API server refuses the token request.
   */
  env(pod: { namespace: string; name: string; uid: string; serviceAccountName: string | undefined }): Promise<Record<string, string>>;
  /** Forgets (and removes) a pod's credentials once the pod is gone. Idempotent. */
  forget(uid: string): void;
}

/** How long the tokens live (the kubelet's projected tokens default to one hour; the lab asks for one day). */
export const POD_TOKEN_SECONDS = 86_400;

interface Issued {
  path: string;
  renewAt: number;
}

/** Requests tokens with the kubelet's own identity (a node may do so only for pods bound to it). */
export class TokenRequestCredentials implements PodCredentialsPort {
  private readonly issued = new Map<string, Issued>();
  private readonly http: KubeHttp;

  constructor(
    private readonly kc: KubeConfig,
    private readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.http = new KubeHttp(kc);
  }

  async env(pod: { namespace: string; name: string; uid: string; serviceAccountName: string | undefined }): Promise<Record<string, string>> {
    const sa = pod.serviceAccountName ?? 'default';
    const have = this.issued.get(pod.uid);
    if (have !== undefined && this.now() < have.renewAt) return { KUBECONFIG: have.path };
    const cluster = this.kc.getCurrentCluster();
    if (cluster === null) throw new EgwError('InvalidInput', "the kubelet's kubeconfig names no cluster", { hint: 'give the kubelet a kubeconfig with a current context' });
    const body = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: POD_TOKEN_SECONDS, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid } },
    };
    const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/serviceaccounts/${encodeURIComponent(sa)}/token`;
    const token = await this.request(path, body, `${pod.namespace}/${sa}`);
    const ca = cluster.caFile !== undefined ? readFileSync(cluster.caFile, 'utf8') : cluster.caData !== undefined ? Buffer.from(cluster.caData, 'base64').toString('utf8') : undefined;
    const kubeconfig = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'cluster', cluster: { server: cluster.server, ...(ca === undefined ? {} : { 'certificate-authority-data': Buffer.from(ca).toString('base64') }) } }],
      users: [{ name: `system:serviceaccount:${pod.namespace}:${sa}`, user: { token } }],
      contexts: [{ name: 'pod', context: { cluster: 'cluster', user: `system:serviceaccount:${pod.namespace}:${sa}`, namespace: pod.namespace } }],
      'current-context': 'pod',
    };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, `${pod.uid}.kubeconfig`);
    writeFileSync(`${file}.part`, stringify(kubeconfig), { mode: 0o600 });
    renameSync(`${file}.part`, file);
    this.issued.set(pod.uid, { path: file, renewAt: this.now() + (POD_TOKEN_SECONDS * 1000) / 2 });
    return { KUBECONFIG: file };
  }

  forget(uid: string): void {
    const have = this.issued.get(uid);
    rmSync(have?.path ?? join(this.dir, `${uid}.kubeconfig`), { force: true });
    this.issued.delete(uid);
  }

  private async request(path: string, body: unknown, who: string): Promise<string> {
    const res = await this.http.request('POST', path, body);
    if (res.status !== 201 && res.status !== 200) {
      const message = typeof res.body === 'object' && res.body !== null && typeof (res.body as { message?: unknown }).message === 'string' ? (res.body as { message: string }).message : `HTTP ${res.status}`;
      throw new EgwError('DatastoreUnavailable', `token request for ${who} refused: ${message}`, { hint: "check the pod's ServiceAccount exists and the kubelet's identity may request its tokens" });
    }
    const token = (res.body as { status?: { token?: unknown } } | undefined)?.status?.token;
    if (typeof token !== 'string' || token === '') throw new EgwError('DatastoreUnavailable', `token request for ${who} returned no token`);
    return token;
  }

  /** Closes the kubelet's connections to the API server. */
  close(): void {
    this.http.close();
  }
}
