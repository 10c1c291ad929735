/**
 * CNI as a container runtime drives it: the network configuration on stdin, `CNI_COMMAND`,
 * `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_PATH`, `CNI_ARGS` in the environment, the main plugin
 * (Debian's `ptp`) found in `CNI_PATH`, run in the kubelet's network namespace (the node's), so the
 * host end of the veth lands on the node. `egw-ipam` is reached through `CNI_PATH` like any IPAM plugin.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgwError } from '../../platform/errors.js';
import type { Shell } from '../../platform/shell.js';

/** Calico's network name: the IPAM handle of a pod is `<network name>.<sandbox ID>`. */
export const DEFAULT_NETWORK_NAME = 'k8s-pod-network';

/** The pod a CNI call is about. */
export interface CniPodArgs {
  containerId: string;
  /** The namespace's path, `/var/run/netns/<name>`. */
  netnsPath: string;
  ifname: string;
  podNamespace: string;
  podName: string;
  podUid: string;
  /** The ADD result, passed to DEL as `prevResult` (the spec asks runtimes to; plugins may ignore it). */
  prevResult?: Record<string, unknown> | undefined;
}

/** What ADD gave the pod. */
export interface CniAddResult {
  ip: string;
  prefixLen: number;
  gateway: string | undefined;
  raw: Record<string, unknown>;
}

/** ADD and DEL. */
export interface CniPort {
  /** Throws `CommandFailed` carrying the plugin's error (`code`, `msg`, `details`). */
  add(args: CniPodArgs): Promise<CniAddResult>;
  /** Idempotent (DEL of something gone succeeds); throws `CommandFailed` when the plugin fails. */
  del(args: CniPodArgs): Promise<void>;
}

/**
 * The network configuration the kubelet uses: `base` (from `--cni-conf`), else a ptp network named
 * {@link DEFAULT_NETWORK_NAME} with CNI 1.0.0; `ipam.type` defaults to `egw-ipam`, and `ipam.datastore`
 * / `ipam.nodeName` are filled in when absent (an explicit value wins). Pure.
 */
/**
 * The pods' on-link gateway in the lab, which ptp puts on the host end of every pod's veth. Calico (and
 * egw-ipam's default) use 169.254.1.1; the lab keeps every address in its allowed ranges, so it uses the
 * last address of the shared range 100.64.0.0/10, which no lab network uses.
 */
export const LAB_POD_GATEWAY = '100.127.255.254';

export function kubeletCniConfig(base: Record<string, unknown> | undefined, fill: { datastore: string; nodeName: string }): Record<string, unknown> {
  const conf: Record<string, unknown> = base === undefined ? { cniVersion: '1.0.0', name: DEFAULT_NETWORK_NAME, type: 'ptp' } : structuredClone(base);
  const ipam = typeof conf['ipam'] === 'object' && conf['ipam'] !== null ? { ...(conf['ipam'] as Record<string, unknown>) } : {};
  ipam['type'] ??= 'egw-ipam';
  if (ipam['type'] === 'egw-ipam') {
    ipam['datastore'] ??= fill.datastore;
    ipam['nodeName'] ??= fill.nodeName;
    ipam['gateway'] ??= LAB_POD_GATEWAY;
  }
  conf['ipam'] = ipam;
  return conf;
}

/** Checks the shape a single-plugin network configuration must have. Throws `InvalidInput`. */
export function checkCniConfig(conf: Record<string, unknown>): { name: string; type: string } {
  const name = conf['name'];
  const type = conf['type'];
  if (typeof name !== 'string' || name === '' || typeof type !== 'string' || type === '' || typeof conf['cniVersion'] !== 'string') {
    throw new EgwError('InvalidInput', 'the CNI network configuration needs "cniVersion", "name" and "type" (one plugin; conflists are not supported)', { hint: 'e.g. {"cniVersion":"1.0.0","name":"k8s-pod-network","type":"ptp","ipam":{"type":"egw-ipam"}}' });
  }
  return { name, type };
}

