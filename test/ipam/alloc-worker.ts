/**
 * A separate allocating process for the concurrency and crash tests (run compiled, from dist/, with plain
 * node): `node alloc-worker.js SPEC ID NODE COUNT MODE` (SPEC: a datastore spec such as `kubernetes`, or
 * `single:SPEC` for SPEC behind the single-object test wrapper). Prints `ready`, waits for a line on stdin, then
 * - MODE `alloc`: allocates COUNT addresses (handles `w<ID>-<i>`), prints `{"conflicts":…,"ms":…}`;
 * - MODE `churn`: allocates for pods that do not exist and releases every other one, forever, printing
 *   each allocation (`+ip`) and release (`-ip`) as it commits (the test kills it at a random moment).
 */
import { createInterface } from 'node:readline';
import { openSpec } from './single-object-store.js';
import { Ipam } from '../../src/ipam/allocator.js';

async function main(): Promise<void> {
  const [spec, id, node, countText, mode] = process.argv.slice(2);
  if (spec === undefined || id === undefined || node === undefined || countText === undefined || mode === undefined) throw new Error('usage: SPEC ID NODE COUNT MODE');
  const store = await openSpec(spec);
  const ipam = new Ipam({ store });
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', () => {
      // An open stdin would keep this process alive after its work.
      rl.close();
      process.stdin.destroy();
      resolve();
    });
  });
  const start = Date.now();
  if (mode === 'alloc') {
    for (let i = 0; i < Number(countText); i++) await ipam.allocate({ handle: `w${id}-${i}`, node });
    process.stdout.write(`${JSON.stringify({ conflicts: ipam.stats.conflictsRetried, ms: Date.now() - start })}\n`);
  } else {
    for (let i = 0; ; i++) {
      const handle = `k${id}-${i}`;
      const a = await ipam.allocate({ handle, node, owner: { kind: 'Pod', namespace: 'kill', name: `pod-${id}-${i}`, uid: `u-${id}-${i}` } });
      process.stdout.write(`+${a.ip}\n`);
      if (i % 2 === 1) {
        const r = await ipam.releaseByHandle(`k${id}-${i - 1}`);
        if (r.released) process.stdout.write(`-${r.ip ?? ''}\n`);
      }
    }
  }
  await store.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
