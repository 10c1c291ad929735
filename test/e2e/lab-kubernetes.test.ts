import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/dist.js';
import { egwRunner, prefixedNamespaces, processesNaming, rootLinks, verifyTable, type Run } from './support/lab-cli.js';

// The lab on a real Kubernetes control plane, end to end with the real CLI (issues 9 and 10): up --kubernetes
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler built by scripts/build-kube in the control
// plane's namespace; egw installed as `egw render install` renders it; the production agent, controller,
// gateway and egw-ipam on their ServiceAccount tokens; lab kubelets on node identities) → verify routes
// every client through the gateways of the operator's Deployments → kubectl shows what a cluster shows →
// an invalid manifest is refused by kubectl → red scaled down with kubectl (graceful deletion through the
// kubelet) → verify → down, then no leftovers. Namespaces prefixed "labk8s"; state in a temp dir.
const PREFIX = 'labk8s';
const stateRoot = mkdtempSync(join(tmpdir(), 'egw-lab-k8s-'));
const STATE = join(stateRoot, 'lab');
const egw = egwRunner({ ...process.env, EGW_LAB_DIR: STATE });
const lab = (command: string, ...args: string[]): string[] => ['lab', command, '--prefix', PREFIX, ...args];
const kubectl = (...args: string[]): Promise<Run> => egw([...lab('kubectl'), '--', ...args], { timeoutMs: 60_000 });

