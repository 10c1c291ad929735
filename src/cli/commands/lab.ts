import type { Command } from 'commander';
import { readIpamSnapshot, summarizeIpam } from '../../ipam/index.js';
import { openDatastore } from '../../datastore/open.js';
import { readAwsSimRunConfig, runLabAwsSim } from '../../lab/aws-sim-runner.js';
import { LabProcesses } from '../../lab/processes.js';
import { registerLabKubeletCommand } from '../../lab/kubelet/index.js';
import { registerLabSchedulerCommand } from '../../lab/scheduler/index.js';
import { labStateDir } from '../../lab/state.js';
import { statusTables } from '../../lab/status.js';
import { DEFAULT_LAB_PREFIX, labDown, labUp } from '../../lab/supervisor.js';
import type { LabContext } from '../../lab/supervisor.js';
import { upSummary } from '../../lab/summary.js';
import { labExec, labKubectl, labVerify, readLab, verifyRows } from '../../lab/verify.js';
import { builtInInstanceTypes } from '../../sim/aws/index.js';
import { createLogger } from '../../platform/logger.js';
import { ExitCode, usageError } from '../exit.js';
import { formatTable } from '../output.js';

interface LabFlags {
  stateDir?: string;
  prefix: string;
}

function context(cmd: Command): LabContext {
  const flags = cmd.optsWithGlobals<LabFlags>();
  if (!/^[a-z][a-z0-9]{1,7}$/.test(flags.prefix)) throw usageError(`--prefix "${flags.prefix}" must be 2-8 characters [a-z][a-z0-9]*`);
  return { stateDir: labStateDir(flags.stateDir), prefix: flags.prefix, log: (line) => process.stdout.write(`${line}\n`) };
}

