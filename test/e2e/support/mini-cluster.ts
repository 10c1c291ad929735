/**
 * The mini cluster: a small egw world in network namespaces with the real processes, for the data-plane
 * tests and benchmarks (and, as a pattern, for the lab).
 *
 *   rt (the "VPC" router) ── nK (node K, 10.10.K.10/24, gateway 10.10.K.1) ── pods (Calico-style /32 veths)
 *                         └─ servers (echo "who called"), each alone on its /24
 *
 * - The router knows the nodes, the servers and each gateway pod IP (/32 via its node, as the AWS fabric
 *   routes an ENI's address), never the client pod network: a client's packet reaches a server only
 *   with its node's IP (natOutgoing) or a gateway's IP (through the tunnel).
 * - The datastore is a SQLite file in the topology's temp dir, holding Node, Namespace, Pod,
 *   FelixConfiguration, IPPool and policy records; the harness plays kubelet (Pod status and the
 *   gateway's `Ready` condition from its `/readiness`).
 * - One real `egw agent` per node and one real `egw gateway` per gateway pod, the compiled CLI started
 *   with `ip netns exec` — exactly what the lab runs.
 * - Teardown stops every process, deletes every namespace and the temp dir (the database with it), also
 *   after a failure; a prefix unique per test file and run (`runPrefix`) keeps parallel test files and
 *   parallel copies of the suite apart, and a crashed run's leftovers are swept at a later create once its
 *   process is gone.
 */
import { randomUUID } from 'node:crypto';
import type { AnyResource, EgressGatewayPolicy, FelixConfigurationSpec, IPPool, Namespace, Node, Pod } from '../../../src/api/index.js';
import { formatIssue, keyOf, validateDocument } from '../../../src/api/index.js';
import { nodeStatusKey, parseNodeStatus, type NodeStatus } from '../../../src/agent/records.js';
import type { ClientStatus } from '../../../src/calc/index.js';
import type { Datastore, ResourceKey } from '../../../src/datastore/contract.js';
import { openDatastore } from '../../../src/datastore/open.js';
import type { EchoOptions, EchoResult, EchoServer, FlowSet } from '../../../src/linux/topology/echo.js';
import { echoFrom, openFlows, startEchoServer } from '../../../src/linux/topology/echo.js';
import type { RunningProcess } from '../../../src/linux/topology/process.js';
import { TopologyBuilder } from '../../../src/linux/topology/spec.js';
import type { Topology } from '../../../src/linux/topology/topology.js';
import { createTopology, sweepTopology } from '../../../src/linux/topology/topology.js';
import { ExecShell } from '../../../src/platform/shell.js';
import { EGW_CLI } from '../../support/dist.js';
import { sweepDeadRuns } from './run-prefix.js';
import { CONN_PROBER_SOURCE, HTTP_GET_SOURCE } from './scripts.js';

/** A pod of the mini cluster. Client pods just exist (tests run commands in them); gateways run `egw gateway`. */
export interface MiniPod {
  /** Pod name; also the short name of its network namespace, so unique across Kubernetes namespaces. */
  name: string;
  namespace: string;
  node: string;
  ip: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Runs `egw gateway` and exposes the container port `health` 8080. */
  gateway?: boolean;
  /** Extra environment of its `egw gateway` (probes…). */
  env?: Record<string, string>;
  /** Write its Pod record at create (default true); false: the test adds it later with `addPod`. */
  record?: boolean;
  /**
   * A gateway's record names the EgressGateway {@link MINI_GATEWAY_OWNER} of its namespace as controller,
   * as the operator writes them (only such pods act as gateways; docs/security.md, 7). false: no owner.
   */
  owned?: boolean;
}

/** The EgressGateway the mini cluster stores in every namespace with gateway pods, and names as their owner. */
export const MINI_GATEWAY_OWNER = 'mini-gateways';

/** An external server: an echo server alone on `ip`/24 behind the router. */
export interface MiniServer {
  name: string;
  ip: string;
}

