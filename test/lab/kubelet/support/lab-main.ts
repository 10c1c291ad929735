/**
 * A stand-in `egw` for the scheduler and kubelet tests: the global `--datastore` option and an `egw lab`
 * command with `scheduler` and `kubelet` mounted, as the lab's own command mounts them. (The tests do not
 * depend on the lab command being there yet.)
 */
import { Command } from 'commander';
import { registerLabKubeletCommand } from '../../../../src/lab/kubelet/index.js';
import { registerLabSchedulerCommand } from '../../../../src/lab/scheduler/index.js';
import { errorMessage } from '../../../../src/platform/errors.js';

const program = new Command('egw').option('--datastore <url>', 'datastore').exitOverride();
const lab = program.command('lab');
registerLabSchedulerCommand(lab);
registerLabKubeletCommand(lab);
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
