/**
 * `egw apply / get / delete --datastore kubernetes:…` on a real kube-apiserver (scripts/with-kube), as a user
 * runs them: the compiled CLI in a child process.
 *
 * The control plane is shared with other test files, so everything this file stores carries a per-run
 * suffix (names, namespaces, subnet IDs) and a pool range of its own (100.N.0.0/16 instead of 100.64), and
 * is deleted afterwards, also after a failure. FelixConfiguration `default` keeps its name (egw reads only
 * that one); it is deleted afterwards only when this file created it.
 *
 * egw runs with an identity of its own (a ServiceAccount token) that has egw's API groups and nothing of
 * apiregistration.k8s.io: egw's datastore checks APIService v3.projectcalico.org to detect Calico's API
 * server, and with the CRDs installed the aggregator registers a *local* APIService of that name, which the
 * check (as of this writing) takes for Calico's. Without the right to look, the check is skipped.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EGW_CLI, REPO } from '../support/dist.js';
import { kubeAvailable, kubectl, kubectlOk } from '../support/kubectl.js';

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const id = randomBytes(3).toString('hex');
/** A second octet of 100.64.0.0/10 of this run's own (65..127): its pools overlap no one else's. */
const octet = 65 + (randomBytes(1)[0]! % 63);
const REFERENCE = join(REPO, 'examples/reference');

/** The reference manifests with this run's names, namespaces, subnet IDs and addresses. */
function referenceDocuments(): { file: string; docs: Obj[] }[] {
  return readdirSync(REFERENCE)
    .filter((f) => f.endsWith('.yaml'))
    .map((file) => {
      const text = readFileSync(join(REFERENCE, file), 'utf8').replaceAll('100.64.', `100.${octet}.`).replace(/subnet-0{13}/g, `subnet-${id}0000000`);
      const docs: Obj[] = [];
      for (const d of parseAllDocuments(text)) {
        const o: unknown = d.toJS();
        if (!isObject(o) || !isObject(o.metadata)) continue;
        const meta = o.metadata;
        const spec = isObject(o.spec) ? o.spec : {};
        if (o.kind !== 'AWSSubnet' && !(o.kind === 'FelixConfiguration' && meta.name === 'default')) meta.name = `${String(meta.name)}-${id}`;
        if (typeof meta.namespace === 'string') meta.namespace = `${meta.namespace}-${id}`;
        if (Array.isArray(spec.ipPools)) for (const ref of spec.ipPools) if (isObject(ref)) ref.name = `${String(ref.name)}-${id}`;
        docs.push(o);
      }
      return { file, docs };
    });
}

const toYaml = (docs: Obj[]): string => docs.map((d) => JSON.stringify(d)).join('\n---\n');

