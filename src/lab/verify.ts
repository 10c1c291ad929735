/**
 * `egw lab verify` — the reference document's "Verify the feature operation" step, automated: from every
 * client pod to every external server, connect and compare the source the server saw with the one the
 * state predicts (expect.ts). And `egw lab exec`, which runs a command inside a pod's network namespace.
 */
import { spawn } from 'node:child_process';
import type { Pod } from '../api/index.js';
import { openDatastore } from '../datastore/open.js';
import { EgwError } from '../platform/errors.js';
import type { Shell } from '../platform/shell.js';
import { ExecShell } from '../platform/shell.js';
import type { ExpectServer, Observed, PairExpectation } from './expect.js';
import { expectations, judge } from './expect.js';
import { podNetnsName } from './kubelet/naming.js';
import { kubeTools } from './kube.js';
import { SERVER_PORT } from './layout.js';
import { loadScenario } from './scenario.js';
import type { Scenario } from './scenario.js';
import type { LabSnapshot } from './snapshot.js';
import { podKey, readLabSnapshot } from './snapshot.js';
import type { LabRecord } from './state.js';
import { LabPaths, requireLab } from './state.js';

/** One verified pair. */
export interface PairResult extends PairExpectation {
  observed: Observed;
  ok: boolean;
}

/** Options of {@link labVerify}. */
export interface VerifyOptions {
  /** Connections per pair (default 1; more show the spread over several gateways). */
  count?: number;
  /** Per-connection timeout (default 2000 ms). */
  timeoutMs?: number;
  shell?: Shell;
}

/** The servers of a scenario as verify sees them. */
export function scenarioServers(scenario: Scenario): ExpectServer[] {
  return scenario.servers.map((s) => ({ name: s.name, ip: s.ip, network: s.network }));
}

/** The network namespace of a pod, as the lab's kubelet names it. */
export function podNetns(prefix: string, pod: Pod): string {
  return podNetnsName(prefix, pod.metadata.namespace ?? 'default', pod.metadata.name, pod.metadata.uid ?? '');
}

/** Reads the running lab's record, scenario and a snapshot. */
export async function readLab(stateDir: string): Promise<{ record: LabRecord; scenario: Scenario; snapshot: LabSnapshot; paths: LabPaths }> {
  const paths = new LabPaths(stateDir);
  const record = requireLab(paths);
  const scenario = loadScenario(record.scenario);
  const store = await openDatastore(record.datastore.outside);
  try {
    return { record, scenario, snapshot: await readLabSnapshot(store, paths.awsSimState), paths };
  } finally {
    await store.close();
  }
}

/**
 * Probes every pair: one probe process per client pod (inside its namespace), connecting to every
 * server at once, `count` times. Pure judgement afterwards (expect.ts `judge`).
 */
export async function verifyPairs(prefix: string, paths: LabPaths, snapshot: LabSnapshot, servers: readonly ExpectServer[], options: VerifyOptions = {}): Promise<PairResult[]> {
  const shell = options.shell ?? new ExecShell();
  const pairs = expectations(snapshot, servers);
  const count = Math.max(1, options.count ?? 1);
  const timeoutMs = options.timeoutMs ?? 2000;
  const byClient = new Map<string, PairExpectation[]>();
  for (const p of pairs) byClient.set(p.client, [...(byClient.get(p.client) ?? []), p]);
  const observed = new Map<string, Observed>();
  await Promise.all([...byClient].map(async ([client, list]) => {
    const pod = snapshot.pods.find((p) => podKey(p) === client)!;
    const targets = list.flatMap((p) => Array.from({ length: count }, () => `${p.server.ip}:${SERVER_PORT}`));
    const r = await shell.run(['ip', 'netns', 'exec', podNetns(prefix, pod), process.execPath, paths.bin('probe.mjs'), String(timeoutMs), ...targets], { allowFailure: true, timeoutMs: timeoutMs + 15_000 });
    for (const p of list) observed.set(`${client}|${p.server.ip}`, { seen: [], errors: [] });
    if (r.exitCode !== 0) {
      for (const p of list) observed.get(`${client}|${p.server.ip}`)!.errors.push(`probe failed: ${r.stderr.trim().split('\n')[0] ?? r.exitCode}`);
      return;
    }
    for (const line of r.stdout.split('\n')) {
      if (line.trim() === '') continue;
      const o = JSON.parse(line) as { target: string; seen?: string; error?: string };
      const ip = o.target.slice(0, o.target.lastIndexOf(':'));
      const slot = observed.get(`${client}|${ip}`);
      if (slot === undefined) continue;
      if (o.seen !== undefined) slot.seen.push(o.seen);
      else slot.errors.push(o.error ?? 'error');
    }
  }));
  return pairs.map((p) => {
    const o = observed.get(`${p.client}|${p.server.ip}`) ?? { seen: [], errors: ['not probed'] };
    return { ...p, observed: o, ok: judge(p.expected, o) };
  });
}

