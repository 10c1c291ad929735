/**
 * `egw install-cni`: what the agent DaemonSet's init container does on each node, so that the container
 * runtime can run `egw-ipam` as it runs any CNI plugin — a file in the CNI bin directory, a configuration
 * in the CNI net directory — although egw is a Node.js program:
 *
 * 1. the Node runtime and egw's package are copied to `<egw dir>/<version>/` on the host (once per
 *    version: copied to a temporary folder, then renamed, so a crash never leaves a half copy in use);
 * 2. `<bin dir>/egw-ipam` becomes a two-line shell launcher of that copy;
 * 3. `<net dir>/egw-kubeconfig` holds the API server address and the `egw-cni` service account's token and
 *    CA (the plugin runs on the host, outside any pod, so it has no in-cluster credentials of its own);
 * 4. `<net dir>/10-egw.conflist`: ptp with egw-ipam on the Kubernetes datastore.
 *
 * Idempotent: a file whose content is already right is not rewritten; every write is a rename of a
 * complete temporary file, so the runtime never reads half a configuration.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EgwError } from '../platform/errors.js';

export interface InstallCniOptions {
  /** CNI bin directory as this process sees it (e.g. /host/opt/cni/bin). */
  binDir: string;
  /** CNI net directory as this process sees it (e.g. /host/etc/cni/net.d). */
  netDir: string;
  /** Where the runtime and package copies go, as this process sees it (e.g. /host/opt/egw). */
  egwDir: string;
  /** The same folders as the host sees them (written into the launcher and the configuration). */
  hostEgwDir: string;
  hostNetDir: string;
  /** The mounted service-account token Secret of `egw-cni` (token, ca.crt). */
  tokenDir: string;
  /** The API server as the host reaches it, e.g. https://10.100.0.1:443. */
  apiServer: string;
  /** The node's name (NODENAME), for the IPAM configuration. */
  nodeName: string;
  /** Pods' on-link gateway. */
  podGateway: string;
  /** egw's version and package root, and the Node runtime to copy. */
  version: string;
  packageRoot: string;
  nodeBinary: string;
}

/** What one run changed (for the log). */
export interface InstallCniReport {
  runtimeCopied: boolean;
  written: string[];
  unchanged: string[];
}

export const CONFLIST_NAME = '10-egw.conflist';
export const KUBECONFIG_NAME = 'egw-kubeconfig';

/** Installs (or confirms) the plugin, its runtime and its configuration. Throws `InvalidInput` naming a missing input. */
export function installCni(o: InstallCniOptions): InstallCniReport {
  const report: InstallCniReport = { runtimeCopied: false, written: [], unchanged: [] };
  const readInput = (file: string, what: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new EgwError('InvalidInput', `cannot read ${what} ${file}: ${(err as Error).message}`, {
        hint: 'mount the egw-cni-token Secret (egw render install creates it) at --token-dir',
      });
    }
  };
  const token = readInput(join(o.tokenDir, 'token'), 'the CNI service-account token').trim();
  const ca = readInput(join(o.tokenDir, 'ca.crt'), 'the cluster CA');

  const versionDir = join(o.egwDir, o.version);
  if (!existsSync(join(versionDir, '.complete'))) {
    const tmp = `${versionDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    cpSync(o.nodeBinary, join(tmp, 'node'));
    chmodSync(join(tmp, 'node'), 0o755);
    for (const part of ['package.json', 'dist', 'node_modules']) {
      cpSync(join(o.packageRoot, part), join(tmp, 'app', part), { recursive: true, dereference: true });
    }
    writeFileSync(join(tmp, '.complete'), `${o.version}\n`);
    rmSync(versionDir, { recursive: true, force: true });
    renameSync(tmp, versionDir);
    report.runtimeCopied = true;
  }

  const hostVersionDir = join(o.hostEgwDir, o.version);
  writeIfChanged(
    join(o.binDir, 'egw-ipam'),
    `#!/bin/sh\n# egw-ipam ${o.version}, installed by egw install-cni\nexec ${hostVersionDir}/node ${hostVersionDir}/app/dist/src/cni/main.js "$@"\n`,
    0o755,
    report,
  );
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'cluster', cluster: { server: o.apiServer, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
    users: [{ name: 'egw-cni', user: { token } }],
    contexts: [{ name: 'egw-cni', context: { cluster: 'cluster', user: 'egw-cni' } }],
    'current-context': 'egw-cni',
  };
  writeIfChanged(join(o.netDir, KUBECONFIG_NAME), `${JSON.stringify(kubeconfig, null, 2)}\n`, 0o600, report);
  const conflist = {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    plugins: [
      {
        type: 'ptp',
        ipam: {
          type: 'egw-ipam',
          datastore: `kubernetes:${join(o.hostNetDir, KUBECONFIG_NAME)}`,
          nodeName: o.nodeName,
          gateway: o.podGateway,
        },
      },
    ],
  };
  writeIfChanged(join(o.netDir, CONFLIST_NAME), `${JSON.stringify(conflist, null, 2)}\n`, 0o644, report);
  return report;
}

function writeIfChanged(file: string, content: string, mode: number, report: InstallCniReport): void {
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === content) {
    report.unchanged.push(file);
    return;
  }
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
  report.written.push(file);
}
