/**
 * The core datastore figures every datastore benchmark takes the same way: single-put commits/s, CAS
 * increments/s (get + update at the revision read), and watch latency from a write through one handle to
 * its event on another.
 */
import type { Datastore } from '../../src/datastore/contract.js';
import { elapsedNs, nowNs, summarize } from '../harness.js';

export interface CoreFigures {
  commitsPerSec: number;
  casPerSec: number;
  watchP50Ms: number;
  watchP99Ms: number;
}

/** Measures on `store`, watching through `other`; `kinds` are the kinds written (the store must take them). */
export async function measureCore(
  store: Datastore,
  other: Datastore,
  kinds: { put: string; cas: string; watch: string },
  counts: { commits: number; cas: number; latencySamples: number },
): Promise<CoreFigures> {
  let t = nowNs();
  for (let i = 0; i < counts.commits; i++) await store.commit([{ op: 'put', key: { kind: kinds.put, name: `k${i % 100}` }, value: { i } }]);
  const commitsPerSec = counts.commits / (elapsedNs(t) / 1e9);

  const key = { kind: kinds.cas, name: 'counter' };
  await store.commit([{ op: 'put', key, value: { n: 0 } }]);
  t = nowNs();
  for (let i = 0; i < counts.cas; i++) {
    const cur = await store.get(key);
    await store.commit([{ op: 'update', key, value: { n: (cur!.value['n'] as number) + 1 }, expectedRevision: cur!.modRevision }]);
  }
  const casPerSec = counts.cas / (elapsedNs(t) / 1e9);

  const latencies: number[] = [];
  const ac = new AbortController();
  const iterator = other.watch({ afterRevision: await store.currentRevision(), kinds: [kinds.watch], signal: ac.signal })[Symbol.asyncIterator]();
  for (let i = 0; i < counts.latencySamples; i++) {
    const start = nowNs();
    const next = iterator.next();
    await store.commit([{ op: 'put', key: { kind: kinds.watch, name: 'w' }, value: { i } }]);
    await next;
    latencies.push(elapsedNs(start) / 1e6);
  }
  ac.abort();
  await iterator.return?.();
  const w = summarize(latencies);
  return { commitsPerSec, casPerSec, watchP50Ms: w.p50, watchP99Ms: w.p99 };
}
