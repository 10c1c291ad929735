/**
 * `egw gateway`: the process in each gateway pod (docs/gateway.md). Programs the pod's network namespace
 * (tunnel end, SNAT to its own IP, inbound filter admitting the tunnel from cluster nodes and the health
 * port) from the datastore's Node records, runs the ICMP/HTTP probes, watches its datastore connection,
 * and serves `GET /readiness`.
 */
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { FelixConfiguration, Node } from '../api/index.js';
import { effectiveFelixSettings, validateDocument } from '../api/index.js';
import type { Datastore } from '../datastore/contract.js';
import { formatKey } from '../datastore/contract.js';
import { Informer } from '../datastore/informer.js';
import type { GatewayPodState } from '../linux/index.js';
import { applyGatewayPod, DEFAULT_VXLAN_PORT, DEFAULT_VXLAN_VNI } from '../linux/index.js';
import type { Clock } from '../platform/clock.js';
import { jittered, SystemClock } from '../platform/clock.js';
import { EgwError, errorMessage } from '../platform/errors.js';
import { guardedHandler, hardenServer } from '../platform/http-edge.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';
import type { Shell } from '../platform/shell.js';
import type { GatewayConfig, ProbeConfig } from './config.js';
import { HttpProber, PingProber, type Prober } from './probes.js';
import { ReadinessState, type ProbeKind, type ReadinessReport } from './readiness.js';

/** Side effects of the gateway, injected. */
export interface GatewayDeps {
  store: Datastore;
  /** Runs commands in the gateway pod's network namespace. */
  shell: Shell;
  clock?: Clock;
  logger?: Logger;
  /** Default: iputils `ping` through `shell`. */
  icmpProber?: Prober;
  /** Default: HTTP(S) GET. */
  httpProber?: Prober;
  /** Jitter source of the retry waits (default Math.random). */
  random?: () => number;
}

/** Timing of the gateway's own loops (defaults fit production; tests shorten them). */
export interface GatewayOptions {
  /** How often the data plane is re-applied even without a change (default 30 s). */
  resyncIntervalMs?: number;
  /** How often the datastore is pinged (default a third of the datastore timeout, within 0.2–10 s). */
  datastorePingMs?: number;
  /** Address the readiness server binds (default all). */
  listenHost?: string;
  /** Port the readiness server binds instead of `config.healthPort` (tests: 0 = any free port). */
  listenPort?: number;
}

/** The node addresses a tunnel may come from: every IPv4 InternalIP and ExternalIP of every Node. */
export function nodeAddresses(nodes: Iterable<Node>): string[] {
  const out = new Set<string>();
  for (const n of nodes) {
    for (const a of n.status?.addresses ?? []) if ((a.type === 'InternalIP' || a.type === 'ExternalIP') && isIP(a.address) === 4) out.add(a.address);
  }
  return [...out].sort();
}

/**
 * One gateway pod's process. `start()` listens on the health port at once (reporting not-ready until
 * everything passes), follows Nodes and FelixConfiguration, and programs the pod once the informer is in
 * sync — never with a partial node set, so a restarted gateway does not cut tunnels it already accepts.
 * `stop({ removeDataplane })` reports not-ready, stops every loop and, when asked (SIGTERM), removes
 * egw.vxlan and the `egw` nft table from the namespace.
 */
export class GatewayProcess {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly readiness: ReadinessState;
  private readonly informer: Informer;
  private readonly nodes = new Map<string, Node>();
  private felix: FelixConfiguration | undefined;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private server: Server | undefined;
  private applyWake: (() => void) | undefined;
  private applyPending = false;
  private lastApplied: string | undefined;
  private lastReady: boolean | undefined;
  private readonly icmp: Prober;
  private readonly http: Prober;

