import type { EniConfig, EniState } from '../linux/index.js';
import type { EniRoutingPort } from './fabric/index.js';

/**
 * One kernel writer at a time on a node: the egress driver (`applyClientNode`) and the fabric's ENI
 * driver (`applyEni`) share the route-table range (egress tables from the bottom, ENI tables from the
 * top) and each plans from what it reads, so their read–plan–execute runs must not interleave.
 */
export class KernelLock {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every earlier `run` has finished (whatever their outcome). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** The fabric's ENI routing port, serialised with the egress driver through a {@link KernelLock}. */
export class LockedEniRouting implements EniRoutingPort {
  constructor(
    private readonly inner: EniRoutingPort,
    private readonly lock: KernelLock,
  ) {}

  apply(state: EniState, config: EniConfig): ReturnType<EniRoutingPort['apply']> {
    return this.lock.run(() => this.inner.apply(state, config));
  }
}
