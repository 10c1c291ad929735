/**
 * `egw lab up` and `egw lab down`: build the world, start every production program detached inside it,
 * apply the scenario, wait until every gateway is ready and every client routed; and remove all of it.
 * docs/lab.md describes the world, the processes and the guarantees.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import type { Datastore } from '../datastore/contract.js';
import { openDatastore, parseDatastoreSpec } from '../datastore/open.js';
import { EgwError, errorMessage } from '../platform/errors.js';
import type { Shell } from '../platform/shell.js';
import { ExecShell } from '../platform/shell.js';
import { applyScenario } from './apply.js';
import type { AwsSimRunConfig } from './aws-sim-runner.js';
import { clearEtcdPrefix, etcdHasForeignData, markEtcdPrefix } from './etcd.js';
import type { LabNames } from './layout.js';
import { AWS_SIM_PORT, ETCD_RELAY_PORT, fabricConfig, labNames, SERVER_PORT, staticWorld, worldDefinition } from './layout.js';
import type { ProcessSpec } from './processes.js';
import { LabProcesses } from './processes.js';
import { LAB_ECHO_SERVER_SOURCE, LAB_PROBE_SOURCE, LAB_RELAY_SOURCE } from './programs.js';
import type { LabProgress } from './progress.js';
import { labProgress, progressLine } from './progress.js';
import type { Scenario } from './scenario.js';
import { loadScenario } from './scenario.js';
import type { LabSnapshot } from './snapshot.js';
import { readLabSnapshot } from './snapshot.js';
import type { LabDatastore, LabRecord } from './state.js';
import { LabPaths, readLabRecord, removeStateDir, writeAtomic, writeLabRecord } from './state.js';
import { buildWorld, labNamespaces, sweepWorld } from './world.js';
import { applyScenarioWithKubectl, installEgw, issueProgramKubeconfigs, kubeApiUrl, kubeletRegistrations, kubeProcessSpecs, kubeTools, LAB_WEBHOOK_PORT, nodeKubeconfig, writeHostKubeconfig } from './kube.js';
import { WEBHOOK_CONFIGURATION } from '../install/rbac.js';
import { createServer, type AddressInfo } from 'node:net';

/**
 * The kubelets' speed-up: Kubernetes' probe timings and restart back-off divided by it (the operator's
 * readiness probe, 10 s delay and period, becomes 1 s).
 */
export const KUBELET_SPEEDUP = 10;

/** The default lab prefix: namespaces `egwlab-*`. */
export const DEFAULT_LAB_PREFIX = 'egwlab';

/** What every lab command gets. */
export interface LabContext {
  stateDir: string;
  prefix: string;
  /** Progress and summary lines. */
  log: (line: string) => void;
  shell?: Shell;
}

/** Options of {@link labUp}. */
export interface LabUpOptions {
  /** The scenario file (default: the running lab's, else the built-in reference scenario). */
  scenario?: string;
  /** The datastore (`etcd://…`); default: a SQLite file in the state dir. */
  datastore?: string;
  /** Give up waiting after this long (default: the scenario's `wait.timeoutSeconds`). */
  timeoutSeconds?: number;
  /** Run on a real Kubernetes control plane (docs/lab.md, "On Kubernetes"); default: what the running lab uses. */
  kubernetes?: boolean;
}

/** What `up` reports. */
export interface LabUpResult {
  record: LabRecord;
  scenario: Scenario;
  progress: LabProgress;
  snapshot: LabSnapshot;
  /** Seconds, per phase, and `total`. */
  timings: Record<string, number>;
  /** True when everything became ready within the timeout. */
  ready: boolean;
}

/** The compiled `egw` CLI that the lab's processes run (this package's). */
export function egwCliPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const sibling = resolve(here, '../cli/main.js');
  if (existsSync(sibling)) return sibling;
  // Running from the TypeScript sources (tests): the compiled tree sits in dist/.
  return resolve(here, '../../dist/src/cli/main.js');
}

