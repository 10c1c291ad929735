/**
 * Shared by the Kubernetes datastore tests: test-only record kinds and namespaces on the API server of
 * scripts/with-kube (KUBECONFIG), created through kubectl and removed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { recordCrd } from '../../src/api/crd.js';
import { recordCrdSpec } from '../../src/datastore/kubernetes/record-crds.js';
import type { RecordKind } from '../../src/datastore/kubernetes/resource-map.js';
import { recordPlural } from '../../src/datastore/kubernetes/resource-map.js';

/** Why the Kubernetes tests are skipped, or undefined when they can run. */
export const kubeSkipReason: string | undefined =
  process.env['KUBECONFIG'] === undefined || process.env['EGW_TEST_KUBE_DIR'] === undefined ? 'needs scripts/with-kube (KUBECONFIG, EGW_TEST_KUBE_DIR)' : undefined;

/** Runs kubectl (from PATH, as scripts/with-kube sets it) and returns its output. */
export function kubectl(args: string[], input?: string, kubeconfig?: string): string {
  return execFileSync('kubectl', [...(kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig]), ...args], {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** A set of test-only record kinds (unique per run) and their CRDs. */
export class TestKinds {
  readonly id = randomBytes(4).toString('hex');
  readonly kinds: RecordKind[];

  constructor(names: { name: string; keyed: RecordKind['keyed'] }[], private readonly kubeconfig?: string) {
    this.kinds = names.map((n) => ({ kind: `T${this.id}${n.name}`, keyed: n.keyed, description: 'egw test kind' }));
  }

  kind(name: string): string {
    return `T${this.id}${name}`;
  }

  resources(): string[] {
    return this.kinds.map((k) => `${recordPlural(k.kind)}.egw.io`);
  }

  install(): void {
    const list = { apiVersion: 'v1', kind: 'List', items: this.kinds.map((k) => recordCrd(recordCrdSpec(k))) };
    kubectl(['apply', '-f', '-'], JSON.stringify(list), this.kubeconfig);
    kubectl(['wait', '--for', 'condition=established', '--timeout', '30s', ...this.resources().map((r) => `crd/${r}`)], undefined, this.kubeconfig);
  }

  /** Deletes every object of the kinds (the CRDs stay). */
  clear(): void {
    kubectl(['delete', this.resources().join(','), '--all', '--all-namespaces', '--wait=false', '--ignore-not-found'], undefined, this.kubeconfig);
  }

  uninstall(): void {
    kubectl(['delete', 'crd', ...this.resources(), '--ignore-not-found', '--wait=false'], undefined, this.kubeconfig);
  }
}

/** Creates namespaces (unique per run) and returns them; `remove` deletes them. */
export function testNamespaces(names: string[], kubeconfig?: string): { name: (n: string) => string; remove: () => void } {
  const id = randomBytes(4).toString('hex');
  const name = (n: string): string => `t${id}-${n}`;
  const list = { apiVersion: 'v1', kind: 'List', items: names.map((n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: name(n) } })) };
  kubectl(['create', '-f', '-'], JSON.stringify(list), kubeconfig);
  return { name, remove: () => void kubectl(['delete', 'namespace', ...names.map(name), '--ignore-not-found', '--wait=false'], undefined, kubeconfig) };
}
