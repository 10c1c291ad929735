import type { Server } from 'node:http';
import { openDatastoreForDaemon } from '../daemon-datastore.js';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { parseDuration } from '../../api/index.js';
import { AgentMetrics, EgressAgent, KernelLock, serveMetrics, type AgentSidecar } from '../../agent/index.js';
import { egwVersion } from '../../controller/operator/index.js';
import type { Datastore } from '../../datastore/contract.js';
import { eventRecorderFor } from '../../datastore/events.js';
import type { EventRecorder } from '../../platform/events.js';
import { createLogger, type Logger } from '../../platform/logger.js';
import { ExecShell } from '../../platform/shell.js';
import { usageError } from '../exit.js';

/** The agent's `reportingController` in Events. */
export const AGENT_EVENT_SOURCE = 'egw.io/agent';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface AgentFlags {
  node?: string;
  nodeIp?: string;
  metricsListen?: string;
  clusterCidr: string[];
  natOutgoing: boolean;
  pollTimeout?: string;
  resyncInterval?: string;
  vxlanMtu?: string;
  vxlanParent?: string;
  logLevel?: string;
  awsFabric: boolean;
  awsCluster: string;
}

/**
 * The AWS fabric component (src/agent/fabric), loaded only when wanted. It makes no AWS call while
 * FelixConfiguration `awsSecondaryIPSupport` is Disabled (it then only publishes a capacity of 0), so it
 * is on by default; `--no-aws-fabric` leaves it out entirely.
 */
async function awsFabricSidecar(store: Datastore, nodeName: string, cluster: string, lock: KernelLock, logger: Logger, events: EventRecorder): Promise<AgentSidecar> {
  const { AwsFabric, ShellEniRouting } = await import('../../agent/fabric/index.js');
  const { SdkEc2 } = await import('../../aws/index.js');
  const { LockedEniRouting } = await import('../../agent/kernel-lock.js');
  const fabric = new AwsFabric(
    { store, ec2: (region) => new SdkEc2({ region }), linux: new LockedEniRouting(new ShellEniRouting(new ExecShell()), lock), logger: logger.child({ part: 'aws-fabric' }), events },
    { nodeName, cluster },
  );
  return {
    start: () => fabric.start(),
    stop: () => fabric.stop(),
    summary: () => {
      const s = fabric.status();
      return {
        mode: s.mode,
        instanceId: s.instance?.instanceId ?? null,
        lastError: s.lastError ?? null,
        staleSince: s.stale?.since ?? null,
        srcDstCheck: s.srcDstCheck === undefined ? null : { want: s.srcDstCheck.want, state: s.srcDstCheck.state, eni: s.srcDstCheck.networkInterfaceId ?? null, message: s.srcDstCheck.message },
      };
    },
  };
}

function durationFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw usageError(`${name} "${text}" is not a duration`, 'e.g. 100ms, 2s, 1m');
  return ms;
}

/** Resolves when SIGTERM or SIGINT arrives. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

/**
 * `egw agent --node NAME`: the per-node agent (docs/agent.md), run in the node's network namespace.
 * Runs until SIGTERM/SIGINT, then stops without touching the data plane.
 */
export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description("run the node agent: program this node's egress data plane from the datastore and poll remote gateways")
    .option('--node <name>', 'this node\'s name (its Node record); also NODENAME or EGW_NODE_NAME')
    .option('--node-ip <ip>', 'the node address, when its Node record has no InternalIP')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics on GET /metrics here')
    .option('--cluster-cidr <cidr>', 'a destination of the cluster besides the IP pools, e.g. the service CIDR (repeatable)', collect, [])
    .option('--no-nat-outgoing', 'do not program natOutgoing for natOutgoing pools (the CNI does it)')
    .option('--poll-timeout <duration>', 'timeout of one gateway readiness poll (default: half the poll interval, 50ms..2s)')
    .option('--resync-interval <duration>', 're-read and re-apply the node at least this often', '30s')
    .option('--vxlan-mtu <n>', 'MTU of the egw.vxlan device (default 1450)')
    .option('--vxlan-parent <dev>', 'underlay device the tunnel is bound to')
    .option('--no-aws-fabric', 'leave out the AWS fabric component (ENIs, secondary IPs, Elastic IPs; inert while awsSecondaryIPSupport is Disabled)')
    .option('--aws-cluster <name>', 'cluster name in the tags of the ENIs this agent creates', 'egw')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default EGW_LOG_LEVEL or info)')
    .action(async (opts: AgentFlags, cmd: Command) => {
      const nodeName = opts.node ?? process.env['NODENAME'] ?? process.env['EGW_NODE_NAME'];
      if (nodeName === undefined || nodeName === '') throw usageError('egw agent needs the node name', 'pass --node NAME (or set NODENAME)');
      if (opts.nodeIp !== undefined && isIP(opts.nodeIp) !== 4) throw usageError(`--node-ip "${opts.nodeIp}" is not an IPv4 address`);
      const mtu = opts.vxlanMtu === undefined ? undefined : Number(opts.vxlanMtu);
      if (mtu !== undefined && !(Number.isInteger(mtu) && mtu >= 576 && mtu <= 9000)) throw usageError(`--vxlan-mtu "${opts.vxlanMtu}" must be an integer from 576 to 9000`);
      const pollTimeoutMs = durationFlag('--poll-timeout', opts.pollTimeout);
      const resyncIntervalMs = durationFlag('--resync-interval', opts.resyncInterval);
      const logger = createLogger({ component: 'agent', ...(opts.logLevel === undefined ? {} : { level: opts.logLevel }) });
      const { datastore } = cmd.optsWithGlobals<{ datastore?: string }>();
      const store = await openDatastoreForDaemon(datastore, logger);
      const metrics = new AgentMetrics();
      const kernelLock = new KernelLock();
      let server: Server | undefined;
      // Events (no capacity, EC2 errors): events.k8s.io Events on Kubernetes, log lines elsewhere.
      const events = eventRecorderFor(store, { controller: AGENT_EVENT_SOURCE, instance: nodeName }, { logger });
      const sidecar = opts.awsFabric ? await awsFabricSidecar(store, nodeName, opts.awsCluster, kernelLock, logger, events) : undefined;
      const agent = new EgressAgent(
        { store, shell: new ExecShell(), logger, metrics, kernelLock, ...(sidecar === undefined ? {} : { sidecar }) },
        {
          nodeName,
          ...(opts.nodeIp === undefined ? {} : { nodeIp: opts.nodeIp }),
          clusterCidrs: opts.clusterCidr,
          natOutgoing: opts.natOutgoing,
          ...(pollTimeoutMs === undefined ? {} : { pollTimeoutMs }),
          ...(resyncIntervalMs === undefined ? {} : { resyncIntervalMs }),
          ...(mtu === undefined ? {} : { vxlanMtu: mtu }),
          ...(opts.vxlanParent === undefined ? {} : { vxlanParentDev: opts.vxlanParent }),
          version: egwVersion(),
        },
      );
      try {
        if (opts.metricsListen !== undefined) server = await serveMetrics(metrics.registry, opts.metricsListen);
        const signal = untilSignal();
        agent.start();
        logger.info({ node: nodeName, datastore: store.location, metrics: opts.metricsListen, awsFabric: opts.awsFabric }, 'agent running');
        const received = await signal;
        logger.info({ signal: received }, 'agent shutting down');
      } finally {
        await agent.stop();
        await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
        await events.close();
        await store.close();
      }
    });
}
