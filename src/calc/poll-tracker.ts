/**
 * The client node's verdict on each remote gateway from its own health polls
 * (FelixConfiguration `egressGatewayPollInterval` / `egressGatewayPollFailureCount`). Pure state machine:
 * no clock, no I/O — the agent polls on its timer and reports each result here.
 */
import type { GatewayHealth, PollTarget } from './types.js';

interface Entry {
  ip: string;
  failures: number;
  verdict: boolean | undefined;
}

/**
 * Tracks poll results per gateway:
 * - a gateway nobody has polled yet has no verdict (calc then trusts the datastore's readiness);
 * - one successful poll → up; `failureCount` consecutive failures → down (the count restarts on success);
 * - a result for another address than the one tracked (the pod was re-created) starts afresh.
 *
 * `record` returns the new verdict when it changed (feed it to the calculator's `setGatewayHealth`),
 * `retain` forgets gateways that are no longer polled (feed the returned keys to `clearGatewayHealth`).
 */
export class PollTracker {
  private readonly entries = new Map<string, Entry>();
  private failureCount: number;

  /** `failureCount`: FelixConfiguration `egressGatewayPollFailureCount` (at least 1). */
  constructor(failureCount: number) {
    this.failureCount = Math.max(1, Math.floor(failureCount));
  }

  /** Changes the failure count; current failure streaks are judged against the new count at their next result. */
  setFailureCount(failureCount: number): void {
    this.failureCount = Math.max(1, Math.floor(failureCount));
  }

  /**
   * Records one poll of `target` (`ok`: the readiness endpoint answered 200 in time). Returns the
   * verdict when it changed (also the first verdict), else undefined.
   */
  record(target: Pick<PollTarget, 'gateway' | 'ip'>, ok: boolean): GatewayHealth | undefined {
    let e = this.entries.get(target.gateway);
    if (e === undefined || e.ip !== target.ip) {
      e = { ip: target.ip, failures: 0, verdict: undefined };
      this.entries.set(target.gateway, e);
    }
    const before = e.verdict;
    if (ok) {
      e.failures = 0;
      e.verdict = true;
    } else {
      e.failures++;
      if (e.failures >= this.failureCount) e.verdict = false;
    }
    return e.verdict !== before && e.verdict !== undefined ? { gateway: target.gateway, ip: e.ip, up: e.verdict } : undefined;
  }

  /** The verdict on a gateway at `ip`, or undefined when there is none yet. */
  verdict(gateway: string, ip: string): boolean | undefined {
    const e = this.entries.get(gateway);
    return e === undefined || e.ip !== ip ? undefined : e.verdict;
  }

  /** Every verdict, sorted by gateway (gateways without one are left out). */
  verdicts(): GatewayHealth[] {
    return [...this.entries]
      .filter(([, e]) => e.verdict !== undefined)
      .map(([gateway, e]) => ({ gateway, ip: e.ip, up: e.verdict === true }))
      .sort((a, b) => (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0));
  }

  /**
   * Forgets every gateway that is not among `targets` (or is at another address now); returns the
   * gateways whose verdict was dropped, sorted.
   */
  retain(targets: readonly Pick<PollTarget, 'gateway' | 'ip'>[]): string[] {
    const keep = new Map(targets.map((t) => [t.gateway, t.ip]));
    const dropped: string[] = [];
    for (const [gateway, e] of this.entries) {
      if (keep.get(gateway) === e.ip) continue;
      this.entries.delete(gateway);
      if (e.verdict !== undefined) dropped.push(gateway);
    }
    return dropped.sort();
  }
}
