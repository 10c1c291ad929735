import type { Command } from 'commander';
import { parseDuration } from '../../api/checks.js';
import { analyzeIpam, Ipam, readIpamSnapshot, runIpamGcPass, summarizeIpam } from '../../ipam/index.js';
import type { IntendedUse } from '../../ipam/index.js';
import { EgwError } from '../../platform/errors.js';
import { withStore } from '../context.js';
import { ExitCode, usageError } from '../exit.js';
import { formatTable } from '../output.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function outputFormat(text: string): 'table' | 'json' {
  const f = text.toLowerCase();
  if (f === 'table' || f === 'json') return f;
  throw usageError(`unknown output format "${text}"`, 'use -o table or -o json');
}

/** Registers `egw ipam show|check|release|allocate|gc` (calicoctl-style). */
export function registerIpamCommands(program: Command): void {
  const ipam = program.command('ipam').description('IP address management: show, check, release, allocate, gc');

  ipam
    .command('show')
    .description('per pool: size, reserved, allocated, free; per node: its blocks')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts: { output: string }, command: Command) => {
      const format = outputFormat(opts.output);
      const summary = await withStore(command, async (store) => summarizeIpam(await readIpamSnapshot(store)));
      if (format === 'json') {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        formatTable(
          ['POOL', 'CIDR', 'BLOCK', 'SIZE', 'RESERVED', 'ALLOCATED', 'FREE', 'AWS SUBNET'],
          summary.pools.map((p) => [p.name + (p.disabled ? ' (disabled)' : ''), p.cidr, `/${p.blockSize}`, String(p.size), String(p.reserved), String(p.allocated), String(p.free), p.awsSubnetID ?? '']),
        ),
      );
      if (summary.nodes.length > 0) {
        process.stdout.write('\n');
        process.stdout.write(
          formatTable(
            ['NODE', 'ADDRESSES', 'BLOCKS'],
            summary.nodes.map((n) => [n.node, String(n.addresses), n.blocks.length === 0 ? '-' : n.blocks.map((b) => `${b.cidr} (${b.allocated}/${b.size})`).join(', ')]),
          ),
        );
      }
    });

  ipam
    .command('check')
    .description('find leaked addresses and inconsistent records; exit 1 when there are any')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts: { output: string }, command: Command) => {
      const format = outputFormat(opts.output);
      const findings = await withStore(command, async (store) => analyzeIpam(await readIpamSnapshot(store)));
      if (format === 'json') process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
      else if (findings.length === 0) process.stdout.write('IPAM is consistent: no leaks, no inconsistencies\n');
      else {
        for (const f of findings) process.stdout.write(`${f.kind}: ${f.message}${f.repairable ? ' [egw ipam gc repairs it]' : ' [needs an operator]'}\n`);
        process.stdout.write(`${findings.length} problem${findings.length === 1 ? '' : 's'} found\n`);
      }
      if (findings.length > 0) throw new ExitCode(1);
    });

  ipam
    .command('release')
    .description('release an address by IP or by handle (succeeds when there is nothing to release)')
    .option('--ip <ip>', 'the address to release')
    .option('--handle <handle>', 'the handle whose address to release')
    .action(async (opts: { ip?: string; handle?: string }, command: Command) => {
      if ((opts.ip === undefined) === (opts.handle === undefined)) throw usageError('give exactly one of --ip and --handle', 'e.g. egw ipam release --ip 100.64.0.5');
      const result = await withStore(command, (store) => {
        const ipam = new Ipam({ store });
        return opts.ip !== undefined ? ipam.releaseByIp(opts.ip) : ipam.releaseByHandle(opts.handle!);
      });
      if (result.released) process.stdout.write(`released ${result.ip ?? '?'} (handle ${result.handle ?? '?'})\n`);
      else process.stdout.write(`nothing to release: ${opts.ip !== undefined ? `${opts.ip} is not allocated` : `handle ${opts.handle ?? ''} holds no address`}\n`);
    });

  ipam
    .command('allocate')
    .description('allocate one address for a handle on a node and print it (exit 1 with the reason when none)')
    .requiredOption('--handle <handle>', 'the handle that will own the address')
    .requiredOption('--node <node>', 'the node the address is for')
    .option('--pool <nameOrCidr>', 'a pool to use, by name or CIDR (repeatable; tried in order)', collect, [])
    .option('--aws', 'an address from an AWS-backed pool (as a pod requesting projectcalico.org/aws-secondary-ipv4)')
    .option('--use <use>', 'Workload or HostSecondaryInterface', 'Workload')
    .option('--aws-subnet <id>', 'only pools backed by this AWS subnet')
    .action(async (opts: { handle: string; node: string; pool: string[]; aws?: boolean; use: string; awsSubnet?: string }, command: Command) => {
      if (opts.use !== 'Workload' && opts.use !== 'HostSecondaryInterface') throw usageError(`unknown use "${opts.use}"`, 'use --use Workload or --use HostSecondaryInterface');
      const allocation = await withStore(command, (store) =>
        new Ipam({ store }).allocate({
          handle: opts.handle,
          node: opts.node,
          use: opts.use as IntendedUse,
          ...(opts.pool.length > 0 ? { pools: opts.pool } : {}),
          ...(opts.aws === true ? { aws: true } : {}),
          ...(opts.awsSubnet === undefined ? {} : { awsSubnetID: opts.awsSubnet }),
        }),
      );
      process.stdout.write(`${allocation.ip}\n`);
    });

  ipam
    .command('gc')
    .description('one garbage-collection pass: release leaks seen for longer than the grace, repair records')
    .option('--grace <duration>', 'how long a leak must have been seen before it is released (e.g. 15m, 0s)', '15m')
    .action(async (opts: { grace: string }, command: Command) => {
      const graceMs = parseDuration(opts.grace);
      if (graceMs === undefined) throw usageError(`invalid duration "${opts.grace}"`, 'e.g. --grace 15m, --grace 30s, --grace 0s');
      const report = await withStore(command, (store) => runIpamGcPass(store, { now: Date.now(), graceMs }));
      for (const r of report.released) process.stdout.write(`released ${r.ip} (handle ${r.handle}): ${r.reason}\n`);
      for (const r of report.repaired) process.stdout.write(`repaired ${r.kind}: ${r.message}\n`);
      for (const b of report.blocks) process.stdout.write(`released block ${b}\n`);
      for (const f of report.unrepairable) process.stdout.write(`not repaired (${f.kind}): ${f.message}\n`);
      const waiting = report.marked.length + report.waiting.length;
      process.stdout.write(
        `gc: ${report.released.length} released, ${report.repaired.length} repaired, ${report.blocks.length} blocks released` +
          `${waiting > 0 ? `, ${waiting} leak${waiting === 1 ? '' : 's'} waiting for the ${opts.grace} grace` : ''}` +
          `${report.skipped > 0 ? `, ${report.skipped} skipped (changed meanwhile; next pass)` : ''}\n`,
      );
      if (report.unrepairable.length > 0) throw new EgwError('Internal', `${report.unrepairable.length} problem(s) GC cannot repair`, { hint: 'see egw ipam check' });
    });
}
