/**
 * Shared fixtures of the operator tests: the reference document's resources, a throwaway SQLite store,
 * writing resources as `egw apply` does, the scheduler's and runtime's writes, and a store wrapper that
 * injects crashes and concurrent writes at commit time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyResource, EgressGateway, IPPool, Pod } from '../../../src/api/index.js';
import type { CommitResult, Datastore, ListResult, ResourceKey, StoredResource, WatchEvent, WatchOptions, WriteOp } from '../../../src/datastore/contract.js';
import { fromStored, keyOf, mergeForApply, writeOpFor } from '../../../src/datastore/resources.js';
import { SqliteDatastore } from '../../../src/datastore/sqlite/sqlite-datastore.js';
import { loadManifests } from '../../../src/cli/load-manifests.js';
import { readManifestSources } from '../../../src/cli/manifest-sources.js';
import { EgwError } from '../../../src/platform/errors.js';
import { REPO } from '../../support/dist.js';

/** Every resource of examples/reference, validated and defaulted as `egw apply` stores them. */
export function referenceResources(): AnyResource[] {
  const { resources, issues } = loadManifests(readManifestSources([join(REPO, 'examples/reference')]));
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) throw new Error(`reference manifests do not load: ${errors.map((e) => e.message).join('; ')}`);
  return resources.map((r) => r.resource);
}

/** The reference document's `egress-gateway-red` (defaulted as stored). */
export function referenceRed(): EgressGateway {
  const red = referenceResources().find((r): r is EgressGateway => r.kind === 'EgressGateway' && r.metadata.name === 'egress-gateway-red');
  if (red === undefined) throw new Error('no egress-gateway-red in examples/reference');
  return red;
}

/** The reference document's four egress pools. */
export function referencePools(): IPPool[] {
  return referenceResources().filter((r): r is IPPool => r.kind === 'IPPool');
}

/** A SQLite store in a fresh temp dir, and its cleanup (close + remove). */
export async function tempStore(prefix: string): Promise<{ store: SqliteDatastore; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = await SqliteDatastore.open(join(dir, 'egw.db'), { pollIntervalMs: 10 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes resources as `egw apply` does (server metadata kept, generation bumped on spec change). */
export async function apply(store: Datastore, ...resources: AnyResource[]): Promise<void> {
  const ops: WriteOp[] = [];
  for (const r of resources) {
    const current = await store.get(keyOf(r));
    const merged = mergeForApply(r, current === undefined ? undefined : fromStored(current), new Date());
    if (merged.outcome !== 'unchanged') ops.push(writeOpFor(merged.value, current));
  }
  if (ops.length > 0) await store.commit(ops);
}

/** The stored EgressGateway. */
export async function getGateway(store: Datastore, namespace: string, name: string): Promise<EgressGateway | undefined> {
  const s = await store.get({ kind: 'EgressGateway', namespace, name });
  return s === undefined ? undefined : fromStored<EgressGateway>(s);
}

/** The pods of a namespace, with their stored form. */
export async function podsIn(store: Datastore, namespace: string): Promise<Pod[]> {
  return (await store.list('Pod', { namespace })).items.map((s) => fromStored<Pod>(s));
}

/** Changes one stored pod with `change` (CAS on its revision). */
export async function updatePod(store: Datastore, namespace: string, name: string, change: (p: Pod) => Pod): Promise<void> {
  const s = await store.get({ kind: 'Pod', namespace, name });
  if (s === undefined) throw new Error(`no pod ${namespace}/${name}`);
  await store.commit([writeOpFor(change(fromStored<Pod>(s)), s)]);
}

/** What the lab's scheduler does: binds the pod to a node. */
export function scheduled(node: string): (p: Pod) => Pod {
  return (p) => ({ ...p, spec: { ...p.spec, nodeName: node } });
}

/** What the lab's runtime reports for a running pod, ready or not. */
export function running(ip: string, ready: boolean, since = '2024-01-01T00:00:00.000Z'): (p: Pod) => Pod {
  return (p) =>
    ({
      ...p,
      status: {
        ...p.status,
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: since }],
      },
    }) as Pod;
}

/** What the lab's runtime does once a terminating pod has stopped: removes its record. */
export async function finishTermination(store: Datastore, namespace: string): Promise<string[]> {
  const gone: string[] = [];
  for (const s of (await store.list('Pod', { namespace })).items) {
    const p = fromStored<Pod>(s);
    if (p.metadata.deletionTimestamp !== undefined) {
      await store.commit([{ op: 'delete', key: s.key, expectedRevision: s.modRevision }]);
      gone.push(p.metadata.name);
    }
  }
  return gone;
}

/**
 * A store that can crash (throw, writing nothing) on the Nth commit, and run a hook before each commit
 * (to write concurrently between the operator's read and its write).
 */
export class HookedStore implements Datastore {
  readonly location: string;
  get capabilities(): Datastore['capabilities'] {
    return this.inner.capabilities;
  }
  commits = 0;
  /** The commit number (1-based, counted from now on) that throws instead of writing. */
  crashAtCommit: number | undefined;
  beforeCommit: ((ops: readonly WriteOp[]) => Promise<void>) | undefined;

  constructor(private readonly inner: Datastore) {
    this.location = `hooked+${inner.location}`;
  }

  get(key: ResourceKey): Promise<StoredResource | undefined> {
    return this.inner.get(key);
  }

  list(kind: string, options?: { namespace?: string }): Promise<ListResult> {
    return this.inner.list(kind, options);
  }

  async commit(ops: readonly WriteOp[]): Promise<CommitResult> {
    this.commits += 1;
    if (this.crashAtCommit !== undefined && this.commits === this.crashAtCommit) {
      throw new EgwError('DatastoreUnavailable', 'injected crash before this commit');
    }
    const hook = this.beforeCommit;
    if (hook !== undefined) {
      this.beforeCommit = undefined;
      await hook(ops);
    }
    return this.inner.commit(ops);
  }

  currentRevision(): Promise<number> {
    return this.inner.currentRevision();
  }

  watch(options: WatchOptions): AsyncIterable<WatchEvent> {
    return this.inner.watch(options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
