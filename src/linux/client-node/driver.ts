import type { Shell } from '../../platform/shell.js';
import type { BatchCommand, BatchFailure } from '../iproute/batch.js';
import { runBatch } from '../iproute/batch.js';
import { parseAddresses, parseFdb, parseLinks, parseNeighbours, parseNexthops, parseRoutes, parseRules } from '../iproute/parse.js';
import { applyNftPlan, readNftTable } from '../nft/nft-table.js';
import { EGW_NFT_TABLE, EGW_VXLAN_DEVICE } from '../ownership.js';
import { ifaceSysctlKey, readSysctl, writeSysctls } from '../sysctl.js';
import type { ClientNodeObserved, ClientNodePlan, Problem, TableAssignment } from './plan.js';
import { isEmptyPlan, planClientNode } from './plan.js';
import type { ClientNodeConfig, ClientNodeState } from './types.js';
import { DEFAULT_CLIENT_NODE_CONFIG } from './types.js';

/** The outcome of one {@link applyClientNode}. */
export interface ClientNodeApplyResult {
  /** True when anything was changed in the kernel. */
  changed: boolean;
  /** Number of kernel commands executed (batch lines, sysctls, nft transactions). */
  commands: number;
  /** Lines the kernel refused, with the desired object they belong to. Other objects were applied. */
  failures: BatchFailure[];
  /** Desired objects that could not be planned (tables exhausted, gateway pod interface missing). */
  problems: Problem[];
  /** Table per set of clients, as programmed. */
  assignments: TableAssignment[];
}

async function ipJson(shell: Shell, args: readonly string[]): Promise<string> {
  const r = await shell.run(['ip', '-json', '-N', ...args], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (/does not exist|Cannot find device/.test(r.stderr)) return '[]';
    // Re-run without allowFailure to get the standard CommandFailed error with stderr.
    await shell.run(['ip', '-json', '-N', ...args]);
  }
  return r.stdout;
}

/**
 * Reads everything the client-node driver needs from the namespace `shell` runs in: egw.vxlan with its
 * neighbours and FDB, every nexthop, route, rule, the two sysctls, and egw's nft table. Read-only.
 */
export async function readClientNode(shell: Shell): Promise<ClientNodeObserved> {
  const dev = EGW_VXLAN_DEVICE;
  const [linkText, hashPolicy, nhText, routeText, ruleText, nft] = await Promise.all([
    ipJson(shell, ['-details', 'link', 'show', 'dev', dev]),
    readSysctl(shell, 'net.ipv4.fib_multipath_hash_policy'),
    ipJson(shell, ['nexthop', 'show']),
    ipJson(shell, ['-4', 'route', 'show', 'table', 'all']),
    ipJson(shell, ['-4', 'rule', 'show']),
    readNftTable(shell, EGW_NFT_TABLE),
  ]);
  const link = parseLinks(linkText).find((l) => l.name === dev);
  let rpFilter: number | undefined;
  let neighText = '[]';
  let fdbText = '[]';
  let addrText = '[]';
  if (link !== undefined) {
    [rpFilter, addrText, neighText, fdbText] = await Promise.all([
      readSysctl(shell, ifaceSysctlKey(dev, 'rp_filter')),
      ipJson(shell, ['-4', 'addr', 'show', 'dev', dev]),
      ipJson(shell, ['-4', 'neigh', 'show', 'dev', dev]),
      shell.run(['bridge', '-json', 'fdb', 'show', 'dev', dev]).then((r) => r.stdout),
    ]);
  }
  return {
    link,
    addresses: parseAddresses(addrText),
    hashPolicy,
    rpFilter,
    neighbours: parseNeighbours(neighText),
    fdb: parseFdb(fdbText),
    nexthops: parseNexthops(nhText),
    routes: parseRoutes(routeText),
    rules: parseRules(ruleText),
    nft,
  };
}

async function execute(shell: Shell, plan: ClientNodePlan, failures: BatchFailure[]): Promise<number> {
  let commands = 0;
  const ip = async (lines: BatchCommand[]): Promise<void> => {
    commands += lines.length;
    failures.push(...(await runBatch(shell, 'ip', lines)));
  };
  const bridge = async (lines: BatchCommand[]): Promise<void> => {
    commands += lines.length;
    failures.push(...(await runBatch(shell, 'bridge', lines)));
  };
  // Order (docs/linux-dataplane.md): fail-closed interlock, the nft table (its VXLAN source filter goes
  // in before the tunnel can receive), VTEP, its FDB, then neighbours → nexthops → groups → routes →
  // rules, then removals in reverse, the device last. Deleting the table waits until the device is gone.
  await ip(plan.interlock);
  const nftFirst = plan.nft.kind !== 'delete';
  if (nftFirst && (await applyNftPlan(shell, plan.nft))) commands++;
  await ip(plan.link);
  if (plan.recreateVtep) return commands;
  commands += plan.sysctls.length;
  await writeSysctls(shell, plan.sysctls);
  await bridge(plan.fdbAdd);
  await ip(plan.ip);
  await bridge(plan.fdbDel);
  await ip(plan.linkDel);
  if (!nftFirst && (await applyNftPlan(shell, plan.nft))) commands++;
  return commands;
}

/**
 * Converges a node's namespace to `desired`: reads the kernel, plans the minimal change
 * ({@link planClientNode}) and executes it through `shell` (`ip -batch`, `bridge -batch`, `sysctl`,
 * one `nft -f` transaction). Level-triggered and idempotent: applying the same state again executes
 * nothing. Keeps no memory between calls, so a restarted agent converges from whatever it finds.
 * Touches only what src/linux/ownership.ts marks as egw's. A kernel refusal of one line is reported in
 * `failures` and does not stop the other lines; the next apply retries it.
 */
export async function applyClientNode(
  shell: Shell,
  desired: ClientNodeState,
  config: ClientNodeConfig = DEFAULT_CLIENT_NODE_CONFIG,
): Promise<ClientNodeApplyResult> {
  const failures: BatchFailure[] = [];
  let commands = 0;
  let plan = planClientNode(desired, await readClientNode(shell), config);
  if (plan.recreateVtep) {
    // The interlock and the device removal ran; what the kernel cascaded away is read back, not guessed.
    commands += await execute(shell, plan, failures);
    plan = planClientNode(desired, await readClientNode(shell), config);
  }
  const changed = commands > 0 || !isEmptyPlan(plan);
  commands += await execute(shell, plan, failures);
  return { changed, commands, failures, problems: plan.problems, assignments: plan.assignments };
}
