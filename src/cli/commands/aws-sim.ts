import type { Command } from 'commander';
import { dumpAwsSimState, renderAwsSimState, startAwsSim } from '../../sim/aws/index.js';
import { createLogger } from '../../platform/logger.js';
import { usageError } from '../exit.js';

/** `egw aws-sim`: the EC2-API emulator with IMDSv2 (docs/aws-sim.md), and `egw aws-sim dump`. */
export function registerAwsSimCommands(program: Command): void {
  const sim = program
    .command('aws-sim')
    .description('run the EC2-API emulator (EC2 Query API + IMDSv2) for development and the lab')
    .option('--world <file>', 'the world definition (YAML): region, VPCs, subnets, instances, Elastic IPs')
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:8787')
    .option('--state-file <file>', 'persist the emulator state here (restored on restart)')
    .action(async (opts: { world?: string; listen: string; stateFile?: string }) => {
      if (opts.world === undefined) throw usageError('aws-sim needs --world FILE', 'see examples/aws-sim/world.yaml');
      const logger = createLogger({ component: 'aws-sim' });
      const handle = await startAwsSim({ world: opts.world, listen: opts.listen, logger, ...(opts.stateFile === undefined ? {} : { stateFile: opts.stateFile }) });
      logger.info({ url: handle.url }, 'aws-sim listening');
      process.stdout.write(`aws-sim listening on ${handle.url} (EC2 API at /, IMDS at /latest/, state at /_sim/state)\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await handle.close();
    });

  sim
    .command('dump')
    .description("show a running emulator's state (or a state file's)")
    .option('--url <url>', 'the emulator', 'http://127.0.0.1:8787')
    .option('--state-file <file>', 'read a state file instead of asking a running emulator')
    .option('--json', 'print JSON instead of tables')
    .action(async (opts: { url: string; stateFile?: string; json?: boolean }) => {
      const dump = await dumpAwsSimState(opts.stateFile === undefined ? { url: opts.url } : { stateFile: opts.stateFile });
      process.stdout.write(opts.json === true ? `${JSON.stringify(dump, null, 2)}\n` : renderAwsSimState(dump));
    });
}
