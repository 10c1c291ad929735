import { awsErrors, type Ec2ApiError } from './api-error.js';
import type { Random } from './prng.js';
import type { InjectedFailure, LatencySpec, SimSettings } from './world.js';

/** Samples a delay: the fixed part plus a uniform share of the jitter. */
export function sampleLatency(spec: LatencySpec, random: Random): number {
  return spec.fixedMs + (spec.jitterMs > 0 ? random.next() * spec.jitterMs : 0);
}

/**
 * The IAM allow-list: `ec2:Action` patterns with `*` and `?` wildcards (IAM action names are
 * case-insensitive). An absent list allows everything.
 */
export class AllowList {
  private readonly patterns: RegExp[] | undefined;

  constructor(allow: readonly string[] | undefined) {
    this.patterns = allow?.map((p) => {
      const full = p.includes(':') || p === '*' ? p : `ec2:${p}`;
      const re = full.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
      return new RegExp(`^${re}$`, 'i');
    });
  }

  allows(action: string): boolean {
    return this.patterns === undefined || this.patterns.some((p) => p.test(`ec2:${action}`));
  }
}

/**
 * The UnauthorizedOperation AWS returns for a denied action. AWS encodes the authorization context
 * (decodable with sts:DecodeAuthorizationMessage); the emulator encodes a small JSON of the same
 * facts in base64url, so the message keeps AWS's shape and stays readable.
 */
export function unauthorized(action: string, principal: string, region: string, accountId: string): Ec2ApiError {
  const context = {
    allowed: false,
    explicitDeny: false,
    context: { principal, action: `ec2:${action}`, resource: `arn:aws:ec2:${region}:${accountId}:*` },
    reason: 'no identity-based policy allows the action (egw aws-sim allow-list)',
  };
  return awsErrors.unauthorized(Buffer.from(JSON.stringify(context)).toString('base64url'));
}

/** A decision to fail one call. */
export interface InjectedFault {
  kind: InjectedFailure;
  /** The call takes effect, then the reply is replaced by the failure (a lost response). */
  afterCommit: boolean;
}

/**
 * Seeded failure injection. Every call draws the same number of random values whether or not it
 * fails, so the n-th call of a run gets the same verdict for the same seed.
 */
export class FailureInjector {
  constructor(
    private readonly settings: Pick<SimSettings, 'failureRate' | 'failureKinds' | 'failureAfterCommit' | 'failureActions'>,
    private readonly random: Random,
  ) {}

  decide(action: string): InjectedFault | undefined {
    const fail = this.random.next();
    const which = this.random.next();
    const after = this.random.next();
    const { failureRate, failureKinds, failureAfterCommit, failureActions } = this.settings;
    if (failureRate <= 0 || fail >= failureRate) return undefined;
    if (failureActions !== undefined && !failureActions.includes(action)) return undefined;
    const kind = failureKinds[Math.floor(which * failureKinds.length)] ?? 'InternalError';
    // A throttle is decided at the front door, before the action runs; only 5xx can lose a reply.
    return { kind, afterCommit: kind !== 'RequestLimitExceeded' && after < failureAfterCommit };
  }
}

/** The API error of an injected failure. */
export function injectedError(kind: InjectedFailure): Ec2ApiError {
  switch (kind) {
    case 'InternalError':
      return awsErrors.internalError();
    case 'Unavailable':
      return awsErrors.unavailable();
    case 'RequestLimitExceeded':
      return awsErrors.requestLimitExceeded();
  }
}