/** What to build. */
export interface MiniClusterSpec {
  /**
   * 2–8 characters `[a-z][a-z0-9]*`, unique per test file and run: tests pass `runPrefix(tag)` (see
   * run-prefix.ts), so two copies of the suite never share a namespace.
   */
  prefix: string;
  /** Node names, in order: node K (1-based) gets 10.10.K.10. At most 200. */
  nodes: string[];
  pods: MiniPod[];
  /** Default: internet 203.0.113.10, onprem 198.51.100.10, local 192.0.2.10. */
  servers?: MiniServer[];
  /** FelixConfiguration `default` spec (merged over EnabledPerNamespaceOrPerPod, 200 ms × 2 polls). */
  felix?: FelixConfigurationSpec;
  /** Extra resources: Namespaces, EgressGatewayPolicies, more IPPools. Namespaces of pods are added when missing. */
  resources?: AnyResource[];
  /** Extra arguments of every `egw agent`. */
  agentArgs?: string[];
  /** Start the agents and gateways at create (default true). */
  start?: boolean;
  /** The compiled `egw` CLI (default: the test build's; benchmarks pass their own). */
  cli?: string;
  /**
   * Niceness of the agents and gateways (default -5): node daemons get the CPU before workloads, as
   * on a real node (system-node-critical, reserved CPU), so that other test files loading the machine do
   * not turn into false gateway failures. 0 runs them like everything else.
   */
  daemonNice?: number;
}

/** The pools every mini cluster has: pods (natOutgoing) and egress gateways. */
export const POD_POOL = '10.20.0.0/16';
export const EGRESS_POOL = '100.64.0.0/24';
export const ECHO_PORT = 8089;
export const HEALTH_PORT = 8080;

const DEFAULT_SERVERS: MiniServer[] = [
  { name: 'internet', ip: '203.0.113.10' },
  { name: 'onprem', ip: '198.51.100.10' },
  { name: 'local', ip: '192.0.2.10' },
];

/** Polls `fn` until it returns something other than undefined/false; throws with `what` on timeout. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${last instanceof Error ? last.message : JSON.stringify(last)}`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The running mini cluster. */
export class MiniCluster {
  readonly agents = new Map<string, RunningProcess>();
  readonly gateways = new Map<string, RunningProcess>();
  readonly echo = new Map<string, EchoServer>();
  /** stderr (pino logs) of processes that exited, by name, for post-mortems. */
  readonly pastLogs: string[] = [];
  private readonly pods = new Map<string, MiniPod>();
  private readonly uids = new Map<string, string>();
  private readonly scripts = new Map<string, string>();
  /** The `Ready` condition last written per pod (gateways start not ready, as a kubelet reports them). */
  private readonly readyState = new Map<string, boolean>();

  private constructor(
    readonly spec: MiniClusterSpec,
    readonly topo: Topology,
    readonly store: Datastore,
    readonly dbPath: string,
    readonly servers: MiniServer[],
  ) {
    for (const p of spec.pods) this.pods.set(p.name, p);
  }

