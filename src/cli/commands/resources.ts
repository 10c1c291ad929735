import type { Command } from 'commander';
import { crossCheck, formatIssue, hasErrors, KINDS, resolveKind } from '../../api/index.js';
import type { AnyResource, IncomingResource, Issue, KindInfo } from '../../api/index.js';
import type { Datastore, StoredResource, WriteOp } from '../../datastore/contract.js';
import { MAX_COMMIT_OPS } from '../../datastore/contract.js';
import { fromStored, keyOf, mergeForApply, writeOpFor } from '../../datastore/resources.js';
import type { WriteOutcome } from '../../datastore/resources.js';
import { EgwError, errorMessage, isEgwError } from '../../platform/errors.js';
import { columnsFor } from '../columns.js';
import { withStore } from '../context.js';
import { ExitCode, usageError } from '../exit.js';
import { loadManifests } from '../load-manifests.js';
import { readManifestSources } from '../manifest-sources.js';
import type { OneByOneReport } from '../single-object-apply.js';
import { applyOneByOne, deleteOneByOne, dryRunFor } from '../single-object-apply.js';
import { formatAge, formatObjects, formatTable, parseOutputFormat } from '../output.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Registers `apply`, `get`, `delete` and `validate`. */
export function registerResourceCommands(program: Command): void {
  program
    .command('validate')
    .description('check manifests without a datastore; exit 0 when every document is valid, 1 otherwise')
    .requiredOption('-f, --filename <path>', 'a file, a directory of manifests, or - for stdin (repeatable)', collect, [])
    .action((opts: { filename: string[] }) => {
      const { resources, issues } = loadManifests(readManifestSources(opts.filename));
      // Cross-resource checks within the given files (nothing stored is consulted); references to
      // resources outside them are warnings.
      const all = [...issues, ...crossCheck(resources, [])];
      printIssues(all);
      if (hasErrors(all)) throw new ExitCode(1);
      process.stdout.write(`${resources.length} document${resources.length === 1 ? '' : 's'} valid\n`);
    });

  program
    .command('apply')
    .description('create or update resources from manifests, all or nothing (on the Kubernetes datastore: validated and dry-run on the server first, then written one by one)')
    .requiredOption('-f, --filename <path>', 'a file, a directory of manifests, or - for stdin (repeatable)', collect, [])
    .action(async (opts: { filename: string[] }, command: Command) => {
      const { resources, issues } = loadManifests(readManifestSources(opts.filename));
      if (hasErrors(issues)) {
        printIssues(issues);
        process.stderr.write('nothing was applied\n');
        throw new ExitCode(1);
      }
      const outcome = await withStore(command, async (store) => {
        // The Kubernetes datastore writes one object per request: apply validates, dry-runs every object on
        // the server, then writes them one by one (src/cli/single-object-apply.ts).
        if (!store.capabilities.atomicMultiKey) return { oneByOne: await applyWithoutAtomicity(command, store, resources) };
        if (resources.length > MAX_COMMIT_OPS) {
          throw new EgwError('InvalidInput', `this apply holds ${resources.length} resources; one atomic apply takes at most ${MAX_COMMIT_OPS}`, {
            hint: 'split the manifests into several files and apply them one by one',
          });
        }
        return { atomic: await applyAll(store, resources) };
      });
      if (outcome.oneByOne !== undefined) {
        printIssues(issues);
        if (!reportOneByOne(outcome.oneByOne)) throw new ExitCode(1);
        return;
      }
      printIssues([...issues, ...outcome.atomic.issues]);
      if (outcome.atomic.outcomes === undefined) {
        process.stderr.write('nothing was applied\n');
        throw new ExitCode(1);
      }
      for (const [r, what] of outcome.atomic.outcomes) process.stdout.write(`${describe(r)} ${what}\n`);
    });

  program
    .command('get')
    .description('show resources')
    .argument('<kind>', `a kind, plural or short name (${KINDS.map((k) => k.plural).join(', ')})`)
    .argument('[name]', 'one resource by name')
    .option('-n, --namespace <ns>', 'the namespace of namespaced kinds', 'default')
    .option('-A, --all-namespaces', 'namespaced kinds: all namespaces')
    .option('-o, --output <format>', 'table, yaml or json', 'table')
    .action(async (kindName: string, name: string | undefined, opts: { namespace: string; allNamespaces?: boolean; output: string }, command: Command) => {
      const info = resolveKind(kindName);
      const format = parseOutputFormat(opts.output);
      const namespace = info.namespaced && opts.allNamespaces !== true ? opts.namespace : undefined;
      const found = await withStore(command, async (store) => {
        if (name !== undefined) {
          const stored = await store.get(keyOf({ kind: info.kind, metadata: { name, ...(namespace === undefined ? {} : { namespace }) } }));
          if (stored === undefined) {
            throw new EgwError('NotFound', `${info.kind} "${name}"${info.namespaced ? ` in namespace "${namespace ?? ''}"` : ''} not found`, {
              hint: `list them with: egw get ${info.plural}${info.namespaced ? ' -A' : ''}`,
            });
          }
          return [stored];
        }
        return (await store.list(info.kind, namespace === undefined ? {} : { namespace })).items;
      });
      const resources = found.map((s: StoredResource) => fromStored(s));
      if (format !== 'table') {
        process.stdout.write(formatObjects(resources, format, name === undefined));
        return;
      }
      if (resources.length === 0) {
        process.stderr.write(info.namespaced && namespace !== undefined ? `No resources found in ${namespace} namespace.\n` : 'No resources found.\n');
        return;
      }
      const cols = columnsFor(info.kind);
      const showNs = info.namespaced && namespace === undefined;
      const now = Date.now();
      const header = [...(showNs ? ['NAMESPACE'] : []), 'NAME', ...cols.header, 'AGE'];
      const rows = resources.map((r) => [...(showNs ? [r.metadata.namespace ?? ''] : []), r.metadata.name, ...cols.cells(r), formatAge(r.metadata.creationTimestamp, now)]);
      process.stdout.write(formatTable(header, rows));
    });

  program
    .command('delete')
    .description('delete resources by kind and name, or those named in manifests')
    .argument('[kind]', 'a kind, plural or short name')
    .argument('[names...]', 'resource names')
    .option('-n, --namespace <ns>', 'the namespace of namespaced kinds', 'default')
    .option('-f, --filename <path>', 'delete the resources these manifests name (repeatable)', collect, [])
    .option('--ignore-not-found', 'succeed when a resource does not exist')
    .action(async (kindName: string | undefined, names: string[], opts: { namespace: string; filename: string[]; ignoreNotFound?: boolean }, command: Command) => {
      const targets: { info: KindInfo; name: string; namespace?: string }[] = [];
      if (opts.filename.length > 0) {
        if (kindName !== undefined) throw usageError('give either KIND NAME or -f FILE, not both');
        const { resources, issues } = loadManifests(readManifestSources(opts.filename));
        if (hasErrors(issues)) {
          printIssues(issues);
          throw new ExitCode(1);
        }
        for (const { resource } of resources) {
          targets.push({ info: resolveKind(resource.kind), name: resource.metadata.name, ...(resource.metadata.namespace === undefined ? {} : { namespace: resource.metadata.namespace }) });
        }
      } else {
        if (kindName === undefined || names.length === 0) throw usageError('delete needs KIND NAME… or -f FILE', 'e.g. egw delete ippool egress-red-west-1');
        const info = resolveKind(kindName);
        for (const name of names) targets.push({ info, name, ...(info.namespaced ? { namespace: opts.namespace } : {}) });
      }
      const deleted = await withStore(command, async (store) => {
        const ops: Extract<WriteOp, { op: 'delete' }>[] = [];
        const missing: string[] = [];
        for (const t of targets) {
          const key = keyOf({ kind: t.info.kind, metadata: { name: t.name, ...(t.namespace === undefined ? {} : { namespace: t.namespace }) } });
          const current = await store.get(key);
          if (current === undefined) missing.push(`${t.info.kind} "${t.name}"${t.namespace === undefined ? '' : ` in namespace "${t.namespace}"`}`);
          else ops.push({ op: 'delete', key, expectedRevision: current.modRevision });
        }
        if (missing.length > 0 && opts.ignoreNotFound !== true) {
          throw new EgwError('NotFound', `not found: ${missing.join(', ')}; nothing was deleted`, { hint: 'check the names, or pass --ignore-not-found' });
        }
        if (!store.capabilities.atomicMultiKey) {
          // One object per commit: each is printed as it goes, and a failure half-way says what is left.
          const report = await deleteOneByOne(store, ops, (key) => process.stdout.write(`${describeKey(key.kind, key.name)} deleted\n`));
          if (report.failed !== undefined) {
            process.stderr.write(`error: ${describeKey(report.failed.key.kind, report.failed.key.name)} not deleted: ${errorMessage(report.failed.error)}\n`);
            process.stderr.write(`deleted: ${listOr(report.deleted.map((k) => describeKey(k.kind, k.name)))}\n`);
            process.stderr.write(`not deleted: ${listOr([report.failed.key, ...report.notDeleted].map((k) => describeKey(k.kind, k.name)))}\n`);
            throw new ExitCode(1);
          }
          return [];
        }
        if (ops.length > 0) await store.commit(ops);
        return ops;
      });
      for (const op of deleted) process.stdout.write(`${describeKey(op.key.kind, op.key.name)} deleted\n`);
    });
}

