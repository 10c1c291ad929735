import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgwError } from '../../platform/errors.js';
import type { CommandResult, RunOptions, Shell } from '../../platform/shell.js';
import type { BatchCommand } from '../iproute/batch.js';
import { runBatch } from '../iproute/batch.js';
import { NetnsShell } from '../netns.js';
import { ifaceSysctlKey } from '../sysctl.js';
import type { ProcessRunner, RunningProcess } from './process.js';
import { ChildProcessRunner } from './process.js';
import type { TopologySpec } from './spec.js';
import { namespaceName, validateTopologySpec } from './spec.js';

/** What {@link createTopology} and {@link sweepTopology} need. */
export interface TopologyDeps {
  shell: Shell;
  runner?: ProcessRunner;
  /** Directory for temp files (default: the OS temp dir). */
  tmpRoot?: string;
}

/** The temp directory of a topology prefix: every file it writes lives here. */
export function topologyTmpDir(prefix: string, tmpRoot: string = tmpdir()): string {
  return join(tmpRoot, `egw-topo-${prefix}`);
}

/**
 * A built topology. Every object it made carries its prefix: namespaces `<prefix>-<name>`, files
 * under {@link topologyTmpDir}, processes inside those namespaces. {@link Topology.teardown} removes
 * all of them; {@link sweepTopology} does the same from nothing but the prefix, after a crash.
 */
export class Topology {
  private readonly processes = new Set<RunningProcess>();
  private tornDown = false;

  /** @internal use {@link createTopology}. */
  constructor(
    readonly spec: TopologySpec,
    private readonly deps: Required<TopologyDeps>,
    /** Directory for this topology's temp files (removed on teardown). */
    readonly tmpDir: string,
  ) {}

  /** The prefix. */
  get prefix(): string {
    return this.spec.prefix;
  }

  /** The full namespace name of a short name (`node1` → `<prefix>-node1`). */
  ns(name: string): string {
    if (!this.spec.namespaces.some((n) => n.name === name)) {
      throw new EgwError('InvalidInput', `topology ${this.prefix} has no namespace "${name}"`);
    }
    return namespaceName(this.prefix, name);
  }

  /** A {@link Shell} running every command inside the namespace — hand it to a driver. */
  shell(name: string): Shell {
    return new NetnsShell(this.deps.shell, this.ns(name));
  }

  /** Runs a command to completion inside the namespace. */
  exec(name: string, argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    return this.shell(name).run(argv, options);
  }

  /**
   * Starts a long-running process inside the namespace. It is stopped on teardown (and, being inside
   * the namespace, found and killed by a sweep after a crash).
   */
  spawn(name: string, argv: readonly string[], options?: { env?: Record<string, string> }): RunningProcess {
    if (this.tornDown) throw new EgwError('Internal', `topology ${this.prefix} is torn down`);
    const p = this.deps.runner.start(['ip', 'netns', 'exec', this.ns(name), ...argv], options);
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  /** Writes a file into the topology's temp dir and returns its path. */
  writeFile(fileName: string, content: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(fileName)) throw new EgwError('InvalidInput', `bad temp file name ${fileName}`);
    mkdirSync(this.tmpDir, { recursive: true });
    const path = join(this.tmpDir, fileName);
    writeFileSync(path, content);
    return path;
  }

  /**
   * Stops every process, deletes every namespace (which deletes every link in it, bridges and veth
   * peers included) and the temp dir. Idempotent; also removes leftovers under the same prefix.
   */
  async teardown(): Promise<void> {
    this.tornDown = true;
    await Promise.all([...this.processes].map((p) => p.stop(1000)));
    this.processes.clear();
    await sweepTopology(this.prefix, this.deps);
  }
}

function chunkByNamespace(spec: TopologySpec): Map<string, BatchCommand[]> {
  return new Map(spec.namespaces.map((n) => [n.name, [] as BatchCommand[]]));
}

async function runNsBatches(shell: Shell, prefix: string, batches: Map<string, BatchCommand[]>): Promise<void> {
  await Promise.all([...batches].map(async ([name, lines]) => {
    const failures = await runBatch(new NetnsShell(shell, namespaceName(prefix, name)), 'ip', lines);
    if (failures.length > 0) {
      throw new EgwError('CommandFailed', `building namespace ${name}: ${failures.map((f) => `${f.command.line}: ${f.message}`).join('; ')}`);
    }
  }));
}

/**
 * Builds the topology: namespaces, bridges, veth pairs, addresses, routes, sysctls. Fails with
 * `InvalidInput` on a bad spec before creating anything, and with `CommandFailed` when the kernel
 * refuses something — after removing what it had made. Namespaces that already exist under the prefix
 * make it fail: call {@link sweepTopology} first to clear leftovers of a crashed run.
 */
