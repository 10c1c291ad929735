/**
 * The `egw-ipam` CNI IPAM plugin (CNI spec 1.0.0, and 0.3.x / 0.4.0 for older runtimes): ADD allocates the
 * pod's address through egw IPAM, DEL releases it (idempotent), CHECK verifies the allocation still
 * stands, VERSION reports the versions spoken. docs/cni.md is the contract.
 *
 * {@link runCni} is the whole plugin as a function of its inputs (environment, stdin), so tests drive it
 * in-process; src/cni/main.ts only wires it to the real process.
 */
import { hostname } from 'node:os';
import type { Pod } from '../api/kinds/kubernetes.js';
import type { Datastore } from '../datastore/contract.js';
import { eventRecorderFor } from '../datastore/events.js';
import { openDatastore } from '../datastore/open.js';
import { Ipam } from '../ipam/allocator.js';
import type { Allocation } from '../ipam/allocator.js';
import { EgwError, isEgwError } from '../platform/errors.js';
import type { EventRecorder, EventSource } from '../platform/events.js';

/** `egw-ipam`'s `reportingController` in Events. */
export const CNI_EVENT_SOURCE = 'egw.io/egw-ipam';
import { ExecShell, type Shell } from '../platform/shell.js';
import { EGRESS_GATEWAY_POLICY, EGRESS_SELECTOR } from '../api/annotations.js';
import { effectiveFelixSettings, type FelixConfiguration } from '../api/kinds/felix-configuration.js';
import { validateDocument } from '../api/validate.js';

/** The spec versions this plugin speaks (0.3.x results have the same shape as 0.4.0's). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;

/** The CNI spec's well-known error codes, and egw's own (100 and up). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  /** No pool qualifies for the pod (the message names each pool and why). */
  NoQualifiedPool: 100,
  /** Every qualified pool is full. */
  PoolExhausted: 101,
  /** The pod named by CNI_ARGS is not in the datastore. */
  PodNotFound: 102,
  /** The node (ipam.nodeName or the host name) is not in the datastore. */
  NodeNotFound: 103,
  /** CHECK: the allocation is missing or differs from prevResult. */
  CheckFailed: 104,
  /** The handle of this container already holds an address for another owner. */
  HandleInUse: 105,
  Internal: 199,
} as const;

/** Default gateway handed to the main plugin (Calico's container default gateway). */
export const DEFAULT_GATEWAY = '169.254.1.1';