/**
 * Cross-checks the resources against the store and writes them in one atomic commit. A concurrent
 * writer makes the commit fail with Conflict; then everything is read and checked again.
 */
async function applyAll(store: Datastore, incoming: readonly IncomingResource[]): Promise<{ issues: Issue[]; outcomes?: [AnyResource, WriteOutcome][] }> {
  for (let attempt = 1; ; attempt++) {
    const existing: AnyResource[] = [];
    // Pods and Nodes are not needed to check what is applied, and there may be very many of them.
    for (const info of KINDS.filter((k) => k.kind !== 'Pod' && k.kind !== 'Node')) {
      existing.push(...(await store.list(info.kind)).items.map((s) => fromStored(s)));
    }
    const issues = crossCheck(incoming, existing);
    if (hasErrors(issues)) return { issues };
    const ops: WriteOp[] = [];
    const outcomes: [AnyResource, WriteOutcome][] = [];
    const now = new Date();
    for (const { resource } of incoming) {
      const current = await store.get(keyOf(resource));
      const merged = mergeForApply(resource, current === undefined ? undefined : fromStored(current), now);
      outcomes.push([merged.value, merged.outcome]);
      if (merged.outcome !== 'unchanged') ops.push(writeOpFor(merged.value, current));
    }
    try {
      if (ops.length > 0) await store.commit(ops);
      return { issues, outcomes };
    } catch (err) {
      if (attempt < 5 && isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) continue;
      throw err;
    }
  }
}

