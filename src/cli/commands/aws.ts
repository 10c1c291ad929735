import type { Command } from 'commander';
import { iamPolicy, iamPolicyActions } from '../../aws/iam-policy.js';

/**
 * `egw aws iam-policy`: the least-privilege IAM policy (JSON) for the EC2 calls egw makes — derived from
 * the EC2 port's method table, so it lists exactly what the code calls. `--actions` prints the actions
 * one per line instead (for scripts and the emulator's allow-list).
 */
export function registerAwsCommands(program: Command): void {
  const aws = program.command('aws').description('AWS helpers');
  aws
    .command('iam-policy')
    .description('print the least-privilege IAM policy for the node agents and the controller (JSON)')
    .option('--actions', 'print only the IAM actions, one per line')
    .action((opts: { actions?: boolean }) => {
      process.stdout.write(opts.actions === true ? `${iamPolicyActions().join('\n')}\n` : `${JSON.stringify(iamPolicy(), null, 2)}\n`);
    });
}
