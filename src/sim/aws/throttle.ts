import type { BucketSpec } from './world.js';

/**
 * AWS's published request-rate buckets for the actions the emulator serves (EC2 API reference,
 * "Request throttling for the Amazon EC2 API"; docs/aws-sim.md quotes them). Buckets are per action
 * ("each API is evaluated individually"); the category only fixes its size and refill rate.
 */
const NON_MUTATING: BucketSpec = { capacity: 100, refillPerSecond: 20 };
const UNFILTERED_UNPAGINATED: BucketSpec = { capacity: 50, refillPerSecond: 10 };
const MUTATING: BucketSpec = { capacity: 50, refillPerSecond: 5 };

/** Actions that AWS lists with their own ("uncategorized") bucket. */
const UNCATEGORIZED: Readonly<Record<string, BucketSpec>> = {
  AssignPrivateIpAddresses: { capacity: 100, refillPerSecond: 5 },
  UnassignPrivateIpAddresses: { capacity: 100, refillPerSecond: 5 },
  CreateNetworkInterface: { capacity: 100, refillPerSecond: 5 },
  DeleteNetworkInterface: { capacity: 100, refillPerSecond: 5 },
  ModifyNetworkInterfaceAttribute: { capacity: 100, refillPerSecond: 5 },
  CreateTags: { capacity: 100, refillPerSecond: 10 },
};

/** Of the non-mutating actions, those with the smaller bucket when called without filter or pagination. */
const HAS_UNFILTERED_BUCKET = new Set(['DescribeInstances', 'DescribeNetworkInterfaces']);

/** The bucket key and size of a call: its action, or its action's unfiltered-and-unpaginated bucket. */
export function bucketFor(action: string, unfilteredUnpaginated: boolean): { key: string; spec: BucketSpec } {
  const uncategorized = UNCATEGORIZED[action];
  if (uncategorized !== undefined) return { key: action, spec: uncategorized };
  if (/^(Describe|List|Search|Get)/.test(action)) {
    if (unfilteredUnpaginated && HAS_UNFILTERED_BUCKET.has(action)) {
      return { key: `${action}:unfiltered`, spec: UNFILTERED_UNPAGINATED };
    }
    return { key: action, spec: NON_MUTATING };
  }
  return { key: action, spec: MUTATING };
}

interface Bucket {
  tokens: number;
  at: number;
  spec: BucketSpec;
}

/**
 * Token buckets refilled continuously: a bucket starts full, each call takes one token, and a call
 * that finds less than one token is throttled (it takes nothing).
 */
export class Throttle {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * @param scale multiplies every capacity and refill rate (e.g. 0.1 for a harsher account)
   * @param overrides per-action buckets replacing AWS's (key: action name, or `Action:unfiltered`)
   */
  constructor(
    private readonly scale: number,
    private readonly overrides: Readonly<Record<string, BucketSpec>>,
  ) {}

  /** Takes a token for the call; false means throttled (RequestLimitExceeded). */
  take(action: string, unfilteredUnpaginated: boolean, now: number): boolean {
    const { key, spec: published } = bucketFor(action, unfilteredUnpaginated);
    const override = this.overrides[key] ?? this.overrides[action];
    const spec = override ?? { capacity: published.capacity * this.scale, refillPerSecond: published.refillPerSecond * this.scale };
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: spec.capacity, at: now, spec };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(spec.capacity, bucket.tokens + ((now - bucket.at) / 1000) * spec.refillPerSecond);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
