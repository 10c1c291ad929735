/**
 * `egw lab up --kubernetes`: the lab on a real Kubernetes control plane (docs/lab.md, "On Kubernetes").
 *
 * etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built by scripts/build-kube, started by
 * scripts/with-kube) run in the control plane's namespace; the API server listens on the control plane's
 * VPC address, where nodes and pods reach it through the VPC, as on EKS. The host reaches it through two
 * relays joined by a Unix socket in the state dir (no namespace is connected to the host's network).
 * egw is installed as `egw render install` renders it, minus the workloads the lab runs as its own
 * processes (the agent DaemonSet, the controller Deployment and its Service); every egw program uses its
 * own ServiceAccount's token, each lab kubelet a node identity (`system:node:<name>`).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { JsonObject } from '../datastore/contract.js';
import { renderInstall, type AwsMode } from '../install/render-install.js';
import type { KubeObject } from '../install/objects.js';
import { EgwError } from '../platform/errors.js';
import type { Shell } from '../platform/shell.js';
import { felixRecord, nodeRecords } from './apply.js';
import type { LabNames } from './layout.js';
import type { ProcessSpec } from './processes.js';
import type { Scenario } from './scenario.js';
import type { LabPaths } from './state.js';
import { writeAtomic } from './state.js';

/** The API server's port on the control plane's address. */
export const KUBE_API_PORT = 6443;
/** Where the controller serves the validating webhook (on the control plane's address). */
export const LAB_WEBHOOK_PORT = 9443;
/** The namespace egw is installed in. */
export const LAB_EGW_NAMESPACE = 'egw-system';
/** The field manager of what the lab applies. */
export const LAB_FIELD_MANAGER = 'egw-lab';
/** How long the lab's program tokens live. */
const TOKEN_DURATION = '24h';

/** The programs that run outside pods and get a token of their ServiceAccount. */
export const LAB_KUBE_PROGRAMS = ['agent', 'controller', 'cni'] as const;
export type LabKubeProgram = (typeof LAB_KUBE_PROGRAMS)[number];

/** Where the control plane's tools are: this checkout's scripts and tools/kube/bin. */
export interface KubeTools {
  root: string;
  buildKube: string;
  withKube: string;
  kubectl: string;
}

/** The tools, from the checkout this egw runs from (`dist/src/lab/kube.js` → the repository root). */
export function kubeTools(from = dirname(new URL(import.meta.url).pathname)): KubeTools {
  // src/lab (tests) or dist/src/lab (the CLI): the root is the first ancestor with scripts/with-kube.
  let dir = resolve(from);
  for (let i = 0; i < 5 && !existsSync(join(dir, 'scripts', 'with-kube')); i++) dir = dirname(dir);
  if (!existsSync(join(dir, 'scripts', 'with-kube'))) {
    throw new EgwError('InvalidInput', 'egw lab up --kubernetes needs a checkout of egw (scripts/build-kube and scripts/with-kube)', { hint: 'run it from a git clone of egw' });
  }
  return { root: dir, buildKube: join(dir, 'scripts', 'build-kube'), withKube: join(dir, 'scripts', 'with-kube'), kubectl: join(dir, 'tools', 'kube', 'bin', 'kubectl') };
}

/** The API server's URL inside the lab. */
export function kubeApiUrl(scenario: Scenario): string {
  return `https://${scenario.controlPlane.ip}:${KUBE_API_PORT}`;
}

/** The AWS mode of the scenario's FelixConfiguration, as `egw render install` names it. */
export function scenarioAwsMode(scenario: Scenario): AwsMode {
  const setting = (scenario.felix as { awsSecondaryIPSupport?: unknown }).awsSecondaryIPSupport;
  return setting === 'EnabledENIPerWorkload' ? 'eni-per-workload' : setting === 'Enabled' ? 'secondary-ip' : 'none';
}

/**
 * What the lab installs: `egw render install` without the workloads the lab runs as processes (the agent
 * DaemonSet, the controller Deployment, the webhook Service) and without its FelixConfiguration (the
 * scenario brings its own).
 */
