import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpReadinessProbe } from '../../src/agent/http-readiness-probe.js';
import { syncNextHops } from '../../src/agent/next-hops-writer.js';
import { nextHopsKey, nextHopsValue, parseNextHops } from '../../src/agent/records.js';
import type { EgressNextHops } from '../../src/calc/index.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';

const rec = (client: string, gateways: string[], node = 'n1'): EgressNextHops => ({ client, podUID: `uid-${client}`, node, rules: { sel: { maxNextHops: 2, gateways } } });

describe('maxNextHops records', () => {
  let dir: string;
  let store: Datastore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'egw-nexthops-test-'));
    store = await openDatastore(join(dir, 'egw.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips through the stored form; malformed records read as absent', () => {
    const r = rec('app/c1', ['egw/g1', 'egw/g2']);
    const stored = { key: nextHopsKey(r.client), value: nextHopsValue(r), createRevision: 1, modRevision: 1 };
    expect(stored.key).toEqual({ kind: 'EgressNextHops', namespace: 'app', name: 'c1' });
    expect(parseNextHops(stored)).toEqual(r);
    expect(parseNextHops({ ...stored, value: { spec: { client: 'x' } } })).toBeUndefined();
    expect(parseNextHops({ ...stored, value: { spec: { ...r, rules: { sel: { maxNextHops: 2, gateways: [1] } } } } })).toBeUndefined();
  });

  it('creates, updates only what differs, retries a stale revision, and deletes only records it still owns', async () => {
    const cache = new Map<string, Awaited<ReturnType<Datastore['get']>>>();
    const lookup = (client: string) => cache.get(client);
    let r = await syncNextHops(store, [rec('app/c1', ['egw/g1', 'egw/g2']), rec('app/c2', ['egw/g3', 'egw/g4'])], [], lookup, 'n1');
    expect(r).toEqual({ written: 2, deleted: 0, conflicts: 0, failed: [] });
    // The cache is behind (it never saw our writes): c1's update conflicts, is re-read and retried; c2's
    // create meets the record already there, which is what we want: nothing more to write.
    cache.set('app/c1', { key: nextHopsKey('app/c1'), value: nextHopsValue(rec('app/c1', ['egw/g9'])), createRevision: 0, modRevision: 0 });
    r = await syncNextHops(store, [rec('app/c1', ['egw/g1', 'egw/g5']), rec('app/c2', ['egw/g3', 'egw/g4'])], [], lookup, 'n1');
    expect(r).toEqual({ written: 1, deleted: 0, conflicts: 2, failed: [] });
    expect(parseNextHops((await store.get(nextHopsKey('app/c1')))!)?.rules['sel']?.gateways).toEqual(['egw/g1', 'egw/g5']);
    // With an up-to-date cache, equal records are not written again.
    for (const c of ['app/c1', 'app/c2']) cache.set(c, await store.get(nextHopsKey(c)));
    r = await syncNextHops(store, [rec('app/c1', ['egw/g1', 'egw/g5']), rec('app/c2', ['egw/g3', 'egw/g4'])], [], lookup, 'n1');
    expect(r).toEqual({ written: 0, deleted: 0, conflicts: 0, failed: [] });
    // c2 was re-created on n2 meanwhile (its agent rewrote the record): our stale delete leaves it alone.
    await store.commit([{ op: 'put', key: nextHopsKey('app/c2'), value: nextHopsValue(rec('app/c2', ['egw/g6'], 'n2')) }]);
    r = await syncNextHops(store, [], ['app/c1', 'app/c2'], lookup, 'n1');
    expect(r.deleted).toBe(1);
    expect(await store.get(nextHopsKey('app/c1'))).toBeUndefined();
    expect(parseNextHops((await store.get(nextHopsKey('app/c2')))!)?.node).toBe('n2');
  });
});

describe('readiness poll over HTTP', () => {
  let server: Server;
  let port: number;
  let answer = 200;
  beforeEach(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/readiness') res.writeHead(404).end();
      else if (answer === 0) return; // never answers
      else res.writeHead(answer).end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('200 is up; 503 is not-ready; silence is a timeout; a closed port is an error', async () => {
    const p = new HttpReadinessProbe();
    const t = { ip: '127.0.0.1', port };
    answer = 200;
    expect(await p.check(t, 1000)).toEqual({ ok: true });
    answer = 503;
    expect(await p.check(t, 1000)).toEqual({ ok: false, reason: 'not-ready', detail: 'HTTP 503' });
    answer = 0;
    expect(await p.check(t, 100)).toEqual({ ok: false, reason: 'timeout', detail: 'no answer within 100 ms' });
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    expect(await p.check(t, 1000)).toEqual({ ok: false, reason: 'error', detail: 'ECONNREFUSED' });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  });
});
