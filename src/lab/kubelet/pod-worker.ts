/**
 * One pod on one node, from its record to its removal: the kubelet's per-pod worker. Each pass is
 * level-triggered — it compares the Pod record with what exists locally (the state file, the network
 * namespace, the processes) and moves one step closer:
 *
 *   sandbox: state file → network namespace → CNI ADD (ptp + egw-ipam) → lo up, default route
 *   init containers, in order, each to a zero exit (retried with back-off)
 *   containers: `egw …` commands run in the pod's namespace; others get no process
 *   readiness probes → the Ready condition; crashed processes restarted with back-off
 *   status written with compare-and-swap when it changes
 *   deletion: Ready=False, SIGTERM, the grace period, SIGKILL, CNI DEL, namespace deleted, state file
 *   removed, the Pod record deleted (CAS; gone is fine)
 *
 * Passes of one pod never overlap; different pods proceed in parallel.
 */
import type { JsonObject, StoredResource } from '../../datastore/contract.js';
import { errorMessage, isEgwError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import type { KubeletContext } from './context.js';
import { containerArgv, containerEnv, type Built } from './env.js';
import { containerIdOf, podNetnsName, podSandboxId } from './naming.js';
import { mergePodStatus, type ContainerState, type ContainerView, type PodView } from './pod-status.js';
import { parseRunSpec, type RunContainer, type RunSpec } from './pod-spec.js';
import { parseProbe, probeDue, recordProbe, startProbe, type ProbeSpec, type ProbeState } from './probe.js';
import type { ProcHandle } from './processes.js';
import { backoffResets, restartDelayMs, shouldRestart } from './restart.js';
import type { ContainerRecord, PodRecord } from './state.js';
import { NETNS_DIR } from './netns.js';

interface ProbeRun {
  spec: ProbeSpec;
  state: ProbeState;
  /** The container start this state belongs to. */
  startedAt: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The worker of one pod (see the module comment). */
export class PodWorker {
  private rec: PodRecord | undefined;
  private readonly probes = new Map<string, ProbeRun>();
  private readonly probeErrors = new Map<string, string>();
  private readonly configErrors = new Map<string, string>();
  private sandboxError: string | undefined;
  private sandboxFailures = 0;
  private sandboxNotBefore = 0;
  private initFailed: string | undefined;
  /** The pod's service-account environment (`KUBECONFIG`), once the credentials port gave it. */
  private credentialEnv: Record<string, string> = {};
  private credentialError: string | undefined;
  private termSent = false;
  private finished = false;
  private notified = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(
    private readonly ctx: KubeletContext,
    readonly uid: string,
    adopted?: PodRecord,
  ) {
    this.rec = adopted;
    this.log = ctx.log.child({ podUid: uid });
  }

  /** True once the pod is gone from this node (the worker has nothing left to do). */
  get done(): boolean {
    return this.finished;
  }

  /** The local record (for inspection). */
  get record(): PodRecord | undefined {
    return this.rec;
  }

  /** Starts the worker's loop. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Asks for a pass soon (the record or a process changed). */
  notify(): void {
    this.notified = true;
    this.wake?.();
  }

  /** Waits for the pass in progress to end; the loop stops when the kubelet stops. */
  async stopped(): Promise<void> {
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.ctx.stopping.aborted && !this.finished) {
      this.notified = false;
      let nextMs: number;
      try {
        nextMs = await this.sync();
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'pod sync failed; retrying');
        nextMs = 1_000;
      }
      if (this.finished || this.ctx.stopping.aborted) break;
      if (this.notified) continue;
      await new Promise<void>((resolve) => {
        let settled = false;
        const done = (): void => {
          if (settled) return;
          settled = true;
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        this.ctx.clock.sleep(Math.max(10, nextMs)).then(done, done);
      });
    }
  }

  // ------------------------------------------------------------------ one pass

  /** One pass; returns how long until the next one is needed (ms). */
  private async sync(): Promise<number> {
    if (!this.ctx.inSync()) return 200;
    const stored = this.ctx.podByUid(this.uid);
    const spec = stored === undefined ? undefined : parseRunSpec(stored.value);
    if (spec === undefined || spec.nodeName !== this.ctx.nodeName) return this.teardown(undefined, undefined);
    if (spec.terminating) return this.teardown(stored, spec);
    if (spec.hostNetwork) {
      await this.report(stored!, spec, { phase: 'Failed', reason: 'HostNetworkUnsupported', message: 'the lab kubelet runs pods in their own network namespace only (hostNetwork: true is not supported)' });
      return 60_000;
    }
    const now = this.ctx.clock.now();
    this.ensureRecord(spec, now);
    if (!(await this.ensureSandbox(spec, now))) {
      await this.report(stored!, spec);
      return Math.max(100, this.sandboxNotBefore - now);
    }
    if (!(await this.ensureCredentials(spec))) {
      await this.report(stored!, spec);
      return 2_000;
    }
    if (this.runInit(spec, now)) this.runContainers(spec, now);
    await this.runProbes(spec, stored!);
    await this.report(stored!, spec);
    return this.nextWake(spec, this.ctx.clock.now());
  }

  private ensureRecord(spec: RunSpec, now: number): PodRecord {
    if (this.rec === undefined) {
      this.rec = {
        namespace: spec.namespace,
        name: spec.name,
        uid: spec.uid,
        netns: podNetnsName(this.ctx.options.netnsPrefix, spec.namespace, spec.name, spec.uid),
        sandboxId: podSandboxId(spec.namespace, spec.name, spec.uid),
        createdAt: iso(now),
        sandboxReady: false,
        graceSeconds: spec.graceSeconds,
        containers: {},
      };
      // Written before the namespace exists: a crash from here on leaves nothing the next kubelet does not know.
      this.save();
    } else if (this.rec.graceSeconds !== spec.graceSeconds) {
      this.rec.graceSeconds = spec.graceSeconds;
      this.save();
    }
    return this.rec;
  }

  private save(): void {
    if (this.rec !== undefined) this.ctx.state.write(this.rec);
  }

  private cniArgs(rec: PodRecord, netnsPresent: boolean): Parameters<KubeletContext['cni']['add']>[0] {
    return {
      containerId: rec.sandboxId,
      netnsPath: netnsPresent ? `${NETNS_DIR}/${rec.netns}` : '',
      ifname: this.ctx.options.ifname,
      podNamespace: rec.namespace,
      podName: rec.name,
      podUid: rec.uid,
      prevResult: rec.cniResult,
    };
  }

  /** Makes the pod's network exist; false while it does not (the error is kept for the status). */
  private async ensureSandbox(spec: RunSpec, now: number): Promise<boolean> {
    const rec = this.rec!;
    const present = this.ctx.netns.exists(rec.netns);
    if (rec.sandboxReady && present) return true;
    if (rec.sandboxReady && !present) {
      // Someone removed the namespace under the pod: like a runtime whose sandbox died, start over.
      this.log.warn({ netns: rec.netns }, 'pod network namespace vanished; recreating the sandbox');
      this.killAll('SIGKILL');
      await this.ctx.cni.del(this.cniArgs(rec, false)).catch(() => undefined);
      rec.sandboxReady = false;
      rec.podIP = undefined;
      this.save();
    }
    if (now < this.sandboxNotBefore) return false;
    try {
      await this.ctx.netns.add(rec.netns);
      const existing = await this.ctx.netns.address(rec.netns, this.ctx.options.ifname);
      if (existing === undefined) {
        try {
          const r = await this.ctx.cni.add(this.cniArgs(rec, true));
          rec.podIP = r.ip;
          rec.gateway = r.gateway ?? this.ctx.options.defaultGateway;
          rec.cniResult = r.raw;
        } catch (err) {
          // As a runtime does after a failed ADD: DEL, so nothing half-made stays (address, veth).
          await this.ctx.cni.del(this.cniArgs(rec, true)).catch(() => undefined);
          throw err;
        }
      } else {
        // ADD had finished before a crash: the namespace holds the address.
        rec.podIP = existing.ip;
        rec.gateway ??= this.ctx.options.defaultGateway;
      }
      await this.ctx.netns.finishPodNetwork(rec.netns, this.ctx.options.ifname, rec.gateway);
      rec.sandboxReady = true;
      rec.sandboxReadyAt = iso(this.ctx.clock.now());
      this.save();
      this.sandboxError = undefined;
      this.sandboxFailures = 0;
      this.log.info({ pod: `${spec.namespace}/${spec.name}`, netns: rec.netns, podIP: rec.podIP }, 'pod network ready');
      return true;
    } catch (err) {
      this.sandboxFailures += 1;
      this.sandboxError = errorMessage(err);
      this.sandboxNotBefore = this.ctx.clock.now() + Math.min(1_000 * 2 ** (this.sandboxFailures - 1), 30_000);
      this.log.warn({ pod: `${spec.namespace}/${spec.name}`, netns: rec.netns, err: this.sandboxError, failures: this.sandboxFailures }, 'pod network setup failed');
      return false;
    }
  }

  /** The pod's service-account credentials (a no-op without a credentials port); false while refused. */
  private async ensureCredentials(spec: RunSpec): Promise<boolean> {
    const port = this.ctx.credentials;
    if (port === undefined) return true;
    try {
      this.credentialEnv = await port.env({ namespace: spec.namespace, name: spec.name, uid: spec.uid, serviceAccountName: spec.facts.serviceAccountName });
      this.credentialError = undefined;
      return true;
    } catch (err) {
      const message = errorMessage(err);
      if (message !== this.credentialError) this.log.warn({ pod: `${spec.namespace}/${spec.name}`, err: message }, 'pod service-account credentials refused');
      this.credentialError = message;
      return false;
    }
  }

  private container(name: string): ContainerRecord {
    const rec = this.rec!;
    return (rec.containers[name] ??= { restartCount: 0, backoffRestarts: 0 });
  }

  private handle(cr: ContainerRecord): ProcHandle | undefined {
    return cr.pid === undefined ? undefined : { pid: cr.pid, startTicks: cr.startTicks ?? '' };
  }

  /** The container's argv and environment, or undefined for a container without a process. */
  private build(spec: RunSpec, c: RunContainer): Built<{ argv: string[]; env: Record<string, string> } | undefined> {
    const rec = this.rec!;
    const base: Record<string, string> = { PATH: this.ctx.options.path, HOSTNAME: spec.name, EGW_DATASTORE: this.ctx.options.datastore, ...this.credentialEnv };
    const env = containerEnv(c, { ...spec.facts, podIP: rec.podIP, podIPs: rec.podIP === undefined ? [] : [rec.podIP], hostIP: this.ctx.hostIP() }, base);
    if (!env.ok) return env;
    const argv = containerArgv(c, env.value, this.ctx.options.egwCommand);
    return { ok: true, value: argv === undefined ? undefined : { argv, env: env.value } };
  }

  private startContainer(spec: RunSpec, c: RunContainer, cr: ContainerRecord, argv: string[], env: Record<string, string>, now: number): void {
    const rec = this.rec!;
    if (cr.startedAt !== undefined) cr.restartCount += 1;
    const h = this.ctx.processes.spawn(['ip', 'netns', 'exec', rec.netns, ...argv], { env, logFile: this.ctx.state.logFile(rec, c.name) });
    cr.pid = h.pid;
    cr.startTicks = h.startTicks;
    cr.startedAt = iso(now);
    cr.notBefore = undefined;
    this.save();
    this.probes.delete(c.name);
    this.log.info({ pod: `${spec.namespace}/${spec.name}`, container: c.name, pid: h.pid, restartCount: cr.restartCount }, 'container started');
  }

  /** Notes a process that is gone; returns its exit code (undefined when unknown). */
  private reap(spec: RunSpec, c: RunContainer, cr: ContainerRecord, now: number): number | undefined {
    const h = this.handle(cr)!;
    const exitCode = this.ctx.processes.exitCode(h);
    cr.lastExit = { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: cr.startedAt, finishedAt: iso(now) };
    cr.pid = undefined;
    cr.startTicks = undefined;
    this.probes.delete(c.name);
    const fields = { pod: `${spec.namespace}/${spec.name}`, container: c.name, exitCode: exitCode ?? 'unknown' };
    if (exitCode === 0) this.log.info(fields, 'container exited');
    else this.log.warn(fields, 'container exited');
    return exitCode;
  }

  private backoff(cr: ContainerRecord, now: number): void {
    const ran = cr.startedAt === undefined ? 0 : now - Date.parse(cr.startedAt);
    if (backoffResets(ran, this.ctx.options.speedup)) cr.backoffRestarts = 0;
    cr.backoffRestarts += 1;
    cr.notBefore = now + restartDelayMs(cr.backoffRestarts, this.ctx.options.speedup);
  }

  /** Runs the init containers in order; true when all have succeeded. */
  private runInit(spec: RunSpec, now: number): boolean {
    for (const c of spec.initContainers) {
      const cr = this.container(c.name);
      if (cr.finished === true) continue;
      const built = this.build(spec, c);
      if (!built.ok) {
        this.configErrors.set(c.name, built.error);
        return false;
      }
      this.configErrors.delete(c.name);
      if (built.value === undefined) {
        // Not an egw command: nothing to run, it counts as done.
        cr.finished = true;
        cr.lastExit = { exitCode: 0, reason: 'Completed', startedAt: iso(now), finishedAt: iso(now) };
        this.save();
        continue;
      }
      const h = this.handle(cr);
      if (h !== undefined) {
        if (this.ctx.processes.isAlive(h)) return false;
        const exit = this.reap(spec, c, cr, now);
        if (exit === 0) {
          cr.finished = true;
          this.save();
          this.log.info({ pod: `${spec.namespace}/${spec.name}`, container: c.name }, 'init container completed');
          continue;
        }
        if (exit !== undefined && !shouldRestart(spec.restartPolicy, exit)) {
          this.initFailed = `init container ${c.name} exited with ${exit}`;
          this.save();
          return false;
        }
        // Unknown outcome (adopted from an earlier kubelet): run it again at once; a failure backs off.
        if (exit === undefined) cr.notBefore = now;
        else this.backoff(cr, now);
        this.save();
      }
      if (now < (cr.notBefore ?? 0)) return false;
      this.startContainer(spec, c, cr, built.value.argv, built.value.env, now);
      return false;
    }
    return true;
  }

  private runContainers(spec: RunSpec, now: number): void {
    for (const c of spec.containers) {
      const cr = this.container(c.name);
      const built = this.build(spec, c);
      if (!built.ok) {
        if (this.configErrors.get(c.name) !== built.error) this.log.warn({ pod: `${spec.namespace}/${spec.name}`, container: c.name, err: built.error }, 'container configuration error');
        this.configErrors.set(c.name, built.error);
        continue;
      }
      this.configErrors.delete(c.name);
      if (built.value === undefined) {
        cr.startedAt ??= this.rec!.sandboxReadyAt ?? iso(now);
        continue;
      }
      const h = this.handle(cr);
      if (h !== undefined) {
        if (this.ctx.processes.isAlive(h)) continue;
        const exit = this.reap(spec, c, cr, now);
        if (shouldRestart(spec.restartPolicy, exit)) this.backoff(cr, now);
        else cr.finished = true;
        this.save();
      }
      if (cr.finished === true || now < (cr.notBefore ?? 0)) continue;
      this.startContainer(spec, c, cr, built.value.argv, built.value.env, now);
    }
  }

  private running(c: RunContainer, cr: ContainerRecord | undefined): boolean {
    if (cr === undefined || cr.finished === true) return false;
    if (this.configErrors.has(c.name)) return false;
    const h = this.handle(cr);
    // A container without a process runs as long as its namespace does.
    if (h === undefined) return cr.startedAt !== undefined && cr.lastExit === undefined && this.rec?.sandboxReady === true;
    return this.ctx.processes.isAlive(h);
  }

  /**
   * True when the stored status says this very container run (same start) was ready: a restarted
   * kubelet keeps that verdict until the probe's thresholds say otherwise, so adopting a pod never
   * flips it to not-ready.
   */
  private wasReady(stored: StoredResource, name: string, startedAt: string): boolean {
    const statuses = (stored.value['status'] as { containerStatuses?: unknown } | undefined)?.containerStatuses;
    if (!Array.isArray(statuses)) return false;
    const s = (statuses as { name?: unknown; ready?: unknown; state?: { running?: { startedAt?: unknown } } }[]).find((x) => x.name === name);
    return s?.ready === true && s.state?.running?.startedAt === startedAt;
  }

  private async runProbes(spec: RunSpec, stored: StoredResource): Promise<void> {
    const rec = this.rec!;
    for (const c of spec.containers) {
      const cr = rec.containers[c.name];
      if (!this.running(c, cr) || cr?.startedAt === undefined || rec.podIP === undefined) continue;
      let run = this.probes.get(c.name);
      if (run === undefined || run.startedAt !== cr.startedAt) {
        const parsed = parseProbe(c.readinessProbe, c.ports, this.ctx.options.speedup);
        if (parsed === undefined) continue;
        if (!parsed.ok) {
          if (this.probeErrors.get(c.name) !== parsed.error) this.log.warn({ pod: `${spec.namespace}/${spec.name}`, container: c.name, err: parsed.error }, 'readiness probe cannot run');
          this.probeErrors.set(c.name, parsed.error);
          continue;
        }
        const fresh = startProbe(parsed.value, Date.parse(cr.startedAt));
        const state = this.wasReady(stored, c.name, cr.startedAt) ? { ...fresh, ready: true, last: true, run: parsed.value.successThreshold } : fresh;
        run = { spec: parsed.value, state, startedAt: cr.startedAt };
        this.probes.set(c.name, run);
      }
      if (!probeDue(run.state, this.ctx.clock.now())) continue;
      const outcome = await this.ctx.prober.run(run.spec.action, { podIP: rec.podIP, netns: rec.netns }, run.spec.timeoutMs);
      const before = run.state.ready;
      run.state = recordProbe(run.state, outcome.ok, run.spec, this.ctx.clock.now());
      if (run.state.ready !== before) this.log.info({ pod: `${spec.namespace}/${spec.name}`, container: c.name, ready: run.state.ready, probe: outcome.detail }, 'container readiness changed');
    }
  }

  private nextWake(spec: RunSpec, now: number): number {
    let next = now + this.ctx.options.syncIntervalMs;
    for (const run of this.probes.values()) next = Math.min(next, run.state.nextAt);
    for (const c of [...spec.initContainers, ...spec.containers]) {
      const nb = this.rec?.containers[c.name]?.notBefore;
      if (nb !== undefined && nb > now) next = Math.min(next, nb);
    }
    return Math.max(10, next - now);
  }

  // ------------------------------------------------------------------ status

  private containerView(spec: RunSpec, c: RunContainer, init: boolean, initDone: boolean, terminating: boolean): ContainerView {
    const rec = this.rec;
    const cr = rec?.containers[c.name];
    const now = this.ctx.clock.now();
    const exitState = (e: NonNullable<ContainerRecord['lastExit']>): ContainerState => ({
      terminated: { exitCode: e.exitCode ?? 137, reason: e.reason, ...(e.startedAt === undefined ? {} : { startedAt: e.startedAt }), finishedAt: e.finishedAt },
    });
    let state: ContainerState;
    const configError = this.configErrors.get(c.name);
    if (rec === undefined || !rec.sandboxReady) state = { waiting: { reason: 'ContainerCreating', ...(this.sandboxError === undefined ? {} : { message: this.sandboxError }) } };
    else if (configError !== undefined) state = { waiting: { reason: 'CreateContainerConfigError', message: configError } };
    else if (!init && !initDone) state = { waiting: { reason: 'PodInitializing' } };
    else if (cr !== undefined && this.running(c, cr)) state = { running: { startedAt: cr.startedAt ?? rec.createdAt } };
    else if (cr?.finished === true && cr.lastExit !== undefined) state = exitState(cr.lastExit);
    else if (cr?.notBefore !== undefined && cr.notBefore > now) {
      const s = Math.round((cr.notBefore - (cr.lastExit === undefined ? now : Date.parse(cr.lastExit.finishedAt))) / 1000);
      state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${s}s restarting failed container=${c.name} pod=${spec.name}_${spec.namespace}(${spec.uid})` } };
    } else state = { waiting: { reason: init ? 'PodInitializing' : 'ContainerCreating' } };
    const probe = this.probes.get(c.name);
    const hasProbe = c.readinessProbe !== undefined && c.readinessProbe !== null;
    const ready = !init && !terminating && 'running' in state && (!hasProbe || probe?.state.ready === true);
    return {
      name: c.name,
      image: c.image,
      containerID: rec === undefined ? '' : containerIdOf(rec.netns, c.name),
      state,
      lastState: !('terminated' in state) && cr?.lastExit !== undefined ? exitState(cr.lastExit) : undefined,
      ready,
      started: 'running' in state,
      restartCount: cr?.restartCount ?? 0,
    };
  }

  /** The kubelet's view of the pod now. */
  private view(spec: RunSpec, terminating = false): PodView {
    const rec = this.rec;
    const initDone = spec.initContainers.every((c) => rec?.containers[c.name]?.finished === true);
    const initContainers = spec.initContainers.map((c) => this.containerView(spec, c, true, initDone, terminating));
    const containers = spec.containers.map((c) => this.containerView(spec, c, false, initDone, terminating));
    const main = spec.containers.map((c) => rec?.containers[c.name]);
    let phase: PodView['phase'] = 'Pending';
    if (this.initFailed !== undefined) phase = 'Failed';
    else if (main.length > 0 && main.every((cr) => cr?.finished === true)) phase = main.every((cr) => cr?.lastExit?.exitCode === 0) ? 'Succeeded' : 'Failed';
    else if (rec?.sandboxReady === true && initDone && main.every((cr) => cr?.startedAt !== undefined)) phase = 'Running';
    return {
      phase,
      ...(this.initFailed === undefined ? {} : { reason: 'InitContainerFailed', message: this.initFailed }),
      podIP: rec?.podIP,
      hostIP: this.ctx.hostIP(),
      startTime: rec?.createdAt,
      sandboxReady: rec?.sandboxReady === true,
      initialized: initDone,
      initContainers,
      containers,
    };
  }

  /**
   * Writes the status (the given view, else the current one) when it differs from the stored one; CAS on
   * the revision read, re-read on conflict. A pod whose record changed identity (another uid) is left alone.
   */
  private async report(stored: StoredResource, spec: RunSpec, override?: Partial<PodView>, terminating = false): Promise<void> {
    const view = { ...this.view(spec, terminating), ...override };
    let current: StoredResource | undefined = stored;
    for (let attempt = 0; attempt < 6 && current !== undefined; attempt++) {
      const value = current.value as Record<string, unknown>;
      if ((value['metadata'] as { uid?: unknown } | undefined)?.uid !== this.uid) return;
      const status = mergePodStatus(value['status'], view, iso(this.ctx.clock.now()));
      if (status === undefined) return;
      try {
        await this.ctx.store.commit([{ op: 'update', key: current.key, value: { ...value, status } as unknown as JsonObject, expectedRevision: current.modRevision }]);
        return;
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'NotFound')) throw err;
        current = await this.ctx.store.get(current.key);
      }
    }
  }

  // ------------------------------------------------------------------ termination

  private liveHandles(): ProcHandle[] {
    const out: ProcHandle[] = [];
    for (const cr of Object.values(this.rec?.containers ?? {})) {
      const h = this.handle(cr);
      if (h !== undefined && this.ctx.processes.isAlive(h)) out.push(h);
    }
    return out;
  }

  private killAll(signal: 'SIGTERM' | 'SIGKILL'): void {
    for (const h of this.liveHandles()) this.ctx.processes.kill(h, signal);
  }

  /**
   * Stops and removes the pod: processes (SIGTERM, grace, SIGKILL), CNI DEL, the namespace, the state
   * file, then the Pod record when `stored` is given (it is terminating). `stored` undefined: the record
   * is gone (or the pod is not ours any more), so only the local side is removed.
   */
  private async teardown(stored: StoredResource | undefined, spec: RunSpec | undefined): Promise<number> {
    const rec = this.rec;
    const now = this.ctx.clock.now();
    if (rec !== undefined) {
      const podName = `${rec.namespace}/${rec.name}`;
      if (rec.terminationStartedAt === undefined) {
        rec.terminationStartedAt = iso(now);
        if (spec !== undefined) rec.graceSeconds = spec.graceSeconds;
        this.save();
        this.log.info({ pod: podName, graceSeconds: rec.graceSeconds, recordGone: stored === undefined }, 'pod terminating');
        // Not ready from the first moment: clients move away while the processes shut down.
        if (stored !== undefined && spec !== undefined) await this.report(stored, spec, undefined, true);
      }
      if (this.liveHandles().length > 0) {
        if (!this.termSent) {
          this.killAll('SIGTERM');
          this.termSent = true;
        }
        const deadline = Date.parse(rec.terminationStartedAt) + rec.graceSeconds * 1000;
        if (now < deadline) return Math.min(200, deadline - now);
        this.log.warn({ pod: podName }, 'grace period over; killing the pod');
        this.killAll('SIGKILL');
        return 50;
      }
      // Anything else inside the namespace (commands run with `egw lab exec`) goes with it.
      const present = this.ctx.netns.exists(rec.netns);
      if (present) {
        for (const pid of await this.ctx.netns.pids(rec.netns)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
      }
      try {
        await this.ctx.cni.del(this.cniArgs(rec, present));
      } catch (err) {
        this.log.warn({ pod: podName, err: errorMessage(err) }, 'CNI DEL failed; retrying');
        return 1_000;
      }
      await this.ctx.netns.delete(rec.netns);
      this.ctx.state.remove(rec);
      this.ctx.credentials?.forget(this.uid);
      this.rec = undefined;
      this.log.info({ pod: podName, netns: rec.netns }, 'pod stopped and its network removed');
    }
    if (stored !== undefined) await this.deleteRecord(stored);
    this.finished = true;
    return 0;
  }

  /** Deletes the Pod record with CAS; one already gone, or replaced by another pod, is left alone. */
  private async deleteRecord(stored: StoredResource): Promise<void> {
    let current: StoredResource | undefined = stored;
    for (let attempt = 0; attempt < 8 && current !== undefined; attempt++) {
      if ((current.value['metadata'] as { uid?: unknown } | undefined)?.uid !== this.uid) return;
      try {
        await this.ctx.store.commit([{ op: 'delete', key: current.key, expectedRevision: current.modRevision }]);
        this.log.info({ pod: `${current.key.namespace ?? ''}/${current.key.name}` }, 'pod record deleted');
        return;
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'NotFound')) throw err;
        current = await this.ctx.store.get(current.key);
      }
    }
  }
}
