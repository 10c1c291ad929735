import type { Command } from 'commander';
import { formatIssue, hasErrors, type EgressGateway, type FelixConfiguration, type IPPool, type Issue } from '../../api/index.js';
import { defaultGatewayImage, KUBE_GATEWAY_POD_SETTINGS, operatorValidationError, renderDeployment } from '../../controller/operator/index.js';
import { renderInstall, type AwsMode } from '../../install/render-install.js';
import { etcdRoles, renderEtcdRolesScript } from '../../install/etcd-roles.js';
import { ExitCode, usageError } from '../exit.js';
import { loadManifests } from '../load-manifests.js';
import { readManifestSources } from '../manifest-sources.js';
import { formatObjects, parseOutputFormat } from '../output.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * `egw render deployment -f FILE [-o yaml|json] [--image IMAGE]`: prints the `apps/v1` Deployment the
 * operator makes for each EgressGateway in the manifests, for use on a real cluster. No datastore is
 * read. Each EgressGateway is checked with the operator's rules first (pool references only when the
 * manifests hold IPPools); any failure prints the operator's message, prints no Deployment and exits 1.
 */
export function registerRenderCommands(program: Command): void {
  const render = program.command('render').description('print what egw would create, for a real cluster');
  registerRenderInstall(render);
  registerRenderEtcdRoles(render);
  render
    .command('deployment')
    .description('print the apps/v1 Deployment the operator renders for each EgressGateway in the manifests')
    .requiredOption('-f, --filename <path>', 'a file, a directory of manifests, or - for stdin (repeatable)', collect, [])
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .option('--image <image>', 'gateway container image (default ghcr.io/egw-project/egw:<egw version>)')
    .action((opts: { filename: string[]; output: string; image?: string }) => {
      const format = parseOutputFormat(opts.output);
      if (format === 'table') throw usageError('render prints yaml or json', 'use -o yaml or -o json');
      const { resources, issues } = loadManifests(readManifestSources(opts.filename));
      printIssues(issues);
      if (hasErrors(issues)) throw new ExitCode(1);
      const all = resources.map((r) => r.resource);
      const gateways = all.filter((r): r is EgressGateway => r.kind === 'EgressGateway');
      if (gateways.length === 0) {
        process.stderr.write('error: the manifests hold no EgressGateway\n');
        throw new ExitCode(1);
      }
      const pools = all.filter((r): r is IPPool => r.kind === 'IPPool');
      const felix = all.find((r): r is FelixConfiguration => r.kind === 'FelixConfiguration' && r.metadata.name === 'default');
      if (pools.length === 0) process.stderr.write('note: the manifests hold no IPPools, so the pool references were not checked\n');

      let failed = false;
      for (const egw of gateways) {
        const problem = operatorValidationError(egw, pools, { poolsKnown: pools.length > 0 });
        if (problem !== undefined) {
          process.stderr.write(`error: EgressGateway ${egw.metadata.namespace ?? 'default'}/${egw.metadata.name}: ${problem}\n`);
          failed = true;
        }
      }
      if (failed) throw new ExitCode(1);
      const image = opts.image ?? defaultGatewayImage();
      // As the operator renders them on Kubernetes: the gateway's ServiceAccount and EGW_DATASTORE=kubernetes.
      const deployments = gateways.map((egw) => renderDeployment(egw, { felix, image, ...KUBE_GATEWAY_POD_SETTINGS }));
      process.stdout.write(formatObjects(deployments, format, deployments.length > 1));
    });
}

const AWS_MODES: readonly AwsMode[] = ['none', 'secondary-ip', 'eni-per-workload'];

/**
 * `egw render install [-o yaml|json] [--image IMAGE] [--namespace NS] [--aws-mode MODE] …`: everything to
 * `kubectl apply` for a cluster (docs/kubernetes.md). Reads nothing; prints the objects in apply order.
 */
function registerRenderInstall(render: Command): void {
  render
    .command('install')
    .description('print everything to kubectl apply for a cluster: CRDs, RBAC, the agent DaemonSet, the controller, the admission policy')
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .option('--image <image>', 'egw image of every container (default ghcr.io/egw-project/egw:<egw version>)')
    .option('--namespace <name>', 'namespace of egw\'s programs', 'egw-system')
    .option('--aws-mode <mode>', `also the default FelixConfiguration for an AWS mode: ${AWS_MODES.join(', ')}`, 'none')
    .option('--aws-region <region>', 'AWS region of the agents and the controller (default: from IMDS)')
    .option('--aws-cluster <name>', 'cluster name in the tags of the ENIs agents create', 'egw')
    .option('--pod-gateway <ip>', 'the pods\' on-link gateway in the CNI configuration', '169.254.1.1')
    .action((opts: { output: string; image?: string; namespace: string; awsMode: string; awsRegion?: string; awsCluster: string; podGateway: string }) => {
      const format = parseOutputFormat(opts.output);
      if (format === 'table') throw usageError('render prints yaml or json', 'use -o yaml or -o json');
      const awsMode = AWS_MODES.find((m) => m === opts.awsMode);
      if (awsMode === undefined) throw usageError(`--aws-mode ${opts.awsMode} is not a mode`, `use one of ${AWS_MODES.join(', ')}`);
      const objects = renderInstall({
        image: opts.image ?? defaultGatewayImage(),
        namespace: opts.namespace,
        awsMode,
        awsCluster: opts.awsCluster,
        podGateway: opts.podGateway,
        ...(opts.awsRegion === undefined ? {} : { awsRegion: opts.awsRegion }),
      });
      process.stdout.write(formatObjects(objects, format, true));
    });
}

/**
 * `egw render etcd-roles [--prefix /egw/] [-o script|json] [--no-password]`: the etcd roles and users of
 * egw's programs (docs/security.md, "Least privilege on etcd"). Reads nothing.
 */
function registerRenderEtcdRoles(render: Command): void {
  render
    .command('etcd-roles')
    .description("print the etcdctl commands that create one etcd role and user per egw program (read the prefix, write only the program's kinds)")
    .option('--prefix <prefix>', "egw's key prefix in etcd (the datastore URL's /PREFIX)", '/egw/')
    .option('-o, --output <format>', 'script (etcdctl commands) or json', 'script')
    .option('--no-password', "users without a password: etcd takes the user from the client certificate's CN")
    .action((opts: { prefix: string; output: string; password: boolean }) => {
      if (!/^\/([A-Za-z0-9._-]+\/)+$/.test(opts.prefix.endsWith('/') ? opts.prefix : `${opts.prefix}/`)) {
        throw usageError(`--prefix ${opts.prefix} is not a key prefix`, 'e.g. --prefix /egw/ (the datastore URL etcd://HOST:PORT/team-a has /team-a/)');
      }
      const roles = etcdRoles(opts.prefix);
      if (opts.output === 'json') process.stdout.write(`${JSON.stringify(roles, null, 2)}\n`);
      else if (opts.output === 'script') process.stdout.write(renderEtcdRolesScript(roles, { noPassword: !opts.password }));
      else throw usageError(`-o ${opts.output} is not a format of render etcd-roles`, 'use -o script or -o json');
    });
}

function printIssues(issues: readonly Issue[]): void {
  for (const issue of issues) process.stderr.write(`${issue.severity === 'error' ? 'error: ' : ''}${formatIssue(issue)}\n`);
}
