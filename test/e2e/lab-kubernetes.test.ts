import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/dist.js';
import { egwRunner, prefixedNamespaces, processesNaming, rootLinks, verifyTable, type Run } from './support/lab-cli.js';
import { ExecShell } from '../../src/platform/shell.js';
import { sweepWorld } from '../../src/lab/world.js';
import { runPrefix, sweepDeadRuns } from './support/run-prefix.js';

// The reference document followed step by step with kubectl, in a lab on a real Kubernetes control plane
// (issues 9 and 10), with the real CLI: `egw lab up --kubernetes` (etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler built by scripts/build-kube, in the control plane's namespace;
// egw installed as `egw render install` renders it; the production agent, controller, gateway and egw-ipam on
// their ServiceAccount tokens; lab kubelets on node identities) with the page's world before its steps, then
// each step with kubectl — FelixConfiguration patches, the IPReservation and IPPools, the red EgressGateway
// becoming a Deployment with ready pods placed by kube-scheduler on the capacity `kubectl describe node` shows,
// the namespace opted in and annotated, Elastic IPs added (a rolling update), an EgressGatewayPolicy applied
// and edited — with `egw lab verify` OK after each; an invalid manifest refused by kubectl with egw's message;
// a gateway pod deleted with kubectl and replaced by its Deployment; red scaled down; down with no leftovers.
// Namespaces prefixed "lk<pid>": unique per run, so a second suite running beside this one never meets it;
// state in a temp dir.
const PREFIX = runPrefix('lk');
const stateRoot = mkdtempSync(join(tmpdir(), 'egw-lab-k8s-'));
const STATE = join(stateRoot, 'lab');
const egw = egwRunner({ ...process.env, EGW_LAB_DIR: STATE });
const lab = (command: string, ...args: string[]): string[] => ['lab', command, '--prefix', PREFIX, ...args];
const kubectl = (...args: string[]): Promise<Run> => egw([...lab('kubectl'), '--', ...args], { timeoutMs: 60_000 });
const example = (file: string): string => join(REPO, 'examples', file);