/** `apply` on a datastore without multi-key commits; the server's dry run when it has one. */
async function applyWithoutAtomicity(command: Command, store: Datastore, resources: readonly IncomingResource[]): Promise<OneByOneReport> {
  const runner = await dryRunFor(command);
  try {
    return await applyOneByOne(
      { store, dryRun: runner?.dryRun, onDone: (r, what) => process.stdout.write(`${describe(r)} ${what}\n`) },
      resources,
    );
  } finally {
    runner?.close();
  }
}

/**
 * Prints what the non-atomic apply could not do (what it did was printed as it went); false when the
 * apply did not complete. A refusal before any write says "nothing was applied"; a failure half-way names
 * what was written and what was not.
 */
function reportOneByOne(report: OneByOneReport): boolean {
  printIssues(report.issues);
  if (hasErrors(report.issues)) {
    process.stderr.write('nothing was applied\n');
    return false;
  }
  if (report.refused.length > 0) {
    for (const { resource, error } of report.refused) process.stderr.write(`error: ${describe(resource)}: ${errorMessage(error)}\n`);
    process.stderr.write('nothing was applied (the API server refused the dry run)\n');
    return false;
  }
  if (report.failed === undefined) return true;
  const written = report.done.filter(([, what]) => what !== 'unchanged').map(([r]) => describe(r));
  process.stderr.write(`error: ${describe(report.failed.resource)} not written: ${errorMessage(report.failed.error)}\n`);
  process.stderr.write(`the Kubernetes datastore writes one object at a time: this apply stopped half-way\n`);
  process.stderr.write(`written: ${listOr(written)}\n`);
  process.stderr.write(`not written: ${listOr([report.failed.resource, ...report.notWritten].map(describe))}\n`);
  return false;
}

function listOr(items: readonly string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}

function printIssues(issues: readonly Issue[]): void {
  for (const issue of issues) process.stderr.write(`${issue.severity === 'error' ? 'error: ' : ''}${formatIssue(issue)}\n`);
}

function describeKey(kind: string, name: string): string {
  const info = resolveKind(kind);
  return `${info.singular}${info.group === '' ? '' : `.${info.group}`}/${name}`;
}

function describe(r: AnyResource): string {
  return describeKey(r.kind, r.metadata.name);
}
