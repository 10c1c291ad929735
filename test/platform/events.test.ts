import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { EventAggregator, LogEventRecorder } from '../../src/platform/events.js';

const POD = { kind: 'Pod', namespace: 'ns', name: 'p', uid: 'u1' };

describe('EventAggregator (repeats as client-go aggregates them)', () => {
  it('writes the first occurrence at once and holds repeats until the series interval has passed', () => {
    const a = new EventAggregator({ seriesIntervalMs: 1_000, windowMs: 10_000 });
    const first = a.observe(0, POD, 'Warning', 'NoCapacity', 'Place', 'one');
    expect(first.write).toBe(true);
    a.written(first.series, 1, 0);
    const held = a.observe(100, POD, 'Warning', 'NoCapacity', 'Place', 'two');
    expect(held).toMatchObject({ write: false, dueAt: 1_000 });
    expect(a.observe(200, POD, 'Warning', 'NoCapacity', 'Place', 'three').write).toBe(false);
    expect(a.nextDue()).toBe(1_000);
    expect(a.due(999)).toEqual([]);
    expect(a.due(1_000).map((s) => [s.count, s.written, s.note])).toEqual([[3, 1, 'one']]);
    const later = a.observe(1_500, POD, 'Warning', 'NoCapacity', 'Place', 'four');
    expect(later.write).toBe(true);
    expect(later.series.count).toBe(4);
  });

  it('keys series by type, action, reason and the regarding object (uid included), not by note', () => {
    const a = new EventAggregator();
    const keys = new Set(
      [
        a.observe(0, POD, 'Warning', 'NoCapacity', 'Place', 'x'),
        a.observe(0, POD, 'Warning', 'NoCapacity', 'Place', 'another note'),
        a.observe(0, POD, 'Normal', 'NoCapacity', 'Place', 'x'),
        a.observe(0, POD, 'Warning', 'PoolExhausted', 'Place', 'x'),
        a.observe(0, POD, 'Warning', 'NoCapacity', 'Other', 'x'),
        a.observe(0, { ...POD, uid: 'u2' }, 'Warning', 'NoCapacity', 'Place', 'x'),
      ].map((o) => o.series.key),
    );
    expect(keys.size).toBe(5);
  });

  it('a failed write is tried again one interval later with what accumulated; quiet written series are forgotten after the window', () => {
    const a = new EventAggregator({ seriesIntervalMs: 1_000, windowMs: 5_000 });
    const o = a.observe(0, POD, 'Warning', 'R', 'A', 'n');
    a.written(o.series, undefined, 0);
    expect(a.observe(500, POD, 'Warning', 'R', 'A', 'n').write).toBe(false);
    expect(a.due(1_000).map((s) => s.count)).toEqual([2]);
    a.written(o.series, 2, 1_000);
    expect(a.pending()).toEqual([]);
    // 6 s of quiet: forgotten, so the next occurrence starts a new series in this process.
    expect(a.observe(6_600, POD, 'Warning', 'R', 'A', 'n').series.count).toBe(1);
  });
});

describe('LogEventRecorder (events on SQLite and etcd are log lines)', () => {
  it('logs the first occurrence, then one "event repeated" line with the count per interval', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), cb()) });
    const clock = new FakeClock(0);
    const r = new LogEventRecorder(pino({ level: 'info' }, sink), { controller: 'egw.io/agent', instance: 'n1' }, clock, { seriesIntervalMs: 1_000 });
    r.record(POD, 'Warning', 'NoCapacity', 'Place', 'no room');
    for (let i = 0; i < 4; i++) r.record(POD, 'Warning', 'NoCapacity', 'Place', 'no room');
    clock.advance(1_000);
    r.record(POD, 'Warning', 'NoCapacity', 'Place', 'no room');
    r.record({ kind: 'Node', name: 'n1' }, 'Normal', 'Created', 'Create', 'made');
    await r.close();
    expect(lines.map((l) => [l['msg'], l['level'], l['regarding'], l['reason'], l['count']])).toEqual([
      ['event', 40, 'Pod/ns/p', 'NoCapacity', undefined],
      ['event repeated', 40, 'Pod/ns/p', 'NoCapacity', 6],
      ['event', 30, 'Node/n1', 'Created', undefined],
    ]);
    expect(lines[0]).toMatchObject({ reportingController: 'egw.io/agent', reportingInstance: 'n1', note: 'no room', action: 'Place', type: 'Warning' });
  });
});
