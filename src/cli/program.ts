import { Command, CommanderError } from 'commander';
import { EgwError, errorMessage } from '../platform/errors.js';
import { ExitCode } from './exit.js';
import { registerAwsSimCommands } from './commands/aws-sim.js';
import { registerControllerCommands } from './commands/controller.js';
import { registerResourceCommands } from './commands/resources.js';
import { registerSelectorCommands } from './commands/selector.js';
import { registerIpamCommands } from './commands/ipam.js';
import { registerRenderCommands } from './commands/render.js';
import { registerAgentCommands } from './commands/agent.js';
import { registerGatewayCommands } from './commands/gateway.js';
import { registerAwsCommands } from './commands/aws.js';
import { registerLabCommands } from './commands/lab.js';

/** Builds the `egw` command tree. Each command lives in src/cli/commands and stays thin. */
export function buildProgram(): Command {
  const program = new Command('egw')
    .description('egw: egress gateways for Kubernetes on AWS, speaking Calico\'s egress-gateway resources')
    .option('--datastore <url>', 'datastore: a SQLite file path (default ./egw-data/egw.db) or etcd://host:port[,host:port]; also EGW_DATASTORE')
    .showHelpAfterError()
    .exitOverride();
  registerResourceCommands(program);
  registerSelectorCommands(program);
  registerIpamCommands(program);
  registerAwsSimCommands(program);
  registerControllerCommands(program);
  registerRenderCommands(program);
  registerAgentCommands(program);
  registerGatewayCommands(program);
  registerAwsCommands(program);
  registerLabCommands(program);
  return program;
}

/** Runs the CLI; user mistakes print one clear line, never a stack trace. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
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