  constructor(
    private readonly deps: GatewayDeps,
    readonly config: GatewayConfig,
    private readonly options: GatewayOptions = {},
  ) {
    this.clock = deps.clock ?? new SystemClock();
    this.log = (deps.logger ?? silentLogger()).child({ podIp: config.podIp });
    this.readiness = new ReadinessState({
      icmp: config.icmp === undefined ? undefined : { timeoutMs: config.icmp.timeoutMs },
      http: config.http === undefined ? undefined : { timeoutMs: config.http.timeoutMs },
      datastoreTimeoutMs: config.datastoreTimeoutMs,
    });
    this.icmp = deps.icmpProber ?? new PingProber(deps.shell);
    this.http = deps.httpProber ?? new HttpProber();
    this.informer = new Informer(
      { store: deps.store, clock: this.clock, logger: this.log },
      { kinds: ['Node', 'FelixConfiguration'] },
      {
        onEvent: (ev) => {
          const key = ev.resource.key;
          if (key.kind === 'Node') {
            if (ev.type === 'deleted') this.nodes.delete(key.name);
            else {
              const { resource } = validateDocument(ev.resource.value, { file: `datastore:${formatKey(key)}`, documentIndex: 1 });
              if (resource?.kind === 'Node') this.nodes.set(key.name, resource);
              else this.nodes.delete(key.name);
            }
          } else if (key.kind === 'FelixConfiguration' && key.name === 'default') {
            const { resource } = ev.type === 'deleted' ? { resource: undefined } : validateDocument(ev.resource.value, { file: `datastore:${formatKey(key)}`, documentIndex: 1 });
            this.felix = resource?.kind === 'FelixConfiguration' ? resource : undefined;
          }
          this.readiness.datastore(true, this.clock.now());
          this.requestApply();
        },
        onSync: () => {
          this.readiness.datastore(true, this.clock.now());
          this.requestApply();
        },
      },
    );
  }

  /** The readiness verdict now. */
  report(): ReadinessReport {
    return this.readiness.evaluate(this.clock.now());
  }

  /** The port the readiness server listens on (0 when disabled). */
  get healthPort(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /** The desired state of the pod's namespace from the current view. */
  desiredState(): GatewayPodState {
    const settings = effectiveFelixSettings(this.felix);
    const fromFelix = this.felix !== undefined;
    return {
      podIp: this.config.podIp,
      vxlan: {
        vni: this.config.vni ?? (fromFelix ? settings.egressIPVXLANVNI : DEFAULT_VXLAN_VNI),
        port: this.config.vxlanPort ?? (fromFelix ? settings.egressIPVXLANPort : DEFAULT_VXLAN_PORT),
        ...(this.config.mtu === undefined ? {} : { mtu: this.config.mtu }),
      },
      nodeIps: nodeAddresses(this.nodes.values()),
      ...(this.config.healthPort === 0 ? {} : { healthPort: this.config.healthPort }),
    };
  }

  /** Starts the readiness server, the informer, the probes and the apply loop. */
  async start(): Promise<void> {
    if (this.config.healthPort !== 0) this.server = await this.listen();
    this.informer.start();
    const signal = this.abort.signal;
    this.loops.push(this.applyLoop(signal), this.datastoreLoop(signal), this.readinessLogLoop(signal));
    if (this.config.icmp !== undefined) this.loops.push(this.probeLoop('icmp', this.config.icmp, this.icmp, signal));
    if (this.config.http !== undefined) this.loops.push(this.probeLoop('http', this.config.http, this.http, signal));
    this.log.info(
      { healthPort: this.healthPort, icmp: this.config.icmp, http: this.config.http, datastoreTimeoutMs: this.config.datastoreTimeoutMs },
      'gateway started',
    );
  }

  /** Not ready at once, then stops; with `removeDataplane` removes egw's objects from the namespace. */
  async stop(options: { removeDataplane?: boolean } = {}): Promise<void> {
    this.readiness.shutdown();
    this.logReadiness();
    this.abort.abort();
    this.applyWake?.();
    await Promise.allSettled(this.loops);
    await this.informer.stop();
    if (options.removeDataplane === true) {
      try {
        const r = await applyGatewayPod(this.deps.shell, undefined);
        this.log.info({ changed: r.changed, failures: r.failures.map((f) => f.message) }, 'gateway data plane removed');
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, 'gateway data plane removal failed');
      }
    }
    await new Promise<void>((resolve) => {
      if (this.server === undefined) resolve();
      else {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      }
    });
    this.log.info({}, 'gateway stopped');
  }