/** The environment of the lab's processes: the caller's, without anything that could point them elsewhere. */
export function labProcessEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('AWS_') || k === 'EGW_DATASTORE' || k === 'EGW_LAB_DIR' || k === 'NODE_OPTIONS' || k === 'KUBECONFIG') continue;
    env[k] = v;
  }
  // The host's AWS configuration is never read by the lab's SDK clients (they talk to the emulator only).
  return { ...env, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', ...extra };
}

/** Every long-running process of a lab, in start order. */
export function labProcessSpecs(ctx: { prefix: string }, names: LabNames, scenario: Scenario, paths: LabPaths, datastore: LabDatastore): ProcessSpec[] {
  const node = process.execPath;
  const egw = [node, egwCliPath()];
  const ds = ['--datastore', datastore.inside];
  // IMDS answers on the emulator's VPC address (the SDK's standard override); EC2's own 169.254.169.254 is
  // link-local, and the lab keeps to its allowed address ranges.
  const env = { ...labProcessEnv(), AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://${scenario.ec2Endpoint}` };
  const specs: ProcessSpec[] = [];
  const kube = datastore.backend === 'kubernetes';
  // On Kubernetes every program has its own identity: a ServiceAccount token, or a kubelet's node certificate.
  const dsOf = (program: 'agent' | 'controller' | 'cni'): string[] => (kube ? ['--datastore', `kubernetes:${paths.programKubeconfig(program)}`] : ds);
  if (datastore.backend === 'etcd') {
    const target = parseDatastoreSpec(datastore.outside);
    const endpoints = target.backend === 'etcd' ? target.endpoints.join(',') : '';
    specs.push({ name: 'relay-host', netns: undefined, argv: [node, paths.bin('relay.mjs'), 'unix-to-tcp', paths.etcdSocket, endpoints], env });
    specs.push({ name: 'relay-cp', netns: names.cp, argv: [node, paths.bin('relay.mjs'), 'tcp-to-unix', `0.0.0.0:${ETCD_RELAY_PORT}`, paths.etcdSocket], env });
  }
  specs.push({
    name: 'controller',
    netns: names.cp,
    argv: [
      ...egw,
      ...dsOf('controller'),
      'controller',
      '--aws-endpoint',
      `http://${scenario.ec2Endpoint}`,
      '--aws-region',
      scenario.region,
      '--aws-subnets-interval',
      '10s',
      '--ipam-gc-grace',
      '2m',
      // The API server (beside it in the control plane's namespace) calls the webhook on the VPC address.
      ...(kube ? ['--webhook-listen', `${scenario.controlPlane.ip}:${LAB_WEBHOOK_PORT}`, '--webhook-url', `https://${scenario.controlPlane.ip}:${LAB_WEBHOOK_PORT}/validate`] : []),
    ],
    env,
  });
  // On Kubernetes, kube-scheduler places the pods.
  if (!kube) specs.push({ name: 'scheduler', netns: names.cp, argv: [...egw, ...ds, 'lab', 'scheduler'], env });
  for (const n of scenario.nodes) {
    const nsName = names.nodes[n.name]!;
    specs.push({
      name: `agent-${n.name}`,
      netns: nsName,
      argv: [...egw, ...dsOf('agent'), 'agent', '--node', n.name, '--node-ip', n.ip],
      // As on EC2, IMDS tells the agent who it is (by its source address) and the EC2 API answers its calls.
      env: { ...env, AWS_ENDPOINT_URL_EC2: `http://${scenario.ec2Endpoint}` },
    });
    specs.push({
      name: `kubelet-${n.name}`,
      netns: nsName,
      // The kubelet makes the pods' namespaces: it must share the host's mount namespace (nsenter --net).
      enter: 'nsenter',
      argv: [
        ...egw,
        ...(kube ? ['--datastore', `kubernetes:${nodeKubeconfig(paths, n.name)}`] : ds),
        'lab',
        'kubelet',
        '--node',
        n.name,
        '--netns-prefix',
        ctx.prefix,
        '--state-dir',
        paths.kubeletDir(n.name),
        '--egw-bin',
        egwCliPath(),
        '--speedup',
        String(KUBELET_SPEEDUP),
        '--heartbeat-interval',
        '2s',
        ...(kube
          ? ['--register-node', paths.nodeRegistration(n.name), '--node-lease', '--pod-tokens', '--cni-datastore', `kubernetes:${paths.programKubeconfig('cni')}`, '--pod-datastore', 'kubernetes']
          : []),
      ],
      env,
    });
  }
  const echo = (name: string, netns: string): ProcessSpec => ({ name: `server-${name}`, netns, argv: [node, paths.bin('echo-server.mjs'), String(SERVER_PORT), name], env });
  if (scenario.servers.some((s) => s.network === 'internet')) specs.push(echo('internet', names.inet));
  if (scenario.servers.some((s) => s.network === 'onprem')) specs.push(echo('onprem', names.onprem));
  for (const s of scenario.servers) if (s.network === 'vpc') specs.push(echo(s.name, names.vpcServers[s.name]!));
  return specs;
}

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until a process's log shows a line matching `pattern`, or it died, or the time is up. */
async function waitForLog(procs: LabProcesses, name: string, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const log = procs.logPath(name);
  for (;;) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (pattern.test(text)) return;
    const rec = procs.get(name);
    if (rec === undefined || !procs.alive(rec)) throw new EgwError('CommandFailed', `${name} exited during start: ${text.trim().split('\n').slice(-5).join(' | ')}`, { hint: `see ${log}` });
    if (Date.now() > deadline) throw new EgwError('Timeout', `${name} did not get ready within ${timeoutMs / 1000} s`, { hint: `see ${log}` });
    await sleep(100);
  }
}