/** The plugin's settings, from the network configuration's `ipam` object. */
export interface EgwIpamConfig {
  type: 'egw-ipam';
  /** Where the datastore is (as `--datastore`); default EGW_DATASTORE, else egw's default file. */
  datastore?: string;
  /** This node's name in the datastore; default the host name. */
  nodeName?: string;
  /** The `gateway` of each IP in the result (ptp puts it on the host end of the veth); default 169.254.1.1. */
  gateway?: string;
  /**
   * Routes in the result; default none. A main plugin such as ptp installs them before the gateway's own
   * on-link route, so each route's gateway must lie inside the address's prefix (docs/cni.md).
   */
  routes?: { dst: string; gw?: string }[];
  /** Pools (names or CIDRs) when neither the pod nor its namespace has the ipv4pools annotation. */
  ipv4_pools?: string[];
  /** Prefix length of the result's address: `"pool"` (default; ptp needs less than /32) or a number. */
  addressPrefix?: 'pool' | number;
  /** DNS settings passed through in the result. */
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

const IPAM_KEYS = new Set(['type', 'datastore', 'nodeName', 'gateway', 'routes', 'ipv4_pools', 'addressPrefix', 'dns']);

/** Side effects of {@link runCni}, injectable for tests. */
export interface CniDeps {
  openStore?: (spec: string | undefined, env: Record<string, string | undefined>) => Promise<Datastore>;
  hostname?: () => string;
  /**
   * Where the Warning event of a pod that gets no address goes (default: `eventRecorderFor(store)` —
   * an events.k8s.io Event on Kubernetes, nothing elsewhere: stdout is the CNI result).
   */
  eventRecorder?: (store: Datastore, source: EventSource) => EventRecorder;
  /** Runs `ip` in the node's network namespace (the fail-closed placeholder); default: this process's. */
  shell?: Shell;
}

/**
 * The route protocol of egw's egress rules (`EGRESS_ROUTE_PROTOCOL` of src/linux/ownership.ts, which this
 * room may not import; test/cni/placeholder.test.ts keeps the two equal). The agent owns every rule at
 * the egress priority with this protocol, and so replaces the placeholder.
 */
export const EGRESS_RULE_PROTOCOL = 233;

/** What the plugin prints on stdout and its exit code. */
export interface CniOutput {
  stdout: string;
  exitCode: number;
}

class CniError extends Error {
  constructor(readonly code: number, readonly msg: string, readonly details?: string) {
    super(msg);
  }
}

/** Runs one plugin invocation. Never throws: failures are CNI error objects with a non-zero exit. */
export async function runCni(env: Record<string, string | undefined>, stdin: string, deps: CniDeps = {}): Promise<CniOutput> {
  let version = '1.0.0';
  try {
    const command = env['CNI_COMMAND'];
    if (command === 'VERSION') {
      const asked = stdin.trim() === '' ? undefined : (decode(stdin) as { cniVersion?: unknown }).cniVersion;
      version = typeof asked === 'string' && asked !== '' ? asked : '1.0.0';
      return { stdout: `${JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS })}\n`, exitCode: 0 };
    }
    if (command !== 'ADD' && command !== 'DEL' && command !== 'CHECK') {
      throw new CniError(CniCode.InvalidEnvironment, 'invalid CNI_COMMAND', `CNI_COMMAND is ${JSON.stringify(command ?? '')}; expected ADD, DEL, CHECK or VERSION`);
    }
    const conf = decode(stdin) as Record<string, unknown>;
    if (typeof conf['cniVersion'] === 'string') version = conf['cniVersion'];
    checkVersion(conf['cniVersion'], command);
    const required = command === 'DEL' ? ['CNI_CONTAINERID', 'CNI_IFNAME'] : ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'];
    const missing = required.filter((k) => env[k] === undefined || env[k] === '');
    if (missing.length > 0) throw new CniError(CniCode.InvalidEnvironment, 'missing environment variables', `${missing.join(', ')} must be set for ${command}`);
    const ipamConf = checkIpamConfig(conf['ipam']);
    const name = conf['name'];
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
      throw new CniError(CniCode.InvalidConfig, 'invalid network name', `the network configuration's "name" must be a network name (got ${JSON.stringify(name)})`);
    }
    const containerId = env['CNI_CONTAINERID']!;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) {
      throw new CniError(CniCode.InvalidEnvironment, 'invalid CNI_CONTAINERID', `CNI_CONTAINERID ${JSON.stringify(containerId)} is not a container ID`);
    }
    // Calico's convention: <network name>.<container ID>.
    const handle = `${name}.${containerId}`;
    const store = await (deps.openStore ?? ((spec, e) => openDatastore(spec, { env: e })))(ipamConf.datastore, env);
    try {
      const ipam = new Ipam({ store });
      if (command === 'DEL') {
        await ipam.releaseByHandle(handle);
        return { stdout: '', exitCode: 0 };
      }
      if (command === 'CHECK') {
        await check(ipam, handle, conf['prevResult']);
        return { stdout: '', exitCode: 0 };
      }
      const seen: { pod?: Pod } = {};
      try {
        const result = await add(store, ipam, env, ipamConf, handle, containerId, deps, seen);
        return { stdout: `${JSON.stringify(formatResult(result, ipamConf, version))}\n`, exitCode: 0 };
      } catch (err) {
        // The pod gets no address: say so on the pod, where `kubectl describe pod` shows it beside the
        // kubelet's FailedCreatePodSandBox (which only quotes this plugin's message).
        if (seen.pod !== undefined && isEgwError(err, 'PoolExhausted', 'NoQualifiedPool')) await recordNoAddress(store, seen.pod, err, ipamConf, deps);
        throw err;
      }
    } finally {
      await store.close();
    }
  } catch (err) {
    const e = toCniError(err);
    const out: Record<string, unknown> = { cniVersion: version, code: e.code, msg: e.msg };
    if (e.details !== undefined) out['details'] = e.details;
    return { stdout: `${JSON.stringify(out)}\n`, exitCode: 1 };
  }
}