describe.skipIf(!kubeAvailable)('egw get/apply/delete on the Kubernetes datastore (needs scripts/with-kube: KUBECONFIG, EGW_TEST_KUBE_DIR)', () => {
  const work = mkdtempSync(join(tmpdir(), 'egw-kube-cli-'));
  const sa = `egw-cli-${id}`;
  let kubeconfig = '';
  let felixExisted = true;
  const docs = referenceDocuments();
  const all = docs.flatMap((d) => d.docs);
  const pools = all.filter((d) => d.kind === 'IPPool').map((d) => String((d.metadata as Obj).name));
  const namespaces = all.filter((d) => d.kind === 'Namespace').map((d) => String((d.metadata as Obj).name));

  function egw(args: string[], input = ''): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [EGW_CLI, '--datastore', `kubernetes:${kubeconfig}`, ...args], {
      cwd: work,
      input,
      encoding: 'utf8',
      env: { ...process.env, EGW_DATASTORE: '' },
      timeout: 60_000,
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  beforeAll(() => {
    // egw's CRDs (idempotent; left in place: other files on this control plane use them too).
    const install = spawnSync(process.execPath, [EGW_CLI, 'render', 'install'], { encoding: 'utf8' });
    expect(install.status, install.stderr).toBe(0);
    kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], install.stdout);
    kubectlOk(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '--all']);
    felixExisted = kubectl(['get', 'felixconfigurations.projectcalico.org', 'default']).code === 0;

    // egw's identity for this file (see the file comment).
    const rbac = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: 'default' } },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: sa },
          rules: [
            { apiGroups: ['projectcalico.org', 'operator.tigera.io', 'egw.io', 'coordination.k8s.io'], resources: ['*'], verbs: ['*'] },
            { apiGroups: [''], resources: ['namespaces', 'namespaces/status', 'pods', 'pods/status', 'nodes', 'nodes/status'], verbs: ['*'] },
          ],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: sa },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: 'default' }],
        },
      ],
    };
    kubectlOk(['apply', '-f', '-'], JSON.stringify(rbac));
    const token = kubectlOk(['create', 'token', sa, '-n', 'default', '--duration', '1h']).trim();
    const view = JSON.parse(kubectlOk(['config', 'view', '--raw', '--minify', '-o', 'json'])) as { clusters: { cluster: Obj }[] };
    const cluster = view.clusters[0]!.cluster;
    kubeconfig = join(work, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster }],
        users: [{ name: sa, user: { token } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: sa } }],
        'current-context': 'c',
      }),
    );
    for (const { file, docs: d } of docs) {
      writeFileSync(join(work, `ref-${file}`), toYaml(d));
    }
  });

  afterAll(() => {
    kubectl(['delete', 'ippools.projectcalico.org', ...pools, `bad-${id}`, `refused-${id}`, '--ignore-not-found', '--wait=false']);
    for (const d of all) {
      if (d.kind === 'IPPool' || d.kind === 'Namespace' || d.kind === 'Pod' || d.kind === 'EgressGateway') continue;
      if (d.kind === 'FelixConfiguration' && felixExisted) continue;
      kubectl(['delete', `${String(d.kind).toLowerCase()}.${String(d.apiVersion).split('/')[0]}`, String((d.metadata as Obj).name), '--ignore-not-found', '--wait=false']);
    }
    kubectl(['delete', 'namespace', ...namespaces, '--ignore-not-found', '--wait=false']);
    kubectl(['delete', 'clusterrolebinding,clusterrole', sa, '--ignore-not-found']);
    kubectl(['delete', 'serviceaccount', sa, '-n', 'default', '--ignore-not-found']);
    rmSync(work, { recursive: true, force: true });
  });

  const refFiles = (): string[] => docs.flatMap(({ file }) => ['-f', join(work, `ref-${file}`)]);

  it('applies the reference manifests (dependency order, kubectl-like lines) and kubectl shows them', () => {
    const r = egw(['apply', ...refFiles()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`ippool.projectcalico.org/egress-red-west-1-${id} created`);
    expect(r.stdout).toContain(`egressgateway.operator.tigera.io/egress-gateway-red-${id} created`);
    expect(r.stdout).toContain(`namespace/calico-egress-${id} created`);
    const lines = r.stdout.trim().split('\n');
    // Namespaces before the gateway that lives in one, pools before the gateway that names them.
    const at = (s: string): number => lines.findIndex((l) => l.includes(s));
    expect(at(`namespace/calico-egress-${id}`)).toBeLessThan(at(`egressgateway.operator.tigera.io/`));
    expect(at(`ippool.projectcalico.org/egress-red-west-1-${id}`)).toBeLessThan(at(`egressgateway.operator.tigera.io/`));

    const got = kubectlOk(['get', 'ippools.projectcalico.org', ...pools, '-o', 'jsonpath={range .items[*]}{.metadata.name} {.spec.cidr}{"\\n"}{end}']);
    for (const p of pools) expect(got).toContain(p);
    expect(got).toContain(`egress-red-west-1-${id} 100.${octet}.0.4/30`);
    kubectlOk(['get', 'egressgateways.operator.tigera.io', `egress-gateway-red-${id}`, '-n', `calico-egress-${id}`]);

    const again = egw(['apply', ...refFiles()]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`ippool.projectcalico.org/egress-red-west-1-${id} unchanged`);
    expect(again.stdout).not.toContain('created');
  });

  it('egw get ippools lists them', () => {
    const r = egw(['get', 'ippools']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^NAME\s/);
    for (const p of pools) expect(r.stdout).toMatch(new RegExp(`^${p}\\s`, 'm'));
    const one = egw(['get', 'ippool', `egress-red-west-1-${id}`, '-o', 'json']);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ kind: 'IPPool', spec: { cidr: `100.${octet}.0.4/30`, blockSize: 32 } });
  });

  const pool = (name: string, cidr: string): Obj => ({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr } });

  it('writes nothing from a file with one invalid document', () => {
    const file = join(work, 'one-invalid.yaml');
    writeFileSync(file, toYaml([pool(`bad-${id}`, `100.${octet}.200.0/24`), { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: `worse-${id}` }, spec: { cidr: 'not-a-cidr' } }]));
    const r = egw(['apply', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nothing was applied');
    expect(kubectl(['get', 'ippools.projectcalico.org', `bad-${id}`]).code).not.toBe(0);
  });

  it('writes nothing when the API server refuses one object in the dry run (a Pod whose container has no image)', () => {
    const file = join(work, 'server-refuses.yaml');
    const ns = `my-namespace-${id}`;
    writeFileSync(file, toYaml([pool(`refused-${id}`, `100.${octet}.201.0/24`), { apiVersion: 'v1', kind: 'Pod', metadata: { name: `no-image-${id}`, namespace: ns }, spec: { containers: [{ name: 'a' }] } }]));
    const r = egw(['apply', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`error: pod/no-image-${id}: the API server refused .*image: Required value`));
    expect(r.stderr).toContain('nothing was applied (the API server refused the dry run)');
    expect(kubectl(['get', 'ippools.projectcalico.org', `refused-${id}`]).code).not.toBe(0);
  });

  it('egw delete removes them', () => {
    const r = egw(['delete', ...refFiles()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`ippool.projectcalico.org/egress-red-west-1-${id} deleted`);
    // Dependents first: the gateway before the pools it names.
    const lines = r.stdout.trim().split('\n');
    expect(lines.findIndex((l) => l.startsWith('egressgateway.'))).toBeLessThan(lines.findIndex((l) => l.startsWith('ippool.')));
    const left = kubectlOk(['get', 'ippools.projectcalico.org', '-o', 'name']);
    for (const p of pools) expect(left).not.toContain(p);
    expect(egw(['get', 'ippool', `egress-red-west-1-${id}`]).code).toBe(1);
  });
});
