/**
 * Builds and removes the lab's kernel state: the namespaces of {@link staticWorld} with their links,
 * addresses, routes and sysctls. ENI links are the fabric driver's; pod namespaces are the kubelets'.
 * Nothing is created in the root namespace: every link is made inside a lab namespace with its peer in
 * another lab namespace.
 */
import { runBatch } from '../linux/iproute/batch.js';
import { NetnsShell } from '../linux/netns.js';
import { sweepTopology } from '../linux/topology/topology.js';
import { EgwError } from '../platform/errors.js';
import type { Shell } from '../platform/shell.js';
import type { NamespaceBuild } from './layout.js';

function check(where: string, failures: readonly { command: { line: string }; message: string }[]): void {
  if (failures.length > 0) {
    throw new EgwError('CommandFailed', `building ${where}: ${failures.map((f) => `${f.command.line}: ${f.message}`).join('; ')}`, { hint: 'run egw lab down, then egw lab up again' });
  }
}

/**
 * Creates the namespaces and their static state, in three rounds (namespaces; links; addresses, state
 * and routes), each round in parallel over namespaces, one `ip -batch` per namespace. Fails with
 * `CommandFailed` when the kernel refuses a line (the caller sweeps).
 */
export async function buildWorld(shell: Shell, builds: readonly NamespaceBuild[]): Promise<void> {
  check('namespaces', await runBatch(shell, 'ip', builds.map((b) => ({ line: `netns add ${b.netns}`, object: b.netns }))));
  await Promise.all(builds.map(async (b) => {
    if (b.sysctls.length > 0) await new NetnsShell(shell, b.netns).run(['sysctl', '-q', '-w', ...b.sysctls]);
  }));
  await Promise.all(builds.map(async (b) => check(b.netns, await runBatch(new NetnsShell(shell, b.netns), 'ip', b.links.map((line) => ({ line, object: b.netns }))))));
  await Promise.all(builds.map(async (b) => check(b.netns, await runBatch(new NetnsShell(shell, b.netns), 'ip', b.config.map((line) => ({ line, object: b.netns }))))));
}

/** The lab's namespaces that exist now (`<prefix>-*`). */
export async function labNamespaces(shell: Shell, prefix: string): Promise<string[]> {
  const list = await shell.run(['ip', 'netns', 'list']);
  return list.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
}

/**
 * Removes every namespace of the prefix and every process inside them (the topology helper's sweep:
 * SIGKILL to the namespaces' processes, then `ip netns del`), plus the helper's temp dir. Idempotent.
 */
export async function sweepWorld(shell: Shell, prefix: string): Promise<{ namespaces: string[]; killedPids: number[] }> {
  const report = await sweepTopology(prefix, { shell });
  // A namespace whose processes were still exiting may survive one round; a second one finishes it.
  const left = await labNamespaces(shell, prefix);
  if (left.length > 0) {
    await new Promise((r) => setTimeout(r, 200));
    const again = await sweepTopology(prefix, { shell });
    report.namespaces.push(...again.namespaces.filter((n) => !report.namespaces.includes(n)));
    report.killedPids.push(...again.killedPids);
  }
  return report;
}
