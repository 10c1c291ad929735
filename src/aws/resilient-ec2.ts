/**
 * The call policy around the EC2 port: bounded concurrency, a deadline per attempt (FelixConfiguration
 * `awsRequestTimeout`), and retries with exponential backoff and jitter — for throttling always (a
 * throttled call never ran), for 5xx and timeouts only when the call is safe to repeat
 * ({@link EC2_CALLS}`.retrySafe`). Throttling also closes a shared gate: after `RequestLimitExceeded`
 * every call of this process waits, so a burst of callers does not turn into a retry storm.
 */
import type { Clock } from '../platform/clock.js';
import { isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { classifyAwsError } from './aws-errors.js';
import type { Ec2, Ec2CallOptions } from './ec2-port.js';
import { EC2_CALLS, EC2_METHODS } from './ec2-port.js';

/** Tuning of {@link ResilientEc2}; the defaults suit AWS. */
export interface ResilientEc2Options {
  /** Calls in flight at most (default 8). */
  concurrency?: number;
  /** Deadline of one attempt in ms (default 30,000, Felix's `awsRequestTimeout`); settable later. */
  requestTimeoutMs?: number;
  /** Attempts per call at most, the first included (default 6). */
  maxAttempts?: number;
  /** First backoff after a 5xx/timeout (default 100 ms), doubled per attempt. */
  retryBaseMs?: number;
  /** First backoff after throttling (default 250 ms), doubled per consecutive throttle. */
  throttleBaseMs?: number;
  /** Backoff ceiling (default 20 s). */
  maxBackoffMs?: number;
}

/** Side effects of {@link ResilientEc2}. */
export interface ResilientEc2Deps {
  clock: Clock;
  /** Uniform in [0, 1), for jitter (default Math.random). */
  random?: () => number;
  logger?: Logger;
}

/** Counters since construction. */
export interface ResilientEc2Stats {
  /** Requests sent, by EC2 action (attempts, not calls). */
  sent: Record<string, number>;
  /** Attempts answered with throttling. */
  throttled: number;
  /** Attempts repeated after a 5xx or timeout. */
  retried: number;
  /** Calls that failed for good. */
  failed: number;
}

type AnyMethod = (input: unknown, options?: Ec2CallOptions) => Promise<unknown>;

/**
 * An {@link Ec2} that applies the call policy to another {@link Ec2}. Errors are the inner port's
 * `EgwError`s, thrown once the policy gives up (a terminal error at once).
 */
export class ResilientEc2 implements Ec2 {
  readonly stats: ResilientEc2Stats = { sent: {}, throttled: 0, retried: 0, failed: 0 };
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly throttleBaseMs: number;
  private readonly maxBackoffMs: number;
  private requestTimeoutMs: number;
  private readonly random: () => number;
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  /** Shared throttle gate: no attempt starts before this time. */
  private gateUntil = 0;
  private consecutiveThrottles = 0;

  declare describeInstanceTypes: Ec2['describeInstanceTypes'];
  declare describeNetworkInterfaces: Ec2['describeNetworkInterfaces'];
  declare describeSubnets: Ec2['describeSubnets'];
  declare describeAddresses: Ec2['describeAddresses'];
  declare createNetworkInterface: Ec2['createNetworkInterface'];
  declare attachNetworkInterface: Ec2['attachNetworkInterface'];
  declare setDeleteOnTermination: Ec2['setDeleteOnTermination'];
  declare setSourceDestCheck: Ec2['setSourceDestCheck'];
  declare detachNetworkInterface: Ec2['detachNetworkInterface'];
  declare deleteNetworkInterface: Ec2['deleteNetworkInterface'];
  declare assignPrivateIpAddresses: Ec2['assignPrivateIpAddresses'];
  declare unassignPrivateIpAddresses: Ec2['unassignPrivateIpAddresses'];
  declare associateAddress: Ec2['associateAddress'];
  declare disassociateAddress: Ec2['disassociateAddress'];

  constructor(
    private readonly inner: Ec2,
    private readonly deps: ResilientEc2Deps,
    options: ResilientEc2Options = {},
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 6);
    this.retryBaseMs = options.retryBaseMs ?? 100;
    this.throttleBaseMs = options.throttleBaseMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 20_000;
    this.random = deps.random ?? Math.random;
    const self = this as unknown as Record<keyof Ec2, AnyMethod>;
    for (const method of EC2_METHODS) {
      self[method] = (input: unknown, options?: Ec2CallOptions) => this.call(method, input, options);
    }
  }

  /** Changes the deadline of each attempt (FelixConfiguration `awsRequestTimeout`), from the next attempt on. */
  setRequestTimeoutMs(ms: number): void {
    if (Number.isFinite(ms) && ms > 0) this.requestTimeoutMs = ms;
  }

  private async call(method: keyof Ec2, input: unknown, options: Ec2CallOptions | undefined): Promise<unknown> {
    const info = EC2_CALLS[method];
    const fn = (this.inner[method] as AnyMethod).bind(this.inner);
    for (let attempt = 1; ; attempt++) {
      // The gate is checked again once a slot is had: a throttle may have closed it while this call queued.
      for (;;) {
        await this.waitGate(options?.signal);
        await this.acquire();
        if (this.gateUntil <= this.deps.clock.now()) break;
        this.release();
      }
      let result: { ok: true; value: unknown } | { ok: false; err: unknown };
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(new Error('awsRequestTimeout')), this.requestTimeoutMs);
      const signal = options?.signal === undefined ? timeout.signal : AbortSignal.any([timeout.signal, options.signal]);
      try {
        this.stats.sent[info.action] = (this.stats.sent[info.action] ?? 0) + 1;
        result = { ok: true, value: await fn(input, { signal }) };
      } catch (err) {
        result = { ok: false, err: classifyAwsError(err, info.action, timeout.signal.aborted) };
      } finally {
        clearTimeout(timer);
        this.release();
      }
      if (result.ok) {
        this.consecutiveThrottles = 0;
        return result.value;
      }
      const err = result.err;
      if (options?.signal?.aborted === true) throw err;
      const retry = isEgwError(err) ? err.retry : 'terminal';
      if (retry === 'throttle') {
        this.stats.throttled++;
        this.consecutiveThrottles++;
        // Everyone waits: the bucket is per account and action, so more callers would only be refused too.
        const wait = this.jitter(this.throttleBaseMs * 2 ** Math.min(this.consecutiveThrottles - 1, 16));
        this.gateUntil = Math.max(this.gateUntil, this.deps.clock.now() + wait);
      }
      const again = attempt < this.maxAttempts && (retry === 'throttle' || (retry === 'retry' && info.retrySafe));
      if (!again) {
        this.stats.failed++;
        throw err;
      }
      if (retry === 'retry') {
        this.stats.retried++;
        await this.deps.clock.sleep(this.jitter(this.retryBaseMs * 2 ** (attempt - 1)), options?.signal);
      }
      this.deps.logger?.debug({ action: info.action, attempt, retry }, 'ec2 call retried');
    }
  }

  /** Equal jitter: uniform in [base/2, base], capped, so callers that failed together spread out. */
  private jitter(base: number): number {
    const capped = Math.min(base, this.maxBackoffMs);
    return Math.max(1, Math.round(capped / 2 + this.random() * (capped / 2)));
  }

  private async waitGate(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const wait = this.gateUntil - this.deps.clock.now();
      if (wait <= 0) return;
      await this.deps.clock.sleep(wait, signal);
    }
  }

  private async acquire(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.active--;
  }
}
