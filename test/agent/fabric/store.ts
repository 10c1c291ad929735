/** A throwaway SQLite datastore and compact resource builders for the fabric and subnet-facts tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Datastore, JsonObject } from '../../../src/datastore/contract.js';
import { SqliteDatastore } from '../../../src/datastore/sqlite/sqlite-datastore.js';

export interface TestStore {
  store: Datastore;
  cleanup(): Promise<void>;
}

/** A new SQLite store in a temp directory; cleanup() closes and removes it. */
export async function openTestStore(prefix = 'egw-fabric-test-'): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = await SqliteDatastore.open(join(dir, 'egw.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type Resource = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

/** Puts resources as they are (no validation). */
export async function put(store: Datastore, ...resources: Resource[]): Promise<void> {
  await store.commit(
    resources.map((r) => ({
      op: 'put' as const,
      key: r.metadata.namespace === undefined ? { kind: r.kind, name: r.metadata.name } : { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name },
      value: r as unknown as JsonObject,
    })),
  );
}

export async function remove(store: Datastore, kind: string, name: string, namespace?: string): Promise<void> {
  await store.commit([{ op: 'delete', key: namespace === undefined ? { kind, name } : { kind, namespace, name } }]);
}

export function ipPool(name: string, cidr: string, subnet: string | undefined, extra: Record<string, unknown> = {}): Resource {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name },
    spec: { cidr, ...(subnet === undefined ? {} : { awsSubnetID: subnet }), blockSize: 32, allowedUses: ['Workload'], nodeSelector: '!all()', ...extra },
  };
}

export function felix(name: string, spec: Record<string, unknown>): Resource {
  return { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name }, spec };
}

export function node(name: string, zone: string): Resource {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } }, status: {} };
}

export function awsSubnet(id: string, cidr: string, zone: string): Resource {
  return { apiVersion: 'egw.io/v1', kind: 'AWSSubnet', metadata: { name: id }, spec: { subnetID: id, cidr, availabilityZone: zone } };
}

export function gatewayPod(name: string, nodeName: string, ip: string | undefined, annotations: Record<string, string> = {}, phase = 'Running'): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: '2025-01-01T00:00:00.000Z', annotations },
    spec: { nodeName, containers: [{ name: 'gateway', resources: { requests: { 'projectcalico.org/aws-secondary-ipv4': 1 }, limits: { 'projectcalico.org/aws-secondary-ipv4': 1 } } }] },
    status: { phase, ...(ip === undefined ? {} : { podIP: ip, podIPs: [{ ip }] }), conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