/** The datastore URLs of a lab: SQLite in the state dir, or the given etcd reached through the relays. */
export function labDatastore(given: string | undefined, paths: LabPaths, scenario: Scenario, prefix: string): LabDatastore {
  if (given === undefined || given === '') return { backend: 'sqlite', outside: paths.sqlite, inside: paths.sqlite };
  const spec = parseDatastoreSpec(given);
  if (spec.backend === 'sqlite') {
    const path = resolve(spec.path);
    return { backend: 'sqlite', outside: path, inside: path };
  }
  if (spec.backend === 'kubernetes') {
    throw new EgwError('InvalidInput', 'egw lab brings its own Kubernetes control plane: --datastore takes sqlite:PATH or etcd://HOST:PORT', { hint: 'run egw lab up --kubernetes' });
  }
  if (spec.tls || Object.keys(spec.security).length > 0) {
    // The lab relays etcd into its namespaces in plain text and its programs would need the files inside.
    throw new EgwError('InvalidInput', 'egw lab relays etcd in plain text: etcds:// and etcd users are not supported by the lab', { hint: 'give the lab a plain etcd://HOST:PORT on loopback' });
  }
  // The lab keeps its keys under a prefix of its own unless one is given: it wipes them at up and down.
  const keyPrefix = given.slice('etcd://'.length).includes('/') ? spec.prefix.replace(/^\/|\/$/g, '') : `egw-lab-${prefix}`;
  const outside = `etcd://${spec.endpoints.join(',')}/${keyPrefix}`;
  return { backend: 'etcd', outside, inside: `etcd://${scenario.controlPlane.ip}:${ETCD_RELAY_PORT}/${keyPrefix}` };
}

/** The datastore of a Kubernetes lab: the host's admin kubeconfig outside, each program's own inside. */
export function kubeLabDatastore(paths: LabPaths, apiHostPort: number): LabDatastore {
  return { backend: 'kubernetes', outside: `kubernetes:${paths.kubeconfig}`, inside: 'kubernetes', apiHostPort };
}

/**
 * True when the lab in `record` can be kept (same prefix, scenario and datastore; its world and emulator
 * alive, and on Kubernetes its control plane: a new one would have a new CA and empty storage).
 */