  /** Builds everything (sweeping leftovers of the prefix first); on failure removes what it made. */
  static async create(spec: MiniClusterSpec): Promise<MiniCluster> {
    const shell = new ExecShell();
    // Only this run's leftovers and those of dead runs of the same file: never another live run's.
    await sweepTopology(spec.prefix, { shell });
    await sweepDeadRuns(spec.prefix, (dead) => sweepTopology(dead, { shell }));
    const servers = spec.servers ?? DEFAULT_SERVERS;
    const b = new TopologyBuilder(spec.prefix).namespace('rt', { forwarding: true });
    servers.forEach((s, i) => {
      const gw = s.ip.replace(/\.\d+$/, '.1');
      b.namespace(s.name)
        .veth({ ns: 'rt', ifname: `s${i}`, addresses: [`${gw}/24`] }, { ns: s.name, ifname: 'eth0', addresses: [`${s.ip}/24`] })
        .route({ ns: s.name, dst: 'default', via: gw });
    });
    spec.nodes.forEach((n, i) => {
      const k = i + 1;
      b.namespace(n, { forwarding: true })
        .veth({ ns: 'rt', ifname: `n${k}`, addresses: [`10.10.${k}.1/24`] }, { ns: n, ifname: 'eth0', addresses: [`10.10.${k}.10/24`] })
        .route({ ns: n, dst: 'default', via: `10.10.${k}.1` });
    });
    const nodeIp = (n: string): string => `10.10.${spec.nodes.indexOf(n) + 1}.10`;
    spec.pods.forEach((p, i) => {
      if (!spec.nodes.includes(p.node)) throw new Error(`pod ${p.name}: unknown node ${p.node}`);
      b.pod({ node: p.node, name: p.name, ip: p.ip, gatewayIp: nodeIp(p.node), hostIfname: `w${i}`, forwarding: p.gateway === true });
      if (p.gateway === true) b.route({ ns: 'rt', dst: `${p.ip}/32`, via: nodeIp(p.node) });
    });
    const topo = await createTopology(b.build(), { shell });
    let store: Datastore | undefined;
    try {
      const dbPath = `${topo.tmpDir}/egw.db`;
      store = await openDatastore(dbPath);
      const cluster = new MiniCluster(spec, topo, store, dbPath, servers);
      await cluster.seed();
      await Promise.all(servers.map(async (s) => cluster.echo.set(s.name, await startEchoServer(topo, s.name, { port: ECHO_PORT }))));
      if (spec.start !== false) {
        await cluster.startGateways();
        await cluster.startAgents();
      }
      return cluster;
    } catch (e) {
      await store?.close().catch(() => undefined);
      await topo.teardown();
      throw e;
    }
  }

  // ---------------------------------------------------------------- addresses

  /** A node's IP. */
  nodeIp(node: string): string {
    const i = this.spec.nodes.indexOf(node);
    if (i < 0) throw new Error(`unknown node ${node}`);
    return `10.10.${i + 1}.10`;
  }

  /** A pod of the spec. */
  pod(name: string): MiniPod {
    const p = this.pods.get(name);
    if (p === undefined) throw new Error(`unknown pod ${name}`);
    return p;
  }

  /** A server's IP by name. */
  server(name: string): string {
    const s = this.servers.find((x) => x.name === name);
    if (s === undefined) throw new Error(`unknown server ${name}`);
    return s.ip;
  }

  /** Gateway pods of the spec. */
  gatewayPods(): MiniPod[] {
    return this.spec.pods.filter((p) => p.gateway === true);
  }

  // ---------------------------------------------------------------- the datastore

  /** Validates a resource as `egw apply` would and stores it (create or replace). */
  async apply(resource: AnyResource): Promise<number> {
    const { resource: valid, issues } = validateDocument(resource, { file: 'mini-cluster', documentIndex: 1 });
    if (valid === undefined) throw new Error(`invalid ${resource.kind} ${resource.metadata.name}: ${issues.map(formatIssue).join('; ')}`);
    const r = await this.store.commit([{ op: 'put', key: keyOf(valid), value: JSON.parse(JSON.stringify(valid)) as never }]);
    return r.revision;
  }

  /** Deletes a stored object (absent is fine). */
  async remove(key: ResourceKey): Promise<void> {
    await this.store.commit([{ op: 'delete', key }]);
  }

