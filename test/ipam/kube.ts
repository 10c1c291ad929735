/**
 * The Kubernetes side of the IPAM tests: whether they can run (scripts/with-kube), egw's CRDs applied
 * (only the CRDs of `egw render install`: the DaemonSet and Deployment would schedule pods onto the test's
 * fake nodes), and IPAM's records wiped before and after a test (they are cluster-scoped and shared).
 */
import { execFileSync } from 'node:child_process';
import { IPAM_KINDS } from '../../src/ipam/records.js';
import { EGW_CLI } from '../support/dist.js';

/** Why the Kubernetes IPAM tests are skipped, or undefined when they run. */
export const kubeSkipReason: string | undefined =
  process.env['KUBECONFIG'] === undefined || process.env['EGW_TEST_KUBE_DIR'] === undefined ? 'needs scripts/with-kube (KUBECONFIG, EGW_TEST_KUBE_DIR)' : undefined;

function kubectl(args: string[], input?: string): string {
  return execFileSync('kubectl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
}

/** Applies the CRDs of `egw render install` (server-side, as the install does) and waits until they are served. */
export function applyEgwCrds(): void {
  const all = execFileSync(process.execPath, [EGW_CLI, 'render', 'install'], { encoding: 'utf8' });
  const crds = all.split(/^---$/m).filter((doc) => /^kind: CustomResourceDefinition$/m.test(doc));
  kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], crds.join('\n---\n'));
  kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '-l', 'app.kubernetes.io/part-of=egw']);
}

/** The collection paths of IPAM's record kinds (`/apis/egw.io/v1/ipamblocks`, …). */
function ipamCollections(): string[] {
  return IPAM_KINDS.map((k) => `/apis/egw.io/v1/${k.toLowerCase()}${k.toLowerCase().endsWith('s') ? 'es' : 's'}`);
}

/**
 * Deletes every IPAM record (one DeleteCollection request per kind: thousands of handles one by one would
 * take minutes) and the given resources (e.g. `node/x`, `ippools.projectcalico.org/y`).
 */
export function wipeIpam(...resources: string[]): void {
  for (const path of ipamCollections()) kubectl(['delete', '--raw', path]);
  if (resources.length > 0) kubectl(['delete', '--ignore-not-found', ...resources]);
}