async function kubectlJson<T>(...args: string[]): Promise<T> {
  const r = await kubectl(...args, '-o', 'json');
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.err}`);
  return JSON.parse(r.out) as T;
}

interface KubeList<T> {
  items: T[];
}
interface PodJson {
  metadata: { name: string; namespace: string; deletionTimestamp?: string; ownerReferences?: { kind: string; name: string }[] };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

let linksBefore = '';

describe('egw lab up --kubernetes (real namespaces, a real Kubernetes control plane)', () => {
  beforeAll(async () => {
    linksBefore = await rootLinks();
    await egw(lab('down'), { timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await egw(lab('down'), { timeoutMs: 60_000 });
    rmSync(stateRoot, { recursive: true, force: true });
  }, 90_000);

  it('comes up with kube-scheduler placing the pods and routes every client as the policy says', async () => {
    const up = await egw(lab('up', '--kubernetes', '--timeout', '240'), { timeoutMs: 420_000 });
    expect(up.code, `${up.out}\n${up.err}`).toBe(0);
    expect(up.out).toMatch(/starting Kubernetes in labk8s-cp/);
    expect(up.out).toMatch(/applied the scenario with kubectl apply --server-side/);
    expect(up.out).toMatch(/lab reference-eni is up in/);

    const v = await egw(lab('verify'), { timeoutMs: 120_000 });
    expect(v.code, v.out + v.err).toBe(0);
    const rows = verifyTable(v.out);
    expect(rows.size).toBe(9);
    for (const [pair, row] of rows) expect(row.result, pair).toBe('OK');
    // The reference's red gateways carry its Elastic IPs to the internet.
    expect(rows.get('my-namespace/my-netcat-pod → internet')?.seen).toMatch(/^203\.0\.113\.[78]$/);
  }, 600_000);

  it('shows on the API server what a cluster shows: Nodes with capacity, scheduled pods, the operator\'s Deployments', async () => {
    const nodes = await kubectlJson<KubeList<{ metadata: { name: string; labels: Record<string, string> }; status: { conditions: { type: string; status: string }[]; allocatable: Record<string, string> } }>>('get', 'nodes');
    expect(nodes.items.map((n) => n.metadata.name).sort()).toEqual(['node-a1', 'node-a2', 'node-b1', 'node-b2']);
    for (const n of nodes.items) {
      expect(n.status.conditions.find((c) => c.type === 'Ready')?.status, n.metadata.name).toBe('True');
      expect(n.metadata.labels['topology.kubernetes.io/zone']).toMatch(/^us-west-2[ab]$/);
      // Published by egw's agent from EC2's limits (ENI-per-workload: 2 secondary ENIs on a t3.large).
      expect(n.status.allocatable['projectcalico.org/aws-secondary-ipv4'], n.metadata.name).toBe('2');
      expect(n.status.allocatable['pods']).toBe('110');
    }
    const leases = await kubectlJson<KubeList<{ spec: { holderIdentity: string } }>>('get', 'leases', '-n', 'kube-node-lease');
    expect(leases.items.map((l) => l.spec.holderIdentity).sort()).toEqual(['node-a1', 'node-a2', 'node-b1', 'node-b2']);

    const deploys = await kubectlJson<KubeList<{ metadata: { name: string; ownerReferences?: { kind: string; name: string; controller?: boolean }[] }; status: { readyReplicas?: number } }>>('get', 'deployments', '-n', 'calico-egress');
    expect(deploys.items.map((d) => d.metadata.name).sort()).toEqual(['egress-gateway-blue', 'egress-gateway-red']);
    for (const d of deploys.items) {
      expect(d.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'EgressGateway', name: d.metadata.name, controller: true });
      expect(d.status.readyReplicas).toBe(2);
    }
    const egws = await kubectlJson<KubeList<{ metadata: { name: string }; status?: { state?: string } }>>('get', 'egressgateways', '-n', 'calico-egress');
    for (const g of egws.items) expect(g.status?.state, g.metadata.name).toBe('Ready');

    const pods = await kubectlJson<KubeList<PodJson>>('get', 'pods', '-A');
    expect(pods.items.length).toBe(7);
    for (const p of pods.items) {
      expect(p.status.phase, p.metadata.name).toBe('Running');
      expect(p.status.podIP, p.metadata.name).toMatch(/^(10\.48|100\.64)\./);
      expect(p.status.conditions?.find((c) => c.type === 'PodScheduled')?.status).toBe('True');
    }
    // Gateways spread over the zones (the template's topology spread, applied by kube-scheduler).
    const zoneOf = new Map(nodes.items.map((n) => [n.metadata.name, n.metadata.labels['topology.kubernetes.io/zone']]));
    const red = pods.items.filter((p) => p.metadata.name.startsWith('egress-gateway-red-'));
    expect(new Set(red.map((p) => zoneOf.get(p.spec.nodeName ?? ''))).size).toBe(2);

    // egw get on the host follows the lab's API server too.
    const got = await egw(['get', 'egressgateways', '-A'], { timeoutMs: 60_000 });
    expect(got.code, got.err).toBe(0);
    expect(got.out).toMatch(/egress-gateway-red/);
  }, 120_000);

  it('refuses an invalid manifest at kubectl apply, with the rule\'s message (the webhook served by egw controller)', async () => {
    const file = join(REPO, 'examples/invalid/egp-unparsable-selector.yaml');
    // --force-conflicts: the scenario's manager owns egw-policy1; the write must reach admission and be refused there.
    const r = await kubectl('apply', '--server-side', '--force-conflicts', '-f', file);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/invalid selector "egress-code = 'red'"/);
    expect(r.err).toMatch(/spec\.rules\[0\]\.gateway\.selector/);
    // Nothing of it was stored, and the policy the scenario applied is unchanged.
    const policy = await kubectlJson<{ spec: { rules: unknown[] } }>('get', 'egressgatewaypolicy', 'egw-policy1');
    expect(policy.spec.rules.length).toBe(3);
  }, 120_000);

  it('scales red down with kubectl: the kubelet ends the pod gracefully and clients keep their routes', async () => {
    const patched = await kubectl('patch', 'egressgateway', '-n', 'calico-egress', 'egress-gateway-red', '--type', 'merge', '-p', '{"spec":{"replicas":1}}');
    expect(patched.code, patched.err).toBe(0);
    // The ReplicaSet controller deletes one pod (graceful deletion); the lab kubelet stops it and deletes it.
    await until('red scaled to one pod', 120_000, async () => {
      const pods = await kubectlJson<KubeList<PodJson>>('get', 'pods', '-n', 'calico-egress', '-l', 'egress-code=red');
      return pods.items.length === 1 && pods.items[0]!.status.phase === 'Running' ? true : undefined;
    });
    await until('verify passes after the scale-down', 120_000, async () => {
      const v = await egw(lab('verify'), { timeoutMs: 120_000 });
      return v.code === 0 ? true : undefined;
    });
  }, 300_000);

  it('down removes every namespace, process and file', async () => {
    const down = await egw(lab('down'), { timeoutMs: 120_000 });
    expect(down.code, down.err).toBe(0);
    expect(await prefixedNamespaces(PREFIX)).toEqual([]);
    expect(await processesNaming(STATE)).toEqual([]);
    expect(existsSync(STATE)).toBe(false);
    expect(await rootLinks()).toBe(linksBefore);
  }, 180_000);
});
