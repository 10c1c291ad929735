import { describe, expect, it } from 'vitest';
import { PollTracker } from '../../src/calc/poll-tracker.js';

const t = { gateway: 'egw/red-1', ip: '100.64.0.10' };

describe('PollTracker', () => {
  it('N consecutive failures → down; one success → up; no verdict before evidence', () => {
    const p = new PollTracker(3);
    expect(p.verdict(t.gateway, t.ip)).toBeUndefined();
    expect(p.record(t, false)).toBeUndefined();
    expect(p.record(t, false)).toBeUndefined();
    expect(p.record(t, false)).toEqual({ ...t, up: false });
    expect(p.record(t, false)).toBeUndefined();
    expect(p.record(t, true)).toEqual({ ...t, up: true });
    expect(p.record(t, true)).toBeUndefined();
  });

  it('a success restarts the failure count', () => {
    const p = new PollTracker(2);
    expect(p.record(t, true)).toEqual({ ...t, up: true });
    p.record(t, false);
    p.record(t, true);
    expect(p.record(t, false)).toBeUndefined();
    expect(p.record(t, false)).toEqual({ ...t, up: false });
  });

  it('a result for a new address (re-created pod) starts afresh', () => {
    const p = new PollTracker(1);
    p.record(t, false);
    expect(p.verdict(t.gateway, '100.64.0.99')).toBeUndefined();
    expect(p.record({ gateway: t.gateway, ip: '100.64.0.99' }, true)).toEqual({ gateway: t.gateway, ip: '100.64.0.99', up: true });
  });

  it('retain forgets gateways no longer polled and reports the dropped verdicts', () => {
    const p = new PollTracker(1);
    p.record(t, false);
    p.record({ gateway: 'egw/red-2', ip: '100.64.0.11' }, true);
    p.record({ gateway: 'egw/red-3', ip: '100.64.0.12' }, true);
    expect(p.retain([{ gateway: 'egw/red-2', ip: '100.64.0.11' }, { gateway: 'egw/red-3', ip: '100.64.0.13' }])).toEqual(['egw/red-1', 'egw/red-3']);
    expect(p.verdicts()).toEqual([{ gateway: 'egw/red-2', ip: '100.64.0.11', up: true }]);
  });

  it('failure count changes apply to the next result', () => {
    const p = new PollTracker(5);
    p.record(t, false);
    p.record(t, false);
    p.setFailureCount(2);
    expect(p.record(t, false)).toEqual({ ...t, up: false });
    expect(new PollTracker(0).record(t, false)).toEqual({ ...t, up: false });
  });
});
