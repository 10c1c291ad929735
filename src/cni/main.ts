#!/usr/bin/env node
/**
 * The `egw-ipam` executable: a CNI IPAM plugin run by the main plugin (e.g. ptp) with the CNI_* environment
 * and the network configuration on stdin. Prints the result (or a CNI error object) on stdout; logs, if
 * any, go to stderr. Imports only what one invocation needs, to start fast.
 */
import { runCni } from './plugin.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY === true) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

readStdin()
  .then((stdin) => runCni(process.env, stdin))
  .then(
    (out) => {
      process.stdout.write(out.stdout);
      process.exitCode = out.exitCode;
    },
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ cniVersion: '1.0.0', code: 5, msg: 'I/O failure', details: err instanceof Error ? err.message : String(err) })}\n`);
      process.exitCode = 1;
    },
  );