/**
 * The Warning event of a pod IPAM found no address for (`PoolExhausted`: every qualified pool is full;
 * `NoQualifiedPool`: none qualifies). Each plugin run is a process of its own; the recorder's Event names
 * are stable, so the kubelet's retries raise one Event's count. Never fails the plugin.
 */
async function recordNoAddress(store: Datastore, pod: Pod, err: EgwError, conf: EgwIpamConfig, deps: CniDeps): Promise<void> {
  const node = conf.nodeName ?? (deps.hostname ?? hostname)();
  const source = { controller: CNI_EVENT_SOURCE, instance: node };
  const recorder = deps.eventRecorder?.(store, source) ?? eventRecorderFor(store, source);
  const namespace = pod.metadata.namespace ?? 'default';
  recorder.record({ kind: 'Pod', namespace, name: pod.metadata.name, ...(pod.metadata.uid === undefined ? {} : { uid: pod.metadata.uid }) }, 'Warning', err.code, 'AllocateAddress', err.describe());
  await recorder.close();
}

async function add(store: Datastore, ipam: Ipam, env: Record<string, string | undefined>, conf: EgwIpamConfig, handle: string, containerId: string, deps: CniDeps, seen: { pod?: Pod }): Promise<Allocation> {
  const args = parseCniArgs(env['CNI_ARGS'] ?? '');
  const namespace = args.get('K8S_POD_NAMESPACE');
  const podName = args.get('K8S_POD_NAME');
  if (namespace === undefined || namespace === '' || podName === undefined || podName === '') {
    throw new CniError(CniCode.InvalidEnvironment, 'CNI_ARGS lacks the pod', 'CNI_ARGS must hold K8S_POD_NAMESPACE and K8S_POD_NAME (egw-ipam reads the pod for its annotations and resource requests)');
  }
  const node = conf.nodeName ?? (deps.hostname ?? hostname)();
  const stored = await store.get({ kind: 'Pod', namespace, name: podName });
  if (stored === undefined) {
    throw new CniError(CniCode.PodNotFound, 'pod not found', `pod ${namespace}/${podName} (from CNI_ARGS) is not in the datastore ${store.location}; egw-ipam needs it for its annotations and resource requests`);
  }
  const pod = stored.value as unknown as Pod;
  seen.pod = pod;
  const allocation = await ipam.allocate({
    handle,
    node,
    pod,
    owner: { kind: 'Pod', namespace, name: podName, ...(pod.metadata.uid === undefined ? {} : { uid: pod.metadata.uid }), containerID: containerId },
    ...(conf.ipv4_pools === undefined ? {} : { pools: conf.ipv4_pools }),
  });
  try {
    await failClosedPlaceholder(store, deps.shell ?? new ExecShell(), node, namespace, stored.value, allocation.ip);
  } catch (err) {
    // Without the placeholder the pod's first packets could leave with the node's IP: fail the ADD (the
    // runtime retries it) and give the address back.
    await ipam.releaseByHandle(handle).catch(() => undefined);
    throw err;
  }
  return allocation;
}

function annotationsOf(value: unknown): Record<string, unknown> | undefined | 'unreadable' {
  const meta = typeof value === 'object' && value !== null ? (value as { metadata?: unknown }).metadata : undefined;
  const a = typeof meta === 'object' && meta !== null ? (meta as { annotations?: unknown }).annotations : undefined;
  if (a === undefined) return undefined;
  return typeof a === 'object' && a !== null && !Array.isArray(a) ? (a as Record<string, unknown>) : 'unreadable';
}

