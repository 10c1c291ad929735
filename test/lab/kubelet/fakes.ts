/**
 * Stateful fakes of the kubelet's ports, sharing one "kernel" (namespaces, addresses, processes) so a
 * second kubelet can adopt what a first one made. Every side effect is appended to `kernel.events`, so
 * tests can check the order of a pod's teardown.
 */
import type { CniAddResult, CniPodArgs, CniPort } from '../../../src/lab/kubelet/cni.js';
import type { NetnsPort } from '../../../src/lab/kubelet/netns.js';
import type { ProbeAction } from '../../../src/lab/kubelet/probe.js';
import type { ProbeOutcome, ProberPort } from '../../../src/lab/kubelet/prober.js';
import type { ProcessPort, ProcHandle } from '../../../src/lab/kubelet/processes.js';

export interface FakeProc {
  pid: number;
  argv: string[];
  env: Record<string, string>;
  alive: boolean;
  /** What the process does on SIGTERM: exit with this code, or keep running. */
  onTerm: number | 'ignore';
  signals: string[];
}

/** The shared fake kernel. */
export class FakeKernel {
  readonly namespaces = new Set<string>();
  readonly addresses = new Map<string, string>();
  readonly procs = new Map<number, FakeProc>();
  readonly events: string[] = [];
  /** Handles the CNI allocated (the fake IPAM). */
  readonly handles = new Map<string, string>();
  nextPid = 1000;
  nextIp = 2;
  /** ADDs that fail before one succeeds. */
  failAdds = 0;
  /** How processes started from now on answer SIGTERM. */
  onTerm: number | 'ignore' = 0;
  /** Probe outcome per pod IP (default: pass). */
  readonly probeOk = new Map<string, boolean>();

  /** Processes whose argv contains `word`, in start order. */
  procsWith(word: string): FakeProc[] {
    return [...this.procs.values()].filter((p) => p.argv.includes(word));
  }

  live(word: string): FakeProc[] {
    return this.procsWith(word).filter((p) => p.alive);
  }
}

/** Processes: one instance per kubelet (exit codes are known only to the instance that started them). */
export class FakeProcesses implements ProcessPort {
  private readonly mine = new Map<number, number | undefined>();
  private readonly listeners: ((h: ProcHandle) => void)[] = [];

  constructor(private readonly kernel: FakeKernel) {}

  spawn(argv: readonly string[], options: { env: Record<string, string>; logFile: string }): ProcHandle {
    const pid = this.kernel.nextPid++;
    this.kernel.procs.set(pid, { pid, argv: [...argv], env: { ...options.env }, alive: true, onTerm: this.kernel.onTerm, signals: [] });
    this.mine.set(pid, undefined);
    this.kernel.events.push(`spawn ${argv.slice(4).join(' ')}`);
    return { pid, startTicks: String(pid * 7) };
  }

  isAlive(h: ProcHandle): boolean {
    return this.kernel.procs.get(h.pid)?.alive === true && h.startTicks === String(h.pid * 7);
  }

  exitCode(h: ProcHandle): number | undefined {
    return this.mine.get(h.pid);
  }

  kill(h: ProcHandle, signal: 'SIGTERM' | 'SIGKILL'): void {
    const p = this.kernel.procs.get(h.pid);
    if (p === undefined || !p.alive) return;
    p.signals.push(signal);
    this.kernel.events.push(`${signal} ${p.argv.slice(4).join(' ')}`);
    if (signal === 'SIGKILL') this.exit(h.pid, 137);
    else if (p.onTerm !== 'ignore') this.exit(h.pid, p.onTerm);
  }

  onExit(listener: (h: ProcHandle) => void): void {
    this.listeners.push(listener);
  }

  /** The process ends with `code` (as if it crashed or finished). */
  exit(pid: number, code: number): void {
    const p = this.kernel.procs.get(pid);
    if (p === undefined || !p.alive) return;
    p.alive = false;
    if (this.mine.has(pid)) this.mine.set(pid, code);
    for (const l of this.listeners) l({ pid, startTicks: String(pid * 7) });
  }
}

export class FakeNetns implements NetnsPort {
  constructor(private readonly kernel: FakeKernel) {}

  exists(name: string): boolean {
    return this.kernel.namespaces.has(name);
  }

  add(name: string): Promise<void> {
    if (!this.kernel.namespaces.has(name)) this.kernel.events.push(`netns add ${name}`);
    this.kernel.namespaces.add(name);
    return Promise.resolve();
  }

  delete(name: string): Promise<void> {
    if (this.kernel.namespaces.delete(name)) this.kernel.events.push(`netns delete ${name}`);
    this.kernel.addresses.delete(name);
    return Promise.resolve();
  }

  pids(): Promise<number[]> {
    return Promise.resolve([]);
  }

  address(name: string): Promise<{ ip: string; prefixLen: number } | undefined> {
    const ip = this.kernel.addresses.get(name);
    return Promise.resolve(ip === undefined ? undefined : { ip, prefixLen: 24 });
  }

  finishPodNetwork(): Promise<void> {
    return Promise.resolve();
  }
}

const nsOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

export class FakeCni implements CniPort {
  readonly calls: { command: 'ADD' | 'DEL'; args: CniPodArgs }[] = [];

  constructor(private readonly kernel: FakeKernel) {}

  add(args: CniPodArgs): Promise<CniAddResult> {
    this.calls.push({ command: 'ADD', args });
    this.kernel.events.push(`cni ADD ${args.podNamespace}/${args.podName}`);
    if (this.kernel.failAdds > 0) {
      this.kernel.failAdds -= 1;
      // A half-made ADD: the address is configured, then the plugin fails.
      this.kernel.addresses.set(nsOf(args.netnsPath), '10.244.0.250');
      return Promise.reject(new Error('CNI ADD failed: IP pools exhausted (code 101)'));
    }
    const ip = this.kernel.handles.get(args.containerId) ?? `10.244.0.${this.kernel.nextIp++}`;
    this.kernel.handles.set(args.containerId, ip);
    this.kernel.addresses.set(nsOf(args.netnsPath), ip);
    return Promise.resolve({ ip, prefixLen: 24, gateway: '169.254.1.1', raw: { cniVersion: '1.0.0', ips: [{ address: `${ip}/24`, gateway: '169.254.1.1' }] } });
  }

  del(args: CniPodArgs): Promise<void> {
    this.calls.push({ command: 'DEL', args });
    this.kernel.events.push(`cni DEL ${args.podNamespace}/${args.podName}`);
    this.kernel.handles.delete(args.containerId);
    if (args.netnsPath !== '') this.kernel.addresses.delete(nsOf(args.netnsPath));
    return Promise.resolve();
  }
}

export class FakeProber implements ProberPort {
  readonly probes: { action: ProbeAction; podIP: string }[] = [];

  constructor(private readonly kernel: FakeKernel) {}

  run(action: ProbeAction, target: { podIP: string; netns: string }): Promise<ProbeOutcome> {
    this.probes.push({ action, podIP: target.podIP });
    const ok = this.kernel.probeOk.get(target.podIP) ?? true;
    return Promise.resolve({ ok, detail: ok ? 'HTTP 200' : 'HTTP 503' });
  }
}
