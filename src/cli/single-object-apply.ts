/**
 * `egw apply` and `egw delete` on a datastore without multi-key commits (the Kubernetes datastore:
 * `capabilities.atomicMultiKey` false). All-or-nothing is impossible there; this is as close as the API
 * allows, in four steps:
 *
 * 1. validate every document (the caller, before a store is opened) — nothing is written when one fails;
 * 2. cross-check against the store and plan every write, as the atomic path does;
 * 3. dry-run every planned write on the server (the injected `dryRun` port: schema, CEL and admission of
 *    the API server itself) — nothing is written when one is refused;
 * 4. write one object per commit in dependency order (the order of `KINDS`: pools before the gateways
 *    that name them, namespaces before what lives in them).
 *
 * What still can fail half-way (a concurrent writer, a lost connection, an admission decision that changes
 * between the dry run and the write) is reported exactly: which objects were written and which were not.
 */
import type { Command } from 'commander';
import { crossCheck, hasErrors, KINDS } from '../api/index.js';
import type { AnyResource, IncomingResource, Issue } from '../api/index.js';
import type { Datastore, ResourceKey, WriteOp } from '../datastore/contract.js';
import { DEFAULT_DATASTORE, labDatastore, parseDatastoreSpec } from '../datastore/open.js';
import { fromStored, keyOf, mergeForApply, writeOpFor } from '../datastore/resources.js';
import type { WriteOutcome } from '../datastore/resources.js';
import { isEgwError } from '../platform/errors.js';

/** Dry-runs one write; resolves when the server would accept it, throws an EgwError otherwise. */
export type DryRun = (op: WriteOp, options: { substituteNamespace?: string }) => Promise<void>;

/** Side effects of {@link applyOneByOne}. */
export interface OneByOneDeps {
  store: Datastore;
  /** The server-side dry run; undefined when the datastore has none (then step 3 is skipped). */
  dryRun?: DryRun | undefined;
  /** Called once per resource, in write order, as soon as it is written or found unchanged. */
  onDone?: (resource: AnyResource, outcome: WriteOutcome) => void;
  /** Creation time of new resources (default now). */
  now?: Date;
}

/** A resource the server refused, in the dry run or the write. */
export interface Refusal {
  resource: AnyResource;
  error: unknown;
}

/**
 * What happened. `issues`: cross-check findings (with errors, nothing was written). `refused`: dry-run
 * refusals (nothing was written). `done`: written or unchanged, in order. `failed` and `notWritten`: the
 * write that failed half-way and the ones after it that were never tried.
 */
export interface OneByOneReport {
  issues: Issue[];
  refused: Refusal[];
  done: [AnyResource, WriteOutcome][];
  failed?: Refusal;
  notWritten: AnyResource[];
}

const ORDER = new Map<string, number>(KINDS.map((k, i) => [k.kind, i]));
/** Dependency order of a kind (unknown kinds last). */
export function kindOrder(kind: string): number {
  return ORDER.get(kind) ?? KINDS.length;
}

/** The namespace dry runs of objects in not-yet-created namespaces go to: every cluster has it. */
const SUBSTITUTE_NAMESPACE = 'default';

interface Planned {
  incoming: IncomingResource;
  value: AnyResource;
  outcome: WriteOutcome;
  op: WriteOp | undefined;
}

/** Metadata the server maintains; never part of what a user applies. */
const SERVER_METADATA = new Set(['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields', 'selfLink']);

/**
 * True when every field `incoming` sets has that value in `existing` (extra fields in `existing` are the
 * API server's defaults, e.g. a Pod's dnsPolicy or its service-account volume). Pure.
 */
export function coveredBy(incoming: unknown, existing: unknown, path: readonly string[] = []): boolean {
  if (Array.isArray(incoming)) {
    return Array.isArray(existing) && existing.length === incoming.length && incoming.every((v, i) => coveredBy(v, existing[i], [...path, String(i)]));
  }
  if (typeof incoming === 'object' && incoming !== null) {
    if (typeof existing !== 'object' || existing === null || Array.isArray(existing)) return false;
    const ex = existing as Record<string, unknown>;
    return Object.entries(incoming).every(([k, v]) => (path.length === 1 && path[0] === 'metadata' && SERVER_METADATA.has(k)) || coveredBy(v, ex[k], [...path, k]));
  }
  return incoming === existing;
}

async function plan(store: Datastore, incoming: IncomingResource, now: Date): Promise<Planned> {
  const current = await store.get(keyOf(incoming.resource));
  const existing = current === undefined ? undefined : fromStored(current);
  // The API server adds defaults to what egw wrote: what the user applied is unchanged when the stored
  // object already holds every field of it (writing it again would strip the defaults, and for a Pod be
  // refused as a change of an immutable spec).
  if (existing !== undefined && coveredBy(incoming.resource, existing)) return { incoming, value: existing, outcome: 'unchanged', op: undefined };
  const merged = mergeForApply(incoming.resource, existing, now);
  return { incoming, value: merged.value, outcome: merged.outcome, op: merged.outcome === 'unchanged' ? undefined : writeOpFor(merged.value, current) };
}

/**
 * Applies validated resources one object per commit (see the file comment). Never throws for a refused or
 * failed write — it is in the report; throws only when the store cannot be read at all before anything
 * was written.
 */
