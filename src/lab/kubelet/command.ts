import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEFAULT_DATASTORE, parseDatastoreSpec } from '../../datastore/open.js';
import { openDatastore } from '../../datastore/open.js';
import { parse as parseYaml } from 'yaml';
import type { JsonObject } from '../../datastore/contract.js';
import { EgwError, errorMessage } from '../../platform/errors.js';
import type { TokenRequestCredentials } from './pod-tokens.js';
import { createLogger } from '../../platform/logger.js';
import { ExecShell } from '../../platform/shell.js';
import { durationFlag, untilSignal } from '../scheduler/command.js';
import { checkCniConfig, ExecCni, installEgwIpam, kubeletCniConfig } from './cni.js';
import { KUBELET_WATCHED_KINDS, LabKubelet } from './kubelet.js';
import { checkNetnsPrefix } from './naming.js';
import { currentNetnsMountPropagation, IpNetns, NETNS_DIR } from './netns.js';
import { NetProber } from './prober.js';
import { ChildProcesses } from './processes.js';
import { StateDir } from './state.js';

/** The compiled egw CLI next to this module (`dist/src/cli/main.js`). */
export const DEFAULT_EGW_MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
/** The compiled egw-ipam plugin next to this module (`dist/src/cni/main.js`). */
export const DEFAULT_EGW_IPAM_MAIN = fileURLToPath(new URL('../../cni/main.js', import.meta.url));
/** Where Debian's containernetworking-plugins live. */
export const DEFAULT_CNI_BIN_DIR = '/usr/lib/cni';

/** The default state directory of a node's kubelet. */
export function defaultStateDir(netnsPrefix: string, node: string): string {
  return join(tmpdir(), `egw-lab-kubelet-${netnsPrefix}`, node);
}

/** The argv that runs `egw` at `path`: through node for a `.js` file, directly otherwise. */
export function egwCommandFor(path: string, nodeBinary = process.execPath): string[] {
  return /\.[cm]?js$/.test(path) ? [nodeBinary, path] : [path];
}

/** The datastore spec as containers and CNI see it: a relative SQLite path made absolute. */
export function absoluteDatastore(spec: string, cwd = process.cwd()): string {
  const parsed = parseDatastoreSpec(spec);
  if (parsed.backend !== 'sqlite' || isAbsolute(parsed.path)) return spec;
  return resolve(cwd, parsed.path);
}

/** How to start one node's kubelet (what the lab passes). */
export interface LabKubeletLaunch {
  /** The node's network namespace (the kubelet enters it, and only it). */
  nodeNetns: string;
  nodeName: string;
  datastore: string;
  netnsPrefix: string;
  stateDir: string;
  /** The egw CLI that runs the kubelet (default: this egw's `dist/src/cli/main.js`). */
  egwMain?: string;
  /** The egw CLI that containers with command `egw …` run (default: `egwMain`). */
  egwBin?: string;
  /** Node.js (default: the running one). */
  nodeBinary?: string;
  /** A CNI network configuration file (default: ptp + egw-ipam). */
  cniConf?: string;
  /** Directories holding the main CNI plugin (default /usr/lib/cni). */
  cniBinDirs?: readonly string[];
  /** Divides Kubernetes' probe and back-off timings (default 1). */
  speedup?: number;
  extraArgs?: readonly string[];
}

/**
 * The argv that starts a node's kubelet: `nsenter --net=/var/run/netns/<node> -- node <egw> lab kubelet …`.
 * nsenter switches the network namespace only; `ip netns exec` would also give the kubelet a mount
 * namespace of its own, where the pod namespaces it names are invisible to everyone else (the kubelet
 * refuses to start there).
 */
export function labKubeletArgv(l: LabKubeletLaunch): string[] {
  const egwMain = l.egwMain ?? DEFAULT_EGW_MAIN;
  return [
    'nsenter',
    `--net=${NETNS_DIR}/${l.nodeNetns}`,
    '--',
    ...egwCommandFor(egwMain, l.nodeBinary),
    '--datastore',
    l.datastore,
    'lab',
    'kubelet',
    '--node',
    l.nodeName,
    '--netns-prefix',
    l.netnsPrefix,
    '--state-dir',
    l.stateDir,
    '--egw-bin',
    l.egwBin ?? egwMain,
    ...(l.cniConf === undefined ? [] : ['--cni-conf', l.cniConf]),
    ...(l.cniBinDirs === undefined ? [] : ['--cni-bin-dir', l.cniBinDirs.join(':')]),
    ...(l.speedup === undefined ? [] : ['--speedup', String(l.speedup)]),
    ...(l.extraArgs ?? []),
  ];
}

