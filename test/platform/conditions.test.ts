import { describe, expect, it } from 'vitest';
import { conditionsOf, findCondition, withCondition, type StatusCondition } from '../../src/platform/conditions.js';

const T0 = '2025-01-01T00:00:00.000Z';
const T1 = '2025-01-01T00:01:00.000Z';

describe('conditionsOf / findCondition', () => {
  it('reads the conditions of a status object', () => {
    const status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }, { type: 'PodScheduled', status: 'True', reason: 'x' }] };
    expect(conditionsOf(status).map((c) => c.type)).toEqual(['Ready', 'PodScheduled']);
    expect(findCondition(status, 'PodScheduled')).toEqual({ type: 'PodScheduled', status: 'True', reason: 'x' });
    expect(findCondition(status, 'EgwAwsReady')).toBeUndefined();
  });

  it('reads anything malformed as no condition (another writer’s data is not trusted)', () => {
    for (const status of [undefined, null, 'Ready', 7, {}, { conditions: 'Ready' }, { conditions: {} }, { conditions: null }]) {
      expect(conditionsOf(status)).toEqual([]);
      expect(findCondition(status, 'Ready')).toBeUndefined();
    }
    expect(conditionsOf({ conditions: [null, 3, 'x', { status: 'True' }, { type: 5 }, { type: 'Ready', status: 'True' }] })).toEqual([{ type: 'Ready', status: 'True' }]);
  });
});

describe('withCondition', () => {
  const ready: StatusCondition = { type: 'Ready', status: 'True', reason: 'PodReady', message: 'ok', lastTransitionTime: T0 };
  const other: StatusCondition = { type: 'EgwAwsReady', status: 'False', reason: 'Waiting', lastTransitionTime: T0 };

  it('appends a new condition with lastTransitionTime = now', () => {
    expect(withCondition([], { type: 'Ready', status: 'False', reason: 'ContainersNotReady' }, T1)).toEqual([{ type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: T1 }]);
    expect(withCondition([other], { type: 'Ready', status: 'True' }, T1)).toEqual([other, { type: 'Ready', status: 'True', lastTransitionTime: T1 }]);
  });

  it('returns undefined when nothing changes (absent reason and message equal empty ones)', () => {
    expect(withCondition([ready, other], { type: 'Ready', status: 'True', reason: 'PodReady', message: 'ok' }, T1)).toBeUndefined();
    expect(withCondition([{ type: 'Ready', status: 'True', lastTransitionTime: T0 }], { type: 'Ready', status: 'True', reason: '', message: '' }, T1)).toBeUndefined();
  });

  it('keeps lastTransitionTime when only the reason or message changes', () => {
    const next = withCondition([ready, other], { type: 'Ready', status: 'True', reason: 'PodReady', message: 'still ok' }, T1);
    expect(next).toEqual([{ ...ready, message: 'still ok' }, other]);
  });

  it('moves lastTransitionTime when the status changes, in place, leaving other writers’ conditions alone', () => {
    const next = withCondition([other, ready], { type: 'Ready', status: 'False', reason: 'ContainersNotReady' }, T1);
    expect(next).toEqual([other, { type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: T1 }]);
  });

  it('a condition stored without lastTransitionTime gets now', () => {
    expect(withCondition([{ type: 'Ready', status: 'True' }], { type: 'Ready', status: 'True', message: 'new' }, T1)).toEqual([{ type: 'Ready', status: 'True', message: 'new', lastTransitionTime: T1 }]);
  });

  it('alwaysWrite forces a new list (heartbeats) without moving lastTransitionTime', () => {
    const next = withCondition([ready], { type: 'Ready', status: 'True', reason: 'PodReady', message: 'ok', lastHeartbeatTime: T1 }, T1, true);
    expect(next).toEqual([{ ...ready, lastHeartbeatTime: T1 }]);
  });

  it('is idempotent: applying the same change twice writes once', () => {
    const once = withCondition([other], { type: 'Ready', status: 'False', reason: 'X' }, T0)!;
    expect(withCondition(once, { type: 'Ready', status: 'False', reason: 'X' }, T1)).toBeUndefined();
  });

  it('does not modify its input', () => {
    const list = [ready, other];
    const copy = structuredClone(list);
    withCondition(list, { type: 'Ready', status: 'False' }, T1);
    expect(list).toEqual(copy);
  });
});
