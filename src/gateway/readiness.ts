/**
 * The gateway's readiness, as a pure state machine: facts go in with the time they were observed,
 * `evaluate(now)` says ready or not and why. No clock, no I/O (the process feeds it).
 *
 * Rules (Calico's operator API and AWS page, docs/gateway.md):
 * - **Probes.** Per kind (ICMP, HTTP) that has targets: the kind passes while some target of it has
 *   answered within the last `timeoutMs` ("not-ready if no probe succeeds for timeoutSeconds"). With both
 *   kinds configured, both must pass (at least one target of each kind). A kind that has never answered
 *   since start does not pass: a gateway that cannot reach its probe targets takes no traffic.
 * - **Datastore.** Passes while the datastore was reached within `datastoreTimeoutMs`
 *   (`healthTimeoutDataStoreSeconds`); not before the first contact.
 * - **Data plane.** Passes once the pod's tunnel, filter and SNAT are programmed without failure.
 * - **Shutdown.** Never ready again after `shutdown()`.
 */

/** The probe kinds. */
export type ProbeKind = 'icmp' | 'http';

/** What the state machine needs to know about the configuration. */
export interface ReadinessConfig {
  icmp?: { timeoutMs: number } | undefined;
  http?: { timeoutMs: number } | undefined;
  datastoreTimeoutMs: number;
}

/** One check's verdict in a report. */
export interface CheckReport {
  ok: boolean;
  /** Why it fails; absent when ok. */
  reason?: string;
}

/** The answer of `/readiness`. */
export interface ReadinessReport {
  ready: boolean;
  /** The reasons of every failing check, in a fixed order. */
  reasons: string[];
  checks: { dataplane: CheckReport; datastore: CheckReport; icmp?: CheckReport; http?: CheckReport; shutdown: CheckReport };
}

/** An elapsed time, to a tenth of a second. */
function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** A configured duration, as short as it goes. */
function limit(ms: number): string {
  return `${ms / 1000}s`;
}

/** The readiness state machine (see the module comment). */
export class ReadinessState {
  private readonly lastSuccess: Partial<Record<ProbeKind, number>> = {};
  private readonly lastFailure: Partial<Record<ProbeKind, { target: string; detail: string }>> = {};
  private lastContact: number | undefined;
  private lastContactError: string | undefined;
  private dataplane: CheckReport = { ok: false, reason: 'data plane not programmed yet' };
  private stopping = false;

  constructor(private readonly config: ReadinessConfig) {}

  /** Records one probe of one target. */
  probe(kind: ProbeKind, target: string, ok: boolean, at: number, detail = 'no answer'): void {
    if (ok) {
      const prev = this.lastSuccess[kind];
      if (prev === undefined || at > prev) this.lastSuccess[kind] = at;
    } else {
      this.lastFailure[kind] = { target, detail };
    }
  }

  /** Records an attempt to reach the datastore. */
  datastore(ok: boolean, at: number, error?: string): void {
    if (ok) {
      if (this.lastContact === undefined || at > this.lastContact) this.lastContact = at;
      this.lastContactError = undefined;
    } else {
      this.lastContactError = error ?? 'unreachable';
    }
  }

  /** Records the outcome of programming the pod's data plane. */
  setDataplane(ok: boolean, reason?: string): void {
    this.dataplane = ok ? { ok: true } : { ok: false, reason: reason ?? 'data plane not programmed' };
  }

  /** The process is going away: not ready from now on. */
  shutdown(): void {
    this.stopping = true;
  }

  private kind(kind: ProbeKind, now: number): CheckReport | undefined {
    const c = this.config[kind];
    if (c === undefined) return undefined;
    const last = this.lastSuccess[kind];
    const fail = this.lastFailure[kind];
    const why = fail === undefined ? '' : ` (last failure: ${fail.target}: ${fail.detail})`;
    if (last === undefined) return { ok: false, reason: `${kind} probes: no target has answered yet${why}` };
    const age = now - last;
    if (age > c.timeoutMs) return { ok: false, reason: `${kind} probes: no target answered for ${seconds(age)} (timeout ${limit(c.timeoutMs)})${why}` };
    return { ok: true };
  }

  /** The verdict at `now`. */
  evaluate(now: number): ReadinessReport {
    const datastore: CheckReport =
      this.lastContact === undefined
        ? { ok: false, reason: `datastore not reached yet${this.lastContactError === undefined ? '' : `: ${this.lastContactError}`}` }
        : now - this.lastContact > this.config.datastoreTimeoutMs
          ? { ok: false, reason: `datastore not reached for ${seconds(now - this.lastContact)} (timeout ${limit(this.config.datastoreTimeoutMs)})${this.lastContactError === undefined ? '' : `: ${this.lastContactError}`}` }
          : { ok: true };
    const icmp = this.kind('icmp', now);
    const http = this.kind('http', now);
    const shutdown: CheckReport = this.stopping ? { ok: false, reason: 'shutting down' } : { ok: true };
    const checks: ReadinessReport['checks'] = {
      dataplane: this.dataplane,
      datastore,
      ...(icmp === undefined ? {} : { icmp }),
      ...(http === undefined ? {} : { http }),
      shutdown,
    };
    const reasons = [shutdown, this.dataplane, datastore, icmp, http].flatMap((c) => (c === undefined || c.ok || c.reason === undefined ? [] : [c.reason]));
    return { ready: reasons.length === 0, reasons, checks };
  }
}