export function labInstallObjects(scenario: Scenario, image: string): KubeObject[] {
  const skip = new Set(['DaemonSet', 'Deployment', 'Service', 'FelixConfiguration']);
  return renderInstall({ image, namespace: LAB_EGW_NAMESPACE, awsMode: scenarioAwsMode(scenario), awsRegion: scenario.region }).filter((o) => !skip.has(o.kind));
}

/** The long-running processes of the control plane: with-kube in the control plane's namespace, and the host relay pair. */
export function kubeProcessSpecs(names: LabNames, scenario: Scenario, paths: LabPaths, hostPort: number, env: Record<string, string>, tools: KubeTools = kubeTools()): ProcessSpec[] {
  const node = process.execPath;
  return [
    {
      name: 'kube',
      netns: names.cp,
      // Through bash: the process's command line is then the recorded argv (a script's own is its interpreter's).
      argv: ['bash', tools.withKube, 'sleep', 'infinity'],
      env: {
        ...env,
        EGW_KUBE_ADDRESS: scenario.controlPlane.ip,
        EGW_KUBE_API_PORT: String(KUBE_API_PORT),
        EGW_KUBE_DIR: paths.kubeDir,
        EGW_KUBE_NODES: scenario.nodes.map((n) => n.name).join(' '),
        EGW_KUBE_QUIET: '1',
      },
    },
    { name: 'relay-kube-cp', netns: names.cp, argv: [node, paths.bin('relay.mjs'), 'unix-to-tcp', paths.kubeSocket, `${scenario.controlPlane.ip}:${KUBE_API_PORT}`], env },
    { name: 'relay-kube-host', netns: undefined, argv: [node, paths.bin('relay.mjs'), 'tcp-to-unix', `127.0.0.1:${hostPort}`, paths.kubeSocket], env },
  ];
}

/** A kubeconfig: the control plane's CA, `server`, and either a client certificate or a token. */
function kubeconfigText(server: string, ca: string, user: Record<string, string>, name: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'egw-lab', cluster: { server, 'certificate-authority': ca } }],
    users: [{ name, user }],
    contexts: [{ name: 'egw-lab', context: { cluster: 'egw-lab', user: name } }],
    'current-context': 'egw-lab',
  });
}

/** Writes the host's admin kubeconfig (through the host relay) to `<state dir>/kubeconfig`. */
export function writeHostKubeconfig(paths: LabPaths, hostPort: number): void {
  const pki = join(paths.kubeDir, 'pki');
  writeAtomic(paths.kubeconfig, kubeconfigText(`https://127.0.0.1:${hostPort}`, join(pki, 'ca.crt'), { 'client-certificate': join(pki, 'admin.crt'), 'client-key': join(pki, 'admin.key') }, 'kubernetes-admin'));
}

/** Runs the built kubectl with the host's admin kubeconfig; throws with kubectl's message on failure. */
export async function kubectl(shell: Shell, paths: LabPaths, args: readonly string[], input?: string, tools: KubeTools = kubeTools()): Promise<string> {
  const r = await shell.run([tools.kubectl, '--kubeconfig', paths.kubeconfig, ...args], { allowFailure: true, ...(input === undefined ? {} : { input }) });
  if (r.exitCode !== 0) {
    throw new EgwError('CommandFailed', `kubectl ${args.slice(0, 3).join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-6).join(' | ')}`, { hint: `see the control plane's logs in ${paths.kubeDir}` });
  }
  return r.stdout;
}

/** Installs egw (server-side apply) and waits until its CRDs are established. */
export async function installEgw(shell: Shell, paths: LabPaths, scenario: Scenario, image: string): Promise<number> {
  const objects = labInstallObjects(scenario, image);
  const yaml = objects.map((o) => stringify(o)).join('---\n');
  await kubectl(shell, paths, ['apply', '--server-side', '--force-conflicts', `--field-manager=${LAB_FIELD_MANAGER}`, '-f', '-'], yaml);
  await kubectl(shell, paths, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '-l', 'app.kubernetes.io/part-of=egw']);
  return objects.length;
}

/**
 * Writes a kubeconfig per egw program with a token of its ServiceAccount (`kubectl create token`), for
 * the API server's VPC address. Returns the datastore spec of each.
 */
