import type { Shell } from '../platform/shell.js';

/** A kernel setting to write: `sysctl -w key=value`. */
export interface SysctlSetting {
  key: string;
  value: number;
}

/**
 * The sysctl key of a per-interface IPv4 setting. sysctl(8) separates path components with dots, so a
 * dot inside an interface name (`egw.vxlan`) is written as a slash.
 */
export function ifaceSysctlKey(ifname: string, setting: string): string {
  return `net.ipv4.conf.${ifname.replaceAll('.', '/')}.${setting}`;
}

/** Reads a numeric sysctl; undefined when the key does not exist (e.g. the interface is missing). */
export async function readSysctl(shell: Shell, key: string): Promise<number | undefined> {
  const r = await shell.run(['sysctl', '-n', key], { allowFailure: true });
  if (r.exitCode !== 0) return undefined;
  const v = Number(r.stdout.trim());
  return Number.isFinite(v) ? v : undefined;
}

/** Writes sysctls in one `sysctl -w` invocation. Throws `CommandFailed` when one cannot be written. */
export async function writeSysctls(shell: Shell, settings: readonly SysctlSetting[]): Promise<void> {
  if (settings.length === 0) return;
  await shell.run(['sysctl', '-q', '-w', ...settings.map((s) => `${s.key}=${s.value}`)]);
}
