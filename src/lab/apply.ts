/**
 * Puts the scenario's resources into the datastore as `egw apply` would (validated, defaulted,
 * cross-checked against what is stored, one atomic commit), with the two differences a cluster has too:
 * Node records are registered once (the kubelet and the agent own their status afterwards), and a Pod
 * that exists keeps its binding (`spec.nodeName`) and status — a re-run of `up` only updates its labels
 * and annotations, as `kubectl apply` leaves fields it did not set.
 */
import type { AnyResource, IncomingResource, Node } from '../api/index.js';
import { crossCheck, formatIssue, hasErrors, KINDS, validateDocument } from '../api/index.js';
import type { Datastore, WriteOp } from '../datastore/contract.js';
import { MAX_COMMIT_OPS } from '../datastore/contract.js';
import { fromStored, keyOf, mergeForApply, stableJson, writeOpFor } from '../datastore/resources.js';
import { loadManifests } from '../cli/load-manifests.js';
import { readManifestSources } from '../cli/manifest-sources.js';
import { EgwError, isEgwError } from '../platform/errors.js';
import type { Scenario } from './scenario.js';

/** The Node records of a scenario, as a cloud provider and the kubelet register them. */
export function nodeRecords(scenario: Scenario): Node[] {
  return scenario.nodes.map((n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      labels: {
        'kubernetes.io/hostname': n.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'topology.kubernetes.io/region': scenario.region,
        'topology.kubernetes.io/zone': n.zone,
        'node.kubernetes.io/instance-type': n.instanceType,
        ...n.labels,
      },
    },
    spec: { providerID: `aws:///${n.zone}/${n.instanceId}` },
    status: { addresses: [{ type: 'InternalIP', address: n.ip }, { type: 'Hostname', address: n.name }] },
  }));
}

/** FelixConfiguration `default` of a scenario. */
export function felixRecord(scenario: Scenario): AnyResource {
  return { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: scenario.felix } as unknown as AnyResource;
}

/** What an apply did, per resource (`created`, `configured`, `unchanged`). */
export interface LabApplyResult {
  outcomes: { kind: string; name: string; namespace?: string; outcome: string }[];
  warnings: string[];
}

/**
 * Validates the scenario's FelixConfiguration, Nodes and manifests and writes them in one commit.
 * With `createOnly` (a re-run of `up` on a running lab), resources that exist are left as they are, so
 * that what the user changed since (a policy, a scaled gateway) stays; only deleted ones come back.
 * Throws `InvalidInput` listing every problem (nothing written) when any is invalid.
 */
export async function applyScenario(store: Datastore, scenario: Scenario, options: { createOnly?: boolean } = {}): Promise<LabApplyResult> {
  const loaded = loadManifests(readManifestSources(scenario.manifests));
  const issues = [...loaded.issues];
  const own: IncomingResource[] = [];
  for (const [i, r] of [felixRecord(scenario), ...nodeRecords(scenario)].entries()) {
    const location = { file: `${scenario.source} (lab)`, documentIndex: i + 1 };
    const v = validateDocument(r, location);
    issues.push(...v.issues);
    if (v.resource !== undefined) own.push({ resource: v.resource, location });
  }
  const incoming = [...own, ...loaded.resources];
  if (hasErrors(issues)) throw invalid(issues.filter((i) => i.severity === 'error').map(formatIssue));
  if (incoming.length > MAX_COMMIT_OPS) throw new EgwError('InvalidInput', `the scenario holds ${incoming.length} resources; one apply takes at most ${MAX_COMMIT_OPS}`, { hint: 'split the manifests' });

  for (let attempt = 1; ; attempt++) {
    const existing: AnyResource[] = [];
    for (const info of KINDS.filter((k) => k.kind !== 'Pod' && k.kind !== 'Node')) existing.push(...(await store.list(info.kind)).items.map((s) => fromStored(s)));
    const cross = crossCheck(incoming, existing);
    if (hasErrors(cross)) throw invalid(cross.filter((i) => i.severity === 'error').map(formatIssue));
    const ops: WriteOp[] = [];
    const outcomes: LabApplyResult['outcomes'] = [];
    const now = new Date();
    for (const { resource } of incoming) {
      const current = await store.get(keyOf(resource));
      const id = { kind: resource.kind, name: resource.metadata.name, ...(resource.metadata.namespace === undefined ? {} : { namespace: resource.metadata.namespace }) };
      if (current !== undefined && options.createOnly === true) {
        outcomes.push({ ...id, outcome: 'unchanged' });
        continue;
      }
      if (current !== undefined && (resource.kind === 'Node' || resource.kind === 'Pod')) {
        const old = fromStored(current);
        const changed = resource.kind === 'Pod' && (stableJson(old.metadata.labels ?? {}) !== stableJson(resource.metadata.labels ?? {}) || stableJson(old.metadata.annotations ?? {}) !== stableJson(resource.metadata.annotations ?? {}));
        if (changed) {
          const { resourceVersion: _rv, ...meta } = old.metadata;
          const value = { ...old, metadata: { ...meta, labels: resource.metadata.labels, annotations: resource.metadata.annotations } } as AnyResource;
          ops.push(writeOpFor(value, current));
        }
        outcomes.push({ ...id, outcome: changed ? 'configured' : 'unchanged' });
        continue;
      }
      const merged = mergeForApply(resource, current === undefined ? undefined : fromStored(current), now);
      outcomes.push({ ...id, outcome: merged.outcome });
      if (merged.outcome !== 'unchanged') ops.push(writeOpFor(merged.value, current));
    }
    try {
      if (ops.length > 0) await store.commit(ops);
      return { outcomes, warnings: [...issues, ...cross].filter((i) => i.severity !== 'error').map(formatIssue) };
    } catch (err) {
      if (attempt < 5 && isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) continue;
      throw err;
    }
  }
}

function invalid(lines: string[]): EgwError {
  return new EgwError('InvalidInput', `the scenario's resources are invalid:\n  ${lines.join('\n  ')}`, { hint: 'fix the manifests the scenario names; nothing was applied' });
}
