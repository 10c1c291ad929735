/**
 * The generated CRDs on a real kube-apiserver (scripts/with-kube): accepted, Established, the reference
 * manifests apply, printer columns and defaults show, and the invalid examples whose rule the schema or a
 * CEL rule expresses are refused at the field egw names.
 *
 * The CRDs are cluster-wide and applying them again is idempotent, so they are left in place at the end:
 * other tests in the same throwaway control plane may use them, and they are harmless there. Every object
 * this file stores is named with a per-run suffix (namespaces, pools, subnets…) so that parallel files
 * cannot collide with it, and all of them are deleted afterwards. The invalid examples go through
 * `--dry-run=server` only: full admission and validation, nothing stored.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { apiCrds } from '../../src/api/crd.js';
import { eventually, kubeAvailable, kubectl, kubectlOk } from '../support/kubectl.js';

const suffix = randomBytes(3).toString('hex');
const crds = apiCrds();
const REFERENCE = 'examples/reference';

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A subnet ID unique to this run (the same hex length, so it stays well formed). */
function subnet(id: string): string {
  return /^subnet-[0-9a-f]{14,}$/.test(id) ? `subnet-${suffix}${id.slice(13)}` : id;
}

/**
 * The documents of a manifest file with this run's names: namespaces always (so namespaced objects land in
 * ours); with `store`, every name too (so stored objects cannot collide with anyone's).
 */
function documents(file: string, store: boolean): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const value: unknown = doc.toJS();
    if (!isObject(value)) continue;
    const o = structuredClone(value);
    const meta = isObject(o.metadata) ? o.metadata : {};
    const spec = isObject(o.spec) ? o.spec : {};
    const name = String(meta.name);
    if (o.kind === 'Namespace') meta.name = `${name}-${suffix}`;
    if (typeof meta.namespace === 'string' && REFERENCE_NAMESPACES.has(meta.namespace)) meta.namespace = `${meta.namespace}-${suffix}`;
    if (store && o.kind !== 'Namespace' && o.kind !== 'Pod') {
      meta.name = o.kind === 'AWSSubnet' ? subnet(name) : `${name}-${suffix}`;
      if (typeof spec.subnetID === 'string') spec.subnetID = subnet(spec.subnetID);
      if (typeof spec.awsSubnetID === 'string') spec.awsSubnetID = subnet(spec.awsSubnetID);
      if (Array.isArray(spec.ipPools)) for (const ref of spec.ipPools) if (isObject(ref) && typeof ref.name === 'string') ref.name = `${ref.name}-${suffix}`;
    }
    out.push(o);
  }
  return out;
}

/** The namespaces the reference manifests create (and the examples use); others (default) are left alone. */
const REFERENCE_NAMESPACES = new Set(
  parseAllDocuments(readFileSync(`${REFERENCE}/namespaces.yaml`, 'utf8'))
    .map((d) => d.toJS() as unknown)
    .filter((v): v is Obj => isObject(v) && v.kind === 'Namespace' && isObject(v.metadata))
    .map((v) => String((v.metadata as Obj).name)),
);