async function ok(...args: string[]): Promise<string> {
  const r = await kubectl(...args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.err}`);
  return r.out;
}

async function kubectlJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await ok(...args, '-o', 'json')) as T;
}

interface KubeList<T> {
  items: T[];
}
interface PodJson {
  metadata: { name: string; namespace: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

async function until<T>(what: string | (() => string), ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${typeof what === 'string' ? what : what()} did not happen within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

type Rows = ReturnType<typeof verifyTable>;

/** `egw lab verify` until every pair is OK (the data plane follows the API a few seconds behind); the rows. */
async function verified(step: string): Promise<Rows> {
  let last = '';
  return until(() => `verify OK after ${step} (last: ${last})`, 120_000, async () => {
    const v = await egw(lab('verify'), { timeoutMs: 120_000 });
    last = v.out.split('\n').slice(-2).join(' ');
    const rows = verifyTable(v.out);
    return v.code === 0 && rows.size > 0 && [...rows.values()].every((r) => r.result === 'OK') ? rows : undefined;
  });
}

/** The red Deployment's pods once it has `n` ready replicas, all of its current template, and no others. */
async function redReady(n: number): Promise<PodJson[]> {
  return until(`red with ${n} ready pods`, 180_000, async () => {
    const d = await kubectlJson<{ status: { replicas?: number; readyReplicas?: number; updatedReplicas?: number } }>('get', 'deployment', '-n', 'calico-egress', 'egress-gateway-red');
    const pods = (await kubectlJson<KubeList<PodJson>>('get', 'pods', '-n', 'calico-egress', '-l', 'egress-code=red')).items;
    const settled = d.status.replicas === n && d.status.readyReplicas === n && d.status.updatedReplicas === n && pods.length === n;
    return settled && pods.every((p) => p.metadata.deletionTimestamp === undefined) ? pods : undefined;
  });
}

const RED_IP = /^100\.64\.[04]\.[4-7]$/;
let linksBefore = '';

describe('the reference step by step with kubectl, on egw lab up --kubernetes (real namespaces, a real control plane)', () => {
  beforeAll(async () => {
    linksBefore = await rootLinks();
    await egw(lab('down'), { timeoutMs: 60_000 });
    await sweepDeadRuns(PREFIX, (dead) => sweepWorld(new ExecShell(), dead));
  }, 90_000);

  afterAll(async () => {
    await egw(lab('down'), { timeoutMs: 60_000 });
    rmSync(stateRoot, { recursive: true, force: true });
  }, 90_000);

  it('comes up: the control plane in the VPC, egw installed, Nodes registered, the netcat pod placed by kube-scheduler', async () => {
    const up = await egw(lab('up', '--kubernetes', '--scenario', example('lab/kubernetes-steps.yaml'), '--timeout', '240'), { timeoutMs: 420_000 });
    expect(up.code, `${up.out}\n${up.err}`).toBe(0);
    expect(up.out).toContain(`starting Kubernetes in ${PREFIX}-cp`);
    expect(up.out).toMatch(/applied the scenario with kubectl apply --server-side/);
    const nodes = await kubectlJson<KubeList<{ metadata: { name: string; labels: Record<string, string> }; status: { conditions: { type: string; status: string }[] } }>>('get', 'nodes');
    expect(nodes.items.map((n) => n.metadata.name).sort()).toEqual(['node-a1', 'node-a2', 'node-b1', 'node-b2']);
    for (const n of nodes.items) {
      expect(n.status.conditions.find((c) => c.type === 'Ready')?.status, n.metadata.name).toBe('True');
      expect(n.metadata.labels['topology.kubernetes.io/zone']).toMatch(/^us-west-2[ab]$/);
    }
    const leases = await kubectlJson<KubeList<{ spec: { holderIdentity: string } }>>('get', 'leases', '-n', 'kube-node-lease');
    expect(leases.items.map((l) => l.spec.holderIdentity).sort()).toEqual(['node-a1', 'node-a2', 'node-b1', 'node-b2']);
    const pod = await kubectlJson<PodJson>('get', 'pod', '-n', 'my-namespace', 'my-netcat-pod');
    expect(pod.status.phase).toBe('Running');
    expect(pod.status.podIP).toMatch(/^10\.48\./);
    expect(pod.status.conditions?.find((c) => c.type === 'PodScheduled')?.status).toBe('True');
    // No egress gateway support yet: the pod's traffic leaves with its node's IP (on-prem sees it).
    const rows = await verified('up');
    expect(rows.get('my-namespace/my-netcat-pod → onprem')?.seen).toMatch(/^100\.64\.(16|20)\.1[01]$/);
  }, 600_000);

  it('takes the page\'s steps: Felix patches, IP reservation and pools, the red gateways as a Deployment on the capacity kubectl describe node shows', async () => {
    await ok('patch', 'felixconfiguration', 'default', '--type=merge', '-p', '{"spec":{"egressIPSupport":"EnabledPerNamespaceOrPerPod"}}');
    await ok('patch', 'felixconfiguration', 'default', '--type=merge', '-p', '{"spec":{"awsSecondaryIPSupport":"EnabledENIPerWorkload"}}');
    await verified('the FelixConfiguration patches');
    await ok('apply', '-f', example('reference/ip-reservation.yaml'));
    await ok('apply', '-f', example('reference/ip-pools.yaml'));
    // The page's nodes now offer secondary ENIs to the scheduler (t3.large: 2 besides the primary).
    await until('aws-secondary-ipv4 capacity on node-a1', 60_000, async () => ((await ok('describe', 'node', 'node-a1')).match(/projectcalico\.org\/aws-secondary-ipv4:\s+2/) === null ? undefined : true));
    // The administrator's opt-in: egw's admission policy lets only labelled namespaces use the egress and
    // IP-pool annotations (gateway pods carry cni.projectcalico.org/ipv4pools).
    await ok('label', 'namespace', 'calico-egress', 'my-namespace', 'egw.io/egress-allowed=true');
    await ok('apply', '-f', example('reference/egress-gateway-red.yaml'));
    const pods = await redReady(2);
    const deploy = await kubectlJson<{ metadata: { ownerReferences?: { kind: string; name: string; controller?: boolean }[] } }>('get', 'deployment', '-n', 'calico-egress', 'egress-gateway-red');
    expect(deploy.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'EgressGateway', name: 'egress-gateway-red', controller: true });
    // kube-scheduler spread them over the zones (the template's topology spread).
    const zones = await kubectlJson<KubeList<{ metadata: { name: string; labels: Record<string, string> } }>>('get', 'nodes');
    const zoneOf = new Map(zones.items.map((n) => [n.metadata.name, n.metadata.labels['topology.kubernetes.io/zone']]));
    expect(new Set(pods.map((p) => zoneOf.get(p.spec.nodeName ?? ''))).size).toBe(2);
    for (const p of pods) expect(p.status.podIP).toMatch(RED_IP);
    expect(await ok('describe', 'node', pods[0]!.spec.nodeName!)).toMatch(/projectcalico\.org\/aws-secondary-ipv4\s+1\s+1/);
    const listed = await ok('get', 'egressgatewaypolicies,ippools,egressgateways', '-A');
    expect(listed).toMatch(/egress-red-west-1/);
    expect(listed).toMatch(/egress-gateway-red/);
    const egw = await kubectlJson<{ status?: { state?: string } }>('get', 'egressgateway', '-n', 'calico-egress', 'egress-gateway-red');
    expect(egw.status?.state).toBe('Ready');
    await verified('the red gateways');
  }, 600_000);

  it('routes the netcat pod through red once its namespace is annotated, then through red\'s Elastic IPs (a rolling update)', async () => {
    await ok('annotate', 'namespace', 'my-namespace', "egress.projectcalico.org/selector=egress-code == 'red'", "egress.projectcalico.org/namespaceSelector=projectcalico.org/name == 'calico-egress'");
    let rows = await verified('the namespace annotations');
    expect(rows.get('my-namespace/my-netcat-pod → onprem')?.seen).toMatch(RED_IP);
    await ok('patch', 'egressgateway', '-n', 'calico-egress', 'egress-gateway-red', '--type=merge', '-p', '{"spec":{"aws":{"elasticIPs":["203.0.113.7","203.0.113.8"]}}}');
    await redReady(2);
    rows = await verified('the Elastic IPs');
    expect(rows.get('my-namespace/my-netcat-pod → internet')?.seen).toMatch(/^203\.0\.113\.[78]$/);
  }, 600_000);

  it('applies an EgressGatewayPolicy and edits it with kubectl; refuses an invalid one with egw\'s message', async () => {
    await ok('annotate', 'namespace', 'my-namespace', 'egress.projectcalico.org/selector-', 'egress.projectcalico.org/namespaceSelector-', 'egress.projectcalico.org/egressGatewayPolicy=egw-policy1');
    await ok('apply', '-f', example('lab/manifests/30-egress-gateway-policy.yaml'));
    let rows = await verified('the policy');
    // The VPC is local (the node's IP); on-prem's rule names blue, which does not exist: dropped (fail closed).
    expect(rows.get('my-namespace/my-netcat-pod → local')?.seen).toMatch(/^100\.64\.(16|20)\.1[01]$/);
    expect(rows.get('my-namespace/my-netcat-pod → onprem')?.seen).toMatch(/^\((ETIMEDOUT|EHOSTUNREACH)\)$/);
    await ok('patch', 'egressgatewaypolicy', 'egw-policy1', '--type=json', '-p', '[{"op":"remove","path":"/spec/rules/1"}]');
    rows = await verified('the policy edit');
    expect(rows.get('my-namespace/my-netcat-pod → onprem')?.seen).toMatch(RED_IP);

    // --force-conflicts: the edit above owns egw-policy1's rules; the write must reach admission and be refused there.
    const r = await kubectl('apply', '--server-side', '--force-conflicts', '-f', example('invalid/egp-unparsable-selector.yaml'));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/invalid selector "egress-code = 'red'"/);
    expect(r.err).toMatch(/spec\.rules\[0\]\.gateway\.selector/);
    const policy = await kubectlJson<{ spec: { rules: unknown[] } }>('get', 'egressgatewaypolicy', 'egw-policy1');
    expect(policy.spec.rules.length).toBe(2);
  }, 600_000);

  it('replaces a gateway pod deleted with kubectl (its Deployment) and scales red down, clients working throughout', async () => {
    const before = await redReady(2);
    const victim = before[0]!.metadata.name;
    await ok('delete', 'pod', '-n', 'calico-egress', victim, '--wait=false');
    const after = await until('the deleted gateway replaced', 180_000, async () => {
      const pods = await redReady(2);
      return pods.some((p) => p.metadata.name === victim) ? undefined : pods;
    });
    expect(after.map((p) => p.metadata.name)).not.toContain(victim);
    await verified('the replaced gateway');
    await ok('patch', 'egressgateway', '-n', 'calico-egress', 'egress-gateway-red', '--type=merge', '-p', '{"spec":{"replicas":1}}');
    await redReady(1);
    await verified('the scale-down');
  }, 600_000);

  it('down removes every namespace, process and file', async () => {
    const down = await egw(lab('down'), { timeoutMs: 120_000 });
    expect(down.code, down.err).toBe(0);
    expect(await prefixedNamespaces(PREFIX)).toEqual([]);
    expect(await processesNaming(STATE)).toEqual([]);
    expect(existsSync(STATE)).toBe(false);
    expect(await rootLinks()).toBe(linksBefore);
  }, 180_000);
});
