/**
 * The webhook's ValidatingWebhookConfiguration: rendered (pure) and reconciled level-triggered (read,
 * compare the fields egw sets, create or replace only when different).
 */
import { kindInfo } from '../../api/kinds.js';
import { WEBHOOK_KINDS } from './admission.js';
import type { KubeObject, KubeObjects } from './kube-objects.js';
import { WEBHOOK_PATH } from './server.js';

/** The name of egw's ValidatingWebhookConfiguration. */
export const WEBHOOK_CONFIGURATION_NAME = 'egw-validation';
/** The name of the one webhook in it (webhook names are fully qualified). */
export const WEBHOOK_NAME = 'validate.egw.io';

/** How the API server reaches the webhook: a URL, or a Service (port 443, path /validate). */
export type WebhookClient = { readonly url: string } | { readonly service: { readonly namespace: string; readonly name: string; readonly port?: number } };

/** What the configuration holds. */
export interface WebhookConfigurationSpec {
  readonly name: string;
  readonly client: WebhookClient;
  readonly caPem: string;
  /**
   * Fail (default): an egw kind is not stored unless the webhook said yes — an unvalidated pool or policy
   * can send traffic out with the wrong source. Ignore only to recover when no controller can run.
   */
  readonly failurePolicy?: 'Fail' | 'Ignore';
  /** Default 5 s: the API server waits this long per write (the reviewer's own deadline is shorter). */
  readonly timeoutSeconds?: number;
  /**
   * Absent in production (every object of these kinds is egw's). Tests sharing a control plane set one so
   * that only their own objects reach their webhook.
   */
  readonly objectSelector?: { readonly matchLabels: Readonly<Record<string, string>> };
}

/**
 * The ValidatingWebhookConfiguration for {@link WEBHOOK_KINDS}: CREATE and UPDATE, main resources only
 * (status writes are not validated), sideEffects None (so `kubectl apply --dry-run=server` is checked too),
 * matchPolicy Equivalent. No namespaceSelector/objectSelector: every object of these kinds is egw's.
 */
export function renderWebhookConfiguration(spec: WebhookConfigurationSpec): KubeObject {
  const byGroup = new Map<string, { version: string; plurals: string[]; namespaced: boolean }>();
  for (const kind of WEBHOOK_KINDS.keys()) {
    const info = kindInfo(kind)!;
    const key = `${info.group}/${info.version}/${info.namespaced ? 'Namespaced' : 'Cluster'}`;
    const entry = byGroup.get(key) ?? { version: info.version, plurals: [], namespaced: info.namespaced };
    entry.plurals.push(info.plural);
    byGroup.set(key, entry);
  }
  const rules = [...byGroup.entries()].map(([key, e]) => ({
    apiGroups: [key.split('/')[0]!],
    apiVersions: [e.version],
    operations: ['CREATE', 'UPDATE'],
    resources: e.plurals,
    scope: e.namespaced ? 'Namespaced' : 'Cluster',
  }));
  const clientConfig =
    'url' in spec.client
      ? { url: spec.client.url, caBundle: Buffer.from(spec.caPem).toString('base64') }
      : { service: { namespace: spec.client.service.namespace, name: spec.client.service.name, path: WEBHOOK_PATH, port: spec.client.service.port ?? 443 }, caBundle: Buffer.from(spec.caPem).toString('base64') };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: spec.name, labels: { 'app.kubernetes.io/part-of': 'egw', 'app.kubernetes.io/component': 'controller' } },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: spec.failurePolicy ?? 'Fail',
        matchPolicy: 'Equivalent',
        timeoutSeconds: spec.timeoutSeconds ?? 5,
        clientConfig,
        rules,
        ...(spec.objectSelector === undefined ? {} : { objectSelector: spec.objectSelector }),
      },
    ],
  };
}

/**
 * True when every field of `want` is in `have` with the same value (arrays: same length, element-wise).
 * Fields the API server adds (defaults, managedFields) do not count as differences.
 */
export function covers(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(have) && have.length === want.length && want.every((w, i) => covers(have[i], w));
  if (typeof want === 'object' && want !== null) {
    if (typeof have !== 'object' || have === null || Array.isArray(have)) return false;
    const h = have as Record<string, unknown>;
    return Object.entries(want).every(([k, v]) => covers(h[k], v));
  }
  return have === want;
}

/**
 * Makes the stored ValidatingWebhookConfiguration hold `desired`: creates it when missing, replaces it
 * (at the read resourceVersion) when a field egw sets differs, else writes nothing. Returns what it did.
 * Idempotent; a concurrent writer makes it fail with `Conflict`/`AlreadyExists` (the next pass converges).
 */
export async function reconcileWebhookConfiguration(kube: KubeObjects, desired: KubeObject): Promise<'created' | 'updated' | 'unchanged'> {
  const have = await kube.read(desired.apiVersion, desired.kind, desired.metadata.name);
  if (have === undefined) {
    await kube.create(desired);
    return 'created';
  }
  const want = { metadata: { labels: desired.metadata.labels }, webhooks: desired.webhooks };
  if (covers(have, want)) return 'unchanged';
  const rv = have.metadata.resourceVersion;
  // Others' labels and annotations stay; egw's fields are replaced whole.
  const labels = { ...(have.metadata.labels as Record<string, string> | undefined), ...(desired.metadata.labels as Record<string, string> | undefined) };
  await kube.replace({ ...desired, metadata: { ...have.metadata, ...desired.metadata, labels, ...(rv === undefined ? {} : { resourceVersion: rv }) } });
  return 'updated';
}