function hasEgressAnnotations(a: Record<string, unknown> | undefined | 'unreadable'): boolean {
  return a === 'unreadable' || (a !== undefined && (a[EGRESS_SELECTOR] !== undefined || a[EGRESS_GATEWAY_POLICY] !== undefined));
}

/**
 * Closes the window between a pod's start and the agent's rules for it (issue 11): when the egress
 * configuration may select the pod (its namespace, or in per-pod mode the pod itself, carries an egress
 * selector or policy annotation — or annotations that cannot be read), installs
 * `ip rule from <ip>/32 priority <egressIPRoutingRulePriority> protocol 233 unreachable` in the node's
 * namespace before the pod's interface exists. The agent owns that rule: it adds the client's real rule
 * first (the placeholder, older at the same priority, still matches first), then deletes the placeholder;
 * for a pod that is not a client it just deletes it. Nothing is sent with the node's IP meanwhile, also
 * while the agent is down. Idempotent (an existing placeholder is kept).
 */
async function failClosedPlaceholder(store: Datastore, shell: Shell, node: string, namespace: string, podValue: unknown, ip: string): Promise<void> {
  const felix = async (name: string): Promise<FelixConfiguration | undefined> => {
    const s = await store.get({ kind: 'FelixConfiguration', name });
    if (s === undefined) return undefined;
    const r = validateDocument(s.value, { file: `datastore:FelixConfiguration/${name}`, documentIndex: 1 });
    // An invalid configuration is read as the defaults: egress enabled per namespace, priority 100.
    return r.resource?.kind === 'FelixConfiguration' ? r.resource : undefined;
  };
  const settings = effectiveFelixSettings(await felix('default'), await felix(`node.${node}`));
  const mode = settings.egressIPSupport;
  if (mode === 'Disabled') return;
  const ns = await store.get({ kind: 'Namespace', name: namespace });
  const selected = hasEgressAnnotations(annotationsOf(ns?.value)) || (mode === 'EnabledPerNamespaceOrPerPod' && hasEgressAnnotations(annotationsOf(podValue)));
  if (!selected) return;
  const r = await shell.run(['ip', 'rule', 'add', 'from', `${ip}/32`, 'priority', String(settings.egressIPRoutingRulePriority), 'protocol', String(EGRESS_RULE_PROTOCOL), 'unreachable'], { allowFailure: true });
  if (r.exitCode !== 0 && !/File exists/.test(r.stderr)) {
    throw new CniError(CniCode.IoFailure, 'cannot install the fail-closed egress rule', `ip rule add from ${ip}/32 … unreachable failed: ${r.stderr.trim()}`);
  }
}

async function check(ipam: Ipam, handle: string, prevResult: unknown): Promise<void> {
  const allocation = await ipam.getAllocation(handle);
  if (allocation === undefined) throw new CniError(CniCode.CheckFailed, 'no allocation', `egw IPAM holds no address for this container (handle ${handle})`);
  const ips = (prevResult as { ips?: { address?: unknown }[] } | undefined)?.ips;
  if (ips === undefined) return;
  const addresses = ips.map((i) => (typeof i.address === 'string' ? i.address.split('/')[0] : undefined));
  if (!addresses.includes(allocation.ip)) {
    throw new CniError(CniCode.CheckFailed, 'allocation differs', `egw IPAM holds ${allocation.ip} for this container (handle ${handle}), prevResult lists ${addresses.join(', ') || 'no address'}`);
  }
}

/** The abbreviated IPAM result in the format of `version`. */
function formatResult(a: Allocation, conf: EgwIpamConfig, version: string): Record<string, unknown> {
  const prefix = conf.addressPrefix === undefined || conf.addressPrefix === 'pool' ? a.prefixLength : conf.addressPrefix;
  const gateway = conf.gateway ?? DEFAULT_GATEWAY;
  const ip: Record<string, unknown> = { address: `${a.ip}/${prefix}`, gateway };
  const legacy = version !== '1.0.0';
  const result: Record<string, unknown> = {
    cniVersion: version,
    ips: [legacy ? { version: '4', ...ip } : ip],
    routes: conf.routes ?? [],
  };
  if (conf.dns !== undefined) result['dns'] = conf.dns;
  return result;
}