  /** The Pod record of a pod of the spec, as the kubelet would report it. */
  podRecord(name: string, options: { ready?: boolean; deleting?: boolean } = {}): Pod {
    const p = this.pod(name);
    let uid = this.uids.get(name);
    if (uid === undefined) this.uids.set(name, (uid = randomUUID()));
    const ready = options.ready ?? this.readyState.get(name) ?? p.gateway !== true;
    this.readyState.set(name, ready);
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: p.name,
        namespace: p.namespace,
        uid,
        ...(p.labels === undefined ? {} : { labels: p.labels }),
        ...(p.annotations === undefined ? {} : { annotations: p.annotations }),
        ...(options.deleting === true ? { deletionTimestamp: new Date().toISOString() } : {}),
        ...(p.gateway === true && p.owned !== false
          ? { ownerReferences: [{ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: MINI_GATEWAY_OWNER, controller: true, blockOwnerDeletion: true }] }
          : {}),
      },
      spec: {
        nodeName: p.node,
        containers: [
          p.gateway === true
            ? { name: 'egress-gateway', ports: [{ name: 'health', containerPort: HEALTH_PORT, protocol: 'TCP' }] }
            : { name: 'main' },
        ],
      },
      status: {
        phase: 'Running',
        podIP: p.ip,
        podIPs: [{ ip: p.ip }],
        hostIP: this.nodeIp(p.node),
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      } as NonNullable<Pod['status']>,
    };
  }

  /** Writes (or rewrites) a pod's record; `Ready` as given, else as last written (gateways start not ready). */
  async addPod(name: string, options: { ready?: boolean; annotations?: Record<string, string> } = {}): Promise<number> {
    const p = this.pod(name);
    if (options.annotations !== undefined) this.pods.set(name, { ...p, annotations: options.annotations });
    return this.apply(this.podRecord(name, options.ready === undefined ? {} : { ready: options.ready }));
  }

  /** Sets a gateway pod's `Ready` condition in the datastore (the kubelet's view). */
  async setReady(name: string, ready: boolean): Promise<number> {
    return this.apply(this.podRecord(name, { ready }));
  }

  /** Removes a pod's record (the pod is deleted). */
  async deletePod(name: string): Promise<void> {
    const p = this.pod(name);
    await this.remove({ kind: 'Pod', namespace: p.namespace, name: p.name });
  }

  /** Writes FelixConfiguration `default` (merged over the harness defaults). */
  async setFelix(spec: FelixConfigurationSpec): Promise<number> {
    return this.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'FelixConfiguration',
      metadata: { name: 'default' },
      spec: { egressIPSupport: 'EnabledPerNamespaceOrPerPod', egressGatewayPollInterval: '200ms', egressGatewayPollFailureCount: 2, ...spec },
    });
  }

  private async seed(): Promise<void> {
    const nodes: Node[] = this.spec.nodes.map((n) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n, labels: { 'kubernetes.io/hostname': n } },
      status: { addresses: [{ type: 'InternalIP', address: this.nodeIp(n) }, { type: 'Hostname', address: n }] },
    }));
    const pools: IPPool[] = [
      { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pods' }, spec: { cidr: POD_POOL, natOutgoing: true } },
      { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'egress' }, spec: { cidr: EGRESS_POOL, natOutgoing: false, blockSize: 32 } },
    ];
    const given = this.spec.resources ?? [];
    const namespaces = new Set(given.filter((r) => r.kind === 'Namespace').map((r) => r.metadata.name));
    const extraNs: Namespace[] = [...new Set(this.spec.pods.map((p) => p.namespace))]
      .filter((ns) => !namespaces.has(ns))
      .map((ns) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }));
    // The owner of the gateway pods (the operator is not running: the records are written as it would).
    const owners: AnyResource[] = [...new Set(this.spec.pods.filter((p) => p.gateway === true).map((p) => p.namespace))].map((ns) => ({
      apiVersion: 'operator.tigera.io/v1',
      kind: 'EgressGateway',
      metadata: { name: MINI_GATEWAY_OWNER, namespace: ns },
      spec: { ipPools: [{ name: 'egress' }] },
    }));
    await this.setFelix(this.spec.felix ?? {});
    for (const r of [...pools, ...nodes, ...extraNs, ...owners, ...given]) await this.apply(r);
    for (const p of this.spec.pods) if (p.record !== false) await this.apply(this.podRecord(p.name));
  }

  // ---------------------------------------------------------------- processes

  private niced(): string[] {
    const n = this.spec.daemonNice ?? -5;
    return n === 0 ? [] : ['nice', '-n', String(n)];
  }

  /** Starts `egw agent` on a node (inside its namespace). */
  startAgent(node: string, extraArgs: string[] = []): RunningProcess {
    if (this.agents.has(node)) throw new Error(`agent on ${node} already running`);
    const p = this.topo.spawn(node, [...this.niced(), process.execPath, this.spec.cli ?? EGW_CLI, 'agent', '--node', node, '--datastore', this.dbPath, ...(this.spec.agentArgs ?? []), ...extraArgs], {
      env: { EGW_LOG_LEVEL: 'info' },
    });
    this.agents.set(node, p);
    return p;
  }

  /** Starts every node's agent and waits until each has written a status record with a tunnel. */
  async startAgents(): Promise<void> {
    for (const n of this.spec.nodes) if (!this.agents.has(n)) this.startAgent(n);
    await Promise.all(this.spec.nodes.map((n) => waitFor(`agent status of ${n}`, async () => (await this.nodeStatus(n))?.agent.pid === this.agents.get(n)?.pid, 30_000)));
  }

  /** SIGTERM to a node's agent; resolves with its exit code (-1: it needed SIGKILL) once it is gone. */
  async stopAgent(node: string): Promise<number | undefined> {
    const p = this.agents.get(node);
    if (p === undefined) return undefined;
    await p.stop(5000);
    this.pastLogs.push(`--- agent ${node}\n${p.stderr()}`);
    this.agents.delete(node);
    return p.exited;
  }

  /** SIGKILL to a node's agent (a crash). */
  async killAgent(node: string): Promise<void> {
    const p = this.agents.get(node);
    if (p === undefined) return;
    await this.topo.exec(node, ['kill', '-KILL', String(p.pid)], { allowFailure: true });
    await p.exited;
    this.pastLogs.push(`--- agent ${node} (killed)\n${p.stderr()}`);
    this.agents.delete(node);
  }

  /** Starts `egw gateway` in a gateway pod's namespace with the environment the operator renders. */
  startGateway(name: string): RunningProcess {
    const p = this.pod(name);
    if (this.gateways.has(name)) throw new Error(`gateway ${name} already running`);
    const proc = this.topo.spawn(p.name, [...this.niced(), process.execPath, this.spec.cli ?? EGW_CLI, 'gateway', '--datastore', this.dbPath], {
      env: {
        EGRESS_POD_IP: p.ip,
        EGRESS_POD_IPS: p.ip,
        HEALTH_PORT: String(HEALTH_PORT),
        EGRESS_VXLAN_VNI: '4097',
        LOG_SEVERITY: 'Info',
        HEALTH_TIMEOUT_DATASTORE: '90s',
        ...p.env,
      },
    });
    this.gateways.set(name, proc);
    return proc;
  }

  /**
   * Starts every gateway process, waits until each answers `/readiness` 200 from its node (the kubelet's
   * probe), and then marks it Ready in the datastore.
   */
  async startGateways(names: string[] = this.gatewayPods().map((p) => p.name)): Promise<void> {
    for (const n of names) if (!this.gateways.has(n)) this.startGateway(n);
    await Promise.all(names.map(async (n) => {
      await waitFor(`readiness of gateway ${n}`, async () => (await this.readiness(n)).status === 200, 30_000, 100);
      if (this.pod(n).record !== false) await this.setReady(n, true);
    }));
  }

  /** SIGTERM to a gateway process: it removes its data plane and exits; resolves with its exit code. */
  async stopGateway(name: string): Promise<number | undefined> {
    const p = this.gateways.get(name);
    if (p === undefined) return undefined;
    await p.stop(5000);
    this.pastLogs.push(`--- gateway ${name}\n${p.stderr()}`);
    this.gateways.delete(name);
    return p.exited;
  }

  /**
   * A gateway pod dies and vanishes from the network with nobody telling the datastore: its process is
   * killed and its interface goes down, so packets to its IP are dropped on its node (polls time out).
   */
  async killGateway(name: string): Promise<void> {
    const p = this.gateways.get(name);
    await this.topo.exec(name, ['ip', 'link', 'set', 'eth0', 'down']);
    if (p !== undefined) {
      await this.topo.exec(name, ['kill', '-KILL', String(p.pid)], { allowFailure: true });
      await p.exited;
      this.pastLogs.push(`--- gateway ${name} (killed)\n${p.stderr()}`);
      this.gateways.delete(name);
    }
  }

  /** Brings a killed gateway back: interface up, process restarted, ready again. */
  async reviveGateway(name: string): Promise<void> {
    const p = this.pod(name);
    await this.topo.exec(name, ['ip', 'link', 'set', 'eth0', 'up']);
    await this.topo.exec(name, ['ip', 'route', 'replace', 'default', 'via', this.nodeIp(p.node), 'dev', 'eth0', 'onlink']);
    this.startGateway(name);
    await waitFor(`readiness of gateway ${name}`, async () => (await this.readiness(name)).status === 200, 30_000, 100);
  }

  /** `GET /readiness` of a gateway, asked from its node. */
  readiness(name: string, timeoutMs = 1000): Promise<{ status?: number; body?: string; error?: string }> {
    const p = this.pod(name);
    return this.httpGet(p.node, `http://${p.ip}:${HEALTH_PORT}/readiness`, timeoutMs);
  }

  /** An HTTP GET from inside a namespace (a node's metrics, a gateway's readiness). */
  async httpGet(ns: string, url: string, timeoutMs = 1000): Promise<{ status?: number; body?: string; error?: string }> {
    const r = await this.topo.exec(ns, [process.execPath, this.script('http-get.mjs', HTTP_GET_SOURCE), url, String(timeoutMs)], { timeoutMs: timeoutMs + 10_000 });
    return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { status?: number; body?: string; error?: string };
  }

  /** Writes a helper program once (rewriting it while another process loads it would race); its path. */
  script(name: string, source: string): string {
    let path = this.scripts.get(name);
    if (path === undefined) this.scripts.set(name, (path = this.topo.writeFile(name, source)));
    return path;
  }

  // ---------------------------------------------------------------- status

  /** {@link waitFor}, for convenience. */
  waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
    return waitFor(what, fn, timeoutMs);
  }

  /** A node's status record, or undefined before its agent wrote one. */
  async nodeStatus(node: string): Promise<NodeStatus | undefined> {
    return parseNodeStatus(await this.store.get(nodeStatusKey(node)));
  }

  /** A client pod's status as its node's agent reports it. */
  async clientStatus(name: string): Promise<ClientStatus | undefined> {
    const p = this.pod(name);
    return (await this.nodeStatus(p.node))?.clients.find((c) => c.pod === `${p.namespace}/${p.name}`);
  }

  /** Waits until a client's reported status satisfies `ok` (its node's kernel has it then). */
  async waitForClient(name: string, what: string, ok: (c: ClientStatus | undefined) => boolean, timeoutMs = 20_000): Promise<ClientStatus | undefined> {
    let last: ClientStatus | undefined;
    try {
      return await waitFor(`${name}: ${what}`, async () => {
        last = await this.clientStatus(name);
        return ok(last) ? { c: last } : undefined;
      }, timeoutMs).then((r) => r.c);
    } catch (e) {
      throw new Error(`${(e as Error).message}; last status: ${JSON.stringify(last)}`);
    }
  }

  /** The gateway IPs a client's rule for `destination` uses, sorted ([] when none or fail-closed). */
  static gatewaysOf(c: ClientStatus | undefined, destination = '0.0.0.0/0'): string[] {
    const r = c?.rules.find((x) => x.destination === destination);
    return r === undefined || r.action !== 'gateways' ? [] : r.gateways.map((g) => g.ip).sort();
  }

  // ---------------------------------------------------------------- traffic

  /**
   * Connections from a pod to a server's echo port; per connection the source the server saw. Not
   * concurrently with another `connect`/`flows` (the topology helper rewrites its client program).
   */
  connect(pod: string, server: string, options: EchoOptions = {}): Promise<EchoResult[]> {
    return echoFrom(this.topo, pod, this.server(server), ECHO_PORT, options);
  }

  /** Long-lived connections from a pod to a server. */
  flows(pod: string, server: string, count: number, options: { timeoutMs?: number; concurrency?: number } = {}): Promise<FlowSet> {
    return openFlows(this.topo, pod, this.server(server), ECHO_PORT, count, options);
  }

  /**
   * A new connection from `pod` to `server` every `intervalMs` until `stop()`, which returns each
   * connection's start time and outcome. `succeeded(since)` counts the connections started after
   * `since` (ms since the epoch) that have succeeded so far: tests wait on it instead of sleeping.
   */
  async prober(pod: string, server: string, intervalMs: number, timeoutMs: number): Promise<{ succeeded(since: number): Promise<number>; stop(): Promise<{ t: number; ms: number; seen?: string; error?: string }[]> }> {
    const p = this.topo.spawn(pod, [process.execPath, this.script('conn-prober.mjs', CONN_PROBER_SOURCE), this.server(server), String(ECHO_PORT), String(intervalMs), String(timeoutMs)]);
    await p.waitForLine(/^started$/, 15_000);
    let asking = Promise.resolve(0);
    return {
      succeeded: (since: number) => {
        // One question at a time: each answer is the first "count" line after the question.
        asking = asking.catch(() => 0).then(async () => {
          const offset = p.stdout().length;
          p.write(`count ${since}\n`);
          return Number((await p.waitForLine(/^count \d+$/, 15_000, offset)).slice(6));
        });
        return asking;
      },
      stop: async () => {
        const offset = p.stdout().length;
        p.write('quit\n');
        const line = await p.waitForLine(/^\[/, timeoutMs + 15_000, offset);
        await p.exited;
        return JSON.parse(line) as { t: number; ms: number; seen?: string; error?: string }[];
      },
    };
  }

  /**
   * Counts TCP packets from `saddr` arriving in a server's namespace (to prove nothing leaked). Installing
   * it again starts a fresh counter.
   */
  async installPacketCounter(server: string, saddr: string): Promise<() => Promise<number>> {
    await this.topo.exec(server, ['nft', 'delete', 'table', 'ip', 'egwtest'], { allowFailure: true });
    await this.topo.exec(server, ['nft', '-f', '-'], {
      input: `table ip egwtest {\n chain pre { type filter hook prerouting priority -300; policy accept;\n  ip saddr ${saddr} meta l4proto tcp counter\n }\n}\n`,
    });
    return async () => {
      const r = await this.topo.exec(server, ['nft', '-j', 'list', 'table', 'ip', 'egwtest']);
      const doc = JSON.parse(r.stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
      for (const item of doc.nftables) for (const e of item.rule?.expr ?? []) if (e.counter !== undefined) return e.counter.packets;
      return -1;
    };
  }

  /** Every process's stderr so far (pino logs), for a failing test's message. */
  logs(): string {
    const live = [...this.agents].map(([n, p]) => `--- agent ${n}\n${p.stderr()}`).concat([...this.gateways].map(([n, p]) => `--- gateway ${n}\n${p.stderr()}`));
    return [...this.pastLogs, ...live].join('\n');
  }

  /** Stops every process, closes the store, deletes every namespace and the temp dir. Idempotent. */
  async teardown(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((n) => this.stopAgent(n).catch(() => undefined)));
    await Promise.all([...this.gateways.keys()].map((n) => this.stopGateway(n).catch(() => undefined)));
    await this.store.close().catch(() => undefined);
    await this.topo.teardown();
  }
}

/** A policy (EgressGatewayPolicy) with the given rules. */
export function policy(name: string, rules: NonNullable<EgressGatewayPolicy['spec']['rules']>): EgressGatewayPolicy {
  return { apiVersion: 'projectcalico.org/v3', kind: 'EgressGatewayPolicy', metadata: { name }, spec: { rules } };
}

/** A Namespace with labels and annotations. */
export function namespace(name: string, annotations: Record<string, string> = {}, labels: Record<string, string> = {}): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels, annotations } };
}