export async function issueProgramKubeconfigs(shell: Shell, paths: LabPaths, scenario: Scenario): Promise<Record<LabKubeProgram, string>> {
  const out = {} as Record<LabKubeProgram, string>;
  for (const program of LAB_KUBE_PROGRAMS) {
    const sa = `egw-${program}`;
    const token = (await kubectl(shell, paths, ['-n', LAB_EGW_NAMESPACE, 'create', 'token', sa, `--duration=${TOKEN_DURATION}`])).trim();
    const file = paths.programKubeconfig(program);
    writeAtomic(file, kubeconfigText(kubeApiUrl(scenario), join(paths.kubeDir, 'pki', 'ca.crt'), { token }, `system:serviceaccount:${LAB_EGW_NAMESPACE}:${sa}`));
    out[program] = `kubernetes:${file}`;
  }
  return out;
}

/** The kubelet identity's kubeconfig of a node (written by with-kube). */
export function nodeKubeconfig(paths: LabPaths, node: string): string {
  return join(paths.kubeDir, `node-${node}.kubeconfig`);
}

/** What a t3/m5 instance gives the scheduler (vCPUs, memory); the lab's pods request neither, so a default is fine. */
const INSTANCE_RESOURCES: Readonly<Record<string, { cpu: string; memory: string }>> = {
  't3.medium': { cpu: '2', memory: '4Gi' },
  't3.large': { cpu: '2', memory: '8Gi' },
  't3.xlarge': { cpu: '4', memory: '16Gi' },
  'm5.large': { cpu: '2', memory: '8Gi' },
  'm5.xlarge': { cpu: '4', memory: '16Gi' },
};

/** The Node each lab kubelet registers: the scenario's labels and addresses, and its capacity (110 pods, as kubelets default). */
export function kubeletRegistrations(scenario: Scenario): Map<string, JsonObject> {
  const out = new Map<string, JsonObject>();
  for (const [i, node] of nodeRecords(scenario).entries()) {
    const n = scenario.nodes[i]!;
    const res = INSTANCE_RESOURCES[n.instanceType] ?? { cpu: '2', memory: '8Gi' };
    const capacity = { pods: '110', cpu: res.cpu, memory: res.memory };
    out.set(n.name, {
      ...node,
      status: {
        ...(node.status as object),
        capacity,
        allocatable: capacity,
        nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', kubeletVersion: 'egw-lab', containerRuntimeVersion: 'egw-lab://1', kubeProxyVersion: '', osImage: 'egw lab', kernelVersion: '', machineID: n.instanceId, systemUUID: n.instanceId, bootID: n.instanceId },
      },
    } as unknown as JsonObject);
  }
  return out;
}

/**
 * Applies the scenario with kubectl: its FelixConfiguration `default`, then its manifests, as an operator
 * would (`kubectl apply --server-side`, so the API server's schemas, CEL rules, webhook and admission
 * policy decide). `createOnly` (a re-run of `up`): objects that exist are left as they are.
 */
export async function applyScenarioWithKubectl(shell: Shell, paths: LabPaths, scenario: Scenario, createOnly: boolean): Promise<string[]> {
  const felix = stringify(felixRecord(scenario));
  const lines: string[] = [];
  const run = async (args: string[], input?: string): Promise<void> => {
    if (!createOnly) {
      lines.push(...(await kubectl(shell, paths, ['apply', '--server-side', `--field-manager=${LAB_FIELD_MANAGER}`, ...args], input)).trim().split('\n'));
      return;
    }
    const tools = kubeTools();
    const r = await shell.run([tools.kubectl, '--kubeconfig', paths.kubeconfig, 'create', ...args], { allowFailure: true, ...(input === undefined ? {} : { input }) });
    const errors = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/AlreadyExists|already exists/.test(l));
    if (r.exitCode !== 0 && errors.length > 0) throw new EgwError('CommandFailed', `kubectl create failed: ${errors.join(' | ')}`, { hint: 'fix the scenario manifests' });
    lines.push(...r.stdout.trim().split('\n').filter((l) => l !== ''));
  };
  await run(['-f', '-'], felix);
  for (const m of scenario.manifests) await run(['-f', m, ...(isDir(m) ? ['--recursive'] : [])]);
  return lines;
}

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}