export async function createTopology(spec: TopologySpec, deps: TopologyDeps): Promise<Topology> {
  validateTopologySpec(spec);
  const full: Required<TopologyDeps> = { shell: deps.shell, runner: deps.runner ?? new ChildProcessRunner(), tmpRoot: deps.tmpRoot ?? tmpdir() };
  const tmpDir = topologyTmpDir(spec.prefix, full.tmpRoot);
  const topo = new Topology(spec, full, tmpDir);
  const { shell } = full;
  try {
    const nsLines = spec.namespaces.map((n) => ({ line: `netns add ${namespaceName(spec.prefix, n.name)}`, object: n.name }));
    const nsFailures = await runBatch(shell, 'ip', nsLines);
    if (nsFailures.length > 0) throw new EgwError('CommandFailed', `cannot create namespaces: ${nsFailures.map((f) => f.message).join('; ')}`, { hint: `run sweepTopology('${spec.prefix}') to clear leftovers` });
    mkdirSync(tmpDir, { recursive: true });

    // Links first (an end may be created in another namespace), then addresses, state and routes.
    const create = chunkByNamespace(spec);
    for (const n of spec.namespaces) create.get(n.name)!.push({ line: 'link set lo up', object: n.name });
    for (const b of spec.bridges) create.get(b.ns)!.push({ line: `link add ${b.name} type bridge`, object: b.name });
    for (const l of spec.links) {
      const a = l.a;
      const b = l.b;
      const peerNs = namespaceName(spec.prefix, b.ns);
      create.get(a.ns)!.push({
        line: `link add ${a.ifname}${a.mac === undefined ? '' : ` address ${a.mac}`} type veth peer name ${b.ifname}${b.mac === undefined ? '' : ` address ${b.mac}`} netns ${peerNs}`,
        object: `${a.ns}/${a.ifname}`,
      });
    }
    await runNsBatches(shell, spec.prefix, create);

    const configure = chunkByNamespace(spec);
    for (const b of spec.bridges) {
      const lines = configure.get(b.ns)!;
      for (const addr of b.addresses ?? []) lines.push({ line: `addr add ${addr} dev ${b.name}`, object: b.name });
      lines.push({ line: `link set dev ${b.name} up`, object: b.name });
    }
    for (const l of spec.links) {
      for (const e of [l.a, l.b]) {
        const lines = configure.get(e.ns)!;
        if (e.master !== undefined) lines.push({ line: `link set dev ${e.ifname} master ${e.master}`, object: e.ifname });
        if (e.mtu !== undefined) lines.push({ line: `link set dev ${e.ifname} mtu ${e.mtu}`, object: e.ifname });
        for (const addr of e.addresses ?? []) lines.push({ line: `addr add ${addr} dev ${e.ifname}`, object: e.ifname });
        lines.push({ line: `link set dev ${e.ifname} up`, object: e.ifname });
      }
    }
    await runNsBatches(shell, spec.prefix, configure);

    await Promise.all(spec.namespaces.map(async (n) => {
      const settings: string[] = [];
      if (n.forwarding === true) settings.push('net.ipv4.ip_forward=1');
      for (const [k, v] of Object.entries(n.sysctls ?? {})) settings.push(`${k}=${v}`);
      for (const l of spec.links) {
        for (const e of [l.a, l.b]) if (e.ns === n.name && e.proxyArp === true) settings.push(`${ifaceSysctlKey(e.ifname, 'proxy_arp')}=1`);
      }
      if (settings.length > 0) await topo.exec(n.name, ['sysctl', '-q', '-w', ...settings]);
    }));

    const routes = chunkByNamespace(spec);
    for (const r of spec.routes) {
      const parts = ['route add'];
      if (r.type !== undefined) parts.push(r.type);
      parts.push(r.dst);
      if (r.via !== undefined) parts.push(`via ${r.via}`);
      if (r.dev !== undefined) parts.push(`dev ${r.dev}`);
      if (r.onlink === true) parts.push('onlink');
      if (r.src !== undefined) parts.push(`src ${r.src}`);
      if (r.table !== undefined) parts.push(`table ${r.table}`);
      routes.get(r.ns)!.push({ line: parts.join(' '), object: r.dst });
    }
    await runNsBatches(shell, spec.prefix, routes);
    return topo;
  } catch (e) {
    await topo.teardown().catch(() => undefined);
    throw e;
  }
}

/** What a sweep removed. */
export interface SweepReport {
  namespaces: string[];
  killedPids: number[];
}

/**
 * Removes everything a topology with this prefix may have left behind, from nothing but the prefix:
 * kills every process inside its namespaces, deletes the namespaces `<prefix>-*` (their links go with
 * them) and the temp dir. Never looks at anything else: other namespaces, the root namespace's links
 * and processes outside the namespaces are untouched. Idempotent.
 */
export async function sweepTopology(prefix: string, deps: TopologyDeps): Promise<SweepReport> {
  if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix)) throw new EgwError('InvalidInput', `prefix "${prefix}" must be 2-8 characters [a-z][a-z0-9]*`);
  const { shell } = deps;
  const list = await shell.run(['ip', 'netns', 'list']);
  const namespaces = list.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
  const killedPids: number[] = [];
  for (const ns of namespaces) {
    const pids = await shell.run(['ip', 'netns', 'pids', ns], { allowFailure: true });
    const ids = pids.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p));
    if (ids.length > 0) {
      // Processes that exit meanwhile make kill fail for them only.
      await shell.run(['kill', '-KILL', ...ids], { allowFailure: true });
      killedPids.push(...ids.map(Number));
    }
  }
  if (namespaces.length > 0) {
    await runBatch(shell, 'ip', namespaces.map((ns) => ({ line: `netns del ${ns}`, object: ns, okIfMissing: true })));
  }
  rmSync(topologyTmpDir(prefix, deps.tmpRoot ?? tmpdir()), { recursive: true, force: true });
  return { namespaces, killedPids };
}
