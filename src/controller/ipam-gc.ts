/**
 * The controller's IPAM garbage-collection loop: one {@link runIpamGcPass} every `interval` (default half
 * the grace period, as Calico's kube-controllers), on an injected clock. The controller process composes it
 * (`new IpamGcLoop(deps, options).run(signal)`); `egw ipam gc` runs a single pass instead.
 */
import type { Datastore } from '../datastore/contract.js';
import type { GcReport } from '../ipam/gc.js';
import { runIpamGcPass } from '../ipam/gc.js';
import type { Clock } from '../platform/clock.js';
import { runEvery } from '../platform/clock.js';
import { errorMessage } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';

/** Calico's default leak grace period (kube-controllers `leakGracePeriod`). */
export const DEFAULT_IPAM_GC_GRACE_MS = 15 * 60_000;

export interface IpamGcLoopDeps {
  store: Datastore;
  clock: Clock;
  logger?: Logger;
}

export interface IpamGcLoopOptions {
  /** Leak grace period (default 15 minutes). */
  graceMs?: number;
  /** Time between passes (default graceMs / 2, at least 1 s). */
  intervalMs?: number;
  /** Releases per pass at most (default 1,000). */
  maxReleases?: number;
  /** Called after every pass (for status and metrics). */
  onPass?: (report: GcReport) => void;
}

/** Runs GC passes until stopped. A failed pass is logged and the loop goes on at the next interval. */
export class IpamGcLoop {
  private readonly graceMs: number;
  private readonly intervalMs: number;

  constructor(private readonly deps: IpamGcLoopDeps, private readonly options: IpamGcLoopOptions = {}) {
    this.graceMs = options.graceMs ?? DEFAULT_IPAM_GC_GRACE_MS;
    this.intervalMs = options.intervalMs ?? Math.max(1_000, Math.floor(this.graceMs / 2));
  }

  /** One pass now. Errors: the datastore's. */
  async runOnce(): Promise<GcReport> {
    const report = await runIpamGcPass(this.deps.store, {
      now: this.deps.clock.now(),
      graceMs: this.graceMs,
      ...(this.options.maxReleases === undefined ? {} : { maxReleases: this.options.maxReleases }),
    });
    if (report.released.length > 0 || report.repaired.length > 0 || report.blocks.length > 0) {
      this.deps.logger?.info(
        { released: report.released.length, repaired: report.repaired.length, blocks: report.blocks.length, marked: report.marked.length, waiting: report.waiting.length },
        'ipam gc pass',
      );
    }
    for (const f of report.unrepairable) this.deps.logger?.warn({ kind: f.kind, detail: f.message }, 'ipam inconsistency gc cannot repair');
    this.options.onPass?.(report);
    return report;
  }

  /** Passes every interval until `signal` aborts; resolves then. */
  async run(signal: AbortSignal): Promise<void> {
    await runEvery(this.deps.clock, this.intervalMs, signal, () => this.runOnce(), (err) =>
      this.deps.logger?.error({ err: errorMessage(err) }, 'ipam gc pass failed'),
    );
  }
}
