import { describe, expect, it } from 'vitest';
import { GatewayPoller, type PollOutcome, type ReadinessProbe } from '../../src/agent/gateway-poller.js';
import { PollTracker, type PollTarget } from '../../src/calc/index.js';
import { FakeClock } from '../../src/platform/clock.js';

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** A probe answering from a table, recording each call's fake time. */
class TableProbe implements ReadinessProbe {
  readonly calls: { ip: string; at: number; timeoutMs: number }[] = [];
  readonly answers = new Map<string, PollOutcome>();
  constructor(private readonly clock: FakeClock) {}
  check(target: { ip: string }, timeoutMs: number): Promise<PollOutcome> {
    this.calls.push({ ip: target.ip, at: this.clock.now(), timeoutMs });
    return Promise.resolve(this.answers.get(target.ip) ?? { ok: true });
  }
}

const A: PollTarget = { gateway: 'egw/a', ip: '100.64.0.1', port: 8080 };
const B: PollTarget = { gateway: 'egw/b', ip: '100.64.0.2', port: 8080 };

describe('gateway poller', () => {
  it('polls each target at once and then every interval, with the given timeout', async () => {
    const clock = new FakeClock(0);
    const probe = new TableProbe(clock);
    const seen: string[] = [];
    const poller = new GatewayPoller({ clock, probe }, (t, o) => seen.push(`${t.gateway}:${o.ok ? 'up' : 'down'}`));
    poller.update([A, B], { intervalMs: 200, timeoutMs: 100 });
    await flush();
    for (let i = 0; i < 3; i++) {
      clock.advance(200);
      await flush();
    }
    expect(probe.calls.filter((c) => c.ip === A.ip).map((c) => c.at)).toEqual([0, 200, 400, 600]);
    expect(probe.calls.every((c) => c.timeoutMs === 100)).toBe(true);
    expect(seen.filter((s) => s === 'egw/b:up')).toHaveLength(4);
    expect(poller.targets()).toEqual([A, B]);
    await poller.stop();
  });

  it('with the tracker: down after failureCount consecutive failures, up after one success', async () => {
    const clock = new FakeClock(0);
    const probe = new TableProbe(clock);
    const tracker = new PollTracker(2);
    const verdicts: string[] = [];
    const poller = new GatewayPoller({ clock, probe }, (t, o) => {
      const v = tracker.record(t, o.ok);
      if (v !== undefined) verdicts.push(`${clock.now()} ${v.gateway} ${v.up ? 'up' : 'down'}`);
    });
    poller.update([A], { intervalMs: 200, timeoutMs: 100 });
    await flush();
    probe.answers.set(A.ip, { ok: false, reason: 'timeout' });
    for (let i = 0; i < 3; i++) {
      clock.advance(200);
      await flush();
    }
    probe.answers.set(A.ip, { ok: true });
    clock.advance(200);
    await flush();
    expect(verdicts).toEqual(['0 egw/a up', '400 egw/a down', '800 egw/a up']);
    await poller.stop();
  });

  it('removed targets stop; a target at a new address starts afresh at once; timing changes apply', async () => {
    const clock = new FakeClock(0);
    const probe = new TableProbe(clock);
    const poller = new GatewayPoller({ clock, probe }, () => undefined);
    poller.update([A, B], { intervalMs: 200, timeoutMs: 100 });
    await flush();
    clock.advance(50);
    poller.update([{ ...A, ip: '100.64.0.9' }], { intervalMs: 500, timeoutMs: 250 });
    await flush();
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      await flush();
    }
    expect(probe.calls.filter((c) => c.ip === B.ip).map((c) => c.at)).toEqual([0]);
    expect(probe.calls.filter((c) => c.ip === '100.64.0.9').map((c) => [c.at, c.timeoutMs])).toEqual([[50, 250], [550, 250], [1050, 250]]);
    await poller.stop();
  });

  it('slow healthy answers stretch the deadline (three times the slowest recent answer), never past the interval', async () => {
    const clock = new FakeClock(0);
    let answerMs = 60;
    const deadlines: number[] = [];
    const probe: ReadinessProbe = {
      check: async (_t, timeoutMs) => {
        deadlines.push(timeoutMs);
        await clock.sleep(answerMs);
        return { ok: true };
      },
    };
    const poller = new GatewayPoller({ clock, probe }, () => undefined);
    poller.update([A], { intervalMs: 200, timeoutMs: 100 });
    expect(poller.effectiveTimeoutMs()).toBe(100);
    for (let i = 0; i < 4; i++) {
      await flush();
      clock.advance(60);
      await flush();
      clock.advance(140);
    }
    await flush();
    expect(deadlines.slice(0, 3)).toEqual([100, 180, 180]);
    answerMs = 90;
    for (let i = 0; i < 2; i++) {
      await flush();
      clock.advance(90);
      await flush();
      clock.advance(110);
    }
    expect(poller.effectiveTimeoutMs()).toBe(200);
    await poller.stop();
  });

  it('never has more than `concurrency` polls in flight; stop waits for none', async () => {
    const clock = new FakeClock(0);
    let inFlight = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const probe: ReadinessProbe = {
      check: () => {
        inFlight++;
        most = Math.max(most, inFlight);
        return new Promise<PollOutcome>((r) => release.push(() => {
          inFlight--;
          r({ ok: true });
        }));
      },
    };
    const poller = new GatewayPoller({ clock, probe }, () => undefined, { concurrency: 2 });
    poller.update(Array.from({ length: 5 }, (_, i) => ({ gateway: `egw/g${i}`, ip: `100.64.0.${i + 1}`, port: 8080 })), { intervalMs: 200, timeoutMs: 100 });
    await flush();
    expect(inFlight).toBe(2);
    while (release.length > 0) {
      release.shift()!();
      await flush();
    }
    expect(most).toBe(2);
    const stopped = poller.stop();
    await flush();
    for (const r of release.splice(0)) r();
    await stopped;
  });
});
