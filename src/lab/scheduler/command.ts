import type { Command } from 'commander';
import { openDatastore } from '../../datastore/open.js';
import { parseGatewayDuration } from '../../gateway/config.js';
import { EgwError } from '../../platform/errors.js';
import { createLogger } from '../../platform/logger.js';
import { LabScheduler } from './scheduler.js';

/** A duration flag (`40s`, `500ms`, `1m`, a bare number of seconds; `0` allowed) in ms. */
export function durationFlag(flag: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  if (value.trim() === '0') return 0;
  const ms = parseGatewayDuration(value);
  if (ms === undefined || ms < 0) throw new EgwError('InvalidInput', `${flag} "${value}" is not a duration`, { hint: 'write it as 40s, 500ms, 1m or a number of seconds' });
  return ms;
}

/** Resolves on SIGTERM or SIGINT with the signal's name. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

/**
 * Mounts `egw lab scheduler` under the given `lab` command: the lab's one scheduler, binding pending pods
 * to nodes (docs/lab-kubelet.md). It uses the global `--datastore` (or EGW_DATASTORE) and runs until
 * SIGTERM/SIGINT. Flags: `--node-ready-grace` (default 40s; 0 = ignore node readiness),
 * `--resync-interval` (default 5s).
 */
export function registerLabSchedulerCommand(lab: Command): void {
  lab
    .command('scheduler')
    .description("the lab's scheduler: binds pending pods to nodes as Kubernetes' default scheduler does (resources, selectors, taints, affinity, topology spread)")
    .option('--node-ready-grace <duration>', "a node whose kubelet heartbeat is older than this is unreachable; 0 = don't check", '40s')
    .option('--resync-interval <duration>', 'schedule at least this often', '5s')
    .action(async (flags: { nodeReadyGrace?: string; resyncInterval?: string }, cmd: Command) => {
      const nodeReadyGraceMs = durationFlag('--node-ready-grace', flags.nodeReadyGrace, 40_000);
      const resyncIntervalMs = Math.max(100, durationFlag('--resync-interval', flags.resyncInterval, 5_000));
      const logger = createLogger({ component: 'lab-scheduler' });
      const { datastore } = cmd.optsWithGlobals<{ datastore?: string }>();
      const store = await openDatastore(datastore);
      const scheduler = new LabScheduler({ store, logger }, { nodeReadyGraceMs, resyncIntervalMs });
      try {
        scheduler.start();
        logger.info({ datastore: store.location, nodeReadyGraceMs, resyncIntervalMs }, 'scheduler started');
        const signal = await untilSignal();
        logger.info({ signal }, 'scheduler stopping');
      } finally {
        await scheduler.stop();
        await store.close();
      }
    });
}
