/** The keyed queue: coalescing, in-flight keys re-queued once, FIFO order, shut down. */
import { describe, expect, it } from 'vitest';
import { KeyedQueue } from '../../src/reconcile/work-queue.js';

describe('KeyedQueue', () => {
  it('coalesces a key that is waiting and keeps first-added order', async () => {
    const q = new KeyedQueue();
    for (const k of ['a', 'b', 'a', 'c', 'b']) q.add(k);
    expect(q.depth).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['a', 'b', 'c']);
    expect(q.inFlight).toBe(3);
  });

  it('a key added while in flight is handed out once more after done, never twice at once', async () => {
    const q = new KeyedQueue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.depth).toBe(0);
    expect(q.isQueued('a')).toBe(true);
    q.done('a');
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.depth).toBe(0);
    expect(q.inFlight).toBe(0);
  });

  it('a waiting get is served by the next add', async () => {
    const q = new KeyedQueue();
    const next = q.get();
    q.add('x');
    expect(await next).toBe('x');
  });

  it('after shutDown adds are refused and waiting gets resolve undefined', async () => {
    const q = new KeyedQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    expect(q.add('a')).toBe(false);
    expect(await q.get()).toBeUndefined();
  });
});
