import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EgressAgent } from '../../src/agent/agent.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { Informer } from '../../src/datastore/informer.js';
import { openDatastore } from '../../src/datastore/open.js';
import { jittered, type Clock } from '../../src/platform/clock.js';
import { EgwError } from '../../src/platform/errors.js';
import type { Shell } from '../../src/platform/shell.js';

// Issue 11, item 10: the retry waits of the informer and the agent's pass loop are jittered (the gateway's
// apply loop and the etcd watch use the same `jittered`), so a fleet does not come back in lockstep.

/** A clock that records every wait and lets it pass at once (on the next macrotask). */
function recordingClock(): Clock & { waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    now: () => 1_700_000_000_000,
    sleep: (ms: number, signal?: AbortSignal) => {
      waits.push(ms);
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted === true) return reject(signal.reason as Error);
        setTimeout(resolve, 1);
      });
    },
  };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe('jittered retries', () => {
  it('jittered(ms) lies in [ms/2, ms]', () => {
    expect(jittered(1000, () => 0)).toBe(500);
    expect(jittered(1000, () => 0.5)).toBe(750);
    expect(jittered(1000, () => 0.999999)).toBe(1000);
  });

  it('the informer waits a jittered backoff after store errors', async () => {
    const clock = recordingClock();
    const failing = { list: () => Promise.reject(new EgwError('DatastoreUnavailable', 'down')), watch: () => { throw new Error('not reached'); } } as unknown as Datastore;
    const informer = new Informer({ store: failing, clock, random: () => 0 }, { kinds: ['Pod'], backoffInitialMs: 200, backoffMaxMs: 10_000 });
    informer.start();
    await until(() => clock.waits.length >= 4);
    await informer.stop();
    expect(clock.waits.slice(0, 4)).toEqual([100, 200, 400, 800]);
  });

  it("the agent's pass loop waits a jittered backoff after failed passes", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'egw-jitter-'));
    const store = await openDatastore(join(dir, 'egw.db'));
    try {
      await store.commit([
        { op: 'put', key: { kind: 'FelixConfiguration', name: 'default' }, value: { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { egressIPSupport: 'EnabledPerNamespace' } } },
        { op: 'put', key: { kind: 'Node', name: 'n1' }, value: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, status: { addresses: [{ type: 'InternalIP', address: '10.10.1.10' }] } } },
      ]);
      const clock = recordingClock();
      const broken: Shell = { run: () => Promise.reject(new EgwError('CommandFailed', 'no kernel here')) };
      const agent = new EgressAgent({ store, shell: broken, clock, random: () => 0 }, { nodeName: 'n1', debounceMs: 0, resyncIntervalMs: 3_600_000 });
      agent.start();
      await until(() => clock.waits.filter((w) => w < 3_600_000).length >= 4);
      await agent.stop();
      expect(clock.waits.filter((w) => w < 3_600_000).slice(0, 4)).toEqual([100, 200, 400, 800]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
