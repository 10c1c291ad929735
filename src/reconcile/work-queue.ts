/**
 * The keyed work queue of the reconcile engine (client-go's workqueue, without its rate limiter: the
 * runner owns delays). Keys are strings; the queue holds each key at most once.
 *
 * Contract:
 * - `add` of a key that is waiting does nothing (coalesced);
 * - `add` of a key that is being processed marks it dirty: it is queued again, once, when `done` is
 *   called for it, so a change seen during a pass is never lost and the key is never processed by two
 *   workers at once;
 * - `get` hands out keys in the order they were first added, and marks them in flight until `done`;
 * - after `shutDown`, `add` is refused (returns false) and every waiting `get` resolves `undefined`.
 */
export class KeyedQueue {
  private readonly order: string[] = [];
  /** Keys that need a pass: waiting in `order`, or in flight and to be queued again. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private waiters: ((key: string | undefined) => void)[] = [];
  private closed = false;

  /** Keys waiting (not counting those in flight). */
  get depth(): number {
    return this.order.length;
  }

  /** Keys handed out by `get` and not yet `done`. */
  get inFlight(): number {
    return this.processing.size;
  }

  get isShutDown(): boolean {
    return this.closed;
  }

  /** True when `key` is waiting or is in flight and dirty. */
  isQueued(key: string): boolean {
    return this.dirty.has(key);
  }

  /** Queues `key` (see the class contract). False when refused (shut down), true otherwise. */
  add(key: string): boolean {
    if (this.closed) return false;
    if (this.dirty.has(key)) return true;
    this.dirty.add(key);
    if (this.processing.has(key)) return true;
    this.push(key);
    return true;
  }

  /**
   * The next key, marked in flight; waits while the queue is empty. Resolves `undefined` once the queue
   * is shut down (keys still waiting are dropped then).
   */
  get(): Promise<string | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const key = this.order.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends the pass of `key`; queues it again when it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.closed) this.push(key);
  }

  /** Refuses further adds and releases every waiting `get` with `undefined`. Idempotent. */
  shutDown(): void {
    this.closed = true;
    this.order.length = 0;
    this.dirty.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(this.take(key));
    else this.order.push(key);
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }
}