function positiveInt(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} "${text}" must be a positive integer`);
  return n;
}

function root(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw usageError('egw lab needs root: it makes network namespaces', 'run it with sudo');
  }
}

/**
 * `egw lab …`: the whole system on one machine (docs/lab.md). `up`, `verify`, `status`, `exec`, `down`,
 * plus the lab's own programs: `scheduler`, `kubelet`, and the emulator with the lab fabric (`aws-sim`).
 */
export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('the whole system on one machine: an AWS VPC in network namespaces, the production programs, the reference scenario');
  // --state-dir and --prefix belong to each command (not to `lab`): `lab kubelet` has a --state-dir of its own.
  const labCommand = (name: string, options?: { hidden?: boolean }): Command =>
    lab
      .command(name, options)
      .option('--state-dir <dir>', 'where the lab keeps its state (default EGW_LAB_DIR, else /run/egw-lab)')
      .option('--prefix <prefix>', 'name prefix of the lab\'s network namespaces', DEFAULT_LAB_PREFIX);

  labCommand('up')
    .description('build the lab (or converge a running one), apply the scenario, wait until every gateway is ready and every client routed')
    .option('--scenario <file>', 'the scenario (default: the running lab\'s, else examples/lab/reference.yaml)')
    .option('--timeout <seconds>', 'how long to wait for the gateways and clients (default: the scenario\'s)')
    .option('--kubernetes', 'run on a real Kubernetes control plane (scripts/build-kube): kube-scheduler places the pods, kubectl applies the scenario')
    .addHelpText(
      'after',
      '\nThe datastore is an embedded SQLite file in the state dir; --datastore etcd://HOST:PORT[/PREFIX] uses an etcd on this host instead;\n' +
        '--kubernetes runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler in the control plane\'s namespace (egw lab kubectl -- … talks to it).',
    )
    .action(async (opts: { scenario?: string; timeout?: string; kubernetes?: boolean }, cmd: Command) => {
      root();
      const ctx = context(cmd);
      const { datastore } = cmd.optsWithGlobals<{ datastore?: string }>();
      const timeoutSeconds = positiveInt('--timeout', opts.timeout);
      const result = await labUp(ctx, {
        ...(opts.scenario === undefined ? {} : { scenario: opts.scenario }),
        ...(datastore === undefined ? {} : { datastore }),
        ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
        ...(opts.kubernetes === true ? { kubernetes: true } : {}),
      });
      process.stdout.write(upSummary(result, ctx.stateDir));
      if (!result.ready) throw new ExitCode(1);
    });

  labCommand('verify')
    .description('connect from every client pod to every external server; show the source each server saw against the one the policy predicts')
    .option('--count <n>', 'connections per pair', '1')
    .action(async (opts: { count: string }, cmd: Command) => {
      root();
      const ctx = context(cmd);
      const started = Date.now();
      const r = await labVerify(ctx.stateDir, { count: positiveInt('--count', opts.count) ?? 1 });
      const { header, rows } = verifyRows(r.pairs);
      process.stdout.write(formatTable(header, rows));
      const failed = r.pairs.filter((p) => !p.ok).length;
      process.stdout.write(`${r.pairs.length - failed}/${r.pairs.length} pairs OK (${((Date.now() - started) / 1000).toFixed(1)} s)${r.pairs.length === 0 ? ' — no client pod is running' : ''}\n`);
      if (!r.ok) throw new ExitCode(1);
    });

  labCommand('status')
    .description('nodes (ENIs, aws-secondary-ipv4), gateways, clients, pools and processes of the running lab')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts: { output: string }, cmd: Command) => {
      const ctx = context(cmd);
      const { record, scenario, snapshot, paths } = await readLab(ctx.stateDir);
      const store = await openDatastore(record.datastore.outside);
      let pools;
      try {
        pools = summarizeIpam(await readIpamSnapshot(store)).pools;
      } finally {
        await store.close();
      }
      const procs = new LabProcesses(paths.root);
      const tables = statusTables(snapshot, scenario, builtInInstanceTypes(), pools, procs.list().map((p) => ({ ...p, alive: procs.alive(p) })));
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify({ lab: record, tables }, null, 2)}\n`);
        return;
      }
      if (opts.output !== 'table') throw usageError(`-o ${opts.output}: use table or json`);
      process.stdout.write(`lab ${record.scenarioName} (${record.prefix}-*, ${record.datastore.outside}), up since ${record.createdAt}\n`);
      for (const t of tables) process.stdout.write(`\n${t.title}\n${formatTable(t.header, t.rows)}`);
    });

  labCommand('exec')
    .description("run a command inside a pod's network namespace, e.g. egw lab exec my-netcat-pod -n my-namespace -- nc 198.51.100.10 8089")
    .argument('<pod>', 'the pod')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-n, --namespace <ns>', 'the pod\'s namespace (default: the one pod of that name)')
    .action(async (pod: string, argv: string[], opts: { namespace?: string }, cmd: Command) => {
      root();
      const ctx = context(cmd);
      const code = await labExec(ctx.stateDir, pod, opts.namespace, argv);
      if (code !== 0) throw new ExitCode(code);
    });

  labCommand('kubectl')
    .description("run the lab's kubectl (scripts/build-kube) with its admin kubeconfig, e.g. egw lab kubectl -- get nodes (egw lab up --kubernetes)")
    .argument('<args...>', "kubectl's arguments (after --)")
    .action(async (args: string[], _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const code = await labKubectl(ctx.stateDir, args);
      if (code !== 0) throw new ExitCode(code);
    });

  labCommand('down')
    .description('remove every namespace, link, process and file the lab made (idempotent)')
    .action(async (_opts: unknown, cmd: Command) => {
      root();
      const ctx = context(cmd);
      const started = Date.now();
      const r = await labDown(ctx);
      process.stdout.write(`lab down: ${r.namespaces.length} namespaces and ${r.processes} processes removed, ${ctx.stateDir} deleted (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    });

  lab
    .command('aws-sim', { hidden: true })
    .description("the lab's EC2 emulator with the lab fabric driver (started by egw lab up inside the VPC router's namespace)")
    .requiredOption('--config <file>', 'the configuration egw lab up wrote')
    .action(async (opts: { config: string }) => {
      const logger = createLogger({ component: 'lab-aws-sim' });
      const handle = await runLabAwsSim(readAwsSimRunConfig(opts.config), logger);
      process.stdout.write(`lab aws-sim ready on ${handle.url}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await handle.close();
    });

  registerLabSchedulerCommand(lab);
  registerLabKubeletCommand(lab);
}
