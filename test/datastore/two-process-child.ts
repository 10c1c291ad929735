/**
 * The other process of two-process.test.ts (compiled there with tsc, run with node).
 *   writer PATH COUNT          applies COUNT changes, one commit each, and prints them as one JSON array
 *   watcher PATH AFTER COUNT   prints "ready", then each of COUNT events after revision AFTER as a JSON line
 */
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import type { WriteOp } from '../../src/datastore/contract.js';

async function writer(path: string, count: number): Promise<void> {
  const store = await SqliteDatastore.open(path);
  const done: { revision: number; type: string; name: string; value?: unknown }[] = [];
  const live = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const name = `r${i % 37}`;
    const key = { kind: 'Change', namespace: 'two-proc', name };
    let op: WriteOp;
    if (live.has(name) && i % 5 === 0) op = { op: 'delete', key, expectedRevision: live.get(name)! };
    else if (live.has(name)) op = { op: 'update', key, value: { i }, expectedRevision: live.get(name)! };
    else op = { op: 'create', key, value: { i } };
    const c = await store.commit([op]);
    if (op.op === 'delete') live.delete(name);
    else live.set(name, c.revision);
    done.push(op.op === 'delete' ? { revision: c.revision, type: 'delete', name } : { revision: c.revision, type: 'put', name, value: { i } });
  }
  await store.close();
  process.stdout.write(`${JSON.stringify(done)}\n`);
}

async function watcher(path: string, after: number, count: number): Promise<void> {
  const store = await SqliteDatastore.open(path);
  process.stdout.write('ready\n');
  let n = 0;
  for await (const ev of store.watch({ afterRevision: after, kinds: ['Change'] })) {
    const line =
      ev.type === 'put'
        ? { revision: ev.revision, type: 'put', name: ev.key.name, value: ev.value }
        : ev.type === 'delete'
          ? { revision: ev.revision, type: 'delete', name: ev.key.name }
          : { type: 'resync', reason: ev.reason };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    if (++n >= count || ev.type === 'resync') break;
  }
  await store.close();
}

const [role, path, a, b] = process.argv.slice(2);
const main = role === 'writer' ? writer(path!, Number(a)) : watcher(path!, Number(a), Number(b));
main.catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
