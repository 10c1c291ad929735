/**
 * The webhook without an API server: the decision (pure), the reviewer over a real SQLite datastore and a
 * failing one, the HTTPS server with its own CA, the configuration's render and level-triggered reconcile
 * over a stateful fake of the API server, and the CLI flags.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdmissionReviewer, decideAdmission } from '../../src/controller/webhook/admission.js';
import { covers, reconcileWebhookConfiguration, renderWebhookConfiguration } from '../../src/controller/webhook/configuration.js';
import { webhookOptionsFromFlags } from '../../src/controller/webhook/flags.js';
import type { KubeObject, KubeObjects } from '../../src/controller/webhook/kube-objects.js';
import { startWebhookServer } from '../../src/controller/webhook/server.js';
import { obtainWebhookTls } from '../../src/controller/webhook/validation-webhook.js';
import { issueWebhookTls } from '../../src/controller/webhook/x509.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { EgwError } from '../../src/platform/errors.js';
import { silentLogger } from '../../src/platform/logger.js';

const pool = (name: string, cidr: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr, ...extra },
});
const review = (object: unknown, operation = 'CREATE', uid = 'u-1') => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, operation, object } });

/** A stateful fake of the API server's objects: resourceVersions, AlreadyExists, Conflict, and a write log. */
class FakeKubeObjects implements KubeObjects {
  readonly objects = new Map<string, KubeObject>();
  readonly writes: string[] = [];
  private rv = 1;
  private key = (kind: string, name: string, ns?: string) => `${kind}/${ns ?? ''}/${name}`;
  read(_v: string, kind: string, name: string, ns?: string): Promise<KubeObject | undefined> {
    return Promise.resolve(structuredClone(this.objects.get(this.key(kind, name, ns))));
  }
  create(obj: KubeObject): Promise<KubeObject> {
    const k = this.key(obj.kind, obj.metadata.name, obj.metadata.namespace);
    if (this.objects.has(k)) return Promise.reject(new EgwError('AlreadyExists', k));
    return Promise.resolve(this.store(k, obj, 'create'));
  }
  replace(obj: KubeObject): Promise<KubeObject> {
    const k = this.key(obj.kind, obj.metadata.name, obj.metadata.namespace);
    if (this.objects.get(k)?.metadata.resourceVersion !== obj.metadata.resourceVersion) return Promise.reject(new EgwError('Conflict', k));
    return Promise.resolve(this.store(k, obj, 'replace'));
  }
  private store(k: string, obj: KubeObject, op: string): KubeObject {
    // The API server adds defaults and bumps resourceVersion: a later compare must ignore the former.
    const stored: KubeObject = structuredClone({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv++), uid: 'x' } });
    for (const w of (stored.webhooks as Record<string, unknown>[] | undefined) ?? []) w.namespaceSelector = {};
    this.objects.set(k, stored);
    this.writes.push(`${op} ${k}`);
    return stored;
  }
}

describe('decideAdmission (pure)', () => {
  it('allows a valid pool; denies an invalid one with egw validate\'s lines, 422', () => {
    expect(decideAdmission('a', pool('p', '10.1.0.0/24'), [])).toEqual({ uid: 'a', allowed: true });
    const r = decideAdmission('b', pool('p', '10.1.0.0/24', { nodeSelector: "global() && a == 'b'" }), []);
    expect(r.allowed).toBe(false);
    expect(r.status?.code).toBe(422);
    expect(r.status?.message).toMatch(/^IPPool\/p spec\.nodeSelector: .*; expected /);
  });

  it('runs the cross-resource checks against the stored state: overlap, immutable cidr', () => {
    const stored = [pool('a', '10.1.0.0/24', { blockSize: 26 })] as never[];
    const overlap = decideAdmission('c', pool('b', '10.1.0.0/25'), stored);
    expect(overlap.status?.message).toBe('IPPool/b spec.cidr: IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.1.0.0/24; expected a CIDR that overlaps no other IPPool');
    const changed = decideAdmission('d', pool('a', '10.2.0.0/24'), stored);
    expect(changed.status?.message).toMatch(/^IPPool\/a spec\.cidr: IPPool CIDR cannot be modified/);
  });

  it('joins several errors one per line and returns warnings as warnings', () => {
    const gw = {
      apiVersion: 'operator.tigera.io/v1',
      kind: 'EgressGateway',
      metadata: { name: 'g', namespace: 'default' },
      spec: { ipPools: [{ name: 'missing' }] },
    };
    const r = decideAdmission('e', gw, []);
    expect(r.allowed).toBe(true);
    expect(r.warnings).toEqual([expect.stringMatching(/^EgressGateway\/default\/g spec\.ipPools\[0\]: IPPool "missing" does not exist \(yet\); expected/)]);
    const two = decideAdmission('f', pool('p', '10.1.0.1/24', { nodeSelector: 'a ==' }), []);
    expect(two.status?.message.split('\n').length).toBeGreaterThanOrEqual(2);
  });
});