interface KubeletFlags {
  node: string;
  netnsPrefix: string;
  stateDir?: string;
  cniConf?: string;
  cniBinDir: string;
  egwBin?: string;
  egwIpam?: string;
  speedup: string;
  heartbeatInterval?: string;
  syncInterval?: string;
  cniDatastore?: string;
  podDatastore?: string;
  registerNode?: string;
  nodeLease?: boolean;
  podTokens?: boolean;
}

/**
 * Mounts `egw lab kubelet` under the given `lab` command: one node's pod runtime (docs/lab-kubelet.md).
 * Run it inside the node's network namespace with `nsenter --net=…` ({@link labKubeletArgv}); it uses the
 * global `--datastore` (or EGW_DATASTORE) and runs until SIGTERM/SIGINT, leaving the pods running.
 */
export function registerLabKubeletCommand(lab: Command): void {
  lab
    .command('kubelet')
    .description("one node's pod runtime for the lab: pod namespaces through CNI (ptp + egw-ipam), egw processes, readiness, graceful deletion")
    .requiredOption('--node <name>', 'the Node this kubelet runs (pods with spec.nodeName = it)')
    .option('--netns-prefix <prefix>', 'prefix of the pod network namespaces (the lab sweeps it)', 'egwlab')
    .option('--state-dir <dir>', 'where the kubelet keeps its pod records and container logs (default $TMPDIR/egw-lab-kubelet-<prefix>/<node>)')
    .option('--cni-conf <file>', 'CNI network configuration (JSON, one plugin); default ptp with egw-ipam')
    .option('--cni-bin-dir <dirs>', 'colon-separated directories holding the main CNI plugin', DEFAULT_CNI_BIN_DIR)
    .option('--egw-bin <path>', 'the egw CLI that containers with command "egw …" run (a .js file runs with node)')
    .option('--egw-ipam <path>', 'the egw-ipam plugin (dist/src/cni/main.js)')
    .option('--speedup <n>', "divide Kubernetes' probe timings and restart back-off by n (lab only)", '1')
    .option('--heartbeat-interval <duration>', "how often the node's Ready condition is posted", '10s')
    .option('--sync-interval <duration>', 'longest pause between two checks of a pod', '1s')
    .option('--cni-datastore <spec>', "the datastore egw-ipam uses (default: the kubelet's)")
    .option('--pod-datastore <spec>', "EGW_DATASTORE of the containers (default: the kubelet's)")
    .option('--register-node <file>', 'a Node (JSON or YAML) to register when none exists; its capacity, allocatable and addresses are kept on every heartbeat')
    .option('--node-lease', "renew the node's Lease in kube-node-lease on every heartbeat (Kubernetes datastore)")
    .option('--pod-tokens', "give each pod its ServiceAccount's token (TokenRequest bound to the pod) in a kubeconfig, KUBECONFIG (Kubernetes datastore)")
    .action(async (flags: KubeletFlags, cmd: Command) => {
      checkNetnsPrefix(flags.netnsPrefix);
      const speedup = Number(flags.speedup);
      if (!Number.isFinite(speedup) || speedup < 1) throw new EgwError('InvalidInput', `--speedup "${flags.speedup}" is not a number ≥ 1`, { hint: 'e.g. --speedup 10' });
      const propagation = currentNetnsMountPropagation();
      if (propagation === 'slave') {
        throw new EgwError('InvalidInput', 'the kubelet runs in a mount namespace of its own (started with `ip netns exec`?): the pod namespaces it makes would be invisible outside it', {
          hint: `start it with \`nsenter --net=${NETNS_DIR}/<node namespace> -- egw lab kubelet …\`, which enters the network namespace only`,
        });
      }
      const { datastore: given } = cmd.optsWithGlobals<{ datastore?: string }>();
      const datastore = absoluteDatastore(given ?? process.env['EGW_DATASTORE'] ?? DEFAULT_DATASTORE);
      const stateDir = resolve(flags.stateDir ?? defaultStateDir(flags.netnsPrefix, flags.node));
      const logger = createLogger({ component: 'lab-kubelet' });
      const state = new StateDir(stateDir);
      const base = flags.cniConf === undefined ? undefined : (JSON.parse(readFileSync(flags.cniConf, 'utf8')) as Record<string, unknown>);
      const conf = kubeletCniConfig(base, { datastore: flags.cniDatastore ?? datastore, nodeName: flags.node });
      const registerNode = flags.registerNode === undefined ? undefined : readNodeFile(flags.registerNode, flags.node);
      const spec = parseDatastoreSpec(datastore);
      if ((flags.podTokens === true || flags.nodeLease === true) && spec.backend !== 'kubernetes') {
        throw new EgwError('InvalidInput', '--pod-tokens and --node-lease need the Kubernetes datastore', { hint: 'give --datastore kubernetes:KUBECONFIG' });
      }
      const { name: network } = checkCniConfig(conf);
      const ipamDir = installEgwIpam(join(stateDir, 'cni', 'bin'), process.execPath, resolve(flags.egwIpam ?? DEFAULT_EGW_IPAM_MAIN));
      writeFileSync(join(stateDir, 'cni', `${network}.conf`), `${JSON.stringify(conf, null, 2)}\n`);
      const ipam = conf['ipam'] as { gateway?: unknown } | undefined;
      const shell = new ExecShell();
      // A node identity may list and watch only its own Node and its pods (the Node authorizer's rule).
      const store = await openDatastore(datastore, { kubernetes: { kinds: [...KUBELET_WATCHED_KINDS, 'Lease'], fieldSelectors: { Pod: `spec.nodeName=${flags.node}`, Node: `metadata.name=${flags.node}` } } });
      let credentials: TokenRequestCredentials | undefined;
      if (flags.podTokens === true && spec.backend === 'kubernetes') {
        // Loaded only here: @kubernetes/client-node costs every other command start-up time.
        const [{ loadKubeConfig }, tokens] = await Promise.all([import('../../datastore/kubernetes/kube-http.js'), import('./pod-tokens.js')]);
        credentials = new tokens.TokenRequestCredentials(loadKubeConfig(spec.kubeconfig, process.env).kc, join(stateDir, 'tokens'));
      }
      const kubelet = new LabKubelet(
        {
          store,
          cni: new ExecCni(shell, conf, [...flags.cniBinDir.split(':').filter((d) => d !== ''), ipamDir]),
          netns: new IpNetns(shell),
          processes: new ChildProcesses(),
          prober: new NetProber(shell),
          state,
          logger,
          ...(credentials === undefined ? {} : { credentials }),
        },
        {
          nodeName: flags.node,
          datastore: flags.podDatastore ?? datastore,
          ...(registerNode === undefined ? {} : { registerNode }),
          nodeLease: flags.nodeLease === true,
          netnsPrefix: flags.netnsPrefix,
          egwCommand: egwCommandFor(resolve(flags.egwBin ?? DEFAULT_EGW_MAIN)),
          speedup,
          heartbeatIntervalMs: Math.max(100, durationFlag('--heartbeat-interval', flags.heartbeatInterval, 10_000)),
          syncIntervalMs: Math.max(50, durationFlag('--sync-interval', flags.syncInterval, 1_000)),
          ...(typeof ipam?.gateway === 'string' ? { defaultGateway: ipam.gateway } : {}),
        },
      );
      try {
        kubelet.start();
        logger.info({ node: flags.node, datastore, stateDir, netnsPrefix: flags.netnsPrefix, speedup, mounts: propagation }, 'kubelet started');
        const signal = await untilSignal();
        logger.info({ signal }, 'kubelet stopping; pods keep running');
      } finally {
        await kubelet.stop();
        credentials?.close();
        await store.close();
      }
    });
}

/** Reads the Node to register; it must be a v1 Node named as the kubelet's node. */
function readNodeFile(file: string, node: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EgwError('InvalidInput', `--register-node ${file}: ${errorMessage(err)}`, { hint: 'give a Node as JSON or YAML' });
  }
  const o = parsed as { kind?: unknown; metadata?: { name?: unknown } } | null;
  if (o === null || typeof o !== 'object' || o.kind !== 'Node' || o.metadata?.name !== node) {
    throw new EgwError('InvalidInput', `--register-node ${file}: not a Node named ${node}`, { hint: 'kind: Node, metadata.name: the --node name' });
  }
  return parsed as JsonObject;
}