/** `egw lab verify`: every pair, judged. */
export async function labVerify(stateDir: string, options: VerifyOptions = {}): Promise<{ pairs: PairResult[]; ok: boolean; scenario: Scenario }> {
  const { record, scenario, snapshot, paths } = await readLab(stateDir);
  const pairs = await verifyPairs(record.prefix, paths, snapshot, scenarioServers(scenario), options);
  return { pairs, ok: pairs.length > 0 && pairs.every((p) => p.ok), scenario };
}

/** The verify table (one row per pair). */
export function verifyRows(pairs: readonly PairResult[]): { header: string[]; rows: string[][] } {
  return {
    header: ['CLIENT', 'NODE', 'SERVER', 'SEEN', 'EXPECTED', 'RESULT'],
    rows: pairs.map((p) => [
      p.client,
      p.node,
      `${p.server.name} ${p.server.ip}`,
      p.observed.seen.length > 0 ? [...new Set(p.observed.seen)].join(',') + (p.observed.errors.length > 0 ? ` +${p.observed.errors.length} failed` : '') : `(${[...new Set(p.observed.errors)].join(',')})`,
      p.expected.kind === 'fail' ? `no connection: ${p.expected.label}` : `${p.expected.ips.join('|')} — ${p.expected.label}`,
      p.ok ? 'OK' : 'FAIL',
    ]),
  };
}

/**
 * `egw lab exec POD [-n NS] -- CMD…`: runs a command inside the pod's network namespace with the
 * caller's terminal; resolves with its exit code. Without a namespace the pod name must be unique.
 */
export async function labExec(stateDir: string, podName: string, namespace: string | undefined, argv: readonly string[]): Promise<number> {
  if (argv.length === 0) throw new EgwError('InvalidInput', 'no command given', { hint: 'egw lab exec POD -n NAMESPACE -- nc 198.51.100.10 8089' });
  const { record, snapshot } = await readLab(stateDir);
  const matches = snapshot.pods.filter((p) => p.metadata.name === podName && (namespace === undefined || (p.metadata.namespace ?? 'default') === namespace));
  if (matches.length === 0) {
    throw new EgwError('NotFound', `pod ${podName}${namespace === undefined ? '' : ` in namespace ${namespace}`} not found`, { hint: 'list the pods with: egw lab status' });
  }
  if (matches.length > 1) throw new EgwError('InvalidInput', `pod ${podName} exists in namespaces ${matches.map((p) => p.metadata.namespace).join(', ')}`, { hint: 'pick one with -n NAMESPACE' });
  const pod = matches[0]!;
  if (pod.spec.nodeName === undefined || pod.status?.podIP === undefined) throw new EgwError('InvalidInput', `pod ${podKey(pod)} is not running yet`, { hint: 'wait for it (egw lab status)' });
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', podNetns(record.prefix, pod), ...argv], { stdio: 'inherit' });
    child.on('error', (e) => reject(new EgwError('CommandFailed', `cannot run ${argv[0] ?? ''}: ${e.message}`)));
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

/**
 * `egw lab kubectl -- ARGS…`: the built kubectl with the lab's admin kubeconfig (a `--kubernetes` lab),
 * with the caller's terminal; resolves with kubectl's exit code.
 */
export async function labKubectl(stateDir: string, args: readonly string[]): Promise<number> {
  const paths = new LabPaths(stateDir);
  const record = requireLab(paths);
  if (record.datastore.backend !== 'kubernetes') {
    throw new EgwError('InvalidInput', `the lab in ${stateDir} runs on ${record.datastore.backend}, not on Kubernetes`, { hint: 'start one with: egw lab up --kubernetes (egw get/apply talk to this one)' });
  }
  const { kubectl } = kubeTools();
  return new Promise((resolve, reject) => {
    const child = spawn(kubectl, ['--kubeconfig', paths.kubeconfig, ...args], { stdio: 'inherit' });
    child.on('error', (e) => reject(new EgwError('CommandFailed', `cannot run ${kubectl}: ${e.message}`, { hint: 'run scripts/build-kube' })));
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}