async function reusable(shell: Shell, paths: LabPaths, record: LabRecord | undefined, prefix: string, scenario: Scenario, datastore: LabDatastore): Promise<boolean> {
  if (record === undefined || record.phase !== 'up' || record.prefix !== prefix || record.scenario !== scenario.source || record.datastore.backend !== datastore.backend) return false;
  if (datastore.backend !== 'kubernetes' && record.datastore.outside !== datastore.outside) return false;
  const have = new Set(await labNamespaces(shell, prefix));
  if (!labNames(prefix, scenario).all.every((n) => have.has(n))) return false;
  const procs = new LabProcesses(paths.root);
  const alive = (name: string): boolean => {
    const p = procs.get(name);
    return p !== undefined && procs.alive(p);
  };
  return alive('aws-sim') && (datastore.backend !== 'kubernetes' || alive('kube'));
}

/**
 * Removes everything a lab (or a crashed `up`) made under `prefix` and in the state dir: processes
 * (the root-namespace relay by its record, everything else with the namespaces), namespaces and their
 * links, the lab's etcd keys, the state dir. Idempotent.
 */
export async function teardownLab(ctx: LabContext): Promise<{ namespaces: string[]; processes: number }> {
  const shell = ctx.shell ?? new ExecShell();
  const paths = new LabPaths(ctx.stateDir);
  let record: LabRecord | undefined;
  try {
    record = readLabRecord(paths);
  } catch {
    record = undefined;
  }
  const procs = new LabProcesses(paths.root);
  let stopped = 0;
  for (const p of procs.list()) {
    if (p.netns === undefined && procs.alive(p)) {
      await procs.stop(p.name, 1000);
      stopped++;
    }
  }
  // The prefix the lab was made with wins over the one asked for; both are swept.
  const swept = await sweepWorld(shell, ctx.prefix);
  if (record !== undefined && record.prefix !== ctx.prefix) {
    const other = await sweepWorld(shell, record.prefix);
    swept.namespaces.push(...other.namespaces);
    swept.killedPids.push(...other.killedPids);
  }
  if (record?.datastore.backend === 'etcd') {
    try {
      await clearEtcdPrefix(record.datastore.outside);
    } catch (e) {
      ctx.log(`warning: the lab's etcd keys under ${record.datastore.outside} were not removed: ${errorMessage(e)}`);
    }
  }
  removeStateDir(paths.root);
  return { namespaces: swept.namespaces, processes: stopped + swept.killedPids.length };
}

/** Where Debian's containernetworking-plugins put ptp (the kubelets' default). */
const PTP_PLUGIN = '/usr/lib/cni/ptp';

/**
 * Fails early, naming what is missing, when a program the lab runs is not installed: iproute2, nftables,
 * nsenter (util-linux), the ptp CNI plugin (containernetworking-plugins).
 */
export async function preflight(shell: Shell): Promise<void> {
  const missing: string[] = [];
  for (const [program, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['nsenter', 'util-linux'], ['sysctl', 'procps']] as const) {
    const r = await shell.run(['sh', '-c', `command -v ${program}`], { allowFailure: true });
    if (r.exitCode !== 0) missing.push(`${program} (${pkg})`);
  }
  if (!existsSync(PTP_PLUGIN)) missing.push(`${PTP_PLUGIN} (containernetworking-plugins)`);
  if (missing.length > 0) {
    throw new EgwError('InvalidInput', `the lab needs ${missing.join(', ')}`, { hint: `install them (apt-get install ${missing.map((m) => /\((.+)\)/.exec(m)?.[1] ?? m).join(' ')}), or run scripts/quickstart` });
  }
}

/** Writes the small programs into the state dir. */
function writePrograms(paths: LabPaths): void {
  mkdirSync(dirname(paths.bin('x')), { recursive: true });
  writeFileSync(paths.bin('echo-server.mjs'), LAB_ECHO_SERVER_SOURCE);
  writeFileSync(paths.bin('probe.mjs'), LAB_PROBE_SOURCE);
  writeFileSync(paths.bin('relay.mjs'), LAB_RELAY_SOURCE);
}

/**
 * Brings a lab up (or converges a running one: dead processes are restarted and the scenario applied
 * again), then waits until every gateway is ready and every client routed, reporting progress through
 * `ctx.log`. A lab that cannot be kept — another scenario, prefix or datastore, a crashed `up`, a
 * missing namespace or emulator — is torn down first. Throws on build failures; a wait that times out
 * returns `ready: false` with the blockers in `progress`.
 */
