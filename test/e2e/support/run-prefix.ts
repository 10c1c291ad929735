/**
 * Names unique to one test run, so that two copies of the suite on one machine never meet.
 *
 * Every e2e file names what it makes (network namespaces, and through them links, processes, temp dirs
 * and etcd keys) under `runPrefix(tag)`: the file's fixed tag followed by the test process's pid in base 36.
 * The topology and lab layouts accept 2–8 characters `[a-z][a-z0-9]*` (namespace names then fit the
 * kernel's limits, and link names are chosen inside the namespaces, never from the prefix), and a pid
 * takes at most 5 base-36 characters (pid_max ≤ 4194304 = "2hwcg"), so a tag has 2–3 characters.
 *
 * A sweep of `runPrefix(tag)` removes only this run's leftovers. `deadRunPrefixes(tag)` finds the
 * prefixes of earlier runs of the same file whose process is gone (a crash, a killed CI job), which are
 * safe to sweep; a live run's prefix is never returned. Tags must not be prefixes of each other
 * (enforced by the list below), so `<tag><pid36>-` parses back to one tag and one pid.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Every tag in use, one per test file (or per topology within a file). Keep them prefix-free. */
export const RUN_TAGS = [
  'cfc', // cni-fail-closed
  'cni', // cni-ptp
  'deg', // dataplane-egress
  'dfo', // dataplane-failover
  'dmh', // dataplane-maxnexthops
  'drn', // dataplane-drain
  'drs', // dataplane-restart
  'dvx', // dataplane-vxlan-filter
  'dgt', // dataplane-gateway-trust
  'g6d', // gateway-ipv6-drop
  'fab', // lab-fabric
  'klr', // lab-kubelet-runtime
  'lk', // lab-kubernetes
  'sip', // lab-secondary-ip
  'lup', // lab-up
  'teg', // linux-egress
  'eni', // linux-eni
  'tpa', // linux-topology
  'tpb', // linux-topology
  'tpc', // linux-topology
] as const;
export type RunTag = (typeof RUN_TAGS)[number];

const PID36 = process.pid.toString(36);

/** `<tag><pid36>`: this process's prefix for `tag` (≤ 8 characters). */
export function runPrefix(tag: RunTag, pid: number = process.pid): string {
  const p = `${tag}${pid === process.pid ? PID36 : pid.toString(36)}`;
  if (!/^[a-z][a-z0-9]{1,7}$/.test(p)) throw new Error(`run prefix "${p}" must be 2-8 characters [a-z][a-z0-9]*`);
  return p;
}

/** The names of the network namespaces on this machine. */
export function netnsNames(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

/**
 * Prefixes `<tag><pid36>` of namespaces left by runs of `tag` whose process no longer exists. A run
 * whose pid is alive (itself, or another copy of the suite) is never listed; a recycled pid only keeps a
 * dead run's leftovers until that process is gone too.
 */
export function deadRunPrefixes(tag: RunTag, names: string[] = netnsNames()): string[] {
  const re = new RegExp(`^${tag}([0-9a-z]{1,5})-`);
  const out = new Set<string>();
  for (const n of names) {
    const m = re.exec(n);
    if (m === null) continue;
    const pid = parseInt(m[1]!, 36);
    // Pids below 300 are the kernel's own (the allocator wraps to 300): such a name is not a run's.
    if (pid < 300 || pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    out.add(`${tag}${m[1]!}`);
  }
  return [...out];
}

/**
 * Kills every process inside the namespaces `<prefix>-*` and deletes them: for tests that make bare
 * namespaces (no topology). Returns the names it deleted.
 */
export function sweepNetns(prefix: string): string[] {
  const ours = netnsNames().filter((n) => n.startsWith(`${prefix}-`));
  for (const ns of ours) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split(/\s+/).filter((x) => /^\d+$/.test(x));
    for (const pid of pids) spawnSync('kill', ['-KILL', pid]);
    spawnSync('ip', ['netns', 'del', ns]);
  }
  return ours;
}

/** The tag of a run prefix made by {@link runPrefix}, if it is one. */
export function tagOf(prefix: string): RunTag | undefined {
  return RUN_TAGS.find((t) => new RegExp(`^${t}[0-9a-z]{1,5}$`).test(prefix));
}

/**
 * Sweeps, with `sweep`, the leftovers of dead runs that used the same tag as `prefix` (nothing when
 * `prefix` is not a run prefix). Call it beside the sweep of the run's own prefix at the start of a test.
 */
export async function sweepDeadRuns(prefix: string, sweep: (deadPrefix: string) => unknown): Promise<void> {
  const tag = tagOf(prefix);
  if (tag === undefined) return;
  for (const dead of deadRunPrefixes(tag)) await sweep(dead);
}

// Tags must not be prefixes of each other, or `<tag><pid36>` would be ambiguous.
for (const a of RUN_TAGS) for (const b of RUN_TAGS) if (a !== b && b.startsWith(a)) throw new Error(`run tags "${a}" and "${b}" overlap`);