function checkVersion(v: unknown, command: string): void {
  // libcni reads a missing cniVersion as 0.1.0.
  const version = typeof v === 'string' && v !== '' ? v : '0.1.0';
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(CniCode.IncompatibleVersion, 'incompatible CNI version', `cniVersion ${version} is not supported; egw-ipam supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (command === 'CHECK' && version.startsWith('0.3.')) {
    throw new CniError(CniCode.IncompatibleVersion, 'incompatible CNI version', `CHECK needs cniVersion 0.4.0 or later (got ${version})`);
  }
}

function checkIpamConfig(value: unknown): EgwIpamConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CniError(CniCode.InvalidConfig, 'missing ipam', 'the network configuration needs an "ipam" object with "type": "egw-ipam"');
  const o = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (!IPAM_KEYS.has(k)) throw new CniError(CniCode.UnsupportedField, 'unsupported field', `ipam.${k} = ${JSON.stringify(v)} is not an egw-ipam setting (known: ${[...IPAM_KEYS].join(', ')})`);
  }
  const bad = (field: string, what: string): never => {
    throw new CniError(CniCode.InvalidConfig, 'invalid ipam configuration', `ipam.${field} must be ${what} (got ${JSON.stringify(o[field])})`);
  };
  if (o['type'] !== 'egw-ipam') bad('type', '"egw-ipam"');
  for (const f of ['datastore', 'nodeName', 'gateway'] as const) if (o[f] !== undefined && (typeof o[f] !== 'string' || o[f] === '')) bad(f, 'a non-empty string');
  if (o['routes'] !== undefined && !(Array.isArray(o['routes']) && o['routes'].every((r) => typeof r === 'object' && r !== null && typeof (r as { dst?: unknown }).dst === 'string'))) bad('routes', 'a list of {"dst": CIDR, "gw"?: IP}');
  if (o['ipv4_pools'] !== undefined && !(Array.isArray(o['ipv4_pools']) && o['ipv4_pools'].every((p) => typeof p === 'string'))) bad('ipv4_pools', 'a list of pool names or CIDRs');
  const prefix = o['addressPrefix'];
  if (prefix !== undefined && prefix !== 'pool' && !(typeof prefix === 'number' && Number.isInteger(prefix) && prefix >= 0 && prefix <= 32)) bad('addressPrefix', '"pool" or a prefix length from 0 to 32');
  if (o['dns'] !== undefined && (typeof o['dns'] !== 'object' || o['dns'] === null)) bad('dns', 'an object');
  return o as unknown as EgwIpamConfig;
}

/** `K=V;K=V` → map (the CNI_ARGS convention; `IgnoreUnknown` and friends pass through). */
export function parseCniArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return out;
}

function decode(text: string): unknown {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value;
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, 'failed to decode the network configuration', `stdin is not a JSON object: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof EgwError) {
    const details = err.describe();
    switch (err.code) {
      case 'NoQualifiedPool':
        return new CniError(CniCode.NoQualifiedPool, 'no qualified IP pool', details);
      case 'PoolExhausted':
        return new CniError(CniCode.PoolExhausted, 'IP pools exhausted', details);
      case 'NotFound':
        return new CniError(CniCode.NodeNotFound, 'node not found', details);
      case 'AlreadyExists':
        return new CniError(CniCode.HandleInUse, 'handle in use', details);
      case 'InvalidInput':
        return new CniError(CniCode.InvalidConfig, 'invalid input', details);
      default:
        if (err.retry !== 'terminal' || isEgwError(err, 'DatastoreUnavailable', 'Conflict', 'Timeout')) return new CniError(CniCode.TryAgainLater, 'datastore unavailable, try again later', details);
        return new CniError(CniCode.Internal, 'internal error', details);
    }
  }
  return new CniError(CniCode.Internal, 'internal error', err instanceof Error ? err.message : String(err));
}
