/**
 * A worker process of the `datastore` benchmark (spawned by bench/datastore.ts from dist/):
 *   node datastore-worker.js SPEC ID COUNT MODE
 * MODE `put`: COUNT single-op commits to keys of its own; `cas`: COUNT increments of one shared counter
 * with read / compare-and-swap / retry. Prints `ready` once the store is open, starts on a line on
 * stdin (so that all workers start together), then prints one JSON line: { ms, conflicts }.
 */
import { createInterface } from 'node:readline';
import { openDatastore } from '../src/datastore/open.js';
import { isEgwError } from '../src/platform/errors.js';

async function main(): Promise<void> {
  const [spec, id, countText, mode] = process.argv.slice(2);
  const count = Number(countText);
  const store = await openDatastore(spec);
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => createInterface({ input: process.stdin }).once('line', () => resolve()));
  let conflicts = 0;
  const start = process.hrtime.bigint();
  const key = { kind: 'BenchCounter', name: 'shared' };
  for (let i = 0; i < count; i++) {
    if (mode === 'put') {
      await store.commit([{ op: 'put', key: { kind: 'BenchProc', name: `w${id}-${i}` }, value: { i } }]);
      continue;
    }
    for (;;) {
      const cur = await store.get(key);
      const n = cur === undefined ? 0 : (cur.value['n'] as number);
      try {
        await store.commit([
          cur === undefined
            ? { op: 'create', key, value: { n: 1 } }
            : { op: 'update', key, value: { n: n + 1 }, expectedRevision: cur.modRevision },
        ]);
        break;
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'AlreadyExists')) throw err;
        conflicts++;
      }
    }
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await store.close();
  process.stdout.write(`${JSON.stringify({ ms, conflicts })}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