export async function labUp(ctx: LabContext, options: LabUpOptions = {}): Promise<LabUpResult> {
  const t0 = Date.now();
  const shell = ctx.shell ?? new ExecShell();
  const paths = new LabPaths(ctx.stateDir);
  let existing: LabRecord | undefined;
  try {
    existing = readLabRecord(paths);
  } catch {
    existing = undefined;
  }
  const scenario = loadScenario(options.scenario ?? existing?.scenario);
  await preflight(shell);
  const names = labNames(ctx.prefix, scenario);
  const kube = options.kubernetes ?? (options.datastore === undefined && existing?.datastore.backend === 'kubernetes');
  if (kube && options.datastore !== undefined) {
    throw new EgwError('InvalidInput', '--kubernetes brings its own control plane and datastore: --datastore cannot be given with it', { hint: 'drop --datastore' });
  }
  const datastore = kube
    ? kubeLabDatastore(paths, existing?.datastore.apiHostPort ?? (await freeLoopbackPort()))
    : labDatastore(options.datastore ?? (existing?.datastore.backend === 'etcd' ? existing.datastore.outside : undefined), paths, scenario, ctx.prefix);
  const timings: Record<string, number> = {};
  const keep = await reusable(shell, paths, existing, ctx.prefix, scenario, datastore);
  if (!keep) {
    const leftovers = existing !== undefined || (await labNamespaces(shell, ctx.prefix)).length > 0 || existsSync(paths.root);
    if (leftovers) {
      ctx.log(`removing the leftovers of an earlier lab (${ctx.prefix}-*, ${paths.root})`);
      await teardownLab({ ...ctx, shell });
    }
  } else {
    ctx.log(`lab ${scenario.name} is up: converging`);
  }
  mkdirSync(paths.root, { recursive: true });
  writePrograms(paths);
  const record: LabRecord = keep && existing !== undefined
    ? existing
    : { format: 'egw-lab/v1', prefix: ctx.prefix, scenario: scenario.source, scenarioName: scenario.name, datastore, phase: 'building', createdAt: new Date().toISOString(), timings: {} };
  writeLabRecord(paths, record);

  if (!keep) {
    let t = Date.now();
    ctx.log(`building the world: ${names.all.length} namespaces (VPC router, internet gateway, on-prem, ${scenario.nodes.length} nodes, control plane)`);
    await buildWorld(shell, staticWorld(names, scenario));
    timings['world'] = seconds(t);
    t = Date.now();
    const config: AwsSimRunConfig = {
      world: worldDefinition(scenario),
      listen: `0.0.0.0:${AWS_SIM_PORT}`,
      stateFile: paths.awsSimState,
      fabric: fabricConfig(names, scenario),
    };
    writeAtomic(paths.awsSimConfig, `${JSON.stringify(config, null, 2)}\n`);
    ctx.log(`starting the EC2 emulator in the VPC (EC2 API and IMDS at ${scenario.ec2Endpoint}:${AWS_SIM_PORT}) with the lab fabric`);
  }
  const procs = new LabProcesses(paths.root);
  const startIfDead = (spec: ProcessSpec): boolean => {
    const rec = procs.get(spec.name);
    if (rec !== undefined && procs.alive(rec)) return false;
    procs.start(spec);
    return true;
  };
  let t = Date.now();
  if (startIfDead({ name: 'aws-sim', netns: names.router, argv: [process.execPath, egwCliPath(), 'lab', 'aws-sim', '--config', paths.awsSimConfig], env: labProcessEnv() })) {
    await waitForLog(procs, 'aws-sim', /lab aws-sim ready/, 30_000);
    timings['emulator'] = seconds(t);
  }

  if (datastore.backend === 'kubernetes') {
    t = Date.now();
    await startControlPlane(ctx, shell, procs, startIfDead, names, scenario, paths, datastore.apiHostPort!, keep);
    timings['kubernetes'] = seconds(t);
  }

  // The datastore: the relays first (etcd), then the records.
  t = Date.now();
  const specs = labProcessSpecs(ctx, names, scenario, paths, datastore);
  for (const s of specs.filter((x) => x.name.startsWith('relay-'))) startIfDead(s);
  let store: Datastore | undefined;
  try {
    store = await openDatastore(datastore.outside);
    if (datastore.backend === 'etcd' && !keep) {
      if (await etcdHasForeignData(datastore.outside)) {
        throw new EgwError('InvalidInput', `${datastore.outside} holds data that is not a lab's`, { hint: 'give the lab a key prefix of its own: --datastore etcd://HOST:PORT/PREFIX' });
      }
      await clearEtcdPrefix(datastore.outside);
      await markEtcdPrefix(datastore.outside);
    }
    writeAtomic(paths.datastorePointer, `${datastore.outside}\n`);
    const early: string[] = [];
    if (datastore.backend === 'kubernetes') {
      // The webhook validates what is applied: the controller serves it, so it starts first. Agents and
      // kubelets start with it: their Nodes register while the controller comes up.
      early.push(...specs.filter((y) => !y.name.startsWith('relay-') && !y.name.startsWith('server-')).filter(startIfDead).map((y) => y.name));
      await waitForWebhook(shell, procs, paths);
      const lines = await applyScenarioWithKubectl(shell, paths, scenario, keep);
      ctx.log(keep ? `scenario objects re-created with kubectl create: ${lines.length} (changes made since are kept)` : `applied the scenario with kubectl apply --server-side: ${lines.length} objects`);
    } else {
      // A running lab keeps what the user changed since; only resources that were deleted come back.
      const applied = await applyScenario(store, scenario, { createOnly: keep });
      const changed = applied.outcomes.filter((o) => o.outcome !== 'unchanged').length;
      ctx.log(keep ? `scenario resources: ${changed} of ${applied.outcomes.length} re-created (changes made since are kept)` : `applied ${applied.outcomes.length} resources from ${scenario.manifests.length} manifests`);
      for (const w of applied.warnings) ctx.log(`  warning: ${w}`);
    }
    timings['apply'] = seconds(t);

    t = Date.now();
    const started = [...early, ...specs.filter((s) => !s.name.startsWith('relay-')).filter(startIfDead).map((s) => s.name)];
    if (started.length > 0) ctx.log(`started ${started.length} processes: ${summarizeNames(started)} (logs in ${join(paths.root, 'logs')})`);

    // Wait, printing progress whenever it changes.
    const timeoutMs = (options.timeoutSeconds ?? scenario.waitSeconds) * 1000;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    let snapshot: LabSnapshot;
    let progress: LabProgress;
    for (;;) {
      snapshot = await readLabSnapshot(store, paths.awsSimState);
      progress = labProgress(snapshot);
      const line = progressLine(progress);
      if (line !== last) {
        ctx.log(`[${seconds(t0).toFixed(1)}s] ${line}`);
        last = line;
      }
      if (progress.done || Date.now() > deadline) break;
      const dead = procs.list().filter((p) => !procs.alive(p));
      if (dead.length > 0) {
        throw new EgwError('CommandFailed', `lab processes exited: ${dead.map((p) => p.name).join(', ')}`, { hint: `see their logs in ${join(paths.root, 'logs')}` });
      }
      await sleep(200);
    }
    timings['converge'] = seconds(t);
    timings['total'] = seconds(t0);
    record.phase = 'up';
    record.timings = timings;
    writeLabRecord(paths, record);
    return { record, scenario, progress, snapshot, timings, ready: progress.done };
  } finally {
    await store?.close();
  }
}

