/**
 * The validating admission webhook of `egw controller` as one part: TLS material (made in memory, or
 * shared by every replica through a Secret), the HTTPS server, and the level-triggered reconcile of the
 * ValidatingWebhookConfiguration carrying the CA. It serves on every replica, leader or not: the API
 * server may call any of them. docs/kubernetes.md, "Validation in the API server".
 */
import type { Datastore } from '../../datastore/contract.js';
import { runEvery, type Clock } from '../../platform/clock.js';
import { EgwError, errorMessage } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { AdmissionReviewer } from './admission.js';
import { reconcileWebhookConfiguration, renderWebhookConfiguration, WEBHOOK_CONFIGURATION_NAME, type WebhookClient } from './configuration.js';
import type { KubeObject, KubeObjects } from './kube-objects.js';
import { startWebhookServer, type RunningWebhookServer } from './server.js';
import { issueWebhookTls, webhookTlsCovers, type WebhookTls, type WebhookTlsRequest } from './x509.js';

/** Dependencies of {@link ValidationWebhook}. */
export interface ValidationWebhookDeps {
  /** The datastore the cross-resource checks read. */
  readonly store: Datastore;
  /** The API server, for the ValidatingWebhookConfiguration and the TLS Secret. */
  readonly kube: KubeObjects;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Options of {@link ValidationWebhook}. */
export interface ValidationWebhookOptions {
  /** Where to listen (`host`, `port`; port 0 = any free one). */
  readonly listen: { readonly host: string; readonly port: number };
  /** How the API server reaches this webhook. */
  readonly client: WebhookClient;
  /** Name of the ValidatingWebhookConfiguration (default `egw-validation`). */
  readonly configurationName?: string;
  /**
   * A Secret (`namespace`, `name`) holding the CA and serving certificate shared by every replica: the
   * first replica creates it, the others load it. Absent: fresh material in memory (one replica only).
   */
  readonly tlsSecret?: { readonly namespace: string; readonly name: string };
  /** failurePolicy (default Fail) and timeoutSeconds (default 5) of the configuration. */
  readonly failurePolicy?: 'Fail' | 'Ignore';
  readonly timeoutSeconds?: number;
  /** Only objects with these labels go to the webhook (tests sharing a control plane; absent in production). */
  readonly objectSelector?: { readonly matchLabels: Readonly<Record<string, string>> };
  /** How often the configuration is re-read and corrected (default 60 s). */
  readonly resyncMs?: number;
}

/** The names and addresses the serving certificate must cover for `client`. */
export function certificateNames(client: WebhookClient): { dnsNames: string[]; ipAddresses: string[] } {
  if ('service' in client) {
    const { name, namespace } = client.service;
    return { dnsNames: [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`], ipAddresses: [] };
  }
  let host: string;
  try {
    host = new URL(client.url).hostname;
  } catch {
    throw new EgwError('InvalidInput', `webhook URL "${client.url}" is not a URL`, { hint: 'e.g. https://127.0.0.1:9443/validate' });
  }
  if (!client.url.startsWith('https://')) throw new EgwError('InvalidInput', `webhook URL "${client.url}" is not https`, { hint: 'the API server calls webhooks over TLS only' });
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) ? { dnsNames: [], ipAddresses: [host] } : { dnsNames: [host], ipAddresses: [] };
}

const TLS_KEYS = { ca: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

function fromSecret(obj: KubeObject | undefined): WebhookTls | undefined {
  const data = obj?.data as Record<string, string> | undefined;
  const get = (k: string) => (data?.[k] === undefined ? undefined : Buffer.from(data[k], 'base64').toString('utf8'));
  const caPem = get(TLS_KEYS.ca);
  const certPem = get(TLS_KEYS.cert);
  const keyPem = get(TLS_KEYS.key);
  return caPem === undefined || certPem === undefined || keyPem === undefined ? undefined : { caPem, certPem, keyPem };
}

function secretOf(ref: { namespace: string; name: string }, tls: WebhookTls, resourceVersion?: string): KubeObject {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: ref.name, namespace: ref.namespace, labels: { 'app.kubernetes.io/part-of': 'egw' }, ...(resourceVersion === undefined ? {} : { resourceVersion }) },
    type: 'kubernetes.io/tls',
    data: { [TLS_KEYS.ca]: b64(tls.caPem), [TLS_KEYS.cert]: b64(tls.certPem), [TLS_KEYS.key]: b64(tls.keyPem) },
  };
}

/**
 * The TLS material for `req`: from the Secret when it holds material that still covers `req`; else new
 * material written to it (create, or replace at the read resourceVersion); a replica that loses that race
 * reads the winner's. Without a Secret: new material in memory.
 */
export async function obtainWebhookTls(kube: KubeObjects, req: WebhookTlsRequest, secret: { namespace: string; name: string } | undefined): Promise<WebhookTls> {
  if (secret === undefined) return issueWebhookTls(req);
  for (let attempt = 0; attempt < 3; attempt++) {
    const have = await kube.read('v1', 'Secret', secret.name, secret.namespace);
    const stored = fromSecret(have);
    if (stored !== undefined && webhookTlsCovers(stored, req)) return stored;
    const fresh = issueWebhookTls(req);
    try {
      if (have === undefined) await kube.create(secretOf(secret, fresh));
      else await kube.replace(secretOf(secret, fresh, have.metadata.resourceVersion));
      return fresh;
    } catch (err) {
      if (!(err instanceof EgwError) || (err.code !== 'AlreadyExists' && err.code !== 'Conflict')) throw err;
      // Another replica wrote it first: read theirs.
    }
  }
  throw new EgwError('Conflict', `the webhook TLS Secret ${secret.namespace}/${secret.name} kept changing`, { hint: 'restart the controller' });
}

/** The webhook part: {@link start} serves and keeps the configuration right; {@link stop} ends both. */
export class ValidationWebhook {
  private server: RunningWebhookServer | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly deps: ValidationWebhookDeps,
    private readonly options: ValidationWebhookOptions,
  ) {}

  /** The bound port once started (useful with port 0). */
  get port(): number | undefined {
    return this.server?.port;
  }

  /**
   * Gets TLS material, starts serving, then reconciles the configuration now and every `resyncMs`
   * (a failed pass is logged and retried at the next one). Resolves once the server listens. Throws
   * `InvalidInput` for a bad URL or address and what the TLS Secret's read/write throws.
   */
  async start(): Promise<void> {
    if (this.server !== undefined) return;
    const log = this.deps.logger;
    const names = certificateNames(this.options.client);
    const tls = await obtainWebhookTls(this.deps.kube, { ...names, now: new Date(this.deps.clock.now()) }, this.options.tlsSecret);
    const reviewer = new AdmissionReviewer({ store: this.deps.store, logger: log });
    // Serve before the configuration names us: the other order refuses writes until the socket is up.
    this.server = await startWebhookServer({ reviewer, logger: log }, tls, this.options.listen);
    const desired = renderWebhookConfiguration({
      name: this.options.configurationName ?? WEBHOOK_CONFIGURATION_NAME,
      client: this.options.client,
      caPem: tls.caPem,
      ...(this.options.failurePolicy === undefined ? {} : { failurePolicy: this.options.failurePolicy }),
      ...(this.options.timeoutSeconds === undefined ? {} : { timeoutSeconds: this.options.timeoutSeconds }),
      ...(this.options.objectSelector === undefined ? {} : { objectSelector: this.options.objectSelector }),
    });
    this.loop = runEvery(
      this.deps.clock,
      this.options.resyncMs ?? 60_000,
      this.abort.signal,
      async () => {
        const did = await reconcileWebhookConfiguration(this.deps.kube, desired);
        if (did !== 'unchanged') log.info({ name: desired.metadata.name, did }, 'webhook configuration written');
      },
      (err) => log.warn({ err: errorMessage(err) }, 'webhook configuration pass failed; retrying at the next pass'),
    );
  }

  /** Stops the reconcile loop and the server (the configuration stays: other replicas serve it). */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.server?.close();
    this.server = undefined;
  }
}