describe('AdmissionReviewer', () => {
  let dir: string;
  let store: SqliteDatastore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'egw-webhook-'));
    store = await SqliteDatastore.open(join(dir, 'egw.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the other resources from the datastore; an invalid stored one counts as absent', async () => {
    await store.commit([
      { op: 'create', key: { kind: 'IPPool', name: 'a' }, value: pool('a', '10.1.0.0/24') },
      { op: 'create', key: { kind: 'IPPool', name: 'bad' }, value: pool('bad', '10.2.0.1/24') },
    ]);
    const reviewer = new AdmissionReviewer({ store, logger: silentLogger() });
    const denied = await reviewer.review(review(pool('b', '10.1.0.128/25')));
    expect(denied).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: false, status: { code: 422 } } });
    expect((await reviewer.review(review(pool('c', '10.2.0.0/24')))).response.allowed).toBe(true);
  });

  it('allows DELETE and updates of objects being deleted; refuses malformed reviews and other kinds with a reason', async () => {
    const reviewer = new AdmissionReviewer({ store, logger: silentLogger() });
    expect((await reviewer.review(review(undefined, 'DELETE'))).response).toEqual({ uid: 'u-1', allowed: true });
    const dying = { ...pool('p', 'nonsense'), metadata: { name: 'p', deletionTimestamp: '2026-01-01T00:00:00Z' } };
    expect((await reviewer.review(review(dying, 'UPDATE'))).response.allowed).toBe(true);
    expect((await reviewer.review({ hello: 1 })).response).toMatchObject({ uid: '', allowed: false, status: { code: 400 } });
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: {} };
    expect((await reviewer.review(review(pod))).response.status?.message).toMatch(/kind "Pod" is not validated here; expected one of IPPool, /);
  });

  it('a datastore that fails or hangs gives a denial saying what failed, never an exception', async () => {
    const failing = { location: 'broken://', capabilities: { atomicMultiKey: true }, list: () => Promise.reject(new Error('boom')) } as unknown as Datastore;
    const r1 = await new AdmissionReviewer({ store: failing, logger: silentLogger() }).review(review(pool('p', '10.1.0.0/24')));
    expect(r1.response).toMatchObject({ allowed: false, status: { code: 500 } });
    expect(r1.response.status?.message).toMatch(/cannot read IPPool, AWSSubnet, EgressGateway from the datastore \(broken:\/\/\).*boom/);
    const hanging = { ...failing, list: () => new Promise(() => undefined) } as unknown as Datastore;
    const r2 = await new AdmissionReviewer({ store: hanging, logger: silentLogger() }, { readTimeoutMs: 50 }).review(review(pool('p', '10.1.0.0/24')));
    expect(r2.response.status?.message).toMatch(/no answer within 50 ms/);
    // Kinds without cross-resource checks never touch the datastore.
    const felix = { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: {} };
    expect((await new AdmissionReviewer({ store: failing, logger: silentLogger() }).review(review(felix))).response.allowed).toBe(true);
  });
});

