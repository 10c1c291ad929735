/**
 * Pod network namespaces through iproute2 (`ip netns …`, `ip -n …`), and the check that the kubelet runs
 * where the namespaces it names are visible to everyone else.
 *
 * Why the check: `ip netns add` makes a bind mount under /run/netns. `ip netns exec NODE cmd` runs `cmd`
 * in a new mount namespace that is a *slave* of the host's, so mounts made there never reach the host:
 * namespaces a kubelet started that way would exist for it alone (and vanish with it). The kubelet must
 * share the host's mount namespace and only enter the node's network namespace — `nsenter
 * --net=/run/netns/NODE -- …` does exactly that.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Shell } from '../../platform/shell.js';

/** Where iproute2 keeps named network namespaces. */
export const NETNS_DIR = '/var/run/netns';

/** What the kubelet does with network namespaces. */
export interface NetnsPort {
  /** True when the name is a live network namespace (a mounted file, not a leftover empty file). */
  exists(name: string): boolean;
  /** Creates it (a leftover unmounted file of that name is removed first). */
  add(name: string): Promise<void>;
  /** Deletes it; a missing one is fine. */
  delete(name: string): Promise<void>;
  /** Pids of processes inside it. */
  pids(name: string): Promise<number[]>;
  /** The first IPv4 address of an interface inside it, or undefined when it has none. */
  address(name: string, ifname: string): Promise<{ ip: string; prefixLen: number } | undefined>;
  /** Loopback up and, when missing, a default route via `gateway` on `ifname` (a runtime's post-ADD step). */
  finishPodNetwork(name: string, ifname: string, gateway: string | undefined): Promise<void>;
}

/**
 * The propagation of the mount that holds /run/netns as this process sees it (the /run/netns mount
 * itself, else the nearest mount above it). `slave`: mounts made here do not reach the host. Pure parse
 * of `/proc/self/mountinfo`.
 */
export function netnsMountPropagation(mountinfo: string): 'shared' | 'slave' | 'private' | 'absent' {
  const candidates = ['/run/netns', '/var/run/netns', '/run', '/var/run', '/'];
  let best: { rank: number; optional: string[] } | undefined;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const rank = candidates.indexOf(fields[4] ?? '');
    if (rank === -1 || (best !== undefined && best.rank < rank)) continue;
    const sep = fields.indexOf('-');
    best = { rank, optional: fields.slice(6, sep === -1 ? undefined : sep) };
  }
  if (best === undefined) return 'absent';
  if (best.optional.some((f) => f.startsWith('master:'))) return 'slave';
  if (best.optional.some((f) => f.startsWith('shared:'))) return 'shared';
  return 'private';
}

/** The same, read from this process's mountinfo. */
export function currentNetnsMountPropagation(): 'shared' | 'slave' | 'private' | 'absent' {
  try {
    return netnsMountPropagation(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return 'absent';
  }
}

interface IpAddr {
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/** The real port: iproute2 through a {@link Shell}, run from the kubelet's (node's) network namespace. */
export class IpNetns implements NetnsPort {
  constructor(private readonly shell: Shell) {}

  exists(name: string): boolean {
    try {
      // A namespace file is an nsfs bind mount: its device differs from the directory's.
      return statSync(`${NETNS_DIR}/${name}`).dev !== statSync(NETNS_DIR).dev;
    } catch {
      return false;
    }
  }

  async add(name: string): Promise<void> {
    if (this.exists(name)) return;
    // A crash inside `ip netns add` can leave the empty file behind; `ip netns add` refuses it.
    await this.shell.run(['ip', 'netns', 'del', name], { allowFailure: true });
    await this.shell.run(['ip', 'netns', 'add', name]);
  }

  async delete(name: string): Promise<void> {
    const r = await this.shell.run(['ip', 'netns', 'del', name], { allowFailure: true });
    if (r.exitCode !== 0 && this.exists(name)) await this.shell.run(['ip', 'netns', 'del', name]);
  }

  async pids(name: string): Promise<number[]> {
    const r = await this.shell.run(['ip', 'netns', 'pids', name], { allowFailure: true });
    return r.exitCode !== 0 ? [] : r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
  }

  async address(name: string, ifname: string): Promise<{ ip: string; prefixLen: number } | undefined> {
    const r = await this.shell.run(['ip', '-n', name, '-j', 'addr', 'show', 'dev', ifname], { allowFailure: true });
    if (r.exitCode !== 0 || r.stdout.trim() === '') return undefined;
    const links = JSON.parse(r.stdout) as IpAddr[];
    for (const l of links) for (const a of l.addr_info ?? []) if (a.family === 'inet' && a.local !== undefined) return { ip: a.local, prefixLen: a.prefixlen ?? 32 };
    return undefined;
  }

  async finishPodNetwork(name: string, ifname: string, gateway: string | undefined): Promise<void> {
    await this.shell.run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    if (gateway === undefined) return;
    const r = await this.shell.run(['ip', '-n', name, '-j', 'route', 'show', 'default']);
    const routes = r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as unknown[]);
    if (routes.length === 0) await this.shell.run(['ip', '-n', name, 'route', 'add', 'default', 'via', gateway, 'dev', ifname, 'onlink']);
  }
}