/** A free TCP port on the host's loopback (for the host end of the API server's relay). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts the Kubernetes control plane in the control plane's namespace (built by scripts/build-kube first),
 * the relays that let the host reach it, and — on a new lab — installs egw and issues each program's token.
 */
async function startControlPlane(
  ctx: LabContext,
  shell: Shell,
  procs: LabProcesses,
  startIfDead: (spec: ProcessSpec) => boolean,
  names: LabNames,
  scenario: Scenario,
  paths: LabPaths,
  hostPort: number,
  keep: boolean,
): Promise<void> {
  const tools = kubeTools();
  // Built on the host: the control plane's namespace has no route to the Go module proxy.
  const build = await shell.run([tools.buildKube], { allowFailure: true });
  if (build.exitCode !== 0) throw new EgwError('CommandFailed', `scripts/build-kube failed: ${build.stderr.trim().split('\n').slice(-5).join(' | ')}`, { hint: 'run scripts/build-kube and read its output' });
  const specs = kubeProcessSpecs(names, scenario, paths, hostPort, labProcessEnv(), tools);
  if (startIfDead(specs[0]!)) {
    ctx.log(`starting Kubernetes in ${names.cp}: etcd, kube-apiserver on ${kubeApiUrl(scenario)}, kube-controller-manager, kube-scheduler`);
    await waitForLog(procs, 'kube', /with-kube: Kubernetes \S+ on \S+ .*ready in/, 180_000);
  }
  for (const relay of specs.slice(1)) startIfDead(relay);
  writeHostKubeconfig(paths, hostPort);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await shell.run([tools.kubectl, '--kubeconfig', paths.kubeconfig, 'get', '--raw', '/readyz'], { allowFailure: true });
    if (r.exitCode === 0) break;
    if (Date.now() > deadline) throw new EgwError('Timeout', `the API server is not reachable from the host through ${paths.kubeSocket}: ${r.stderr.trim()}`, { hint: `see ${join(paths.root, 'logs')}` });
    await sleep(200);
  }
  if (keep) return;
  const installed = await installEgw(shell, paths, scenario, LAB_IMAGE);
  await issueProgramKubeconfigs(shell, paths, scenario);
  for (const [node, registration] of kubeletRegistrations(scenario)) writeAtomic(paths.nodeRegistration(node), `${JSON.stringify(registration, null, 2)}\n`);
  ctx.log(`installed egw (${installed} objects of egw render install, without the workloads the lab runs itself); kubeconfig: ${paths.kubeconfig}`);
}

