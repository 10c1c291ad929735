import { Command, CommanderError } from 'commander';
import { EgwError, errorMessage } from '../platform/errors.js';
import { ExitCode } from './exit.js';
import { ETCD_SETTINGS } from '../datastore/etcd/etcd-security.js';
type Registrar = (program: Command) => void;

/**
 * The top-level commands and where they live. Modules are loaded only for the command being run: the
 * node programs (`egw agent`, `egw gateway`, the CNI-driven pod runtime) start many times, and loading
 * the AWS SDK, the etcd client and the lab for each of them would cost every start about a second.
 */
const COMMANDS: readonly { names: readonly string[]; load: () => Promise<Registrar> }[] = [
  { names: ['apply', 'get', 'delete', 'validate'], load: async () => (await import('./commands/resources.js')).registerResourceCommands },
  { names: ['selector'], load: async () => (await import('./commands/selector.js')).registerSelectorCommands },
  { names: ['ipam'], load: async () => (await import('./commands/ipam.js')).registerIpamCommands },
  { names: ['aws-sim'], load: async () => (await import('./commands/aws-sim.js')).registerAwsSimCommands },
  { names: ['controller'], load: async () => (await import('./commands/controller.js')).registerControllerCommands },
  { names: ['render'], load: async () => (await import('./commands/render.js')).registerRenderCommands },
  { names: ['agent'], load: async () => (await import('./commands/agent.js')).registerAgentCommands },
  { names: ['gateway'], load: async () => (await import('./commands/gateway.js')).registerGatewayCommands },
  { names: ['aws'], load: async () => (await import('./commands/aws.js')).registerAwsCommands },
  { names: ['install-cni'], load: async () => (await import('./commands/install-cni.js')).registerInstallCniCommand },
  { names: ['lab'], load: async () => (await import('./commands/lab.js')).registerLabCommands },
];

/** The global options that take a value (the next word is theirs, not a command). */
const GLOBAL_VALUE_OPTIONS = new Set(['--datastore', ...ETCD_SETTINGS.map((s) => s.flag)]);

/** The first word of `args` that is not a global option or its value: the command being run. */
function commandWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (GLOBAL_VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Builds the `egw` command tree. Each command lives in src/cli/commands and stays thin. Given the
 * arguments, only the command they name is loaded (all of them for help or an unknown word).
 */
export async function buildProgram(args: readonly string[] = []): Promise<Command> {
  const program = new Command('egw')
    .description('egw: egress gateways for Kubernetes on AWS, speaking Calico\'s egress-gateway resources')
    .option('--datastore <url>', 'datastore: a SQLite file path (default /var/lib/egw/egw.db), etcd://host:port[,host:port][/prefix] (etcds:// for TLS), or kubernetes[:KUBECONFIG]; also EGW_DATASTORE')
    .showHelpAfterError()
    .exitOverride();
  for (const s of ETCD_SETTINGS) program.option(`${s.flag} <${s.field === 'username' ? 'name' : 'file'}>`, `${s.what}; also ${s.env}`);
  // The etcd flags are the environment variables of the same settings, for this process and the programs
  // it starts (the lab's daemons, a CNI plugin run by hand): one place reads them (src/datastore/open.ts).
  program.hook('preAction', (_this, action) => {
    const opts = action.optsWithGlobals<Record<string, unknown>>();
    for (const s of ETCD_SETTINGS) {
      const v = opts[flagKey(s.flag)];
      if (typeof v === 'string') process.env[s.env] = v;
    }
  });
  const word = commandWord(args);
  const wanted = COMMANDS.filter((c) => word !== undefined && c.names.includes(word));
  for (const c of wanted.length > 0 ? wanted : COMMANDS) (await c.load())(program);
  return program;
}

/** Commander's option key of a flag: `--etcd-ca-file` → `etcdCaFile`. */
function flagKey(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** Runs the CLI; user mistakes print one clear line, never a stack trace. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    const program = await buildProgram(argv.slice(2));
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof ExitCode) return err.code;
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof EgwError) {
      process.stderr.write(`error: ${err.describe()}\n`);
      const code = err.details['exitCode'];
      return typeof code === 'number' ? code : 1;
    }
    process.stderr.write(`error: ${errorMessage(err)}\n`);
    if (process.env['EGW_DEBUG'] !== undefined && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return 1;
  }
}