/** The first IP of an ADD result (CNI 0.3.0 and later). Pure. */
export function parseAddResult(stdout: string): CniAddResult {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    throw new EgwError('CommandFailed', `CNI ADD printed no result: ${stdout.slice(0, 200)}`);
  }
  const ips = Array.isArray(raw['ips']) ? (raw['ips'] as Record<string, unknown>[]) : [];
  const first = ips.find((i) => typeof i['address'] === 'string' && !String(i['address']).includes(':'));
  const m = first === undefined ? null : /^([0-9.]+)\/(\d+)$/.exec(String(first['address']));
  if (first === undefined || m === null) throw new EgwError('CommandFailed', `CNI ADD returned no IPv4 address: ${stdout.slice(0, 200)}`);
  return { ip: m[1]!, prefixLen: Number(m[2]), gateway: typeof first['gateway'] === 'string' ? first['gateway'] : undefined, raw };
}

/**
 * Writes the `egw-ipam` plugin into `dir` as a small script that runs `egwIpamMain` with `node` (so the
 * plugin works whatever node is on PATH and whatever the file's mode), and returns `dir`.
 */
export function installEgwIpam(dir: string, nodeBinary: string, egwIpamMain: string): string {
  mkdirSync(dir, { recursive: true });
  const quote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;
  const file = join(dir, 'egw-ipam');
  writeFileSync(file, `#!/bin/sh\nexec ${quote(nodeBinary)} ${quote(egwIpamMain)} "$@"\n`);
  chmodSync(file, 0o755);
  return dir;
}

/** The real port: runs the main plugin found in `pluginDirs`. */
export class ExecCni implements CniPort {
  private readonly type: string;

  constructor(
    private readonly shell: Shell,
    private readonly conf: Record<string, unknown>,
    private readonly pluginDirs: readonly string[],
    private readonly timeoutMs = 60_000,
  ) {
    this.type = checkCniConfig(conf).type;
  }

  private plugin(): string {
    for (const d of this.pluginDirs) {
      const p = join(d, this.type);
      if (existsSync(p)) return p;
    }
    throw new EgwError('CommandFailed', `CNI plugin ${this.type} not found in ${this.pluginDirs.join(':')}`, { hint: 'install containernetworking-plugins (Debian) or pass --cni-bin-dir' });
  }

  private async call(command: 'ADD' | 'DEL', args: CniPodArgs): Promise<string> {
    const r = await this.shell.run([this.plugin()], {
      input: JSON.stringify(command === 'DEL' && args.prevResult !== undefined ? { ...this.conf, prevResult: args.prevResult } : this.conf),
      env: {
        CNI_COMMAND: command,
        CNI_CONTAINERID: args.containerId,
        CNI_NETNS: args.netnsPath,
        CNI_IFNAME: args.ifname,
        CNI_PATH: this.pluginDirs.join(':'),
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${args.podNamespace};K8S_POD_NAME=${args.podName};K8S_POD_INFRA_CONTAINER_ID=${args.containerId};K8S_POD_UID=${args.podUid}`,
      },
      timeoutMs: this.timeoutMs,
      allowFailure: true,
    });
    if (r.exitCode !== 0) {
      let detail = r.stdout.trim() === '' ? r.stderr.trim() : r.stdout.trim();
      try {
        const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
        detail = `${e.msg ?? 'error'} (code ${String(e.code)})${e.details === undefined || e.details === '' ? '' : `: ${e.details}`}`;
      } catch {
        // Not a CNI error object: keep the raw output.
      }
      throw new EgwError('CommandFailed', `CNI ${command} failed: ${detail}`, { details: { command, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr } });
    }
    return r.stdout;
  }

  async add(args: CniPodArgs): Promise<CniAddResult> {
    return parseAddResult(await this.call('ADD', args));
  }

  async del(args: CniPodArgs): Promise<void> {
    await this.call('DEL', args);
  }
}
