import type { Command } from 'commander';
import { parseSelector } from '../../api/selector/index.js';
import { isEgwError } from '../../platform/errors.js';
import { ExitCode, usageError } from '../exit.js';

/** `egw selector eval EXPR --labels JSON`: prints true or false; a parse error exits 2. */
export function registerSelectorCommands(program: Command): void {
  const selector = program.command('selector').description('work with Calico selectors');
  selector
    .command('eval')
    .description('evaluate a selector against a set of labels; prints true or false')
    .argument('<expr>', "the selector, e.g. \"egress-code == 'red'\"")
    .option('--labels <json>', 'the labels as a JSON object of strings', '{}')
    .action((expr: string, opts: { labels: string }) => {
      const labels = parseLabels(opts.labels);
      let result: boolean;
      try {
        result = parseSelector(expr).evaluate(labels);
      } catch (err) {
        if (isEgwError(err, 'InvalidSelector')) {
          process.stderr.write(`error: ${err.describe()}\n`);
          throw new ExitCode(2);
        }
        throw err;
      }
      process.stdout.write(`${String(result)}\n`);
    });
}

function parseLabels(text: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw usageError(`--labels is not valid JSON: ${(err as Error).message}`, 'pass an object such as \'{"egress-code":"red"}\'');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw usageError('--labels must be a JSON object', 'pass an object such as \'{"egress-code":"red"}\'');
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw usageError(`--labels: the value of "${k}" must be a string`, `write "${k}": "${String(v)}"`);
    labels[k] = v;
  }
  return labels;
}