const list = (items: Obj[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
/**
 * The same objects as a multi-document stream: kubectl checks a List's items against the OpenAPI itself
 * (its own wording), but sends a stream's documents to the API server, whose messages are the ones checked.
 */
const stream = (items: Obj[]) => items.map((o) => JSON.stringify(o)).join('\n---\n');

function header(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^# ([a-z-]+): (.*)$/.exec(line);
    if (m !== null) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Invalid examples whose rule a CEL rule of the CRDs expresses (the message then says what would be right). */
const CEL_REJECTED = [
  'aws-subnet-name-mismatch', 'egp-empty-selector', 'egp-invalid-destination', 'egp-missing-namespace-selector', 'egp-no-gateway-or-destination',
  'egw-elastic-ip-not-ipv4', 'egw-elastic-ips-need-native-ip', 'egw-http-timeout-below-interval', 'egw-icmp-timeout-below-interval',
  'egw-ippool-ref-empty', 'egw-missing-ippools', 'egw-no-ippools', 'egw-no-probe', 'egw-probe-interval-zero', 'felix-node-selector-on-default',
  'felix-route-table-both', 'felix-route-table-min', 'felix-route-table-order', 'ippool-allowed-uses-combination', 'ippool-allowed-uses-empty',
  'ippool-aws-block-size', 'ippool-aws-subnet-id', 'ippool-block-size-range', 'ippool-invalid-cidr', 'ippool-ipip-and-vxlan', 'ippool-ipip-ipv6',
  'ippool-link-local', 'ippool-not-strictly-masked', 'ippool-too-small', 'ipreservation-invalid-entry',
];
/** Invalid examples the structural schema itself refuses (enum, range, pattern, required, unknown field). */
const SCHEMA_REJECTED = [
  'egp-negative-max-next-hops', 'egp-unknown-gateway-preference', 'egw-log-severity-value', 'egw-native-ip-value', 'egw-negative-replicas',
  'felix-aws-secondary-ip-support-value', 'felix-bad-duration', 'felix-egress-ip-support-value', 'felix-unknown-field', 'felix-vxlan-port-range',
  'ippool-allowed-uses-value', 'ippool-missing-cidr', 'ippool-unknown-field',
];

describe.skipIf(!kubeAvailable)('the generated CRDs on a real kube-apiserver (needs scripts/with-kube: KUBECONFIG and EGW_TEST_KUBE_DIR)', () => {
  const stored: Obj[] = [];

  beforeAll(async () => {
    kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-crd-test', '-f', '-'], list(crds as unknown as Obj[]));
    kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', ...crds.map((c) => `crd/${c.metadata.name}`)]);
    const namespaces = readdirSync(REFERENCE).flatMap((f) => documents(`${REFERENCE}/${f}`, true)).filter((o) => o.kind === 'Namespace');
    stored.push(...namespaces);
    kubectlOk(['apply', '-f', '-'], list(namespaces));
    // Pods need their namespace's default ServiceAccount, which kube-controller-manager creates.
    for (const ns of namespaces) {
      const name = String((ns.metadata as Obj).name);
      expect(await eventually(() => kubectl(['-n', name, 'get', 'serviceaccount', 'default']).code === 0)).toBe(true);
    }
  }, 120_000);

  afterAll(() => {
    // Namespaced objects go with their namespaces; the cluster-scoped ones carry this run's suffix.
    if (stored.length > 0) kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], list([...stored].reverse()));
  });

  it('the API server accepts every CRD as structural and establishes it', () => {
    const names = kubectlOk(['get', 'crd', '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}']).split('\n');
    for (const c of crds) expect(names).toContain(c.metadata.name);
    const ippools = JSON.parse(kubectlOk(['get', 'crd', 'ippools.projectcalico.org', '-o', 'json'])) as { status: { conditions: { type: string; status: string }[] } };
    expect(ippools.status.conditions).toContainEqual(expect.objectContaining({ type: 'Established', status: 'True' }));
    expect(ippools.status.conditions.find((c) => c.type === 'NonStructuralSchema')).toBeUndefined();
  });

  it('applies every reference manifest', () => {
    for (const f of readdirSync(REFERENCE).sort()) {
      const docs = documents(`${REFERENCE}/${f}`, true).filter((o) => o.kind !== 'Namespace');
      if (docs.length === 0) continue;
      const r = kubectl(['apply', '-f', '-'], list(docs));
      expect(r.stderr, f).toBe('');
      expect(r.code, f).toBe(0);
      stored.push(...docs);
    }
  });

  it('kubectl get shows the printer columns', () => {
    const pools = kubectlOk(['get', 'ippools', `egress-red-west-1-${suffix}`]);
    expect(pools).toMatch(/^NAME\s+CIDR\s+AWS SUBNET\s+ALLOWED USES\s+DISABLED\s+AGE\n/);
    expect(pools).toMatch(new RegExp(`egress-red-west-1-${suffix}\\s+100\\.64\\.0\\.4/30\\s+subnet-${suffix}000000000001\\s+\\["Workload"\\]\\s+false\\s+`));
    const gws = kubectlOk(['get', 'egw', '-n', `calico-egress-${suffix}`]);
    expect(gws).toMatch(/^NAME\s+REPLICAS\s+READY\s+STATE\s+AGE\n/);
    expect(gws).toMatch(new RegExp(`egress-gateway-red-${suffix}\\s+2\\s`));
    expect(kubectlOk(['get', 'felixconfigurations', `default-${suffix}`])).toMatch(/EGRESS IP SUPPORT[\s\S]*EnabledPerNamespaceOrPerPod/);
  });

  it('fills in Calico defaults', () => {
    const pool = JSON.parse(kubectlOk(['get', 'ippool', `egress-red-west-1-${suffix}`, '-o', 'json'])) as { spec: Obj };
    expect(pool.spec).toMatchObject({ ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, assignmentMode: 'Automatic', blockSize: 32 });
    const policy = JSON.parse(kubectlOk(['get', 'egressgatewaypolicy', `egw-policy1-${suffix}`, '-o', 'json'])) as { spec: { rules: Obj[] } };
    expect(policy.spec.rules[2]).toMatchObject({ gateway: { maxNextHops: 0 }, gatewayPreference: 'PreferNodeLocal' });
    expect(policy.spec.rules[0]).toMatchObject({ gatewayPreference: 'None' });
    // The probe defaults, on an EgressGateway that names probes without their timings (dry run: not stored).
    const [gw] = documents(`${REFERENCE}/egress-gateway-red.yaml`, true);
    (gw!.metadata as Obj).name = `probes-${suffix}`;
    const spec = gw!.spec as Obj;
    delete spec.replicas;
    delete spec.logSeverity;
    spec.egressGatewayFailureDetection = { icmpProbe: { ips: ['192.0.2.1'] }, httpProbe: { urls: ['http://192.0.2.1:8080/health'] } };
    const out = JSON.parse(kubectlOk(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(gw))) as { spec: Obj };
    expect(out.spec).toMatchObject({
      replicas: 1,
      logSeverity: 'Info',
      egressGatewayFailureDetection: { healthTimeoutDataStoreSeconds: 90, icmpProbe: { intervalSeconds: 5, timeoutSeconds: 15 }, httpProbe: { intervalSeconds: 10, timeoutSeconds: 30 } },
    });
  });

  it.each([...CEL_REJECTED.map((f) => [f, 'cel'] as const), ...SCHEMA_REJECTED.map((f) => [f, 'schema'] as const)])(
    'refuses examples/invalid/%s.yaml (%s) at the field egw names',
    (name, how) => {
      const file = `examples/invalid/${name}.yaml`;
      const path = header(file).path!;
      const r = kubectl(['apply', '--dry-run=server', '-f', '-'], stream(documents(file, false)));
      expect(r.code, r.stdout).not.toBe(0);
      expect(r.stderr).toContain(path);
      if (how === 'cel') expect(r.stderr).toMatch(/; expected ./);
    },
  );

  it('leaves the cross-resource rules to egw and its webhook: examples/invalid/cross-* pass the CRDs', () => {
    for (const f of readdirSync('examples/invalid').filter((n) => n.startsWith('cross-'))) {
      const r = kubectl(['apply', '--dry-run=server', '-f', '-'], list(documents(`examples/invalid/${f}`, false)));
      expect(r.stderr, f).toBe('');
    }
  });
});