describe('the HTTPS server', () => {
  it('answers POST /validate over TLS the CA vouches for; 400 for a body that is not JSON; /healthz', async () => {
    const tls = issueWebhookTls({ dnsNames: [], ipAddresses: ['127.0.0.1'], now: new Date() });
    const reviewer = { review: (body: unknown) => Promise.resolve({ apiVersion: 'admission.k8s.io/v1' as const, kind: 'AdmissionReview' as const, response: { uid: JSON.stringify(body), allowed: true } }) };
    const server = await startWebhookServer({ reviewer, logger: silentLogger() }, tls, { host: '127.0.0.1', port: 0 });
    const call = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: server.port, method, path, ca: tls.caPem }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const ok = await call('POST', '/validate?timeout=5s', '{"a":1}');
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body)).toMatchObject({ response: { uid: '{"a":1}', allowed: true } });
      expect((await call('POST', '/validate', 'not json')).status).toBe(400);
      expect(await call('GET', '/healthz')).toEqual({ status: 200, body: 'ok' });
      expect((await call('GET', '/other')).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('the ValidatingWebhookConfiguration', () => {
  const desired = renderWebhookConfiguration({ name: 'egw-validation', client: { service: { namespace: 'egw-system', name: 'egw-webhook' } }, caPem: 'CA' });

  it('renders the five kinds, CREATE and UPDATE, Fail, 5 s, sideEffects None, the Service on /validate', () => {
    expect(desired).toMatchObject({
      metadata: { name: 'egw-validation' },
      webhooks: [
        {
          name: 'validate.egw.io',
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
          sideEffects: 'None',
          clientConfig: { service: { namespace: 'egw-system', name: 'egw-webhook', path: '/validate', port: 443 }, caBundle: Buffer.from('CA').toString('base64') },
          rules: [
            { apiGroups: ['projectcalico.org'], apiVersions: ['v3'], operations: ['CREATE', 'UPDATE'], resources: ['ippools', 'ipreservations', 'felixconfigurations', 'egressgatewaypolicies'], scope: 'Cluster' },
            { apiGroups: ['operator.tigera.io'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['egressgateways'], scope: 'Namespaced' },
          ],
        },
      ],
    });
  });

  it('reconcile: creates, then writes nothing while it matches (server defaults ignored), replaces on a change, keeps others\' labels', async () => {
    const kube = new FakeKubeObjects();
    expect(await reconcileWebhookConfiguration(kube, desired)).toBe('created');
    expect(await reconcileWebhookConfiguration(kube, desired)).toBe('unchanged');
    const key = 'ValidatingWebhookConfiguration//egw-validation';
    kube.objects.get(key)!.metadata.labels = { ...(kube.objects.get(key)!.metadata.labels as object), team: 'x' };
    const rotated = renderWebhookConfiguration({ name: 'egw-validation', client: { service: { namespace: 'egw-system', name: 'egw-webhook' } }, caPem: 'CA2' });
    expect(await reconcileWebhookConfiguration(kube, rotated)).toBe('updated');
    expect(await reconcileWebhookConfiguration(kube, rotated)).toBe('unchanged');
    expect(kube.writes).toEqual([`create ${key}`, `replace ${key}`]);
    expect(kube.objects.get(key)!.metadata.labels).toMatchObject({ team: 'x', 'app.kubernetes.io/part-of': 'egw' });
    expect(covers({ a: 1, b: [{ c: 2, d: 3 }] }, { b: [{ c: 2 }] })).toBe(true);
    expect(covers({ b: [{ c: 2 }, { c: 3 }] }, { b: [{ c: 2 }] })).toBe(false);
  });

  it('the TLS Secret: the first replica creates it, the next one loads the same CA', async () => {
    const kube = new FakeKubeObjects();
    const req = { dnsNames: ['egw-webhook.egw-system.svc'], ipAddresses: [], now: new Date() };
    const secret = { namespace: 'egw-system', name: 'egw-webhook-tls' };
    const first = await obtainWebhookTls(kube, req, secret);
    const second = await obtainWebhookTls(kube, req, secret);
    expect(second).toEqual(first);
    expect(kube.writes).toEqual(['create Secret/egw-system/egw-webhook-tls']);
    // Material that no longer covers the names is replaced (at the read resourceVersion).
    const other = await obtainWebhookTls(kube, { ...req, dnsNames: ['other.egw-system.svc'] }, secret);
    expect(other.caPem).not.toBe(first.caPem);
    expect(kube.writes).toHaveLength(2);
  });
});

describe('webhookOptionsFromFlags', () => {
  it('off by default; Service with a shared Secret; URL in memory; refuses half-given flags', () => {
    expect(webhookOptionsFromFlags({})).toBeUndefined();
    expect(webhookOptionsFromFlags({ webhookListen: '0.0.0.0:9443', webhookService: 'egw-system/egw-webhook' })).toEqual({
      listen: { host: '0.0.0.0', port: 9443 },
      client: { service: { namespace: 'egw-system', name: 'egw-webhook' } },
      configurationName: 'egw-validation',
      failurePolicy: 'Fail',
      tlsSecret: { namespace: 'egw-system', name: 'egw-webhook-tls' },
    });
    expect(webhookOptionsFromFlags({ webhookListen: '127.0.0.1:0', webhookUrl: 'https://127.0.0.1:9443/validate' })).not.toHaveProperty('tlsSecret');
    expect(() => webhookOptionsFromFlags({ webhookUrl: 'https://x/validate' })).toThrow(/need --webhook-listen/);
    expect(() => webhookOptionsFromFlags({ webhookListen: ':9443' })).toThrow(/exactly one of --webhook-url and --webhook-service/);
    expect(() => webhookOptionsFromFlags({ webhookListen: 'nope', webhookUrl: 'https://x/validate' })).toThrow(/not HOST:PORT/);
    expect(() => webhookOptionsFromFlags({ webhookListen: ':9443', webhookService: 'egw-webhook' })).toThrow(/not NAMESPACE\/NAME/);
    expect(() => webhookOptionsFromFlags({ webhookListen: ':9443', webhookService: 'a/b', webhookFailurePolicy: 'fail' })).toThrow(/not Fail or Ignore/);
  });
});
