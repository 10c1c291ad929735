import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../src/aws/aws-errors.js';
import type { Ec2, Ec2CallOptions } from '../../src/aws/ec2-port.js';
import { EC2_CALLS, EC2_METHODS } from '../../src/aws/ec2-port.js';
import { ResilientEc2 } from '../../src/aws/resilient-ec2.js';
import { SystemClock } from '../../src/platform/clock.js';
import type { EgwError } from '../../src/platform/errors.js';

type Script = (action: string, attempt: number, signal: AbortSignal | undefined) => Promise<unknown>;

/** A stateful fake port: every call runs the script; it records attempts and concurrency. */
class ScriptedEc2 {
  attempts: { action: string; at: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  readonly port: Ec2;
  constructor(script: Script) {
    const out: Record<string, unknown> = {};
    for (const m of EC2_METHODS) {
      const action = EC2_CALLS[m].action;
      out[m] = async (_input: unknown, options?: Ec2CallOptions) => {
        const n = this.attempts.filter((a) => a.action === action).length + 1;
        this.attempts.push({ action, at: Date.now() });
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        try {
          return await script(action, n, options?.signal);
        } finally {
          this.inFlight--;
        }
      };
    }
    this.port = out as unknown as Ec2;
  }
}

const awsError = (code: string, status: number): EgwError => classifyAwsError(Object.assign(new Error(code), { name: code, $metadata: { httpStatusCode: status } }), 'Test');
const fast = { retryBaseMs: 2, throttleBaseMs: 5, maxBackoffMs: 50 };
const deps = { clock: new SystemClock() };

describe('ResilientEc2 (the call policy)', () => {
  it('retries throttled calls, even ones unsafe to repeat (a throttled call never ran), and closes the gate for everyone', async () => {
    const fake = new ScriptedEc2(async (action, n) => {
      if (action === 'AttachNetworkInterface' && n <= 2) throw awsError('RequestLimitExceeded', 503);
      return { attachmentId: 'eni-attach-1' };
    });
    const ec2 = new ResilientEc2(fake.port, deps, fast);
    await expect(ec2.attachNetworkInterface({ networkInterfaceId: 'eni-1', instanceId: 'i-1', deviceIndex: 1 })).resolves.toEqual({ attachmentId: 'eni-attach-1' });
    expect(ec2.stats).toMatchObject({ throttled: 2, failed: 0, sent: { AttachNetworkInterface: 3 } });
  });

  it('retries 5xx and timeouts only for calls safe to repeat', async () => {
    const fake = new ScriptedEc2(async (_action, n) => {
      if (n === 1) throw awsError('InternalError', 500);
      return [];
    });
    const ec2 = new ResilientEc2(fake.port, deps, fast);
    await expect(ec2.describeSubnets(['subnet-1'])).resolves.toEqual([]);
    const err: unknown = await ec2.detachNetworkInterface({ attachmentId: 'a' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AwsError', retry: 'retry', details: { awsCode: 'InternalError' } });
    expect(fake.attempts.map((a) => a.action)).toEqual(['DescribeSubnets', 'DescribeSubnets', 'DetachNetworkInterface']);
  });

  it('never repeats a terminal failure, and gives up after maxAttempts', async () => {
    const denied = new ScriptedEc2(async () => {
      throw awsError('UnauthorizedOperation', 403);
    });
    const a = new ResilientEc2(denied.port, deps, fast);
    await expect(a.describeSubnets([])).rejects.toMatchObject({ details: { awsCode: 'UnauthorizedOperation' } });
    expect(denied.attempts).toHaveLength(1);
    const down = new ScriptedEc2(async () => {
      throw awsError('Unavailable', 503);
    });
    const b = new ResilientEc2(down.port, deps, { ...fast, maxAttempts: 4 });
    await expect(b.describeSubnets([])).rejects.toMatchObject({ details: { awsCode: 'Unavailable' } });
    expect(down.attempts).toHaveLength(4);
    expect(b.stats.failed).toBe(1);
  });

  it('abandons an attempt after the request timeout (RequestTimeout, retried when safe); the timeout can change', async () => {
    const fake = new ScriptedEc2(
      (_a, n, signal) =>
        new Promise((resolve, reject) => {
          if (n >= 3) {
            resolve([]);
            return;
          }
          signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true });
        }),
    );
    const ec2 = new ResilientEc2(fake.port, deps, { ...fast, requestTimeoutMs: 10_000 });
    ec2.setRequestTimeoutMs(30);
    const started = Date.now();
    await expect(ec2.describeAddresses([])).resolves.toEqual([]);
    expect(fake.attempts).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(5_000);
    const once = new ScriptedEc2((_a, _n, signal) => new Promise((_r, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true })));
    const unsafe = new ResilientEc2(once.port, deps, { ...fast, requestTimeoutMs: 20 });
    await expect(unsafe.unassignPrivateIpAddresses({ networkInterfaceId: 'eni-1', ips: ['10.0.0.1'] })).rejects.toMatchObject({ retry: 'retry', details: { awsCode: 'RequestTimeout' } });
    expect(once.attempts).toHaveLength(1);
  });

  it('bounds the calls in flight', async () => {
    const fake = new ScriptedEc2(() => new Promise((resolve) => setTimeout(() => resolve([]), 5)));
    const ec2 = new ResilientEc2(fake.port, deps, { ...fast, concurrency: 3 });
    await Promise.all(Array.from({ length: 20 }, () => ec2.describeNetworkInterfaces([])));
    expect(fake.maxInFlight).toBe(3);
    expect(fake.attempts).toHaveLength(20);
  });

  it('after a throttle, no caller sends before the gate opens (no retry storm)', async () => {
    let throttledAt = 0;
    const fake = new ScriptedEc2(async (_a, n) => {
      if (n === 1) {
        throttledAt = Date.now();
        throw awsError('RequestLimitExceeded', 503);
      }
      return [];
    });
    const ec2 = new ResilientEc2(fake.port, deps, { throttleBaseMs: 200, maxBackoffMs: 1_000, concurrency: 1 });
    await Promise.all(Array.from({ length: 5 }, () => ec2.describeNetworkInterfaces([])));
    const after = fake.attempts.slice(1).map((a) => a.at - throttledAt);
    // Equal jitter: at least half the first backoff (100 ms) before anyone sends again.
    expect(Math.min(...after)).toBeGreaterThanOrEqual(95);
    expect(fake.attempts).toHaveLength(6);
  });
});