/** The image name the lab renders (its kubelets run `egw …` commands whatever the image). */
const LAB_IMAGE = 'egw:lab';

/** Waits until the controller has registered its validating webhook (everything applied after is validated by it). */
async function waitForWebhook(shell: Shell, procs: LabProcesses, paths: LabPaths): Promise<void> {
  const tools = kubeTools();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await shell.run([tools.kubectl, '--kubeconfig', paths.kubeconfig, 'get', 'validatingwebhookconfiguration', WEBHOOK_CONFIGURATION, '-o', 'name'], { allowFailure: true });
    if (r.exitCode === 0) return;
    const rec = procs.get('controller');
    if (rec === undefined || !procs.alive(rec)) throw new EgwError('CommandFailed', 'the controller exited before it registered its webhook', { hint: `see ${procs.logPath('controller')}` });
    if (Date.now() > deadline) throw new EgwError('Timeout', `the controller did not register the webhook ${WEBHOOK_CONFIGURATION} within 60 s`, { hint: `see ${procs.logPath('controller')}` });
    await sleep(200);
  }
}

function summarizeNames(names: string[]): string {
  const groups = new Map<string, number>();
  for (const n of names) {
    const g = n.replace(/-(node|server)?-?[a-z0-9-]*$/, '').replace(/^(agent|kubelet|server)-.*/, '$1');
    groups.set(g, (groups.get(g) ?? 0) + 1);
  }
  return [...groups].map(([g, c]) => (c > 1 ? `${c} ${g}s` : g)).join(', ');
}

/** `down`: removes the lab. Returns what was removed. */
export async function labDown(ctx: LabContext): Promise<{ namespaces: string[]; processes: number }> {
  const r = await teardownLab(ctx);
  // The pointer lives in the state dir, removed with it; nothing else is left.
  rmSync(new LabPaths(ctx.stateDir).datastorePointer, { force: true });
  return r;
}
