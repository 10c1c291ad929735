/**
 * Test helpers for IPAM: a throwaway SQLite store and compact builders for the resources IPAM reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Datastore, JsonObject, WriteOp } from '../../src/datastore/contract.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';

export interface TestStore {
  store: Datastore;
  path: string;
  dir: string;
  cleanup(): Promise<void>;
}

/** A new SQLite store in a temp directory; cleanup() closes and removes it. */
export async function openTestStore(prefix = 'egw-ipam-test-'): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const path = join(dir, 'egw.db');
  const store = await SqliteDatastore.open(path);
  return {
    store,
    path,
    dir,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Resource = { kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

/** Puts resources as they are (no validation), in commits of at most 100 (one each on single-object stores). */
export async function seed(store: Datastore, ...resources: Resource[]): Promise<void> {
  const per = store.capabilities.atomicMultiKey ? 100 : 1;
  for (let i = 0; i < resources.length; i += per) {
    const ops: WriteOp[] = resources.slice(i, i + per).map((r) => ({
      op: 'put',
      key: r.metadata.namespace === undefined ? { kind: r.kind, name: r.metadata.name } : { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name },
      value: r as unknown as JsonObject,
    }));
    await store.commit(ops);
  }
}

export function pool(name: string, spec: Record<string, unknown>): Resource {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec };
}

/** An AWS-backed pool as the reference document writes them. */
export function awsPool(name: string, cidr: string, subnet: string, extra: Record<string, unknown> = {}): Resource {
  return pool(name, { cidr, awsSubnetID: subnet, blockSize: 32, allowedUses: ['Workload'], nodeSelector: '!all()', disableBGPExport: true, ...extra });
}

export function subnet(id: string, cidr: string, zone: string): Resource {
  return { apiVersion: 'egw.io/v1', kind: 'AWSSubnet', metadata: { name: id }, spec: { subnetID: id, cidr, availabilityZone: zone } };
}

export function reservation(name: string, cidrs: string[]): Resource {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPReservation', metadata: { name }, spec: { reservedCIDRs: cidrs } };
}

export function node(name: string, labels: Record<string, string> = {}): Resource {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } };
}

export function namespace(name: string, annotations: Record<string, string> = {}, labels: Record<string, string> = {}): Resource {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, annotations, labels } };
}

export interface PodOptions {
  annotations?: Record<string, string>;
  aws?: boolean;
  nodeName?: string;
  uid?: string;
  podIP?: string;
}

export function pod(ns: string, name: string, o: PodOptions = {}): Resource & { spec: Record<string, unknown> } {
  const resources = o.aws === true ? { requests: { 'projectcalico.org/aws-secondary-ipv4': 1 }, limits: { 'projectcalico.org/aws-secondary-ipv4': 1 } } : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, uid: o.uid ?? `uid-${ns}-${name}`, annotations: o.annotations ?? {} },
    spec: { ...(o.nodeName === undefined ? {} : { nodeName: o.nodeName }), containers: [{ name: 'main', ...(resources === undefined ? {} : { resources }) }] },
    ...(o.podIP === undefined ? {} : { status: { podIP: o.podIP } }),
  };
}

/** A deterministic random source (mulberry32). */
export function seeded(seed = 1): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Dotted quad → number. */
export function ipNum(ip: string): number {
  return ip.split('.').reduce((a, p) => a * 256 + Number(p), 0);
}
