/**
 * The validating admission webhook on a real kube-apiserver (scripts/with-kube): egw's CRDs applied, the
 * webhook started in-process (HTTPS on loopback, its own CA, the ValidatingWebhookConfiguration written by
 * it) and reading the other resources through the Kubernetes datastore; then `kubectl apply` accepts the
 * reference manifests, refuses every invalid example of the five kinds with its rule's message, and refuses
 * writes with a clear error once the webhook is gone (failurePolicy Fail).
 *
 * Isolation in a control plane other test files share: the configuration has its own name and an
 * objectSelector on this run's label, so only objects this file writes go to this webhook; and the
 * webhook reads the datastore through {@link WorldView}, which shows it only the objects of the current
 * "world" (the reference set, or one invalid example), so that pools stored by other files (the same
 * CIDRs, other names) do not overlap ours. Everything stored carries the run label and is deleted after.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { apiCrds } from '../../src/api/crd.js';
import { ValidationWebhook } from '../../src/controller/webhook/validation-webhook.js';
import { ClientKubeObjects } from '../../src/controller/webhook/kube-objects.js';
import type { Datastore, ListResult, ResourceKey, WatchOptions, WriteOp } from '../../src/datastore/contract.js';
import { KubernetesDatastore } from '../../src/datastore/kubernetes/kubernetes-datastore.js';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { kubeAvailable, type KubectlResult } from '../support/kubectl.js';

const suffix = randomBytes(3).toString('hex');
const RUN_LABEL = 'egw-test-webhook-run';
const WORLD_LABEL = 'egw-test-webhook-world';
const CONFIG_NAME = `egw-validation-test-${suffix}`;
const REFERENCE = 'examples/reference';
const INVALID = 'examples/invalid';
const WEBHOOK_KINDS = new Set(['IPPool', 'IPReservation', 'FelixConfiguration', 'EgressGatewayPolicy', 'EgressGateway']);
const RESOURCES = 'ippools.projectcalico.org,ipreservations.projectcalico.org,felixconfigurations.projectcalico.org,egressgatewaypolicies.projectcalico.org,awssubnets.egw.io';

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

let world = '';

/** The datastore as the webhook under test sees it: only the current world's objects (namespaces all). */
class WorldView implements Datastore {
  constructor(private readonly inner: Datastore) {}
  get location() {
    return this.inner.location;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  get(key: ResourceKey) {
    return this.inner.get(key);
  }
  commit(ops: readonly WriteOp[]) {
    return this.inner.commit(ops);
  }
  currentRevision() {
    return this.inner.currentRevision();
  }
  watch(options: WatchOptions) {
    return this.inner.watch(options);
  }
  close() {
    return this.inner.close();
  }
  async list(kind: string, options?: { namespace?: string }): Promise<ListResult> {
    const all = await this.inner.list(kind, options);
    if (kind === 'Namespace') return all;
    return { ...all, items: all.items.filter((i) => (i.value.metadata as { labels?: Record<string, string> } | undefined)?.labels?.[WORLD_LABEL] === world) };
  }
}

/**
 * kubectl without blocking: the webhook answers from this very process, so test/support's spawnSync
 * helpers would starve it until the API server times out.
 */
function kubectl(args: readonly string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = spawn('kubectl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

async function kubectlOk(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function header(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^# ([a-z-]+): ?(.*)$/.exec(line);
    if (m !== null) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The documents of a file, labelled with the run and `worldName`; reference objects also renamed for this run. */
function documents(file: string, worldName: string, rename: boolean): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const value: unknown = doc.toJS();
    if (!isObject(value)) continue;
    const o = structuredClone(value);
    const meta = isObject(o.metadata) ? o.metadata : {};
    o.metadata = meta;
    meta.labels = { ...(isObject(meta.labels) ? meta.labels : {}), [RUN_LABEL]: suffix, [WORLD_LABEL]: worldName };
    // Namespaced examples land in the namespace the reference test created for this run.
    if (typeof meta.namespace === 'string' && meta.namespace !== 'default') meta.namespace = `${meta.namespace}-${suffix}`;
    if (rename) {
      const spec = isObject(o.spec) ? o.spec : {};
      if (o.kind === 'Namespace' || (o.kind !== 'AWSSubnet' && o.kind !== 'Pod')) meta.name = `${String(meta.name)}-${suffix}`;
      if (Array.isArray(spec.ipPools)) for (const ref of spec.ipPools) if (isObject(ref) && typeof ref.name === 'string') ref.name = `${ref.name}-${suffix}`;
    }
    out.push(o);
  }
  return out;
}

const stream = (items: Obj[]) => items.map((o) => JSON.stringify(o)).join('\n---\n');
const kindOf = (o: Obj) => String(o.kind);
const nameOf = (o: Obj) => String((o.metadata as Obj).name);

/** Invalid examples refused by the webhook itself (the others are refused earlier, by the CRDs' schema or CEL). */
const WEBHOOK_REFUSED = [
  'cross-egw-cidr-does-not-match-name',
  'cross-egw-native-ip-pool-not-aws',
  'cross-ippool-overlap',
  'cross-pool-outside-subnet',
  'egp-duplicate-default-destination',
  'egp-duplicate-host-bits',
  'egp-unparsable-selector',
  'ippool-bad-node-selector',
  'ippool-global-selector',
];

/** Examples of the five kinds that cannot reach the webhook as written (see the report in docs/kubernetes.md). */
const NOT_APPLICABLE = new Set([
  // Two documents with one name are two requests to the API server (create, then update): not an error there.
  'cross-duplicate-in-apply',
  // kubectl cannot parse it: refused before any request.
  'yaml-syntax-error',
  // kubectl drops metadata.namespace of a cluster-scoped object before sending it: the API server never sees it.
  'egp-namespaced',
]);

describe.skipIf(!kubeAvailable)('the validating admission webhook on a real kube-apiserver (needs scripts/with-kube: KUBECONFIG and EGW_TEST_KUBE_DIR)', () => {
  let store: Datastore | undefined;
  let webhook: ValidationWebhook | undefined;
  const kube = kubeAvailable ? new ClientKubeObjects() : undefined;

  beforeAll(async () => {
    const crds = apiCrds();
    await kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-webhook-test', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: crds }));
    await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', ...crds.map((c) => `crd/${c.metadata.name}`)]);
    // `kinds` names no projectcalico.org kind: open() refuses that group when APIService v3.projectcalico.org
    // exists, and kube-apiserver registers that APIService itself for the CRDs (a local one, no service).
    // list() serves every kind of the map either way.
    store = new WorldView(await KubernetesDatastore.open({ kinds: ['AWSSubnet', 'EgressGateway', 'Namespace'] }));
    const port = await freePort();
    webhook = new ValidationWebhook(
      { store, kube: kube!, clock: new SystemClock(), logger: silentLogger() },
      {
        listen: { host: '127.0.0.1', port },
        client: { url: `https://127.0.0.1:${port}/validate` },
        configurationName: CONFIG_NAME,
        objectSelector: { matchLabels: { [RUN_LABEL]: suffix } },
        resyncMs: 1000,
      },
    );
    await webhook.start();
    // The API server picks the configuration up from its informer: wait until a refused write proves it.
    const probe = stream(documents(`${INVALID}/ippool-global-selector.yaml`, 'probe', false));
    const deadline = Date.now() + 30_000;
    while (!(await kubectl(['apply', '--dry-run=server', '-f', '-'], probe)).stderr.includes('admission webhook "validate.egw.io" denied the request')) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);

  afterAll(async () => {
    await webhook?.stop();
    if (kubeAvailable) {
      await kubectl(['delete', '--ignore-not-found', 'validatingwebhookconfiguration', CONFIG_NAME]);
      await kubectl(['delete', '--ignore-not-found', '--wait=false', '-l', `${RUN_LABEL}=${suffix}`, `${RESOURCES},egressgateways.operator.tigera.io`, '--all-namespaces']);
      await kubectl(['delete', '--ignore-not-found', '--wait=false', '-l', `${RUN_LABEL}=${suffix}`, 'namespaces']);
    }
    await store?.close();
  }, 60_000);

  it('writes its ValidatingWebhookConfiguration with the CA, failurePolicy Fail and the five kinds', async () => {
    const vwc = JSON.parse(await kubectlOk(['get', 'validatingwebhookconfiguration', CONFIG_NAME, '-o', 'json'])) as { webhooks: Obj[] };
    expect(vwc.webhooks).toHaveLength(1);
    const w = vwc.webhooks[0]!;
    expect(w).toMatchObject({ name: 'validate.egw.io', failurePolicy: 'Fail', sideEffects: 'None', timeoutSeconds: 5, admissionReviewVersions: ['v1'] });
    expect(Buffer.from(String((w.clientConfig as Obj).caBundle), 'base64').toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const resources = (w.rules as { resources: string[] }[]).flatMap((r) => r.resources).sort();
    expect(resources).toEqual(['egressgatewaypolicies', 'egressgateways', 'felixconfigurations', 'ippools', 'ipreservations']);
  });

  it('kubectl apply accepts every reference manifest', async () => {
    world = `ref-${suffix}`;
    const files = readdirSync(REFERENCE).sort();
    const namespaces = files.flatMap((f) => documents(`${REFERENCE}/${f}`, world, true)).filter((o) => o.kind === 'Namespace');
    await kubectlOk(['apply', '-f', '-'], stream(namespaces));
    // FelixConfiguration `default` is one per cluster, shared with other test files: checked, not stored.
    const felix = documents(`${REFERENCE}/felix-configuration.yaml`, world, false);
    expect(felix.map(nameOf)).toEqual(['default']);
    const f = await kubectl(['apply', '--dry-run=server', '-f', '-'], stream(felix));
    expect(f.stderr).toBe('');
    expect(f.code).toBe(0);
    // Subnets and pools before the gateway that names them (as `egw apply` orders them).
    const order = ['AWSSubnet', 'IPPool', 'IPReservation', 'EgressGatewayPolicy', 'EgressGateway'];
    const docs = files.flatMap((f) => documents(`${REFERENCE}/${f}`, world, true)).filter((o) => order.includes(kindOf(o)));
    docs.sort((a, b) => order.indexOf(kindOf(a)) - order.indexOf(kindOf(b)));
    expect(new Set([...docs, ...felix].map(kindOf).filter((k) => WEBHOOK_KINDS.has(k)))).toEqual(WEBHOOK_KINDS);
    const r = await kubectl(['apply', '-f', '-'], stream(docs));
    expect(r.code).toBe(0);
    // The one warning: the gateway's nativeIP needs awsSecondaryIPSupport, set in the `default` not stored here.
    expect(r.stderr.trim().split('\n')).toEqual([
      `Warning: EgressGateway/calico-egress-${suffix}/egress-gateway-red-${suffix} spec.aws.nativeIP: aws.nativeIP is Enabled but FelixConfiguration default has awsSecondaryIPSupport Disabled, so no secondary ENIs are provisioned for the gateways; expected awsSecondaryIPSupport: EnabledENIPerWorkload (or Enabled) in FelixConfiguration default`,
    ]);
  });

  const invalid = readdirSync(INVALID)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .filter((f) => !NOT_APPLICABLE.has(f))
    .filter((f) => {
      const kinds = (readFileSync(`${INVALID}/${f}.yaml`, 'utf8').match(/^kind: *(\S+)/gm) ?? []).map((l) => l.replace(/^kind: */, ''));
      const rule = header(`${INVALID}/${f}.yaml`).rule ?? '';
      const target = kinds.find((k) => rule.startsWith(`${k}.`)) ?? kinds[kinds.length - 1];
      return target !== undefined && WEBHOOK_KINDS.has(target);
    })
    .sort();

  it('selects the invalid examples of the five kinds', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(45);
    for (const f of WEBHOOK_REFUSED) expect(invalid).toContain(f);
  });

  it.each(invalid)('kubectl apply refuses examples/invalid/%s.yaml with its rule\'s message', async (name) => {
    const file = `${INVALID}/${name}.yaml`;
    const h = header(file);
    world = `${name.slice(0, 40)}-${suffix}`;
    const docs = documents(file, world, false);
    // The document the rule is about; the others are stored first (the checks read them from the datastore).
    const rule = h.rule ?? '';
    const targetIndex = docs.map(kindOf).lastIndexOf(docs.map(kindOf).find((k) => rule.startsWith(`${k}.`)) ?? kindOf(docs[docs.length - 1]!));
    const target = docs[targetIndex]!;
    const context = docs.filter((_, i) => i !== targetIndex);
    try {
      if (context.length > 0) await kubectlOk(['apply', '-f', '-'], stream(context));
      const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], stream([target]));
      expect(r.code, r.stdout).not.toBe(0);
      if (h.path !== undefined && h.path !== '' && !r.stderr.includes('no matches for kind')) expect(r.stderr).toContain(h.path);
      const byWebhook = r.stderr.includes('admission webhook "validate.egw.io" denied the request');
      expect(byWebhook, r.stderr).toBe(WEBHOOK_REFUSED.includes(name));
      if (byWebhook) {
        const message = h.message ?? h['message-prefix']!;
        const ns = (target.metadata as Obj).namespace;
        expect(r.stderr).toContain(`${kindOf(target)}/${typeof ns === 'string' ? `${ns}/` : ''}${nameOf(target)} ${h.path}: ${message}`);
        expect(r.stderr).toContain('; expected ');
      }
    } finally {
      if (context.length > 0) await kubectl(['delete', '--ignore-not-found', '-f', '-'], stream(context));
    }
  });

  it('warnings come back to kubectl: a gateway naming a pool that does not exist yet is stored, with a warning', async () => {
    world = `warn-${suffix}`;
    const [gw] = documents(`${REFERENCE}/egress-gateway-red.yaml`, world, true);
    (gw!.metadata as Obj).namespace = 'default';
    const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], stream([gw!]));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Warning: EgressGateway\/default\/egress-gateway-red-\w+ spec\.ipPools\[0\]: IPPool "egress-red-west-1-\w+" does not exist \(yet\); expected/);
  });

  it('with the webhook gone, failurePolicy Fail refuses writes of the five kinds with a clear error', async () => {
    await webhook!.stop();
    webhook = undefined;
    const docs = documents(`${REFERENCE}/ip-reservation.yaml`, `gone-${suffix}`, true);
    const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], stream(docs));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/failed calling webhook "validate\.egw\.io".*connection refused/s);
  });
});