export async function applyOneByOne(deps: OneByOneDeps, incoming: readonly IncomingResource[]): Promise<OneByOneReport> {
  const { store } = deps;
  const now = deps.now ?? new Date();
  const existing: AnyResource[] = [];
  // Pods and Nodes are not needed to check what is applied, and there may be very many of them.
  for (const info of KINDS.filter((k) => k.kind !== 'Pod' && k.kind !== 'Node')) {
    existing.push(...(await store.list(info.kind)).items.map((s) => fromStored(s)));
  }
  const issues = crossCheck(incoming, existing);
  const report: OneByOneReport = { issues, refused: [], done: [], notWritten: [] };
  if (hasErrors(issues)) return report;

  // Stable sort: dependency order between kinds, the files' order within a kind.
  const ordered = [...incoming].map((inc, i) => ({ inc, i })).sort((a, b) => kindOrder(a.inc.resource.kind) - kindOrder(b.inc.resource.kind) || a.i - b.i);
  const planned: Planned[] = [];
  for (const { inc } of ordered) planned.push(await plan(store, inc, now));

  if (deps.dryRun !== undefined) {
    const newNamespaces = new Set(planned.filter((p) => p.value.kind === 'Namespace' && p.op?.op === 'create').map((p) => p.value.metadata.name));
    for (const p of planned) {
      if (p.op === undefined) continue;
      const ns = p.value.metadata.namespace;
      try {
        await deps.dryRun(p.op, ns !== undefined && newNamespaces.has(ns) ? { substituteNamespace: SUBSTITUTE_NAMESPACE } : {});
      } catch (error) {
        report.refused.push({ resource: p.value, error });
      }
    }
    if (report.refused.length > 0) return report;
  }

  for (let i = 0; i < planned.length; i++) {
    let p = planned[i]!;
    const intended = p.outcome;
    try {
      for (let attempt = 1; p.op !== undefined; attempt++) {
        try {
          await store.commit([p.op]);
          break;
        } catch (err) {
          // Someone wrote the object since it was read: read it again and merge again (as the atomic path
          // re-reads everything); a few times only.
          if (attempt >= 3 || !isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) throw err;
          p = await plan(store, p.incoming, now);
        }
      }
    } catch (error) {
      report.failed = { resource: p.value, error };
      report.notWritten = planned.slice(i + 1).filter((q) => q.op !== undefined).map((q) => q.value);
      return report;
    }
    // A retry that finds the object already as wanted means an earlier attempt (or someone) wrote it:
    // report what this apply set out to do, not "unchanged".
    const outcome = p.outcome === 'unchanged' && intended !== 'unchanged' ? intended : p.outcome;
    report.done.push([p.value, outcome]);
    deps.onDone?.(p.value, outcome);
  }
  return report;
}

/** A delete that failed half-way: what was deleted before it, it, and what was never tried. */
export interface DeleteReport {
  deleted: ResourceKey[];
  failed?: { key: ResourceKey; error: unknown };
  notDeleted: ResourceKey[];
}

/**
 * Deletes one object per commit, dependents first (reverse dependency order), each at the revision it was
 * read at. `onDeleted` is called after each. Never throws for a failed delete: it is in the report.
 */
export async function deleteOneByOne(store: Datastore, ops: readonly Extract<WriteOp, { op: 'delete' }>[], onDeleted?: (key: ResourceKey) => void): Promise<DeleteReport> {
  const ordered = [...ops].map((op, i) => ({ op, i })).sort((a, b) => kindOrder(b.op.key.kind) - kindOrder(a.op.key.kind) || a.i - b.i);
  const report: DeleteReport = { deleted: [], notDeleted: [] };
  for (let i = 0; i < ordered.length; i++) {
    const { op } = ordered[i]!;
    try {
      await store.commit([op]);
    } catch (error) {
      report.failed = { key: op.key, error };
      report.notDeleted = ordered.slice(i + 1).map((o) => o.op.key);
      return report;
    }
    report.deleted.push(op.key);
    onDeleted?.(op.key);
  }
  return report;
}

/**
 * The server-side dry run for the datastore the command's global options name (`--datastore`, else
 * EGW_DATASTORE, else the lab's, else the default file — the same choice as `openDatastore`), or undefined
 * when it is not the Kubernetes datastore. The caller calls `close`.
 */
export async function dryRunFor(command: Command, env: Record<string, string | undefined> = process.env): Promise<{ dryRun: DryRun; close: () => void } | undefined> {
  const { datastore } = command.optsWithGlobals<{ datastore?: string }>();
  const chosen = datastore !== undefined && datastore !== '' ? datastore : env['EGW_DATASTORE'] !== undefined && env['EGW_DATASTORE'] !== '' ? env['EGW_DATASTORE'] : (labDatastore(env) ?? DEFAULT_DATASTORE);
  const spec = parseDatastoreSpec(chosen);
  if (spec.backend !== 'kubernetes') return undefined;
  // Loaded only here: the Kubernetes client is not needed by the other backends.
  const { KubernetesDryRun } = await import('../datastore/kubernetes/dry-run.js');
  const runner = KubernetesDryRun.open({ ...(spec.kubeconfig === undefined ? {} : { kubeconfig: spec.kubeconfig }), env });
  return { dryRun: (op, options) => runner.check(op, options), close: () => runner.close() };
}