  private listen(): Promise<Server> {
    const handler = guardedHandler(
      (req, res, { path }) => {
        if (req.method === 'GET' && path === '/readiness') {
          const report = this.report();
          res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(report)}\n`);
        } else if (req.method === 'GET' && path === '/liveness') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        }
      },
      (err) => this.log.error({ err: errorMessage(err) }, 'health request failed'),
    );
    const server = hardenServer(createServer(handler));
    return new Promise<Server>((resolve, reject) => {
      server.once('error', (e) => reject(new EgwError('InvalidInput', `cannot listen on the health port ${this.config.healthPort}: ${e.message}`, { cause: e, hint: 'set HEALTH_PORT to a free port' })));
      server.listen(this.options.listenPort ?? this.config.healthPort, this.options.listenHost ?? '0.0.0.0', () => resolve(server));
    });
  }

  private requestApply(): void {
    this.applyPending = true;
    this.applyWake?.();
  }

  /** Sleeps `ms` on the clock; ends early on stop (and, when `wakeable`, on an apply request). */
  private async sleep(ms: number, signal: AbortSignal, wakeable = false): Promise<void> {
    if (signal.aborted) return;
    const woken = wakeable ? new Promise<void>((r) => (this.applyWake = r)) : undefined;
    const local = new AbortController();
    // A fake clock ignores the signal: the race on `aborted` ends the sleep on stop all the same.
    let onAbort = (): void => local.abort();
    const aborted = new Promise<void>((r) => {
      onAbort = () => {
        local.abort();
        r();
      };
    });
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([this.clock.sleep(ms, local.signal).catch(() => undefined), aborted, ...(woken === undefined ? [] : [woken])]);
    } finally {
      local.abort();
      signal.removeEventListener('abort', onAbort);
      if (wakeable) this.applyWake = undefined;
    }
  }

  private async applyLoop(signal: AbortSignal): Promise<void> {
    let backoff = 0;
    while (!signal.aborted) {
      // Retries are jittered: gateways that failed together do not retry in lockstep.
      if (!this.applyPending) await this.sleep(backoff > 0 ? jittered(backoff, this.deps.random) : (this.options.resyncIntervalMs ?? 30_000), signal, true);
      if (signal.aborted) return;
      // Collect a burst of Node events into one apply.
      await this.sleep(20, signal);
      this.applyPending = false;
      if (!this.informer.inSync) continue;
      const desired = this.desiredState();
      try {
        const r = await applyGatewayPod(this.deps.shell, desired);
        const ok = r.failures.length === 0;
        this.readiness.setDataplane(ok, ok ? undefined : `data plane: ${r.failures.map((f) => `${f.command.line}: ${f.message}`).join('; ')}`);
        const text = JSON.stringify(desired);
        if (r.changed || text !== this.lastApplied || !ok) {
          this.log.info({ changed: r.changed, nodeIps: desired.nodeIps.length, vni: desired.vxlan.vni, port: desired.vxlan.port, failures: r.failures.map((f) => f.message) }, 'gateway data plane applied');
        }
        this.lastApplied = text;
        backoff = ok ? 0 : Math.min(10_000, Math.max(200, backoff * 2));
      } catch (e) {
        this.readiness.setDataplane(false, `data plane: ${errorMessage(e)}`);
        this.log.error({ err: errorMessage(e) }, 'gateway data plane apply failed');
        backoff = Math.min(10_000, Math.max(200, backoff * 2));
      }
      this.logReadiness();
    }
  }

  private async datastoreLoop(signal: AbortSignal): Promise<void> {
    const every = this.options.datastorePingMs ?? Math.min(10_000, Math.max(200, Math.floor(this.config.datastoreTimeoutMs / 3)));
    while (!signal.aborted) {
      try {
        await this.deps.store.currentRevision();
        this.readiness.datastore(true, this.clock.now());
      } catch (e) {
        this.readiness.datastore(false, this.clock.now(), errorMessage(e));
      }
      this.logReadiness();
      await this.sleep(every, signal);
    }
  }

  private async probeLoop(kind: ProbeKind, probe: ProbeConfig, prober: Prober, signal: AbortSignal): Promise<void> {
    // One attempt may take at most one interval (and never longer than the failure window).
    const attemptMs = Math.min(probe.intervalMs, probe.timeoutMs);
    while (!signal.aborted) {
      const started = this.clock.now();
      await Promise.all(
        probe.targets.map(async (target) => {
          const o = await prober.probe(target, attemptMs);
          this.readiness.probe(kind, target, o.ok, this.clock.now(), o.detail);
          if (!o.ok) this.log.debug({ kind, target, detail: o.detail }, 'probe failed');
        }),
      );
      this.logReadiness();
      await this.sleep(Math.max(0, started + probe.intervalMs - this.clock.now()), signal);
    }
  }

  /** Readiness also changes with time alone (a window expires): look once a second. */
  private async readinessLogLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.logReadiness();
      await this.sleep(1000, signal);
    }
  }

  private logReadiness(): void {
    const r = this.report();
    if (r.ready === this.lastReady) return;
    this.lastReady = r.ready;
    if (r.ready) this.log.info({ ready: true }, 'readiness changed');
    else this.log.warn({ ready: false, reasons: r.reasons }, 'readiness changed');
  }
}
