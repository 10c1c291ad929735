import type { Command } from 'commander';
import { installCni } from '../../cni/install.js';
import { egwPackage } from '../../platform/package-info.js';
import { usageError } from '../exit.js';

/**
 * `egw install-cni …`: the agent DaemonSet's init container (src/cni/install.ts says what it does). The
 * API server defaults to the in-cluster service address (KUBERNETES_SERVICE_HOST/PORT).
 */
export function registerInstallCniCommand(program: Command): void {
  program
    .command('install-cni')
    .description('install the egw-ipam CNI plugin, its Node runtime and its configuration on this node (the agent\'s init container)')
    .requiredOption('--bin-dir <dir>', 'CNI bin directory as this process sees it')
    .requiredOption('--net-dir <dir>', 'CNI net directory as this process sees it')
    .requiredOption('--egw-dir <dir>', 'where the runtime copy goes, as this process sees it')
    .option('--host-egw-dir <dir>', 'the same folder as the host sees it', '/opt/egw')
    .option('--host-net-dir <dir>', 'the CNI net directory as the host sees it', '/etc/cni/net.d')
    .option('--token-dir <dir>', 'the mounted egw-cni service-account token Secret', '/var/run/egw-cni')
    .option('--api-server <url>', 'the API server as the node reaches it (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)')
    .option('--node <name>', 'this node\'s name (default NODENAME)')
    .option('--pod-gateway <ip>', 'pods\' on-link gateway', '169.254.1.1')
    .action((opts: { binDir: string; netDir: string; egwDir: string; hostEgwDir: string; hostNetDir: string; tokenDir: string; apiServer?: string; node?: string; podGateway: string }) => {
      const host = process.env.KUBERNETES_SERVICE_HOST;
      const apiServer = opts.apiServer ?? (host === undefined ? undefined : `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`);
      if (apiServer === undefined) throw usageError('no API server address', 'pass --api-server, or run in a pod (KUBERNETES_SERVICE_HOST)');
      const nodeName = opts.node ?? process.env.NODENAME;
      if (nodeName === undefined || nodeName === '') throw usageError('no node name', 'pass --node, or set NODENAME from spec.nodeName');
      const pkg = egwPackage();
      if (pkg.root === undefined) throw usageError('egw\'s package.json was not found above this program', 'run the installed egw');
      const report = installCni({
        ...opts,
        apiServer,
        nodeName,
        version: pkg.version,
        packageRoot: pkg.root,
        nodeBinary: process.execPath,
      });
      process.stdout.write(
        `install-cni: egw-ipam ${pkg.version} ${report.runtimeCopied ? 'runtime copied' : 'runtime already present'}; ` +
          `wrote ${report.written.length === 0 ? 'nothing' : report.written.join(', ')}; ${report.unchanged.length} file(s) unchanged\n`,
      );
    });
}
