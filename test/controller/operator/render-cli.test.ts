/**
 * `egw render deployment` as a user runs it: the compiled CLI in a child process, no datastore.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import type { Deployment } from '../../../src/controller/operator/index.js';
import { EGW_CLI, REPO } from '../../support/dist.js';

const work = mkdtempSync(join(tmpdir(), 'egw-render-cli-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function egw(args: string[], input = ''): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EGW_CLI, ...args], { cwd: work, input, encoding: 'utf8', env: { ...process.env, EGW_DATASTORE: join(work, 'must-not-be-created.db') } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const reference = join(REPO, 'examples/reference');
const blue = `apiVersion: operator.tigera.io/v1
kind: EgressGateway
metadata: {name: egress-gateway-blue, namespace: calico-egress}
spec:
  replicas: 1
  ipPools: [{name: egress-blue-west-1}, {name: egress-blue-west-2}]
  aws: {nativeIP: Enabled, elasticIPs: [203.0.113.20]}
  template: {metadata: {labels: {egress-code: blue}}}
`;

describe('egw render deployment', () => {
  it('prints the Deployment of the reference egress-gateway-red as YAML', () => {
    const r = egw(['render', 'deployment', '-f', reference]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Deployment);
    expect(docs).toHaveLength(1);
    const d = docs[0]!;
    expect(d).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'egress-gateway-red', namespace: 'calico-egress' }, spec: { replicas: 2 } });
    expect(d.spec.template.metadata.annotations['cni.projectcalico.org/ipv4pools']).toBe('["egress-red-west-1","egress-red-west-2"]');
    expect(d.spec.template.spec.containers[0]!.image).toBe('ghcr.io/egw-project/egw:0.1.0');
    expect(d.spec.template.spec.containers[0]!.resources?.limits).toEqual({ 'projectcalico.org/aws-secondary-ipv4': '1' });
    // As the operator renders it on Kubernetes: the gateway reaches egw's datastore as its ServiceAccount.
    expect(d.spec.template.spec.serviceAccountName).toBe('egw-gateway');
    expect(d.spec.template.spec.containers[0]!.env).toContainEqual({ name: 'EGW_DATASTORE', value: 'kubernetes' });
    expect(r.stdout).not.toMatch(/[&*]a\d/);
  });

  it('-o json with several gateways prints a List; --image sets the image', () => {
    const file = join(work, 'two.yaml');
    writeFileSync(file, `${blue}---\n`);
    const r = egw(['render', 'deployment', '-f', reference, '-f', file, '-o', 'json', '--image', 'registry.example/egw:1.2.3']);
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { kind: string; items: Deployment[] };
    expect(list.kind).toBe('List');
    expect(list.items.map((d) => d.metadata.name)).toEqual(['egress-gateway-red', 'egress-gateway-blue']);
    const b = list.items[1]!;
    expect(b.spec.template.metadata.annotations['cni.projectcalico.org/awsElasticIPs']).toBe('["203.0.113.20"]');
    expect(b.spec.template.spec.containers[0]!.image).toBe('registry.example/egw:1.2.3');
    expect(b.spec.template.spec.initContainers[0]!.image).toBe('registry.example/egw:1.2.3');
  });

  it('an EgressGateway naming a pool the manifests do not hold fails with the operator message, printing nothing', () => {
    const file = join(work, 'missing-pool.yaml');
    writeFileSync(file, `${blue.replace('egress-blue-west-2', 'egress-green')}---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: egress-blue-west-1}\nspec: {cidr: 100.64.0.8/30, awsSubnetID: subnet-000000000000000001, blockSize: 32}\n`);
    const r = egw(['render', 'deployment', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: EgressGateway calico-egress/egress-gateway-blue: ippools.projectcalico.org "egress-green" not found');
  });

  it('without IPPools in the manifests, renders and says the pools were not checked', () => {
    const r = egw(['render', 'deployment', '-f', join(reference, 'egress-gateway-red.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/no IPPools/);
    expect(r.stdout).toContain('kind: Deployment');
  });

  it('reads stdin; a file without EgressGateways and invalid manifests exit 1; -o table is a usage error', () => {
    expect(egw(['render', 'deployment', '-f', '-'], blue).code).toBe(0);
    const none = egw(['render', 'deployment', '-f', join(reference, 'ip-pools.yaml')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no EgressGateway');
    const invalid = egw(['render', 'deployment', '-f', '-'], blue.replace('nativeIP: Enabled', 'nativeIP: Disabled'));
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('NativeIP must be enabled when elastic IPs are used');
    expect(egw(['render', 'deployment', '-f', reference, '-o', 'table']).code).toBe(2);
    // No datastore is opened (EGW_DATASTORE points here).
    expect(existsSync(join(work, 'must-not-be-created.db'))).toBe(false);
  });
});
