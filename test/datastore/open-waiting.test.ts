import { spawn } from 'node:child_process';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastoreWaiting } from '../../src/datastore/open.js';
import type { Clock } from '../../src/platform/clock.js';
import { EgwError } from '../../src/platform/errors.js';
import { EGW_CLI } from '../support/dist.js';

// Issue 11, item 5: long-running programs wait for an unreachable datastore (jittered, bounded, logged)
// and exit only for a bad configuration.

function recordingClock(): Clock & { waits: number[] } {
  const waits: number[] = [];
  return { waits, now: () => 0, sleep: (ms: number) => { waits.push(ms); return Promise.resolve(); } };
}

const fakeStore = { location: 'fake' } as unknown as Datastore;

describe('openDatastoreWaiting', () => {
  it('retries an unreachable datastore with doubling, jittered, bounded waits and logs each attempt', async () => {
    for (const [r, expected] of [[0, [250, 500, 1000, 2000, 2500]], [1, [500, 1000, 2000, 4000, 5000]]] as const) {
      const clock = recordingClock();
      const logged: string[] = [];
      let calls = 0;
      const store = await openDatastoreWaiting('etcd://127.0.0.1:2', {
        clock,
        random: () => r,
        baseMs: 500,
        maxMs: 5000,
        logger: { warn: (_: unknown, m: string) => logged.push(m), info: (_: unknown, m: string) => logged.push(m) } as never,
        open: () => (++calls <= 5 ? Promise.reject(new EgwError('DatastoreUnavailable', 'connection refused')) : Promise.resolve(fakeStore)),
      });
      expect(store).toBe(fakeStore);
      expect(clock.waits).toEqual(expected);
      expect(logged.filter((m) => m.startsWith('datastore unreachable'))).toHaveLength(5);
      expect(logged.at(-1)).toBe('datastore reachable');
    }
  });

  it('a bad configuration is thrown at once; a signal ends the wait', async () => {
    const clock = recordingClock();
    await expect(openDatastoreWaiting('nonsense://x', { clock })).rejects.toMatchObject({ code: 'InvalidInput' });
    expect(clock.waits).toEqual([]);
    const abort = new AbortController();
    let calls = 0;
    const p = openDatastoreWaiting(undefined, { clock: { now: () => 0, sleep: () => { abort.abort(); return Promise.resolve(); } }, signal: abort.signal, open: () => { calls++; return Promise.reject(new Error('ECONNREFUSED')); } });
    await expect(p).rejects.toThrow('ECONNREFUSED');
    expect(calls).toBe(1);
  });
});

const canRun = process.getuid?.() === 0;

describe.skipIf(!canRun)('egw agent with an unreachable datastore', () => {
  it('keeps running and retrying (never exits), and stops on SIGTERM', async () => {
    // In a throwaway network namespace of its own: nothing there to program, nothing reachable.
    const ns = `egwwait${process.pid.toString(36)}`; // unique per run: a second suite never meets it
    spawnSync('ip', ['netns', 'del', ns]);
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, EGW_CLI, '--datastore', 'etcd://127.0.0.1:2', 'agent', '--node', 'n1', '--no-aws-fabric'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      for (let i = 0; i < 300 && (out.match(/datastore unreachable/g) ?? []).length < 3; i++) {
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(child.exitCode, out).toBeNull();
      expect((out.match(/datastore unreachable/g) ?? []).length, out).toBeGreaterThanOrEqual(3);
      child.kill('SIGTERM');
      await exited;
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  }, 60_000);
});
