/**
 * The client node's health polls of remote gateways (FelixConfiguration `egressGatewayPollInterval`):
 * one loop per gateway, each poll with a short timeout, all bounded by a concurrency limit. The verdict
 * (up / down after N failures) is calc's {@link PollTracker}'s business; this module only polls on time
 * and reports every outcome.
 */
import type { PollTarget } from '../calc/index.js';
import type { Clock } from '../platform/clock.js';

/** How one poll ended. `not-ready`: the gateway answered, but not 200; others: no answer in time. */
export type PollOutcome = { ok: true } | { ok: false; reason: 'not-ready' | 'timeout' | 'error'; detail?: string };

/** `GET http://<ip>:<port>/readiness` (the real one is {@link HttpReadinessProbe}). */
export interface ReadinessProbe {
  /** Resolves within about `timeoutMs` with the outcome; never rejects. */
  check(target: { ip: string; port: number }, timeoutMs: number): Promise<PollOutcome>;
}

/** What {@link GatewayPoller} needs. */
export interface GatewayPollerDeps {
  clock: Clock;
  probe: ReadinessProbe;
}

/** Poll timing, changeable at runtime (FelixConfiguration may change). */
export interface PollTiming {
  intervalMs: number;
  timeoutMs: number;
}

/** Resolves once; lets a loop wait on "time passed or I was cancelled". */
class Cancel {
  cancelled = false;
  /** Aborted on cancel, so that a real timer does not outlive its loop. */
  readonly controller = new AbortController();
  private resolveFn: (() => void) | undefined;
  readonly promise = new Promise<void>((r) => (this.resolveFn = r));
  cancel(): void {
    this.cancelled = true;
    this.controller.abort();
    this.resolveFn?.();
  }
}

/** A counting semaphore: at most `limit` probes in flight. */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

interface Loop {
  target: PollTarget;
  cancel: Cancel;
  done: Promise<void>;
}

/**
 * Polls every target every `intervalMs` (measured from the start of the previous poll, so a slow answer
 * does not stretch the period), at most `concurrency` at once. A new target is polled at once. `update`
 * replaces the set: removed targets stop, a target whose address or port changed starts afresh.
 * `onResult` is called for every completed poll of a current target.
 *
 * Each poll may take `timeoutMs`, or longer while answers are slow: the deadline is at least three times
 * the slowest recent successful answer (a decaying maximum over all targets), never more than the
 * interval. On a loaded node, where healthy gateways answer late, a poll is then not failed for the
 * node's own slowness — a false "down" would move every flow of a healthy gateway — while a silent
 * gateway on a healthy node is still declared failed after `timeoutMs`.
 */
export class GatewayPoller {
  private readonly loops = new Map<string, Loop>();
  private readonly limiter: Limiter;
  private timing: PollTiming = { intervalMs: 10_000, timeoutMs: 2_000 };
  private stopped = false;
  /** Decaying maximum of recent successful answer times (ms). */
  private slowAnswerMs = 0;

  constructor(
    private readonly deps: GatewayPollerDeps,
    private readonly onResult: (target: PollTarget, outcome: PollOutcome) => void,
    options: { concurrency?: number } = {},
  ) {
    this.limiter = new Limiter(Math.max(1, options.concurrency ?? 32));
  }

  /** The deadline a poll gets now (see the class comment). */
  effectiveTimeoutMs(): number {
    const { intervalMs, timeoutMs } = this.timing;
    return Math.max(timeoutMs, Math.min(intervalMs, Math.ceil(3 * this.slowAnswerMs)));
  }

  /** The gateways being polled, sorted. */
  targets(): PollTarget[] {
    return [...this.loops.values()].map((l) => l.target).sort((a, b) => (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0));
  }

  /** Sets the targets and the timing. Idempotent. */
  update(targets: readonly PollTarget[], timing: PollTiming): void {
    if (this.stopped) return;
    this.timing = { intervalMs: Math.max(1, timing.intervalMs), timeoutMs: Math.max(1, timing.timeoutMs) };
    const wanted = new Map(targets.map((t) => [t.gateway, t]));
    for (const [key, loop] of this.loops) {
      const t = wanted.get(key);
      if (t === undefined || t.ip !== loop.target.ip || t.port !== loop.target.port) {
        loop.cancel.cancel();
        this.loops.delete(key);
      }
    }
    for (const t of wanted.values()) {
      if (this.loops.has(t.gateway)) continue;
      const cancel = new Cancel();
      const loop: Loop = { target: { ...t }, cancel, done: Promise.resolve() };
      loop.done = this.run(loop);
      this.loops.set(t.gateway, loop);
    }
  }

  /** Stops every loop; resolves when no poll is in flight any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    const loops = [...this.loops.values()];
    this.loops.clear();
    for (const l of loops) l.cancel.cancel();
    await Promise.all(loops.map((l) => l.done));
  }

  private async run(loop: Loop): Promise<void> {
    const { clock, probe } = this.deps;
    while (!loop.cancel.cancelled) {
      const started = clock.now();
      const outcome = await this.limiter.run(async () => {
        if (loop.cancel.cancelled) return undefined;
        const sent = clock.now();
        const o = await probe.check(loop.target, this.effectiveTimeoutMs());
        // Each success sets the estimate if slower; it decays by a tenth per answer otherwise.
        if (o.ok) this.slowAnswerMs = Math.max(clock.now() - sent, this.slowAnswerMs * 0.9);
        return o;
      });
      if (loop.cancel.cancelled || outcome === undefined) return;
      this.onResult(loop.target, outcome);
      const wait = Math.max(0, started + this.timing.intervalMs - clock.now());
      await Promise.race([clock.sleep(wait, loop.cancel.controller.signal).catch(() => undefined), loop.cancel.promise]);
    }
  }
}
